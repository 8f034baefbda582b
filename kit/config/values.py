"""A config value's type and limits: text and YAML values coerced to each key's type, then every value
checked against what the libraries that consume it accept (transformers, numpy, DeepSpeed, vLLM).
Each problem is one line naming the key, the bad value and what is allowed."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import TYPE_CHECKING, Any

from kit.i18n import N_, _

if TYPE_CHECKING:
    from kit.config import Config

# ---------------------------------------------------------------- parsing values

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def base_type(tp: Any) -> tuple[type, bool]:
    """(underlying type, optional?) for annotations like ``int | None``."""
    if isinstance(tp, str):
        tp = eval(tp, vars(typing), {})  # annotations are strings under `from __future__ import annotations`
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


INT64_MAX = 2**63 - 1


def _integer(value: Any) -> int | None:
    """An int from an int, a whole float or their text (1e3 is 1000); None for anything else (True, 1.5, nan)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        as_float = float(value) if isinstance(value, float) else float(text)
    except (ValueError, OverflowError):
        return None
    return int(as_float) if as_float.is_integer() else None  # nan and inf are not integers


def coerce(key: str, value: Any, f: dataclasses.Field) -> tuple[Any, str | None]:
    tp, optional = base_type(f.type)
    if value is None or (isinstance(value, str) and value.strip().lower() in {"null", "none", "~"} and tp is not str):
        if optional:
            return None, None
        return None, _("{key}: null is not allowed; expected {type} (default {default})").format(
            key=key, type=tp.__name__, default=repr(f.default))
    if tp is bool:
        if isinstance(value, bool):
            return value, None
        if isinstance(value, (int, str)) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE, None
        return None, _("{key}: {value} is not a boolean; use true or false").format(key=key, value=repr(value))
    if tp is int:
        number = _integer(value)
        if number is None:
            return None, _("{key}: {value} is not an integer (for example {example})").format(
                key=key, value=repr(value), example=f.default if f.default is not None else 1)
        if abs(number) > INT64_MAX:
            # torch, numpy and the C++ of DeepSpeed hold these in 64 bits; beyond it they overflow or raise
            return None, _("{key}: {value} is too large (at most {limit})").format(key=key, value=number, limit=INT64_MAX)
        return number, None
    if tp is float:
        if isinstance(value, bool):
            return None, _("{key}: {value} is not a number").format(key=key, value=repr(value))
        try:
            number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
        except ValueError:
            return None, _("{key}: {value} is not a number (for example {example})").format(
                key=key, value=repr(value), example=f.default if f.default is not None else 1.0)
        except OverflowError:  # an int too large for a float
            number = math.inf
        if not math.isfinite(number):
            # NaN passes every comparison below unnoticed and reaches the optimizer or the sampler
            return None, _("{key}: {value} is not a finite number (NaN and infinity are not allowed; for example {example})").format(
                key=key, value=repr(value), example=f.default if f.default is not None else 1.0)
        return number, None
    if tp is str:
        if isinstance(value, (dict, list)):
            if key in {"dataset", "lora_target", "adapter_name_or_path"} and isinstance(value, list):
                return ",".join(str(v) for v in value), None
            return None, _("{key}: expected a string, got {type}").format(key=key, type=type(value).__name__)
        if isinstance(value, bool) and key == "resume_from_checkpoint":
            return ("true" if value else None), None
        return str(value), None
    return value, None


# Limits of the libraries that consume these values, checked here so a run fails at load, not hours in.
SEED_MAX = 2**32 - 1
DDP_TIMEOUT_MAX = 2**31 - 1
# vLLM's LoRAConfig accepts these max_lora_rank values only (vllm/config/lora.py, MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# Commas a Chinese input method types, where a list key needs ','.
WIDE_COMMAS = ("\uff0c", "\u3001")


