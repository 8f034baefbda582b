"""DeepSpeed JSON files: found where the quick start's path points, or the kit's own copies."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from kit.config import ConfigError
from kit.i18n import _
from kit.library_text import read_problem

DEEPSPEED_DIR = Path(__file__).parents[1] / "deepspeed"


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
        if c.exists():  # a folder or a device is found too, and refused by read_deepspeed_config by what it is
            return c.resolve()
    shipped = ", ".join(sorted(p.name for p in DEEPSPEED_DIR.glob("*.json")))
    raise ConfigError([_("deepspeed: {value} not found (looked as given, next to the YAML file, in the working directory, "
                         "and among the kit's configs: {shipped})").format(value=repr(value), shipped=shipped)])


def fallback_note(value: str, path: Path) -> str | None:
    """The line a person reads when ``value`` was not found where it points and the kit's own copy is used instead."""
    if path.parent != DEEPSPEED_DIR.resolve() or Path(value).expanduser().resolve() == path:
        return None
    return _("deepspeed: {value} is not there; using the kit's own {name} ({path}), the ZeRO settings LLaMA-Factory ships "
             "under that name in examples/deepspeed (give an existing path to use another file)").format(
        value=repr(value), name=path.name, path=path)


# DeepSpeed's configs are a few KB; one far larger is not a DeepSpeed config.
MAX_BYTES = 1 << 20


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # DeepSpeed refuses a repeated key too (its own object_pairs_hook), but only inside the ranks, as a traceback.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


class _Duplicate(ValueError):
    pass


def read_deepspeed_config(path: Path) -> dict[str, Any]:
    """The DeepSpeed JSON at ``path``, with every problem DeepSpeed would meet later said now, as a ConfigError."""
    where = repr(str(path))
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError([_("deepspeed: {path} is not a regular file (a device, a pipe or a folder); give a JSON file").format(
                path=where)])
        if info.st_size > MAX_BYTES:
            raise ConfigError([_("deepspeed: {path} is {size:.1f} MB; a DeepSpeed config is a few KB").format(
                path=where, size=info.st_size / 1e6)])
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)
    except OSError as exc:
        raise ConfigError([_("deepspeed: {path} cannot be read: {reason}").format(path=where, reason=exc.strerror or exc)]) from None
    except _Duplicate as exc:
        raise ConfigError([_("deepspeed: key {key} appears twice in {path}; keep one").format(key=repr(str(exc)), path=where)]) from None
    except RecursionError:
        raise ConfigError([_("deepspeed: {path} is nested too deeply to be a DeepSpeed config").format(path=where)]) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([_("deepspeed: {path} is not valid JSON: {error}").format(path=where, error=read_problem(exc))]) from None
    if not isinstance(data, dict):
        raise ConfigError([_("deepspeed: {path} must hold a JSON object").format(path=where)])
    zero = data.get("zero_optimization", {})
    if not isinstance(zero, dict):
        raise ConfigError([_("deepspeed: zero_optimization in {path} is {value}; it must be an object such as "
                             "{{\"stage\": 0}}").format(path=where, value=repr(zero))])
    stage = zero.get("stage", 0)
    if isinstance(stage, bool) or stage not in (0, 1, 2, 3):
        raise ConfigError([_("deepspeed: zero_optimization.stage in {path} is {stage}; use 0, 1, 2 or 3").format(
            path=where, stage=repr(stage))])
    return data


def stage_of(data: dict[str, Any]) -> int:
    """The ZeRO stage of a config read by ``read_deepspeed_config`` (0 when it names none)."""
    return int(data.get("zero_optimization", {}).get("stage", 0))


def mismatches(data: dict[str, Any], cfg: Any, world_size: int | None = None) -> list[str]:
    """Values fixed in the DeepSpeed file that differ from the run's keys.

    transformers fills "auto" from the training arguments and refuses a fixed value that differs
    ("Please correct the following DeepSpeed config values that mismatch TrainingArguments values"),
    but only inside each rank, after the model is loaded. The same comparison here names the key in
    both files before anything starts. ``train_batch_size`` is compared only when the number of
    processes is known (``world_size``).
    """
    t = cfg.train
    micro, accumulation = t.per_device_train_batch_size, t.gradient_accumulation_steps
    wanted = {"train_micro_batch_size_per_gpu": (micro, "per_device_train_batch_size"),
              "gradient_accumulation_steps": (accumulation, "gradient_accumulation_steps"),
              "gradient_clipping": (t.max_grad_norm, "max_grad_norm")}
    if world_size is not None:
        wanted["train_batch_size"] = (micro * accumulation * world_size,
                                      "per_device_train_batch_size x gradient_accumulation_steps x processes")
    out = []
    for key, (value, source) in wanted.items():
        given = data.get(key, "auto")
        if given != "auto" and not (isinstance(given, (int, float)) and not isinstance(given, bool) and given == value):
            out.append(_("deepspeed: {key} is {given} in the DeepSpeed file but {value} from {source}; set it to \"auto\" "
                         "(DeepSpeed then takes the run's value) or make the two agree").format(
                key=key, given=repr(given), value=value, source=source))
    for key, on in (("fp16", t.fp16), ("bf16", t.bf16)):
        section = data.get(key)
        enabled = section.get("enabled", "auto") if isinstance(section, dict) else "auto"
        if enabled != "auto" and bool(enabled) != bool(on):
            out.append(_("deepspeed: {key}.enabled is {given} in the DeepSpeed file but {key} is {value} in the config; "
                         "set it to \"auto\" or make the two agree").format(key=key, given=repr(enabled), value=str(on).lower()))
    return out
