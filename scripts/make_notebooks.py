"""Write notebooks/en and notebooks/zh from one source, scripts/notebooks/, so both editions have identical code cells.

    python scripts/make_notebooks.py          # rewrite the notebooks (committed without outputs)
    python scripts/make_notebooks.py --check  # exit 1 if the committed notebooks differ from the source

The source: scripts/notebooks/nbNN_<name>.py holds notebook NN_<name>, its cells in order, each with its name (its
cell id); cells.py the helpers (md, code, params, the comment rule, writing and --check); shared.py the blocks
several notebooks use.

Each notebook: a title cell (what it does, what it needs, how long), exactly one cell tagged `parameters` with every
knob (the first of them `lang`, the edition's language, which the next code cell applies with
kit.i18n.set_language), then only calls into `kit`, prose and pictures.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "notebooks"
# scripts/notebooks is loaded as a package of this name, not through sys.path: scripts/ holds other modules
# (i18n.py) that must not shadow anything in the process that loads this file (tests/test_notebooks.py does).
PACKAGE = "kit_notebook_source"


def _load_source():
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACKAGE, SOURCE / "__init__.py",
                                                      submodule_search_locations=[str(SOURCE)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.cells")


cells = _load_source()
# What tests/test_notebooks.py uses: the rule both editions are written by.
Cell, md, code, params = cells.Cell, cells.md, cells.code, cells.params
without_comments, comments, is_chinese, COMMENTS = cells.without_comments, cells.comments, cells.is_chinese, cells.COMMENTS
notebooks, build, main = cells.notebooks, cells.build, cells.main


if __name__ == "__main__":
    sys.exit(main())