def check_values(cfg: Config) -> list[str]:
    p: list[str] = []
    d, t, f, i = cfg.data, cfg.train, cfg.finetune, cfg.infer

    def bad(message: str, **values: Any) -> None:
        p.append(_(message).format(**values))

    if d.cutoff_len <= 0:
        bad(N_("cutoff_len: {value} must be a positive number of tokens (e.g. 1024)"), value=d.cutoff_len)
    if d.max_samples is not None and d.max_samples <= 0:
        bad(N_("max_samples: {value} must be positive, or left out to use every example"), value=d.max_samples)
    if d.val_size < 0:
        bad(N_("val_size: {value} must be >= 0 (a fraction below 1, or a count)"), value=d.val_size)
    elif d.val_size == 1 or (d.val_size > 1 and not float(d.val_size).is_integer()):
        bad(N_("val_size: {value} must be a fraction below 1 (e.g. 0.1), or a whole count of examples above 1 (e.g. 100)"),
            value=d.val_size)
    if f.lora_rank <= 0:
        bad(N_("lora_rank: {value} must be a positive integer (e.g. 8)"), value=f.lora_rank)
    if f.lora_alpha is not None and f.lora_alpha <= 0:
        bad(N_("lora_alpha: {value} must be positive"), value=f.lora_alpha)
    if not 0 <= f.lora_dropout < 1:
        bad(N_("lora_dropout: {value} must be in [0, 1)"), value=f.lora_dropout)
    wide_keys: set[str] = set()
    for key, value in (("dataset", d.dataset), ("eval_dataset", d.eval_dataset), ("lora_target", f.lora_target)):
        wide = next((char for char in WIDE_COMMAS if char in (value or "")), None)
        if wide is not None:  # typed with a Chinese input method: the list would be one unknown name
            bad(N_("{key}: {value} holds the full-width comma '{char}' (U+{code:04X}); separate the names with a plain "
                   "',' (e.g. {example})"), key=key, value=repr(value), char=wide, code=ord(wide),
                example="q_proj,v_proj" if key == "lora_target" else "identity,alpaca_en_demo")
            wide_keys.add(key)
    if "lora_target" not in wide_keys and (not f.lora_target.strip()
                                           or any(not part.strip() for part in f.lora_target.split(","))):
        bad(N_("lora_target: {value} must be a comma list of module names (q_proj,v_proj) or all"), value=repr(f.lora_target))
    for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(t, key) <= 0:
            bad(N_("{key}: {value} must be a positive integer"), key=key, value=getattr(t, key))
    if t.learning_rate <= 0:
        bad(N_("learning_rate: {value} must be positive (e.g. 1.0e-4)"), value=t.learning_rate)
    if t.num_train_epochs <= 0 and t.max_steps <= 0:
        bad(N_("num_train_epochs: {value} must be positive (or set max_steps)"), value=t.num_train_epochs)
    if not 0 <= t.warmup_ratio < 1:
        bad(N_("warmup_ratio: {value} must be in [0, 1)"), value=t.warmup_ratio)
    for key in ("logging_steps", "save_steps", "eval_steps"):
        value = getattr(t, key)
        if value is None:
            continue
        if value <= 0:
            bad(N_("{key}: {value} must be positive"), key=key, value=value)
        elif value > 1 and not float(value).is_integer():
            # transformers reads a value below 1 as a fraction of the run, and refuses a fractional count above it
            bad(N_("{key}: {value} must be a whole number of steps, or a fraction of the run below 1 (e.g. 0.1)"),
                key=key, value=value)
    if t.fp16 and t.bf16:
        bad(N_("fp16 and bf16: both are true; choose one"))
    if t.eval_strategy != "no" and d.val_size == 0:
        bad(N_("eval_strategy: {value} needs held-out data; set val_size (e.g. 0.1) or eval_strategy: no"),
            value=repr(t.eval_strategy))
    if i.temperature < 0:
        bad(N_("temperature: {value} must be >= 0"), value=i.temperature)
    if not 0 < i.top_p <= 1:
        bad(N_("top_p: {value} must be in (0, 1]"), value=i.top_p)
    if i.max_new_tokens <= 0:
        bad(N_("max_new_tokens: {value} must be positive"), value=i.max_new_tokens)
    if i.top_k < 0:
        bad(N_("top_k: {value} must be >= 0 (0 turns top-k sampling off)"), value=i.top_k)
    if i.repetition_penalty <= 0:
        bad(N_("repetition_penalty: {value} must be positive (1.0 means no penalty)"), value=i.repetition_penalty)
    if not 0 < i.vllm_gpu_util <= 1:
        bad(N_("vllm_gpu_util: {value} must be a fraction of device memory in (0, 1], e.g. 0.7"), value=i.vllm_gpu_util)
    for key in ("vllm_maxlen", "export_size"):
        if getattr(i, key) <= 0:
            bad(N_("{key}: {value} must be a positive integer"), key=key, value=getattr(i, key))
    if t.ddp_timeout <= 0:
        bad(N_("ddp_timeout: {value} must be a positive number of seconds"), value=t.ddp_timeout)
    elif t.ddp_timeout > DDP_TIMEOUT_MAX:
        bad(N_("ddp_timeout: {value} is too long; at most {limit} seconds (the collectives' timers overflow beyond it)"),
            value=t.ddp_timeout, limit=DDP_TIMEOUT_MAX)
    if t.seed > SEED_MAX:
        # transformers.set_seed seeds numpy too, which takes 32-bit seeds only
        bad(N_("seed: {value} is too large; at most {limit} (numpy's seeds are 32-bit)"), value=t.seed, limit=SEED_MAX)
    if i.vllm_max_lora_rank not in VLLM_LORA_RANKS:
        bad(N_("vllm_max_lora_rank: {value} is not one vLLM accepts; choose one of {choices} (at least the adapter's lora_rank)"),
            value=i.vllm_max_lora_rank, choices=", ".join(map(str, VLLM_LORA_RANKS)))
    if t.dataloader_num_workers < 0:
        bad(N_("dataloader_num_workers: {value} must be >= 0 (0 loads data in the training process)"),
            value=t.dataloader_num_workers)
    if d.preprocessing_num_workers is not None and d.preprocessing_num_workers <= 0:
        bad(N_("preprocessing_num_workers: {value} must be positive, or left out"), value=d.preprocessing_num_workers)
    if t.max_steps == 0 or t.max_steps < -1:
        bad(N_("max_steps: {value} must be positive, or -1 to train for num_train_epochs"), value=t.max_steps)
    for key in ("warmup_steps", "weight_decay", "max_grad_norm", "seed"):
        if getattr(t, key) < 0:
            bad(N_("{key}: {value} must be >= 0"), key=key, value=getattr(t, key))
    if t.save_total_limit is not None and t.save_total_limit <= 0:
        bad(N_("save_total_limit: {value} must be positive, or left out to keep every checkpoint"), value=t.save_total_limit)
    if cfg.model.adapter_name_or_path and f.finetuning_type != "lora":
        bad(N_("adapter_name_or_path: adapters need finetuning_type: lora, not {value}"), value=f.finetuning_type)
    return p
