"""Tokenizer and model loading, LoRA attach, adapter load, merge."""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from kit.errors import KitError
from kit.i18n import N_, _
from kit.library_text import json_problem

if TYPE_CHECKING:
    from kit.config import Config
    from kit.data.template import Template
    from kit.envvars import EnvSettings

logger = logging.getLogger("kit.model")


class ModelError(KitError):
    pass


# ---------------------------------------------------------------- what the libraries print on their own

# transformers' bars around the kit's loads and saves, by their (English) description: the kit's own words instead.
LIBRARY_BARS = {"Loading weights": N_("loading weights"), "Writing model shards": N_("writing model shards")}
BAR_DELAY_S = 3.0  # a load or save that takes longer shows its bar; the tiny model's never does


class _NoCpuAcceleratorNote(logging.Filter):
    """Drops DeepSpeed's "Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it."

    DeepSpeed logs it on its first import in a process when DS_ACCELERATOR is unset and it finds no accelerator
    (transformers imports it to save a model, the Trainer to train with a DeepSpeed config). In the kit the device
    is already said in the kit's words (kit.device: which device, and why no NPU, with the fix), and ``kit doctor``
    warns, with the fix, when DeepSpeed's accelerator differs from the kit's device. Every other record passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Setting accelerator to CPU")


NO_CPU_ACCELERATOR_NOTE = _NoCpuAcceleratorNote()


class _AccumulationByDesign(logging.Filter):
    """Drops accelerate's "Gradient accumulation steps mismatch: GradientAccumulationPlugin has 1, DeepSpeed config
    has N. Using DeepSpeed's value." when N is the run's own gradient_accumulation_steps.

    transformers' Trainer accumulates gradients itself and gives accelerate's plugin 1 on purpose, while the DeepSpeed
    config it fills says the run's N; accelerate warns about the two on every DeepSpeed run with accumulation (the
    quick start's 2 included). A DeepSpeed file whose fixed value differs from the run is refused before launch
    (kit.config.deepspeed), so with the run's N the line says nothing a person can act on. Any other N passes.
    """

    def __init__(self, steps: int):
        super().__init__()
        self.line = f"GradientAccumulationPlugin has 1, DeepSpeed config has {steps}."

    def filter(self, record: logging.LogRecord) -> bool:
        return self.line not in str(record.msg)


@contextlib.contextmanager
def quiet_accumulation_note(steps: int) -> Iterator[None]:
    """While a DeepSpeed run of ``steps`` accumulation steps trains in this process (see _AccumulationByDesign)."""
    accelerate_logger = logging.getLogger("accelerate.accelerator")
    note = _AccumulationByDesign(steps)
    accelerate_logger.addFilter(note)
    try:
        yield
    finally:
        accelerate_logger.removeFilter(note)


def drop_deepspeed_cpu_note() -> None:
    """For a process that is the kit's own (a training rank): DeepSpeed's CPU note is never shown in it."""
    logging.getLogger("DeepSpeed").addFilter(NO_CPU_ACCELERATOR_NOTE)  # the logger DeepSpeed logs it with; once only


@contextlib.contextmanager
def no_deepspeed_cpu_note() -> Iterator[None]:
    """While one of the kit's own steps runs in a person's process (run_sft from their Python, a load in a notebook):
    DeepSpeed's CPU note is dropped, then the logger is left as it was (a rank's lasting filter stays)."""
    deepspeed_logger = logging.getLogger("DeepSpeed")
    had_filter = NO_CPU_ACCELERATOR_NOTE in deepspeed_logger.filters
    deepspeed_logger.addFilter(NO_CPU_ACCELERATOR_NOTE)
    try:
        yield
    finally:
        if not had_filter:
            deepspeed_logger.removeFilter(NO_CPU_ACCELERATOR_NOTE)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Around the kit's own loads and saves: transformers' "Loading weights" and "Writing model shards" bars become
    the kit's, translated and shown only when the step takes over BAR_DELAY_S seconds, and DeepSpeed's CPU note is
    dropped. Only for these calls: a person's own from_pretrained in the same notebook shows what it always did,
    and bars a person turned off (transformers.utils.logging.disable_progress_bar) stay off."""
    from transformers.utils import logging as hf_logging

    set_hook = getattr(hf_logging, "set_tqdm_hook", None)  # transformers 5; older ones draw no such bars
    previous = None

    def kit_bar(factory: Any, args: tuple, kwargs: dict) -> Any:
        words = LIBRARY_BARS.get(kwargs.get("desc"))
        if words is not None:
            kwargs = {**kwargs, "desc": _(words), "delay": BAR_DELAY_S}
        return previous(factory, args, kwargs) if previous is not None else factory(*args, **kwargs)

    if set_hook is not None:
        previous = set_hook(kit_bar)
    try:
        with no_deepspeed_cpu_note():
            yield
    finally:
        if set_hook is not None:
            set_hook(previous)


