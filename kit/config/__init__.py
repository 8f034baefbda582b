"""LLaMA-Factory-compatible configuration.

A YAML file with LLaMA-Factory's flat keys, then ``key=value`` overrides, become small frozen
dataclasses, one per stage. Everything is validated once, here, and every problem is reported at
once: the key, the bad value, what is allowed, and for a misspelt key the closest known one.
Computed values (the effective lora_alpha, the DeepSpeed file found) are returned by functions,
never written back into the user's config.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from kit.config import yamlfile
from kit.errors import KitError
from kit.i18n import N_, _
from kit.library_text import yaml_problem
from kit.config.values import (DDP_TIMEOUT_MAX, INT64_MAX, SEED_MAX, VLLM_LORA_RANKS, base_type, check_values,  # noqa: F401 (public here)
                               coerce)

EXAMPLES_DIR = Path(__file__).parents[1] / "examples"
QUICKSTART_YAML = EXAMPLES_DIR / "qwen1_5_lora_sft_ds.yaml"


class ConfigError(KitError, ValueError):
    """One or more problems with a configuration; ``problems`` lists each one."""

    def __init__(self, problems: Sequence[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        if source:
            header = _("{count} problem(s) with the configuration in {source}:").format(count=len(self.problems), source=source)
        else:
            header = _("{count} problem(s) with the configuration:").format(count=len(self.problems))
        lines = [header]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def _field_meta(help: str, choices: Sequence[Any] | None = None) -> dict[str, Any]:
    return {"help": help, "choices": tuple(choices) if choices else None}


@dataclass(frozen=True)
class ModelArgs:
    model_name_or_path: str | None = field(default=None, metadata=_field_meta(N_("Local directory, hub id, or kit/tiny-qwen for the embedded model.")))
    adapter_name_or_path: str | None = field(default=None, metadata=_field_meta(N_("LoRA adapter directory(ies), comma separated, applied in order.")))
    trust_remote_code: bool = field(default=False, metadata=_field_meta(N_("Allow model code from the model directory or hub.")))
    cache_dir: str | None = field(default=None, metadata=_field_meta(N_("Where downloaded models are cached.")))
    model_revision: str = field(default="main", metadata=_field_meta(N_("Hub revision (branch, tag or commit).")))
    device: str = field(default="auto", metadata=_field_meta(N_("Device to run on (kit only)."), ["auto", "npu", "cuda", "cpu"]))


@dataclass(frozen=True)
class DataArgs:
    dataset: str | None = field(default=None, metadata=_field_meta(N_("Dataset names from dataset_info.json, comma separated.")))
    eval_dataset: str | None = field(default=None, metadata=_field_meta(N_("Datasets to predict on (do_predict, kit predict), comma separated; instead of val_size.")))
    dataset_dir: str | None = field(default=None, metadata=_field_meta(N_("Folder holding dataset_info.json; default: ./data when it has one (as LLaMA-Factory reads it), else the kit's own demo data.")))
    template: str | None = field(default=None, metadata=_field_meta(N_("Prompt template used for training and inference (e.g. qwen).")))
    cutoff_len: int = field(default=2048, metadata=_field_meta(N_("Maximum tokens of one encoded example.")))
    max_samples: int | None = field(default=None, metadata=_field_meta(N_("Use at most this many examples of each dataset.")))
    overwrite_cache: bool = field(default=False, metadata=_field_meta(N_("Re-encode datasets instead of using a cache (the kit always re-encodes).")))
    preprocessing_num_workers: int | None = field(default=None, metadata=_field_meta(N_("Worker processes for encoding (the kit encodes in-process; accepted for compatibility).")))
    val_size: float = field(default=0.0, metadata=_field_meta(N_("Fraction (<1) or count (>=1) of examples held out for evaluation.")))
    train_on_prompt: bool = field(default=False, metadata=_field_meta(N_("Also compute the loss on prompt tokens.")))
    mask_history: bool = field(default=False, metadata=_field_meta(N_("Train on the last turn only of multi-turn examples.")))
    enable_thinking: bool | None = field(default=True, metadata=_field_meta(N_(
        "Thinking mode of reasoning templates (qwen3): true trains thoughts (an empty <think> block where a reply has none) "
        "and lets chat think; false removes thoughts and puts the empty block in the prompt, untrained, so chat answers "
        "at once; null keeps thoughts but puts empty blocks in the prompt. Other templates ignore it.")))
    default_system: str | None = field(default=None, metadata=_field_meta(N_("Override the template's default system prompt.")))
    identity_name: str | None = field(default=None, metadata=_field_meta(N_("Fills {{name}} in identity data (kit only).")))
    identity_author: str | None = field(default=None, metadata=_field_meta(N_("Fills {{author}} in identity data (kit only).")))


@dataclass(frozen=True)
class FinetuneArgs:
    stage: str = field(default="sft", metadata=_field_meta(N_("Training stage."), ["sft"]))
    finetuning_type: str = field(default="lora", metadata=_field_meta(N_("Fine-tuning method."), ["lora"]))
    lora_target: str = field(default="all", metadata=_field_meta(N_("Modules to adapt: comma list (q_proj,v_proj) or all.")))
    lora_rank: int = field(default=8, metadata=_field_meta(N_("LoRA rank r.")))
    lora_alpha: int | None = field(default=None, metadata=_field_meta(N_("LoRA alpha; default 2 x lora_rank.")))
    lora_dropout: float = field(default=0.0, metadata=_field_meta(N_("Dropout on the LoRA path.")))
    plot_loss: bool = field(default=False, metadata=_field_meta(N_("Save training_loss.png (and training_eval_loss.png).")))


@dataclass(frozen=True)
class TrainArgs:
    do_train: bool = field(default=False, metadata=_field_meta(N_("Run training.")))
    do_predict: bool = field(default=False, metadata=_field_meta(N_("After training (or alone, with an adapter), generate on eval_dataset or the val_size split and score it; needs predict_with_generate.")))
    predict_with_generate: bool = field(default=False, metadata=_field_meta(N_("Generate replies for prediction (LLaMA-Factory requires it with do_predict).")))
    output_dir: str | None = field(default=None, metadata=_field_meta(N_("Where the adapter, logs and plots are written.")))
    overwrite_output_dir: bool = field(default=False, metadata=_field_meta(N_("Allow writing into a non-empty output_dir.")))
    deepspeed: str | None = field(default=None, metadata=_field_meta(N_("DeepSpeed JSON: a path, or ds_z0_config.json / ds_z2_config.json / ds_z3_config.json.")))
    ddp_timeout: int = field(default=1800, metadata=_field_meta(N_("Timeout in seconds for distributed collectives.")))
    logging_steps: float = field(default=500, metadata=_field_meta(N_("Log every N optimizer steps.")))
    save_steps: float = field(default=500, metadata=_field_meta(N_("Save a checkpoint every N optimizer steps.")))
    per_device_train_batch_size: int = field(default=8, metadata=_field_meta(N_("Examples per device per forward pass.")))
    per_device_eval_batch_size: int = field(default=8, metadata=_field_meta(N_("Examples per device in evaluation.")))
    gradient_accumulation_steps: int = field(default=1, metadata=_field_meta(N_("Forward passes per optimizer step.")))
    learning_rate: float = field(default=5e-5, metadata=_field_meta(N_("Peak learning rate.")))
    num_train_epochs: float = field(default=3.0, metadata=_field_meta(N_("Epochs over the training data.")))
    max_steps: int = field(default=-1, metadata=_field_meta(N_("Stop after this many optimizer steps (overrides epochs when > 0).")))
    lr_scheduler_type: str = field(default="linear", metadata=_field_meta(N_("Learning-rate schedule."), ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"]))
    warmup_ratio: float = field(default=0.0, metadata=_field_meta(N_("Fraction of steps spent warming up.")))
    warmup_steps: int = field(default=0, metadata=_field_meta(N_("Warm-up steps (overrides warmup_ratio when > 0).")))
    weight_decay: float = field(default=0.0, metadata=_field_meta(N_("AdamW weight decay.")))
    max_grad_norm: float = field(default=1.0, metadata=_field_meta(N_("Gradient clipping norm.")))
    fp16: bool = field(default=False, metadata=_field_meta(N_("fp16 mixed precision (falls back to fp32 where unsupported).")))
    bf16: bool = field(default=False, metadata=_field_meta(N_("bf16 mixed precision (falls back to fp32 where unsupported).")))
    eval_strategy: str = field(default="no", metadata=_field_meta(N_("When to evaluate."), ["no", "steps", "epoch"]))
    eval_steps: float | None = field(default=None, metadata=_field_meta(N_("Evaluate every N steps (default: logging_steps).")))
    save_strategy: str = field(default="steps", metadata=_field_meta(N_("When to save checkpoints."), ["no", "steps", "epoch"]))
    save_total_limit: int | None = field(default=None, metadata=_field_meta(N_("Keep at most this many checkpoints.")))
    seed: int = field(default=42, metadata=_field_meta(N_("Random seed for initialisation, shuffling and the split.")))
    resume_from_checkpoint: str | None = field(default=None, metadata=_field_meta(N_("Checkpoint directory to resume from, or true for the latest in output_dir.")))
    report_to: str = field(default="none", metadata=_field_meta(N_("Experiment trackers (none, tensorboard, wandb, ...).")))
    disable_gradient_checkpointing: bool | None = field(default=None, metadata=_field_meta(N_(
        "Gradient checkpointing: false keeps it on (LLaMA-Factory always does), true turns it off; left out, the kit "
        "turns it off when its memory estimate says the activations fit in half the device's memory (same results, "
        "no recomputation), and keeps it on otherwise.")))
    dataloader_num_workers: int = field(default=0, metadata=_field_meta(N_("Worker processes of the data loader.")))


@dataclass(frozen=True)
class InferArgs:
    infer_backend: str = field(default="huggingface", metadata=_field_meta(N_("Inference engine."), ["huggingface", "vllm"]))
    do_sample: bool = field(default=True, metadata=_field_meta(N_("Sample instead of greedy decoding.")))
    temperature: float = field(default=0.95, metadata=_field_meta(N_("Sampling temperature.")))
    top_p: float = field(default=0.7, metadata=_field_meta(N_("Nucleus sampling threshold.")))
    top_k: int = field(default=50, metadata=_field_meta(N_("Top-k sampling.")))
    max_new_tokens: int = field(default=1024, metadata=_field_meta(N_("Maximum new tokens per reply.")))
    repetition_penalty: float = field(default=1.0, metadata=_field_meta(N_("Penalty for repeated tokens.")))
    merge_adapter: bool = field(default=True, metadata=_field_meta(N_("Merge LoRA weights into the model at load (kit only).")))
    vllm_maxlen: int = field(default=4096, metadata=_field_meta(N_("vLLM maximum sequence length.")))
    vllm_gpu_util: float = field(default=0.7, metadata=_field_meta(N_("vLLM fraction of device memory.")))
    vllm_enforce_eager: bool = field(default=False, metadata=_field_meta(N_("vLLM: disable graph capture.")))
    vllm_max_lora_rank: int = field(default=32, metadata=_field_meta(N_("vLLM: largest LoRA rank it accepts.")))
    export_dir: str | None = field(default=None, metadata=_field_meta(N_("Where kit export writes the merged model.")))
    export_size: int = field(default=5, metadata=_field_meta(N_("Shard size of the exported model, in GB.")))


SECTIONS: dict[str, type] = {"model": ModelArgs, "data": DataArgs, "finetune": FinetuneArgs, "train": TrainArgs, "infer": InferArgs}

# Keys LLaMA-Factory has that the kit recognises but does not implement: a clear "not supported yet".
# The feature names are shown in a message: marked here, translated there.
UNSUPPORTED = {
    "quantization_bit": N_("QLoRA quantisation"), "quantization_method": N_("QLoRA quantisation"),
    "flash_attn": N_("choosing the attention kernel"), "use_unsloth": "unsloth", "packing": N_("sequence packing"),
    "neat_packing": N_("sequence packing"), "streaming": N_("streaming datasets"), "tokenized_path": N_("cached tokenized datasets"),
    "mix_strategy": N_("dataset interleaving"), "interleave_probs": N_("dataset interleaving"),
    "use_dora": "DoRA", "use_rslora": "rsLoRA", "pissa_init": "PiSSA", "loraplus_lr_ratio": "LoRA+",
    "additional_target": N_("extra trainable modules"), "freeze_trainable_layers": N_("freeze tuning"),
    "pref_beta": N_("preference training"),
    "rope_scaling": N_("RoPE scaling"), "shift_attn": N_("shift short attention"), "upcast_layernorm": N_("upcast layernorm"),
    "optim": N_("choosing the optimizer"), "template_file": N_("templates from a file"),
    "export_quantization_bit": N_("quantised export"), "export_quantization_dataset": N_("quantised export"),
    "export_hub_model_id": N_("uploading the export to a model hub"),
}
# LLaMA-Factory keys with a setting the kit always has: that setting is accepted (quick-start commands carry them),
# any other is refused, naming what the kit does.
FIXED = {
    "export_device": (("cpu", "auto"), N_("kit export merges on the CPU")),
    "export_legacy_format": (("false",), N_("kit export writes safetensors only")),
}
# LLaMA-Factory keys that only carry meaning for its own web UI or logging; accepted and ignored.
IGNORED = {"run_name", "logging_dir", "save_only_model", "include_num_input_tokens_seen", "disable_tqdm", "log_level",
           "ddp_find_unused_parameters", "do_eval", "save_safetensors", "pure_bf16", "print_param_status"}


# Older LLaMA-Factory / transformers spellings that mean the same key.
ALIASES = {"evaluation_strategy": "eval_strategy"}


def _all_keys() -> dict[str, tuple[str, dataclasses.Field]]:
    out: dict[str, tuple[str, dataclasses.Field]] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            out[f.name] = (section, f)
    return out


KEYS = _all_keys()


@dataclass(frozen=True)
class Config:
    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    finetune: FinetuneArgs = field(default_factory=FinetuneArgs)
    train: TrainArgs = field(default_factory=TrainArgs)
    infer: InferArgs = field(default_factory=InferArgs)
    source: str | None = None  # the YAML file it came from, for relative paths and messages

    @property
    def config_dir(self) -> Path | None:
        return Path(self.source).resolve().parent if self.source else None

    def to_dict(self) -> dict[str, Any]:
        """Flat LLaMA-Factory-style keys, only those that differ from the defaults plus the core ones."""
        out: dict[str, Any] = {}
        for section in SECTIONS:
            obj = getattr(self, section)
            for f in fields(obj):
                out[f.name] = getattr(obj, f.name)
        return out

    def to_yaml(self, only_set: bool = False) -> str:
        data = self.to_dict()
        if only_set:
            defaults = Config().to_dict()
            data = {k: v for k, v in data.items() if v != defaults[k]}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def replace(self, **changes: Any) -> "Config":
        """A new Config with flat keys changed, validated again."""
        merged = {k: v for k, v in self.to_dict().items()}
        merged.update(changes)
        return from_dict(merged, source=self.source)

    @property
    def lora_alpha(self) -> int:
        return self.finetune.lora_alpha if self.finetune.lora_alpha is not None else 2 * self.finetune.lora_rank

    @property
    def dataset_names(self) -> list[str]:
        return [d.strip() for d in (self.data.dataset or "").split(",") if d.strip()]

    @property
    def eval_dataset_names(self) -> list[str]:
        return [d.strip() for d in (self.data.eval_dataset or "").split(",") if d.strip()]

    @property
    def adapter_paths(self) -> list[str]:
        return [a.strip() for a in (self.model.adapter_name_or_path or "").split(",") if a.strip()]


def parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    key = key.strip().lstrip("-")
    if not sep or not key:
        raise ConfigError([_("override {item} is not of the form key=value (for example learning_rate=1e-4)").format(item=repr(item))])
    # YAML parsing gives numbers, booleans and null their natural types, as in the file.
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, (dict, list)) and key not in {"dataset", "lora_target"}:
        value = raw
    return key, value


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError([_("config file {path} does not exist; give the path of a LLaMA-Factory-style YAML file").format(path=repr(str(p)))])
    if p.is_dir():
        raise ConfigError([_("config file {path} is a directory; give the path of a YAML file").format(path=repr(str(p)))])
    try:
        data = yamlfile.load(p)
    except yamlfile.YamlFileError as exc:
        raise ConfigError([_("config file {path}: {problem}").format(path=repr(str(p)), problem=exc)]) from None
    except OSError as exc:
        raise ConfigError([_("config file {path} cannot be read: {reason}").format(
            path=repr(str(p)), reason=exc.strerror or exc)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = yaml_problem(getattr(exc, "problem", None) or exc)
        if mark:
            text = _("config file {path} is not valid YAML at line {line}, column {column}: {problem}").format(
                path=repr(str(p)), line=mark.line + 1, column=mark.column + 1, problem=problem)
        else:
            text = _("config file {path} is not valid YAML: {problem}").format(path=repr(str(p)), problem=problem)
        raise ConfigError([text + getattr(exc, "kit_hint", "")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([_("config file {path} must hold a mapping of key: value lines, not a {type}").format(
            path=repr(str(p)), type=type(data).__name__)])
    return data


def from_dict(raw: Mapping[str, Any], source: str | None = None) -> Config:
    """Validate a flat mapping of LLaMA-Factory keys; raise ConfigError listing every problem."""
    problems: list[str] = []
    per_section: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in raw.items():
        key = ALIASES.get(str(key), str(key))
        if key in KEYS:
            section, f = KEYS[key]
            coerced, problem = coerce(key, value, f)
            if problem:
                problems.append(problem)
                continue
            choices = f.metadata.get("choices")
            if choices and coerced is not None and coerced not in choices:
                allowed = ", ".join(map(str, choices))
                if key == "stage" or key == "finetuning_type":
                    problem = _("{key}: {value} is not allowed; choose one of {choices} (the kit supports LoRA supervised "
                                "fine-tuning; other methods are not supported yet)")
                else:
                    problem = _("{key}: {value} is not allowed; choose one of {choices}")
                problems.append(problem.format(key=key, value=repr(coerced), choices=allowed))
                continue
            per_section[section][key] = coerced
        elif key in UNSUPPORTED:
            problems.append(_("{key}: recognised LLaMA-Factory key, but {feature} is not supported by the kit yet; remove it").format(
                key=key, feature=_(UNSUPPORTED[key])))
        elif key in IGNORED:
            continue
        elif key in FIXED:
            allowed, what = FIXED[key]
            if str(value).strip().lower() not in allowed:
                problems.append(_("{key}: {value} is not supported ({what}); remove it or set it to {allowed}").format(
                    key=key, value=repr(value), what=_(what), allowed=" / ".join(allowed)))
        elif isinstance(key, str) and yamlfile.lookalike_in(key):
            char = yamlfile.lookalike_in(key)[1]
            fixed = "".join(yamlfile.LOOKALIKES.get(c, c) for c in key).strip()
            problems.append(_("{key}: unknown key: it holds {char}; write it as {fixed}").format(
                key=repr(key), char=yamlfile.describe_char(char), fixed=fixed))
        else:
            close = difflib.get_close_matches(key, list(KEYS) + list(UNSUPPORTED), n=1, cutoff=0.6)
            if close:
                problems.append(_("{key}: unknown key; did you mean {match}?").format(key=key, match=close[0]))
            else:
                problems.append(_("{key}: unknown key").format(key=key))

    _normalise_paths(per_section)
    sections = {s: SECTIONS[s](**per_section[s]) for s in SECTIONS}
    cfg = Config(**sections, source=str(source) if source else None)
    problems += check_values(cfg)
    problems += predict_problems(cfg)
    if problems:
        raise ConfigError(problems, source=str(source) if source else None)
    return cfg


# Keys that name a folder or file on this machine. Each is expanded (~) and made absolute once, here,
# so every stage and every torchrun rank uses the same place whatever its working directory.
PATH_KEYS = ("output_dir", "cache_dir", "export_dir")
_LATEST = {"true", "latest", "last"}


def _absolute(value: str) -> str:
    return str(Path(value).expanduser().absolute())


def _local_path(value: str) -> bool:
    """A model or adapter value that names a path rather than a hub id (org/name)."""
    return value.startswith((".", "/", "~")) or "\\" in value or value.count("/") != 1 or Path(value).exists()


def _normalise_paths(per_section: dict[str, dict[str, Any]]) -> None:
    from kit.hub import TINY_NAMES  # the embedded model's names stay names

    for section in per_section.values():
        for key in PATH_KEYS:
            if section.get(key):
                section[key] = _absolute(section[key])
        if section.get("dataset_dir") and section["dataset_dir"].startswith("~"):
            # relative dataset_dir keeps its documented lookup (next to the YAML file, then the working directory)
            section["dataset_dir"] = str(Path(section["dataset_dir"]).expanduser())
        resume = section.get("resume_from_checkpoint")
        if resume and resume.strip().lower() not in _LATEST:
            section["resume_from_checkpoint"] = _absolute(resume)
        name = section.get("model_name_or_path")
        if name and name not in TINY_NAMES and _local_path(name):
            section["model_name_or_path"] = _absolute(name)
        adapters = section.get("adapter_name_or_path")
        if adapters:
            section["adapter_name_or_path"] = ",".join(
                _absolute(a.strip()) if _local_path(a.strip()) else a.strip() for a in adapters.split(",") if a.strip())


def load(path: str | Path | None = None, overrides: Sequence[str] = (), extra: Mapping[str, Any] | None = None) -> Config:
    """Read a YAML file (optional), apply ``extra`` then ``key=value`` overrides, validate."""
    raw: dict[str, Any] = read_yaml(path) if path is not None else {}
    if extra:
        raw.update(extra)
    try:
        raw.update(overrides_dict(overrides))
    except ConfigError as exc:
        raise ConfigError(exc.problems, source=str(path) if path else None) from None
    return from_dict(raw, source=str(path) if path else None)


def overrides_dict(items: Mapping[str, Any] | Sequence[str] | str | None) -> dict[str, Any]:
    """Config overrides as ``{key: value}``: the one route by which a command line's ``key=value``, a notebook's
    ``overrides`` parameter, a ``kit demo`` override and a ``kit batch`` value reach a config.

    ``key=value`` strings (one, or a list) are parsed as YAML values, as the same line in a config file
    would be (``lora_rank=8`` gives 8); a mapping's values are already typed and are taken as they are.
    Either way ``from_dict`` then validates every key once.
    """
    if not items:
        return {}
    if isinstance(items, Mapping):
        return {str(k): v for k, v in items.items()}
    problems: list[str] = []
    out: dict[str, Any] = {}
    for item in [items] if isinstance(items, str) else items:
        try:
            key, value = parse_override(str(item))
        except ConfigError as exc:
            problems += exc.problems
            continue
        out[key] = value
    if problems:
        raise ConfigError(problems)
    return out


def predict_problems(cfg: Config) -> list[str]:
    """What LLaMA-Factory 0.9.5 refuses about prediction (hparams/parser.py, data_args.py), said with what to do."""
    p: list[str] = []
    t, d = cfg.train, cfg.data
    if t.do_predict and not t.predict_with_generate:
        p.append(_("do_predict: true needs predict_with_generate: true (LLaMA-Factory requires the pair to save "
                   "predictions); add predict_with_generate: true"))
    if d.eval_dataset and d.val_size > 1e-6:
        p.append(_("eval_dataset and val_size: both are set; predict on eval_dataset or on a val_size split of dataset, "
                   "not both (remove one)"))
    if (t.do_predict or t.predict_with_generate) and not d.eval_dataset and d.val_size < 1e-6:
        p.append(_("do_predict: needs a prediction set; set eval_dataset (e.g. identity) or val_size (e.g. 0.1)"))
    if d.eval_dataset and t.eval_strategy != "no" and d.val_size < 1e-6:
        p.append(_("eval_strategy: {value} with eval_dataset: the kit evaluates the loss on a val_size split only; "
                   "set val_size instead of eval_dataset, or eval_strategy: no").format(value=repr(t.eval_strategy)))
    if t.predict_with_generate and t.deepspeed:
        from kit.config.deepspeed import find_deepspeed_config, read_deepspeed_config, stage_of

        try:
            stage = stage_of(read_deepspeed_config(find_deepspeed_config(t.deepspeed, cfg.config_dir)))
        except (ConfigError, OSError, ValueError):
            stage = None  # a missing or broken file is reported where the run reads it
        if stage == 3:
            p.append(_("predict_with_generate: true cannot run under DeepSpeed ZeRO-3 ({file}), as in LLaMA-Factory; "
                       "use ds_z0_config.json or ds_z2_config.json, or predict afterwards with kit predict").format(
                file=t.deepspeed))
    return p


# ---------------------------------------------------------------- requirements per command

def require(cfg: Config, purpose: str) -> None:
    """Check the keys a command needs are there (train needs a model, datasets, a template ...)."""
    p: list[str] = []
    if not cfg.model.model_name_or_path:
        p.append(_("model_name_or_path: missing; give a local model directory, a hub id, or kit/tiny-qwen"))
    if purpose in ("train", "preprocess"):
        if not cfg.data.dataset:
            p.append(_("dataset: missing; give dataset names from dataset_info.json, e.g. identity,alpaca_en_demo"))
        if not cfg.data.template:
            p.append(_("template: missing; use the model's template, e.g. qwen for Qwen models"))
    if purpose == "train":
        if not cfg.train.output_dir:
            p.append(_("output_dir: missing; say where the adapter should be written, e.g. saves/qwen/lora/sft"))
    if purpose == "export" and not cfg.infer.export_dir:
        p.append(_("export_dir: missing; say where the merged model should be written"))
    if p:
        raise ConfigError(p, source=cfg.source)


def key_reference() -> list[dict[str, Any]]:
    """Every key: section, type, default, meaning, allowed values. For docs and `kit keys`.

    The meaning is in the current language (``kit --lang zh keys``, the zh docs' reference page).
    """
    from kit.data.template import names as template_names  # the templates are data (templates.json), not a choices list

    rows = []
    for key, (section, f) in KEYS.items():
        tp, optional = base_type(f.type)
        choices = list(f.metadata.get("choices") or []) or (template_names() if key == "template" else [])
        rows.append({"key": key, "section": section, "type": tp.__name__ + (" | null" if optional else ""),
                     "default": f.default, "choices": choices, "help": _(f.metadata["help"]) if f.metadata.get("help") else ""})
    return rows
