"""Under the hood: what notebook 20's "Under the hood" cells need to make kit train's library calls themselves.

The cells call peft and transformers directly (``LoraConfig``, ``get_peft_model``, ``TrainingArguments``, ``Trainer``):
those calls are the lesson. This module only hands them what the kit would: the embedded tiny model's folder (so
the cells take seconds on a CPU, whatever model the run trains), a few examples encoded as ``kit train`` encodes them,
the LoRA targets resolved as the kit resolves them (``all`` becomes the model's linear layers), and a scratch folder
beside the run's own ``output_dir`` (``<output_dir>-under_the_hood``), never the folder the notebook was started from.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.config import Config
from kit.i18n import _

HOOD_FOLDER = "under_the_hood"  # <output_dir>-under_the_hood: the Trainer's output_dir and the adapter it saves


@dataclass
class Hood:
    model_dir: Path  # the embedded tiny model
    targets: list[str]  # lora_target resolved on it, as the kit resolves it
    rows: list[dict[str, list[int]]] = field(repr=False)  # input_ids, attention_mask, labels (-100 on the prompt)
    tokenizer: Any = field(repr=False)  # the tiny model's, as the kit loads it (right-padded, pad token set)
    folder: Path = Path(HOOD_FOLDER)


def quiet_peft_notice() -> None:
    """peft reads ``model.is_gradient_checkpointing``, which transformers 5 deprecated: a FutureWarning on every
    ``get_peft_model`` and ``PeftModel.from_pretrained``, about nothing a person can change. kit.model hides it
    around its own calls; the cells make these calls themselves, so it is hidden in this kernel (that warning only)."""
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def under_the_hood(cfg: Config, examples: int = 4) -> Hood:
    """The tiny model's folder, the first ``examples`` of each of ``cfg``'s datasets encoded for it with ``cfg``'s
    template and cutoff_len, ``cfg``'s lora_target resolved on it, and ``<output_dir>-under_the_hood`` (created): beside the run's
    output_dir, as the own-data lesson's folders, so that the training run's folder holds only what it wrote."""
    from kit import hub
    from kit import model as model_mod
    from kit.data import build_sft

    quiet_peft_notice()
    model_mod.drop_deepspeed_cpu_note()  # the Trainer imports DeepSpeed; the device is said in the kit's words already
    tiny = hub.resolve_model("kit/tiny-qwen")
    out = Path(cfg.train.output_dir).resolve()
    folder = out.with_name(f"{out.name}-{HOOD_FOLDER}")
    folder.mkdir(parents=True, exist_ok=True)
    small = cfg.replace(model_name_or_path=str(tiny), max_samples=examples, output_dir=str(folder))
    stage = model_mod.tokenizer_stage(small)
    rows = build_sft(small, stage.tokenizer, stage.template, split=False).all
    targets = model_mod.lora_targets(model_mod.meta_model(tiny), cfg.finetune.lora_target)
    return Hood(tiny, list(targets), rows, stage.tokenizer, folder)


def same_answer(answer: str, engine_answer: str) -> str:
    """One line: whether the plain peft/transformers answer is the chat engine's."""
    if answer == engine_answer:
        return _("the same answer as the chat engine's above, word for word")
    return _("not the chat engine's answer ({engine_answer!r}): the tokenizer's chat template builds another prompt than "
             "the kit's template, or the model's generation_config adds settings").format(engine_answer=engine_answer)