# ---------------------------------------------------------------- tokenizer

def load_tokenizer(model_dir: Path, template: Any | None = None, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer, right-padded, with eos/pad fixed for ``template``."""
    from transformers import AutoTokenizer

    tok_cfg_file = model_dir / "tokenizer_config.json"
    tok_class = None
    if tok_cfg_file.is_file():
        try:
            tok_class = json.loads(tok_cfg_file.read_text(encoding="utf-8")).get("tokenizer_class")
        except json.JSONDecodeError as exc:
            raise ModelError(_("{path} is not valid JSON: {error}").format(path=tok_cfg_file, error=json_problem(exc))) from None
    try:
        if tok_class in ("TokenizersBackend", "PreTrainedTokenizerFast"):
            # A tokenizer saved as a plain tokenizer.json must be read as written: newer transformers
            # would otherwise pick a model-specific class (Qwen2Tokenizer) that swaps in its own
            # pre-tokenizer and changes the token ids (digits, whitespace) against LLaMA-Factory's.
            import transformers

            cls = getattr(transformers, "TokenizersBackend", None) or transformers.PreTrainedTokenizerFast
            tokenizer = cls.from_pretrained(str(model_dir))
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(_("could not load a tokenizer from {path}: {error}").format(path=model_dir, error=exc)) from None
    tokenizer.padding_side = "right"
    if template is not None:
        for note in template.fix_tokenizer(tokenizer):
            logger.info(note)
    return tokenizer


@dataclass(frozen=True)
class TokenizerStage:
    """The model folder, the template (with the config's default_system) and the tokenizer fixed for it."""

    model_dir: Path
    template: "Template"
    tokenizer: Any


def tokenizer_stage(cfg: "Config", env: "EnvSettings | None" = None, template: "Template | None" = None,
                    model_dir: Path | None = None, weights: bool = True) -> TokenizerStage:
    """Template -> model folder -> tokenizer, the one way every command does it.

    ``template`` replaces the config's (chat checks it against the adapter first); ``model_dir``
    skips resolving when a plan already holds the folder. ``weights=False`` (``kit preprocess``,
    which only tokenizes) accepts a folder with config.json and the tokenizer but no weights, and
    downloads no weights; everything that loads the model keeps the default and checks them first.
    """
    from kit import hub
    from kit.data.template import get as get_template, with_system

    if template is None:
        template = with_system(get_template(cfg.data.template), cfg.data.default_system)
    if model_dir is None:
        model_dir = hub.resolve_model(cfg.model.model_name_or_path, cfg.model.cache_dir, cfg.model.model_revision, env=env,
                                      weights=weights)
    tokenizer = load_tokenizer(model_dir, template, cfg.model.trust_remote_code)
    return TokenizerStage(model_dir, template, tokenizer)


# ---------------------------------------------------------------- model

def torch_dtype(fp16: bool, bf16: bool):
    import torch

    return torch.float16 if fp16 else torch.bfloat16 if bf16 else torch.float32


def load_model(model_dir: Path, dtype: Any = None, trust_remote_code: bool = False) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        with quiet_libraries():
            model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(_("could not load the model from {path}: {error}").format(path=model_dir, error=exc)) from None
    return model


def meta_model(model_dir: Path, trust_remote_code: bool = False) -> Any:
    """The model's module structure without weights (for checking lora_target before any work)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        from huggingface_hub.errors import StrictDataclassError  # a value of the wrong type in config.json
    except ImportError:  # older huggingface_hub: config classes are not strict dataclasses there
        StrictDataclassError = ValueError  # noqa: N806
    try:
        config = AutoConfig.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, OSError, TypeError, StrictDataclassError) as exc:
        # an unknown model_type, or a config.json transformers cannot read
        raise ModelError(_("model_name_or_path: {path} has a config.json this transformers cannot read ({error}). Check "
                           "model_type in config.json; a newer transformers, or trust_remote_code: true for a model that ships "
                           "its own code, may be needed").format(
            path=model_dir, error=f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}")) from None
    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError) as exc:
        raise ModelError(_("model_name_or_path: {path} holds a {model_type} model, which is not a causal language model "
                           "transformers can train here ({error}); LoRA SFT needs a decoder model such as Qwen").format(
            path=model_dir, model_type=getattr(config, "model_type", "?"), error=(str(exc).splitlines() or [""])[0][:200])) from None


def check_template_fits(template: Any, tokenizer: Any, model: Any) -> None:
    """Refuse a template whose special tokens the model has no embedding for (the run would crash at step 1)."""
    from kit.data.template import check_vocab

    rows = model.get_input_embeddings().num_embeddings
    check_vocab(template, tokenizer, rows)  # first: a template token added past the embedding names the template
    if len(tokenizer) > rows:
        # Any token id past the embedding ends the run at its first batch with "index out of range".
        raise ModelError(_("model_name_or_path: the tokenizer has {tokens} tokens but the model's embedding only {rows} rows "
                           "(vocab_size in config.json): the tokenizer files and the weights do not belong together. Use the "
                           "tokenizer saved with this model").format(tokens=len(tokenizer), rows=rows))


def linear_module_names(model: Any) -> list[str]:
    """Short names of the linear layers LoRA can adapt (the output head excluded, as LLaMA-Factory does)."""
    import torch

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names: set[str] = set()
    for full_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module is not output and "lm_head" not in full_name:
            names.add(full_name.split(".")[-1])
    return sorted(names)


def lora_targets(model: Any, lora_target: str) -> list[str]:
    available = linear_module_names(model)
    if lora_target.strip() == "all":
        return available
    wanted = [t.strip() for t in lora_target.split(",") if t.strip()]
    missing = [t for t in wanted if t not in available]
    if missing:
        raise ModelError(_("lora_target: {names} name(s) no linear module of this model; its linear layers are: {available} "
                           "(or use all)").format(names=", ".join(missing), available=", ".join(available)))
    return wanted


@contextlib.contextmanager
def _peft_reading_old_names() -> Iterator[None]:
    """peft's PeftModel reads model.is_gradient_checkpointing, which transformers 5 deprecated (FutureWarning on
    every adapter load: chat, export, training). The kit never reads the old name and a person can do nothing
    about it, so exactly that warning is hidden around exactly these calls; every other warning still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def attach_lora(model: Any, targets: Sequence[str], rank: int, alpha: int, dropout: float) -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=list(targets), inference_mode=False)
    with _peft_reading_old_names():
        return get_peft_model(model, config)


