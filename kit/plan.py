"""The plan of one training run: every check and every computed value, built once and handed down.

``build(cfg, env)`` checks everything that can fail on a person's input before anything is written
(local files first, then the model, which may be a download), and computes what the run needs: the
model folder, the template, the LoRA targets, the DeepSpeed file, where to resume from and the
encoded examples. The in-process trainer takes the plan as it is; ``save`` writes it to the launch
folder and every torchrun rank ``load``s it instead of re-reading and re-encoding the data.

The output folder's rules live here too (``decide_output``): what a non-empty ``output_dir`` means,
and what ``overwrite_output_dir`` removes.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import config as config_mod
from kit import ds_config
from kit import model as model_mod
from kit.config import Config, ConfigError
from kit.data import build_sft, read_registry, resolve_dataset_dir, split_indices
from kit.data import encoded
from kit.data.files import locate
from kit.data.loader import DataError, dataset_attr
from kit.data.template import Template, get as get_template, with_system
from kit.envvars import EnvSettings
from kit.i18n import _

logger = logging.getLogger("kit.plan")

PLAN_FILE = "plan.json"
DATA_FOLDER = "data"

# Everything a run writes into output_dir (LLaMA-Factory's names, plus the kit's training_args.yaml).
# overwrite_output_dir removes exactly these; a person's other files stay.
RUN_FILES = (
    "adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model", "chat_template.jinja", "training_args.bin", "training_args.yaml",
    "trainer_log.jsonl", "trainer_state.json", "all_results.json", "train_results.json", "eval_results.json",
    "training_loss.png", "training_eval_loss.png",
)
RUN_FOLDER_PATTERNS = ("checkpoint-*", "runs")


@dataclass(frozen=True)
class OutputDecision:
    """What the run does with output_dir: start fresh, resume, or clear the last run's files first."""

    resume_from: str | None
    remove: tuple[Path, ...] = ()  # the last run's files, removed when the run starts (overwrite_output_dir)
    keep: tuple[str, ...] = ()  # a person's other files, left alone
    message: str | None = None  # one line a person reads: what happens and why


@dataclass
class Plan:
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
    def load(cls, folder: Path, env: EnvSettings) -> "Plan":
        data = json.loads((folder / PLAN_FILE).read_text(encoding="utf-8"))
        cfg = config_mod.from_dict(data["config"], source=data["source"])
        train_rows, eval_rows = encoded.load(folder / DATA_FOLDER)
        return cls(cfg, env, Path(data["model_dir"]), _template(cfg), data["lora_targets"],
                   Path(data["deepspeed_path"]) if data["deepspeed_path"] else None, data["deepspeed_stage"],
                   OutputDecision(data["resume_from"]), train_rows, eval_rows, None, data["data_stats"])


def _template(cfg: Config) -> Template:
    return with_system(get_template(cfg.data.template), cfg.data.default_system)


# ---------------------------------------------------------------- output_dir

