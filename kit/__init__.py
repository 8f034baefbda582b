"""kit: a notebook-first tutorial kit for the LLaMA-Factory Ascend quick start (LoRA SFT, then chat)."""

from kit import import_cache as _import_cache

__version__ = "0.1.0"

# Before anything imports transformers: its listing of model folders is made once per process, not twice.
_import_cache.install()
