"""kit: a notebook-first tutorial kit for the LLaMA-Factory Ascend quick start (LoRA SFT, then chat)."""

__version__ = "0.1.0"