def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint: a run killed while saving leaves one without trainer_state.json."""
    checkpoints = [p for p in output_dir.glob("checkpoint-*")
                   if p.is_dir() and p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return max(checkpoints, key=lambda p: int(p.name.split("-")[-1])) if checkpoints else None


def run_files(output_dir: Path) -> tuple[list[Path], list[str]]:
    """(what an earlier run wrote here, the names of everything else)."""
    ours, others = [], []
    for p in sorted(output_dir.iterdir()):
        if p.name in RUN_FILES or (p.is_dir() and any(p.match(pattern) for pattern in RUN_FOLDER_PATTERNS)):
            ours.append(p)
        else:
            others.append(p.name)
    return ours, others


def decide_output(cfg: Config) -> OutputDecision:
    """The output_dir rules, as LLaMA-Factory 0.9.5 has them, each said in one line.

    - empty or missing: train from scratch;
    - ``resume_from_checkpoint``: a checkpoint folder, or true / latest for the newest in output_dir;
    - holds checkpoints and ``overwrite_output_dir`` is false: resume from the newest (LLaMA-Factory
      does the same, so rerunning an interrupted command continues it);
    - ``overwrite_output_dir: true``: the last run's files (RUN_FILES, checkpoint-*) are removed when
      training starts, so the folder then holds this run's files only; a person's other files stay;
    - otherwise (files but no checkpoint): refused, naming the way out.
    """
    out = Path(cfg.train.output_dir)
    resume = cfg.train.resume_from_checkpoint
    if out.exists() and not out.is_dir():
        raise ConfigError([_("output_dir: {path} is a file; give a directory").format(path=repr(str(out)))])
    if resume:
        if resume.strip().lower() in ("true", "latest", "last"):
            found = last_checkpoint(out) if out.is_dir() else None
            if found is None:
                raise ConfigError([_("resume_from_checkpoint: {value} but {path} holds no complete checkpoint-* folder to resume "
                                     "from").format(value=resume, path=repr(str(out)))])
            return OutputDecision(str(found), message=_("resuming from {checkpoint} (resume_from_checkpoint: {value})").format(
                checkpoint=found, value=resume))
        if not (Path(resume) / "trainer_state.json").is_file():
            raise ConfigError([_("resume_from_checkpoint: {value} is not a complete checkpoint folder (no trainer_state.json); "
                                 "give a checkpoint-N folder of an earlier run, or true for the newest in output_dir").format(
                value=repr(resume))])
        return OutputDecision(resume, message=_("resuming from {checkpoint} (resume_from_checkpoint)").format(checkpoint=resume))
    if not out.is_dir() or not any(out.iterdir()):
        return OutputDecision(None)
    ours, others = run_files(out)
    if cfg.train.overwrite_output_dir:
        message = None
        if ours:
            message = _("overwrite_output_dir: removing the last run's {count} file(s) in {folder} before training").format(
                count=len(ours), folder=out)
            if others:
                names = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
                message += _("; keeping {count} other file(s): {names}").format(count=len(others), names=names)
        return OutputDecision(None, tuple(ours), tuple(others), message)
    found = last_checkpoint(out)
    if found is not None:
        return OutputDecision(str(found), message=_(
            "resuming from {checkpoint}: {folder} holds an earlier run's checkpoint and overwrite_output_dir is false "
            "(as LLaMA-Factory does; set overwrite_output_dir: true to start over, or choose another output_dir)").format(
            checkpoint=found, folder=out))
    raise ConfigError([_("output_dir: {path} exists and is not empty (and holds no checkpoint to resume from); "
                         "choose another output_dir, or set overwrite_output_dir: true to replace the last run's files in it"
                         ).format(path=repr(str(out)))])


def _is_within(inner: Path, outer: Path) -> bool:
    try:
        inner.resolve().relative_to(outer.resolve())
        return True
    except ValueError:
        return False


def check_output_place(cfg: Config, model_dir: Path | None, dataset_dir: Path | None) -> None:
    """Refuse an output_dir that would write into the base model, a dataset, the working or home folder."""
    out = Path(cfg.train.output_dir)
    protected = {_("the working directory"): Path.cwd(), _("the home directory"): Path.home(),
                 _("the filesystem root"): Path("/")}
    for what, place in protected.items():
        if out.resolve() == place.resolve():
            raise ConfigError([_("output_dir: {path} is {what}; training writes adapter, tokenizer and checkpoint files "
                                 "there. Give a folder of its own, e.g. saves/qwen/lora/sft").format(path=repr(str(out)), what=what)])
    for what, place in ((_("the model folder"), model_dir), (_("the dataset folder"), dataset_dir)):
        if place is not None and _is_within(place, out):
            raise ConfigError([_("output_dir: {path} is or contains {what} {place}; training would write tokenizer files "
                                 "and checkpoints into it. Give a folder of its own, e.g. saves/qwen/lora/sft").format(
                path=repr(str(out)), what=what, place=repr(str(place)))])


def prepare_output(plan: Plan) -> None:
    """Apply the output decision (rank 0 only): remove the last run's files when overwriting, create the folder."""
    out = Path(plan.cfg.train.output_dir)
    if plan.output.message:
        logger.info(plan.output.message)
    for p in plan.output.remove:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)


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


def build(cfg: Config, env: EnvSettings, check_only: bool = False) -> Plan:
    """Every check that can fail on a person's input, then the encoded data; nothing is written.

    ``check_only`` stops before encoding (no tokenizer work beyond the vocabulary check).
    """
    config_mod.require(cfg, "train")
    output = decide_output(cfg)
    ds_path = ds_stage = None
    if cfg.train.deepspeed:
        ds_path = ds_config.find_deepspeed_config(cfg.train.deepspeed, cfg.config_dir)
        ds_data = ds_config.read_deepspeed_config(ds_path)
        ds_stage = ds_config.stage_of(ds_data)
        mismatched = ds_config.mismatches(ds_data, cfg)
        if mismatched:
            raise ConfigError(mismatched)
    template = _template(cfg)
    dataset_dir = check_datasets(cfg)
    check_output_place(cfg, None, dataset_dir)
    # Local checks passed: now the model, which on a real machine may be a 15 GB download.
    stage = model_mod.tokenizer_stage(cfg, env=env, template=template)
    check_output_place(cfg, stage.model_dir, dataset_dir)
    meta = model_mod.meta_model(stage.model_dir, cfg.model.trust_remote_code)
    targets = model_mod.lora_targets(meta, cfg.finetune.lora_target)
    model_mod.check_template_fits(template, stage.tokenizer, meta)
    plan = Plan(cfg, env, stage.model_dir, template, targets, ds_path, ds_stage, output, tokenizer=stage.tokenizer)
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

