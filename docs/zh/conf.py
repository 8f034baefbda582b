# Sphinx configuration of the zh site; everything shared lives in docs/conf_common.py.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conf_common import settings  # noqa: E402

globals().update(settings("zh"))