def count_parameters(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


# ---------------------------------------------------------------- adapters

def check_adapter_dir(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(_("adapter_name_or_path: {path!r} does not exist; give the output_dir of a LoRA training run").format(
            path=str(path)))
    if not (p / "adapter_config.json").is_file():
        raise ModelError(_("adapter_name_or_path: {path!r} is not a LoRA adapter (no adapter_config.json in it)").format(path=str(path)))
    if not any((p / n).is_file() for n in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ModelError(_("adapter_name_or_path: {path!r} has adapter_config.json but no adapter_model.safetensors; copy the "
                           "adapter folder whole (training writes both files into output_dir and every checkpoint-N)").format(
            path=str(path)))
    return p.resolve()


def adapter_template(path: Path) -> str | None:
    """The template an adapter was trained with, when the kit recorded it (training_args.yaml)."""
    import yaml

    f = path / "training_args.yaml"
    if f.is_file():
        try:
            return (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("template")
        except yaml.YAMLError:
            return None
    return None


def load_adapters(model: Any, adapter_paths: Sequence[str | Path], merge: bool = True) -> Any:
    """Apply adapters in order; merged into the weights ("dynamic merge") unless ``merge`` is False."""
    from peft import PeftModel

    for i, raw in enumerate(adapter_paths):
        path = check_adapter_dir(raw)
        try:
            with _peft_reading_old_names(), quiet_libraries():
                model = PeftModel.from_pretrained(model, str(path), is_trainable=False)
        except RuntimeError as exc:
            if "size mismatch" in str(exc) or "shape" in str(exc):
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                detail = next((line for line in lines if "size mismatch" in line), lines[0] if lines else "")
                raise ModelError(_("adapter_name_or_path: {path!r} does not fit this model's weight shapes (trained for another "
                                   "base model, or its adapter_config.json's r differs from its weights): {error}").format(
                    path=str(raw), error=detail[:300])) from None
            raise
        except ValueError as exc:
            raise ModelError(_("adapter_name_or_path: {path!r} does not fit this model: {error}").format(path=str(raw), error=exc)) from None
        if merge or i < len(adapter_paths) - 1:
            # Earlier adapters are always merged so the next one applies on top of them.
            model = model.merge_and_unload()
    return model
