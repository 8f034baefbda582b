"""The plan of one training run: every check and every computed value, built once and handed down.

``build(cfg, env)`` checks everything that can fail on a person's input before anything is written
(local files first, then the model, which may be a download), and computes what the run needs: the
model folder, the template, the LoRA targets, the DeepSpeed file, where to resume from and the
encoded examples. The in-process trainer takes the plan as it is; ``save`` writes it to the launch
folder and every torchrun rank ``load``s it instead of re-reading and re-encoding the data.

The output folder's rules (what a non-empty ``output_dir`` means, what a run resumes from, what
``overwrite_output_dir`` removes) are ``kit.run.output``'s; ``build`` asks it once, before anything is
written.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import config as config_mod
from kit.config import deepspeed as ds_config
from kit import model as model_mod
from kit.config import Config, ConfigError
from kit.data import build_sft, read_registry, resolve_dataset_dir, split_indices
from kit.data import encoded
from kit.data.files import locate
from kit.data.loader import DataError, dataset_attr
from kit.data.template import Template, get as get_template, with_system
from kit.envvars import EnvSettings
from kit.i18n import _
from kit.run.output import OutputDecision, adapter_mismatch, check_output_place, decide_output

logger = logging.getLogger("kit.run.plan")

PLAN_FILE = "plan.json"
DATA_FOLDER = "data"

@dataclass
class RunPlan:
    cfg: Config
    env: EnvSettings
    model_dir: Path
    template: Template
    lora_targets: list[str]
    deepspeed_path: Path | None
    deepspeed_stage: int | None
    output: OutputDecision
    train_rows: Any = field(repr=False, default=None)  # sequences of encoded rows
    eval_rows: Any = field(repr=False, default=None)
    tokenizer: Any = field(repr=False, default=None)  # in-process only; ranks load their own
    data_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def resume_from(self) -> str | None:
        return self.output.resume_from

    # ------------------------------------------------------------ handing down to torchrun ranks
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        encoded.save(folder / DATA_FOLDER, *self._rows_and_split())
        data = {"config": self.cfg.to_dict(), "source": self.cfg.source, "model_dir": str(self.model_dir),
                "lora_targets": self.lora_targets, "deepspeed_path": str(self.deepspeed_path) if self.deepspeed_path else None,
                "deepspeed_stage": self.deepspeed_stage, "resume_from": self.output.resume_from, "data_stats": self.data_stats}
        (folder / PLAN_FILE).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")

    def _rows_and_split(self) -> tuple[list, list[int], list[int]]:
        rows = list(self.train_rows) + list(self.eval_rows or [])
        n_train = len(self.train_rows)
        return rows, list(range(n_train)), list(range(n_train, len(rows)))

    @classmethod
    def load(cls, folder: Path, env: EnvSettings) -> "RunPlan":
        data = json.loads((folder / PLAN_FILE).read_text(encoding="utf-8"))
        cfg = config_mod.from_dict(data["config"], source=data["source"])
        train_rows, eval_rows = encoded.load(folder / DATA_FOLDER)
        return cls(cfg, env, Path(data["model_dir"]), _template(cfg), data["lora_targets"],
                   Path(data["deepspeed_path"]) if data["deepspeed_path"] else None, data["deepspeed_stage"],
                   OutputDecision(data["resume_from"]), train_rows, eval_rows, None, data["data_stats"])


def _template(cfg: Config) -> Template:
    return with_system(get_template(cfg.data.template), cfg.data.default_system)


# ---------------------------------------------------------------- building the plan

def check_datasets(cfg: Config) -> Path:
    """The registry and every dataset file exist (local, cheap): before any model is resolved or downloaded."""
    dataset_dir = resolve_dataset_dir(cfg.data.dataset_dir, cfg.config_dir)
    registry = read_registry(dataset_dir)
    missing = []
    for name in cfg.dataset_names:
        attr = dataset_attr(name, registry, dataset_dir)
        if not (dataset_dir / attr.file_name).exists():
            missing.append(_("dataset: {name} names file {file}, which is not in {folder}").format(
                name=repr(name), file=repr(attr.file_name), folder=dataset_dir))
            continue
        try:
            # What is there must be files the kit can read: a FIFO, a device or a folder without data is
            # refused here, before any model is resolved (locate opens nothing).
            locate(name, attr.file_name, dataset_dir)
        except DataError as exc:
            missing.append(str(exc))
    if missing:
        raise ConfigError(missing)
    return dataset_dir


def build(cfg: Config, env: EnvSettings, check_only: bool = False) -> RunPlan:
    """Every check that can fail on a person's input, then the encoded data; nothing is written.

    ``check_only`` stops before encoding (no tokenizer work beyond the vocabulary check).
    """
    config_mod.require(cfg, "train")
    ds_path = ds_stage = None
    if cfg.train.deepspeed:
        ds_path = ds_config.find_deepspeed_config(cfg.train.deepspeed, cfg.config_dir)
        note = ds_config.fallback_note(cfg.train.deepspeed, ds_path)
        if note:
            logger.info("%s", note)
        ds_data = ds_config.read_deepspeed_config(ds_path)
        ds_stage = ds_config.stage_of(ds_data)
        mismatched = ds_config.mismatches(ds_data, cfg)
        if mismatched:
            raise ConfigError(mismatched)
    template = _template(cfg)
    dataset_dir = check_datasets(cfg)
    local_model = Path(cfg.model.model_name_or_path or "")
    check_output_place(cfg, local_model if local_model.is_dir() else None, dataset_dir)
    # Only now what output_dir holds: a model or dataset folder is refused as such above, not as a folder of files.
    output = decide_output(cfg)
    # Local checks passed: now the model, which on a real machine may be a 15 GB download.
    stage = model_mod.tokenizer_stage(cfg, env=env, template=template)
    check_output_place(cfg, stage.model_dir, dataset_dir)
    meta = model_mod.meta_model(stage.model_dir, cfg.model.trust_remote_code)
    targets = model_mod.lora_targets(meta, cfg.finetune.lora_target)
    if output.resume_from:  # the adapter resumed must be the one this config builds, or loading it fails half-way
        mismatch = adapter_mismatch(Path(output.resume_from), cfg, targets, stage.model_dir)
        if mismatch:
            raise ConfigError([mismatch])
    model_mod.check_template_fits(template, stage.tokenizer, meta)
    plan = RunPlan(cfg, env, stage.model_dir, template, targets, ds_path, ds_stage, output, tokenizer=stage.tokenizer)
    if check_only:
        return plan
    data = build_sft(cfg, stage.tokenizer, template, split=False)
    if cfg.data.val_size > 0:
        train_idx, eval_idx = split_indices(len(data.all), cfg.data.val_size, cfg.train.seed)
    else:
        train_idx, eval_idx = list(range(len(data.all))), []
    plan.train_rows = [data.all[i] for i in train_idx]
    plan.eval_rows = [data.all[i] for i in eval_idx]
    plan.data_stats = {**data.stats(), "dataset_dir": str(dataset_dir)}
    logger.info("%s", data_line(plan.data_stats, cfg.data.dataset_dir, dataset_dir))
    return plan


def data_line(stats: dict[str, Any], given: str | None, dataset_dir: Path) -> str:
    """One line: the folder the datasets were read from and why, and what each dataset gave.

    e.g. ``data: /work/LLaMA-Factory/data (./data of the working directory, ...): identity 91,
    alpaca_en_demo 999 -> 1090 examples encoded``. A dataset's count is the examples that train:
    read (after max_samples) less the malformed and those cut to no trained token.
    """
    from kit.data.loader import describe_dataset_dir

    parts = []
    for name, c in stats.get("per_dataset", {}).items():
        kept = c.get("read", 0) - c.get("malformed", 0) - c.get("no_trained_tokens", 0)
        dropped = c.get("read", 0) - kept
        if dropped:
            parts.append(_("{name} {kept} (of {read} read; {dropped} dropped)").format(
                name=name, kept=kept, read=c.get("read", 0), dropped=dropped))
        else:
            parts.append(f"{name} {kept}")
    return _("data: {folder} ({why}): {datasets} -> {count} examples encoded").format(
        folder=dataset_dir, why=describe_dataset_dir(given, dataset_dir), datasets=", ".join(parts), count=stats.get("examples", 0))

