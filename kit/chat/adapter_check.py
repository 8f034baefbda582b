"""Adapter folders checked before anything is loaded: a message naming the folder and what is wrong, not a traceback.

peft reads an adapter folder trustingly: an adapter_config.json that is not a JSON object ends in a
KeyError or TypeError, a damaged weights file in a SafetensorError, and an adapter trained for a
model with fewer or more layers loads *without an error* (peft only warns about missing keys and
ignores unexpected ones), so the chat silently answers with a partly applied adapter. Chat and
export therefore check each folder here first: its files, its config, its weights' names and
shapes against the base model's modules (on the meta device: no weights read), and translate what
peft still raises while loading.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from kit import model as model_mod
from kit.i18n import _
from kit.library_text import read_problem
from kit.model import ModelError

# base_model.model.<module>.lora_A.weight, and lora_embedding_A (a bare parameter); an adapter name may remain.
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+?)\.(?P<kind>lora_(?:embedding_)?[AB])(?:\.[A-Za-z_]\w*)?(?:\.weight)?$")
_FIRST_LINE = 300  # characters of a library's message quoted in ours


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:_FIRST_LINE]


def checked_adapter_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Each adapter folder, resolved, once its files and config are known to be readable (ModelError otherwise)."""
    return [check_adapter_dir(p) for p in paths]


def check_adapter_dir(path: str | Path) -> Path:
    given = str(path)
    p = Path(path).expanduser()
    if p.is_file():
        # A common slip: the weights file or the config itself instead of the folder that holds them.
        holder = p.parent if (p.parent / "adapter_config.json").is_file() else None
        hint = _("; did you mean its folder {folder!r}?").format(folder=str(holder)) if holder else ""
        raise ModelError(_("adapter_name_or_path: {path!r} is a file, not a folder; give the folder that holds "
                           "adapter_config.json and adapter_model.safetensors (a training run's output_dir){hint}").format(
            path=given, hint=hint))
    folder = model_mod.check_adapter_dir(p)  # exists, has a config and a weights file
    config = read_adapter_config(folder, given)
    weights = weight_shapes(folder, given)
    ranks = {shape[0] for key, shape in weights.items()
             if (m := _LORA_KEY.match(key)) and m["kind"] == "lora_A" and len(shape) == 2}
    if not any(_LORA_KEY.match(k) for k in weights):
        raise ModelError(_("adapter_name_or_path: {path!r}: its weights file holds no LoRA weights (lora_A / lora_B); "
                           "it is not a LoRA adapter, or it was saved incompletely").format(path=given))
    rank = config.get("r")
    if rank is not None and not config.get("rank_pattern") and ranks and ranks != {rank}:
        raise ModelError(_("adapter_name_or_path: {path!r}: adapter_config.json says r {rank} but its weights have rank "
                           "{found}: the config and the weights are from different adapters; copy the folder again from "
                           "one training run").format(path=given, rank=rank, found=", ".join(map(str, sorted(ranks)))))
    return folder


