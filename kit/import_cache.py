"""One listing of transformers' model folders per process instead of two.

transformers finds what each of its model folders exports by reading their sources
(``transformers.utils.import_utils.create_import_structure_from_path``, one call per folder, about 570 of them) and
keeps each answer in an ``lru_cache`` of 128 entries. A process lists them twice: ``import transformers`` for its
top-level names, and ``import transformers.models`` (every model or tokenizer load) again for its own. With 128
entries the second listing finds none of the first's and reads the same files again: about 0.6 s of a 2-core
machine's CPU in every process that loads a model (``kit chat``, each training process, each notebook kernel).

``install()`` gives that function an unbounded cache as transformers loads the module that defines it, before its
first call, so the second listing is read from memory. The function and its results are the same; only how many
answers it keeps changes (a few MB). Nothing is done where transformers is already imported, where the function is
missing or already unbounded (another transformers version), or where another finder than Python's own path finder
provides the module. ``kit/__init__.py`` calls it, so every kit process has it.
"""

from __future__ import annotations

import functools
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

MODULE = "transformers.utils.import_utils"
FUNCTION = "create_import_structure_from_path"


def unbound(module: ModuleType) -> bool:
    """Replace ``module``'s cached FUNCTION by the same function with an unbounded cache; False where there is none."""
    cached = getattr(module, FUNCTION, None)
    info = getattr(cached, "cache_info", None)
    plain = getattr(cached, "__wrapped__", None)
    if info is None or plain is None or info().maxsize is None:
        return False
    setattr(module, FUNCTION, functools.lru_cache(maxsize=None)(plain))  # its recursive calls look the name up here
    return True


class _AfterLoad:
    """The module's own loader, which runs ``unbound`` right after the module's code (and then steps aside)."""

    def __init__(self, loader: Any):
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # get_source, get_data, ...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        unbound(module)


class _Finder:
    """On sys.meta_path until MODULE is looked up; answers only that lookup, and only once."""

    used = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != MODULE or self.used:
            return None
        self.used = True
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None  # the finders after this one look it up as they would have (this one stays, inert)
        spec.loader = _AfterLoad(spec.loader)
        # Off the list now: this lookup ends with the spec returned, so removing it cannot make the import system
        # skip a finder it has yet to ask.
        _remove()
        return spec


def _remove() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _Finder)]


def install() -> None:
    """Make the cache unbounded when transformers loads (at once if its module is loaded and transformers is not)."""
    if "transformers" in sys.modules:
        module = sys.modules.get(MODULE)
        if module is not None:
            unbound(module)  # too late for this process's first listing; the next one, if any, is spared
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
