"""DeepSpeed JSON files: found where the quick start's path points, or the kit's own copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kit.config import ConfigError
from kit.i18n import _

DEEPSPEED_DIR = Path(__file__).parent / "deepspeed"


def find_deepspeed_config(value: str, config_dir: Path | None = None, cwd: Path | None = None) -> Path:
    """Locate a DeepSpeed JSON: as given, relative to the YAML file, to the working directory, then the kit's own.

    The quick start writes ``deepspeed: examples/deepspeed/ds_z0_config.json`` (a path inside a
    LLaMA-Factory checkout); the kit ships ZeRO-0/2/3 configs under the same file names.
    """
    candidates: list[Path] = []
    given = Path(value).expanduser()
    candidates.append(given)
    if not given.is_absolute():
        if config_dir is not None:
            candidates.append(config_dir / given)
        candidates.append((cwd or Path.cwd()) / given)
    candidates.append(DEEPSPEED_DIR / given.name)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    shipped = ", ".join(sorted(p.name for p in DEEPSPEED_DIR.glob("*.json")))
    raise ConfigError([_("deepspeed: {value} not found (looked as given, next to the YAML file, in the working directory, "
                         "and among the kit's configs: {shipped})").format(value=repr(value), shipped=shipped)])


def read_deepspeed_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([_("deepspeed: {path} is not valid JSON: {error}").format(path=repr(str(path)), error=exc)]) from None
    if not isinstance(data, dict):
        raise ConfigError([_("deepspeed: {path} must hold a JSON object").format(path=repr(str(path)))])
    stage = data.get("zero_optimization", {}).get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise ConfigError([_("deepspeed: zero_optimization.stage in {path} is {stage}; use 0, 1, 2 or 3").format(
            path=repr(str(path)), stage=repr(stage))])
    return data