def read_adapter_config(folder: Path, given: str) -> dict[str, Any]:
    """adapter_config.json as a dict, with the keys peft cannot do without checked."""
    from peft import PeftType

    f = folder / "adapter_config.json"
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError(_("adapter_name_or_path: {path!r}: adapter_config.json is not valid JSON ({error}); the file is "
                           "damaged: copy it again from the training run's output_dir").format(path=given, error=read_problem(exc))) from None
    except OSError as exc:
        raise ModelError(_("adapter_name_or_path: {path!r}: adapter_config.json cannot be read: {error}").format(
            path=given, error=exc.strerror or exc)) from None
    if not isinstance(data, dict):
        raise ModelError(_("adapter_name_or_path: {path!r}: adapter_config.json holds a JSON {kind}, not the object of "
                           "settings peft writes; copy it again from the training run's output_dir").format(
            path=given, kind=type(data).__name__)) from None
    known = sorted(t.value for t in PeftType)
    peft_type = data.get("peft_type")
    if peft_type not in known:
        raise ModelError(_("adapter_name_or_path: {path!r}: adapter_config.json has peft_type {value!r}; a LoRA adapter "
                           "has peft_type \"LORA\"").format(path=given, value=peft_type))
    rank = data.get("r")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0):
        raise ModelError(_("adapter_name_or_path: {path!r}: adapter_config.json has r {value!r}; the LoRA rank is a "
                           "positive whole number (e.g. 8)").format(path=given, value=rank))
    targets = data.get("target_modules")
    if targets is not None and not isinstance(targets, str) and not (
            isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
        raise ModelError(_("adapter_name_or_path: {path!r}: adapter_config.json has target_modules {value!r}; it is a "
                           "module name or a list of them (e.g. [\"q_proj\", \"v_proj\"])").format(path=given, value=targets))
    return data


def weight_shapes(folder: Path, given: str) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in the adapter's weights, read from the file's header only."""
    safetensors_file = folder / "adapter_model.safetensors"
    try:
        if safetensors_file.is_file():
            from safetensors import safe_open

            with safe_open(str(safetensors_file), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        import torch

        state = torch.load(str(folder / "adapter_model.bin"), map_location="cpu", weights_only=True)
        if not isinstance(state, Mapping):
            raise ValueError(f"a {type(state).__name__}, not a mapping of tensors")
        return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    except MemoryError:
        raise
    except Exception as exc:  # SafetensorError, UnpicklingError, EOFError ...: all mean a damaged file
        name = safetensors_file.name if safetensors_file.is_file() else "adapter_model.bin"
        raise ModelError(_("adapter_name_or_path: {path!r}: {file} cannot be read ({error}); the file is damaged or "
                           "incomplete (a copy or download that did not finish?): copy it again").format(
            path=given, file=name, error=_first_line(exc))) from None


# ---------------------------------------------------------------- does it fit the base model?

def _layer_pattern(module: str) -> str:
    return re.sub(r"\.\d+(?=\.|$)", ".*", module)


def _shape_problem(module: Any, kind: str, shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(the adapter's size, the model's) where they disagree, else None."""
    if len(shape) != 2:
        return None
    if kind in ("lora_A", "lora_B") and hasattr(module, "in_features") and hasattr(module, "out_features"):
        have, want = (shape[1], module.in_features) if kind == "lora_A" else (shape[0], module.out_features)
    elif kind in ("lora_embedding_A", "lora_embedding_B") and hasattr(module, "num_embeddings"):
        have, want = (shape[1], module.num_embeddings) if kind == "lora_embedding_A" else (shape[0], module.embedding_dim)
    else:
        return None
    return None if have == want else (have, want)


def check_fit(model: Any, adapter_dir: Path, given: str | None = None) -> None:
    """Refuse an adapter whose LoRA weights name modules the model lacks, have other shapes, or cover only some layers."""
    given = given or str(adapter_dir)
    base = _base_model_name(adapter_dir)
    trained_on = _(" (it was trained on {base})").format(base=base) if base else ""
    modules = dict(model.named_modules())
    adapted: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for key, shape in weight_shapes(adapter_dir, given).items():
        m = _LORA_KEY.match(key)
        if m:
            adapted.setdefault(m["module"], []).append((m["kind"], shape))
    missing = sorted(name for name in adapted if name not in modules)
    if missing:
        raise ModelError(_("adapter_name_or_path: {path!r} was trained for another base model{trained_on}: {count} of its "
                           "{total} adapted layers do not exist in this model (e.g. {example}); chat with the base model "
                           "it was trained on").format(path=given, trained_on=trained_on, count=len(missing),
                                                       total=len(adapted), example=missing[0]))
    for name, weights in sorted(adapted.items()):
        for kind, shape in weights:
            problem = _shape_problem(modules[name], kind, shape)
            if problem:
                raise ModelError(_("adapter_name_or_path: {path!r} was trained for another base model{trained_on} (weight "
                                   "shapes do not match): at {module} the adapter has size {have} where this model has "
                                   "{want}; chat with the base model it was trained on").format(
                    path=given, trained_on=trained_on, module=name, have=problem[0], want=problem[1]))
    config = read_adapter_config(adapter_dir, given)
    targets = config.get("target_modules")
    every_layer = (isinstance(targets, list) or targets == "all-linear") and not any(
        config.get(k) for k in ("layers_to_transform", "layers_pattern", "exclude_modules"))
    if every_layer:
        # Training adapted every layer of each kind named; a model with more of them got an adapter for a smaller model.
        in_model = Counter(_layer_pattern(name) for name in modules)
        in_adapter = Counter(_layer_pattern(name) for name in adapted)
        for pattern, count in sorted(in_adapter.items()):
            if in_model[pattern] > count:
                raise ModelError(_("adapter_name_or_path: {path!r} was trained for another base model{trained_on}: it "
                                   "adapts {count} {pattern} layers but this model has {total}, so part of the model "
                                   "would run without the adapter; chat with the base model it was trained on").format(
                    path=given, trained_on=trained_on, count=count, pattern=pattern, total=in_model[pattern]))


def _base_model_name(adapter_dir: Path) -> str | None:
    try:
        data = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = data.get("base_model_name_or_path") if isinstance(data, dict) else None
    return base if isinstance(base, str) and base else None


def check_adapters_fit(model_dir: Path, adapter_dirs: Sequence[Path], trust_remote_code: bool = False) -> None:
    """``check_fit`` for each adapter against the model's structure (meta device: seconds, whatever its size)."""
    if not adapter_dirs:
        return
    skeleton = model_mod.meta_model(model_dir, trust_remote_code)
    for adapter_dir in adapter_dirs:
        check_fit(skeleton, adapter_dir)


def load_adapters(model: Any, adapter_dirs: Sequence[Path], merge: bool = True) -> Any:
    """``kit.model.load_adapters`` one folder at a time, so that whatever peft raises names the folder it came from."""
    for i, adapter_dir in enumerate(adapter_dirs):
        last = i == len(adapter_dirs) - 1
        try:
            # Earlier adapters are merged so the next one applies on top of them (as kit.model does).
            model = model_mod.load_adapters(model, [adapter_dir], merge=merge or not last)
        except ModelError:
            raise
        except MemoryError:
            raise
        except Exception as exc:
            if "OutOfMemory" in type(exc).__name__:  # the device is full: not the adapter's fault
                raise
            raise ModelError(_("adapter_name_or_path: {path!r} could not be loaded onto this model: {kind}: {error}").format(
                path=str(adapter_dir), kind=type(exc).__name__, error=_first_line(exc))) from exc
    return model
