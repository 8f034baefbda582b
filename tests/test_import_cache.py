"""kit/import_cache.py: transformers lists its model folders once per kit process, with the same result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LIST = """
import json, sys
{first}
import transformers, transformers.models
from transformers.utils import import_utils
info = import_utils.create_import_structure_from_path.cache_info()
print(json.dumps({{"top": sorted(dir(transformers)), "models": sorted(dir(transformers.models)),
                  "maxsize": info.maxsize, "hits": info.hits, "misses": info.misses,
                  "finders": [type(f).__name__ for f in sys.meta_path]}}))
"""


def _run(first: str) -> dict:
    out = subprocess.run([sys.executable, "-c", LIST.format(first=first)], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_a_kit_process_lists_transformers_model_folders_once_with_the_same_names():
    plain = _run("")
    kit = _run("import kit")
    assert plain["maxsize"] == 128 and plain["hits"] == 0  # transformers' own cache: the second listing reads again
    # one read of each folder, and one more for the second listing's own key (the models package's __init__.py)
    assert kit["maxsize"] is None and kit["hits"] >= 500 and kit["misses"] <= plain["misses"] // 2 + 1, kit
    assert kit["top"] == plain["top"] and kit["models"] == plain["models"]  # every name, as transformers exports it
    assert "_Finder" not in kit["finders"]  # the hook removed itself once used


def test_it_does_nothing_once_transformers_is_imported():
    late = _run("import transformers\nimport kit")
    assert late["maxsize"] is None and late["hits"] == 0  # only later listings could use it; none is spared here


def test_where_it_cannot_find_the_module_the_import_goes_on_as_without_it():
    """The kit's finder asks Python's path finder first; where that answers nothing (another finder provides
    transformers), the lookup falls through to the usual finders and transformers loads as it ships."""
    missed = _run("import importlib.machinery as m\n"
                  "real, asked = m.PathFinder.find_spec, []\n"
                  "def once(name, path=None, target=None):\n"
                  "    if name == 'transformers.utils.import_utils' and not asked:\n"
                  "        asked.append(name)\n"
                  "        return None\n"
                  "    return real(name, path, target)\n"
                  "m.PathFinder.find_spec = once\n"
                  "import kit")
    assert missed["maxsize"] == 128 and missed["top"]  # transformers imported, its cache as it ships
