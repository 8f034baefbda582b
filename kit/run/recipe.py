"""LoRA supervised fine-tuning: the recipe, top to bottom.

    run_sft(plan)
      plan        kit.run.plan.build: every check, then the encoded data (done once, before any rank starts)
      setup       device, precision, distributed environment
      model       load weights, attach LoRA
      fit         transformers.Trainer (+ DeepSpeed from the config)
      finish      adapter, metrics, state, trainer_log.jsonl, plots in output_dir

``kit train`` builds the plan and either runs it here or saves it for torchrun, whose ranks run
``python -m kit.train --plan DIR`` (kit/train.py). The quick start's own ``torchrun ... -m kit.train CONFIG.yaml``
works too: each rank then builds the plan itself.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator, NoReturn, Sequence


from kit import config as config_mod
from kit import device as device_mod
from kit import model as model_mod
from kit.run import plan as plan_mod
from kit.run import output as output_mod
from kit.config import Config
from kit.envvars import EnvSettings
from kit.errors import KitError
from kit.i18n import _
from kit.run.plan import RunPlan

logger = logging.getLogger("kit.train")

TRAINER_LOG = "trainer_log.jsonl"
RESOLVED_CONFIG = "training_args.yaml"


# ---------------------------------------------------------------- callbacks and plots

def _log_callback_class():
    from transformers import TrainerCallback

    class LogCallback(TrainerCallback):
        """Writes trainer_log.jsonl with LLaMA-Factory's fields, one line per log event."""

        def __init__(self, output_dir: str):
            self.path = Path(output_dir) / TRAINER_LOG
            self.start = time.time()

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.time()
            if state.is_world_process_zero and self.path.exists():
                # Resuming: the killed run logged steps past its last checkpoint; they are trained again now.
                # errors="replace": a log garbled by a disk or a hand loses its unreadable lines, not the resume.
                rows = [line for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines()
                        if _step_of(line) is not None and _step_of(line) <= state.global_step]
                self.path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:
                return
            last = state.log_history[-1] if state.log_history else {}
            elapsed = time.time() - self.start
            steps, total = state.global_step, state.max_steps
            remaining = (total - steps) * (elapsed / steps) if steps else 0
            row = {"current_steps": steps, "total_steps": total, "loss": last.get("loss"),
                   "eval_loss": last.get("eval_loss"), "lr": last.get("learning_rate"), "epoch": last.get("epoch"),
                   "percentage": round(steps / total * 100, 2) if total else 100,
                   "elapsed_time": str(timedelta(seconds=int(elapsed))),
                   "remaining_time": str(timedelta(seconds=int(remaining)))}
            row = {k: v for k, v in row.items() if v is not None}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    return LogCallback


def _trainer_class():
    from transformers import Trainer

    class KitTrainer(Trainer):
        """transformers' Trainer, with its FLOP count's parameter count taken once per run.

        Trainer.floating_point_ops counts the model's non-embedding parameters again at every forward
        pass (6 x tokens x parameters, for total_flos): a walk over every module, 0.3 ms per pass on the
        tiny model (about 2% of its optimizer step). The parameters do not change during a run, so the
        figure is the same, counted once.
        """

        _flos_parameters: int | None = None

        def floating_point_ops(self, inputs):
            main_input = getattr(self.model, "main_input_name", "input_ids")
            if main_input not in inputs or not hasattr(self.model, "num_parameters"):
                return super().floating_point_ops(inputs)
            if self._flos_parameters is None:
                self._flos_parameters = self.model.num_parameters(exclude_embeddings=True)
            return 6 * inputs[main_input].numel() * self._flos_parameters

    return KitTrainer


def _run_callback_classes():
    from transformers import TrainerCallback

    class RunFilesCallback(TrainerCallback):
        """Rank 0 records in the run's manifest what the run writes, each name before it is written.

        training_args.yaml is written here, once the Trainer has loaded any checkpoint it resumes from:
        a resume that fails leaves the finished run's copy as it was.
        """

        def __init__(self, plan: RunPlan):
            self.plan = plan
            self.out = Path(plan.cfg.train.output_dir)
            self.manifest: output_mod.Manifest | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            self.manifest = output_mod.Manifest.read(self.out) or output_mod.Manifest(self.out)
            tensorboard = ("runs",) if "runs" in output_mod.run_names(self.plan.cfg) else ()
            self.manifest.add(RESOLVED_CONFIG, TRAINER_LOG, *tensorboard)
            (self.out / RESOLVED_CONFIG).write_text(self.plan.cfg.to_yaml(), encoding="utf-8")

        def _before_save(self, state, control):
            if control.should_save and self.manifest is not None:
                self.manifest.add(f"checkpoint-{state.global_step}")  # the Trainer's folder name, before it exists

        def on_step_end(self, args, state, control, **kwargs):
            self._before_save(state, control)

        def on_save(self, args, state, control, **kwargs):
            # The checkpoint is written whole: its files are the kit's; any other file found there later is a person's.
            if self.manifest is not None:
                self.manifest.record_contents(f"checkpoint-{state.global_step}")

        def on_epoch_end(self, args, state, control, **kwargs):
            self._before_save(state, control)

    class DivergenceCallback(TrainerCallback):
        """Stops training when the logged loss is not finite, and cancels the save due at that step.

        It reads the loss the Trainer has just synchronised to log it: no extra device sync per step.
        """

        def __init__(self):
            self.step: int | None = None
            self.loss: float | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if isinstance(loss, (int, float)) and not math.isfinite(loss) and self.step is None:
                self.step, self.loss = state.global_step, loss
                control.should_training_stop = True
                control.should_save = False  # a checkpoint of diverged weights is no use to resume from
                control.should_evaluate = False
            return control

    return RunFilesCallback, DivergenceCallback


class TrainingDiverged(KitError):
    """The loss became nan or inf: training stopped, and no adapter was saved as the run's result."""


def diverged_message(plan: RunPlan, step: int, loss: float) -> str:
    """What happened, which checkpoint is still good, and what to change."""
    out = Path(plan.cfg.train.output_dir)
    manifest = output_mod.Manifest.read(out) if (out / output_mod.MANIFEST).is_file() else None
    names = manifest.existing() if manifest else [p.name for p in out.glob("checkpoint-*")]
    good, skipped = output_mod.newest_usable_checkpoint(out, names, plan.deepspeed_path is not None)
    t = plan.cfg.train
    where = (_("the last good checkpoint, {checkpoint}, is kept").format(checkpoint=good) if good
             else _("no checkpoint saved before it can be resumed from") if skipped
             else _("no checkpoint was saved before it"))
    return _("the loss became {loss} at step {step} (checked every {every} steps, when it is logged): training stopped "
             "and no adapter was saved as the result; {where}. Lower learning_rate (now {lr}) or max_grad_norm (now "
             "{norm}), then start again with overwrite_output_dir: true (a resumed run would keep the same learning "
             "rate schedule)").format(loss=loss, step=step, every=f"{t.logging_steps:g}", where=where, lr=t.learning_rate,
                                      norm=t.max_grad_norm)


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["current_steps"])
    except (ValueError, KeyError, TypeError):
        return None  # a line cut off by a kill


def smooth(values: Sequence[float]) -> list[float]:
    """Exponential moving average whose weight grows with the number of points (as LLaMA-Factory plots)."""
    if not values:
        return []
    weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    out, last = [], values[0]
    for v in values:
        last = last * weight + (1 - weight) * v
        out.append(last)
    return out


def plot_loss(output_dir: str | Path, keys: Sequence[str] = ("loss", "eval_loss")) -> list[Path]:
    """training_loss.png / training_eval_loss.png from trainer_state.json's log history."""
    # A Figure of its own, not pyplot: the kit must not switch a notebook kernel's plotting backend.
    from matplotlib.figure import Figure

    out = Path(output_dir)
    history = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    written = []
    for key in keys:
        points = [(h["step"], h[key]) for h in history if key in h]
        if not points:
            continue
        steps, values = zip(*points)
        fig = Figure()
        ax = fig.subplots()
        ax.plot(steps, values, color="#1f77b4", alpha=0.4, label="original")
        ax.plot(steps, smooth(values), color="#1f77b4", label="smoothed")
        ax.set_title(f"training {key} of {out}")
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.legend()
        path = out / f"training_{key.replace('/', '_')}.png"
        fig.savefig(path, format="png", dpi=100)
        written.append(path)
    return written


# ---------------------------------------------------------------- the recipe

@contextlib.contextmanager
def _one_process_group(env: EnvSettings, info: device_mod.DeviceInfo) -> Iterator[None]:
    """DeepSpeed without a launcher: this process is rank 0 of a group of one while the run lasts.

    DeepSpeed needs RANK, WORLD_SIZE and a rendezvous address, or it falls back to mpi4py. The variables
    set here are removed at the end: ``kit train`` called from a person's script or a test goes on after
    the run, and a program it starts next must not inherit a MASTER_PORT this process holds.
    """
    from kit.envvars import master_addr, set_defaults, unset_written
    from kit.ports import free_port

    import torch.distributed as dist

    if env.under_torchrun:
        yield
        return
    joined = dist.is_available() and dist.is_initialized()  # an earlier run in this process made the group
    written = {}
    if info.kind == "cpu":
        import torch

        # accelerate sets this for a distributed run on CPU, with a warning, when it is unset: the same
        # figure (torch's own thread count), without the warning.
        written.update(set_defaults({"OMP_NUM_THREADS": str(torch.get_num_threads())}))
    if env.master_port and not joined:  # the person's port: say so now if it is taken, not in DeepSpeed's traceback
        from kit.ports import require_free_port

        require_free_port(env.master_port)
    written.update(set_defaults({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": master_addr(env),
                                 "MASTER_PORT": str(env.master_port or free_port())}))
    try:
        yield
    finally:
        # The group itself stays for the life of the process: DeepSpeed keeps its own groups built on it,
        # and a second run here joins it again. Only the variables go: a program this process starts next
        # (a test's, a script's) must not inherit a MASTER_PORT this process holds.
        unset_written(written)


def _clean_tokenizer_config(output_dir: Path) -> None:
    """Drop the load-time flags newer transformers saves (local_files_only is true under HF_HUB_OFFLINE)."""
    path = output_dir / "tokenizer_config.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("local_files_only", None) is not None or data.pop("is_local", None) is not None:
            data.pop("is_local", None)
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def peak_memory_mib(info: device_mod.DeviceInfo) -> float:
    """This process's peak memory so far: the device's allocator peak on an NPU or GPU, resident memory on a CPU."""
    if info.kind == "cpu":
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB
    import torch

    return round(getattr(torch, info.kind).max_memory_allocated() / 2**20, 1)


def make_collator(tokenizer: Any) -> Any:
    """Pads each batch to its longest example (a multiple of 8): input_ids with pad, labels with -100."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, label_pad_token_id=-100)


# Checkpointing is turned off on its own only when the run without it needs at most this share of the device.
AUTO_CHECKPOINTING_SHARE = 0.5


def gradient_checkpointing(plan: RunPlan, info: device_mod.DeviceInfo, fp16: bool, bf16: bool) -> tuple[bool, str]:
    """(on?, why). The config decides when it says; otherwise the memory estimate for this device does.

    Recomputing activations in the backward pass saves memory and costs about a third more compute;
    the losses are the same either way. LLaMA-Factory always recomputes; the kit does only when the
    activations would not comfortably fit.
    """
    setting = plan.cfg.train.disable_gradient_checkpointing
    if setting is not None:
        return (not setting, f"disable_gradient_checkpointing: {str(setting).lower()}")  # a key: value, the same in every language
    from kit import estimate as estimate_mod

    t = plan.cfg.train
    processes_here = (plan.env.world_size or 1) // max(1, plan.env.nnodes)
    if info.kind == "cpu":
        from kit.estimate.devices import system_ram

        memory, device = system_ram() / max(1, processes_here), "cpu"
    else:
        import torch

        memory = getattr(torch, info.kind).get_device_properties(getattr(torch, info.kind).current_device()).total_memory
        device = info.kind
    try:
        est = estimate_mod.estimate(
            plan.model_dir, lora_rank=plan.cfg.finetune.lora_rank, lora_target=plan.lora_targets,
            dtype="bf16" if bf16 else "fp16" if fp16 else "fp32", cutoff_len=plan.cfg.data.cutoff_len,
            batch_size=t.per_device_train_batch_size, zero_stage=plan.deepspeed_stage, num_devices=plan.env.world_size or 1,
            nnodes=plan.env.nnodes, gradient_checkpointing=False, device=device, device_memory_gib=memory / estimate_mod.GiB,
            trust_remote_code=plan.cfg.model.trust_remote_code, suggest=False)
    except KitError as exc:  # a layout the estimate cannot read: keep the safe default
        return True, _("no memory estimate for this model ({error})").format(error=exc)
    need = est.per_device_bytes
    share = need / memory
    verdict = "off" if share <= AUTO_CHECKPOINTING_SHARE else "on"
    return (verdict == "on", _("without it this run needs about {need:.2f} GiB of this {device}'s {memory:.1f} GiB "
                               "({share:.0%}; off up to {limit:.0%}); disable_gradient_checkpointing: false forces it on, "
                               "true off").format(need=need / 2**30, device=info.kind, memory=memory / 2**30, share=share,
                                                  limit=AUTO_CHECKPOINTING_SHARE))


def training_arguments(plan: RunPlan, info: device_mod.DeviceInfo, fp16: bool, bf16: bool, checkpointing: bool = True) -> Any:
    import inspect

    from transformers import TrainingArguments

    t = plan.cfg.train
    eval_on = t.eval_strategy != "no"
    accepted = inspect.signature(TrainingArguments.__init__).parameters
    version_specific: dict[str, Any] = {}
    if "warmup_ratio" in accepted:
        version_specific.update(warmup_ratio=t.warmup_ratio, warmup_steps=t.warmup_steps)
    else:  # transformers 5 folds the ratio into warmup_steps (a float below 1 is a ratio)
        version_specific["warmup_steps"] = t.warmup_steps if t.warmup_steps > 0 else t.warmup_ratio
    if "activation_checkpointing" in accepted:  # the name since transformers 5
        version_specific.update(activation_checkpointing=checkpointing, activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        version_specific.update(gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False})
    if "save_safetensors" in accepted:
        version_specific["save_safetensors"] = True
    return TrainingArguments(
        output_dir=t.output_dir,
        do_train=True,
        do_eval=eval_on,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps,
        lr_scheduler_type=t.lr_scheduler_type,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps,
        save_strategy=t.save_strategy,
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        eval_strategy=t.eval_strategy,
        eval_steps=t.eval_steps if t.eval_steps is not None else (t.logging_steps if eval_on else None),
        fp16=fp16,
        bf16=bf16,
        seed=t.seed,
        ddp_timeout=t.ddp_timeout,
        # Only a launched (torchrun) run has a process group to give a backend to.
        ddp_backend=info.backend if plan.env.under_torchrun else None,
        deepspeed=str(plan.deepspeed_path) if plan.deepspeed_path else None,
        report_to=[] if t.report_to in ("none", "") else t.report_to.split(","),
        # Several CPU processes under torchrun need this, or DDP is silently not distributed.
        use_cpu=info.kind == "cpu",
        remove_unused_columns=False,
        # The Trainer would otherwise replace a nan/inf step loss by the window's average, hiding a diverged run from
        # the log (and from DivergenceCallback), and test every step's loss on the host (a device sync per step).
        logging_nan_inf_filter=False,
        dataloader_num_workers=t.dataloader_num_workers,
        **version_specific,
    )


def final_evaluation(state: Any) -> dict[str, Any] | None:
    """The metrics of the evaluation the Trainer ran at the last step, if it ran one; else None.

    With ``eval_strategy: steps`` the Trainer evaluates the final weights itself, at the last step (on
    the schedule, or because it is the last). Evaluating them a second time gives the same loss, costs a
    pass over the eval set (minutes on a 7B model) and adds a row LLaMA-Factory's trainer_log.jsonl lacks.
    """
    for entry in reversed(state.log_history):
        if "eval_loss" in entry:
            if entry.get("step") != state.global_step:
                return None
            return {k: v for k, v in entry.items() if k != "step"}
    return None


class WriteRefused(KitError):
    """The operating system refused a write while training: a full disk, a quota, a read-only file system."""


# A person fixes these (free space, permissions); anything else from the OS keeps its traceback.
REFUSED_WRITES = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def run_sft(cfg: RunPlan | Config | str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train a LoRA adapter as the plan (or config) says; return the final metrics. In-process or under torchrun."""
    try:
        # called from a person's Python, DeepSpeed may be imported in here: its CPU note, as in kit train's ranks
        with model_mod.no_deepspeed_cpu_note():
            return _run_sft(cfg, overrides)
    except OSError as exc:
        if exc.errno not in REFUSED_WRITES or (exc.errno in (errno.EACCES, errno.EPERM) and not exc.filename):
            raise
        raise WriteRefused(_("the operating system refused a write while training: {error}; free space (df -h) or fix "
                             "the permissions, then run the same command again: it resumes from the newest complete "
                             "checkpoint").format(error=exc)) from exc


def _run_sft(cfg: RunPlan | Config | str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    if isinstance(cfg, RunPlan):
        plan = cfg
    else:
        if not isinstance(cfg, Config):
            cfg = config_mod.load(cfg, overrides)
        plan = plan_mod.build(cfg, EnvSettings.from_environ())
        if (plan.env.rank or 0) == 0:
            output_mod.prepare_output(plan.cfg, plan.output)
    cfg, env = plan.cfg, plan.env

    # setup: each process its own device; the kind is the plan's
    info = device_mod.detect(cfg.model.device, env)
    fp16, bf16, warning = device_mod.resolve_precision(info, cfg.train.fp16, cfg.train.bf16)
    if warning and (env.rank or 0) == 0:  # the same on every rank: said once, not once per card
        logger.warning(warning)
    if not plan.deepspeed_path:
        return _train(plan, info, fp16, bf16)
    # a rank of a person's own `torchrun -m kit.train` did not come through kit.run.launch's environment
    device_mod.use_extensions_dir()
    device_mod.skip_cpu_shared_memory_op(info.kind, env.world_size or 1)
    with _one_process_group(env, info), model_mod.quiet_accumulation_note(cfg.train.gradient_accumulation_steps):
        return _train(plan, info, fp16, bf16)


def _train(plan: RunPlan, info: device_mod.DeviceInfo, fp16: bool, bf16: bool) -> dict[str, Any]:
    cfg, env = plan.cfg, plan.env
    device_mod.setup(info, env, env.local_rank or 0)
    tokenizer = plan.tokenizer or model_mod.load_tokenizer(plan.model_dir, plan.template, cfg.model.trust_remote_code)

    # model
    import torch
    from transformers import set_seed

    set_seed(cfg.train.seed)  # before LoRA init, so the same seed gives the same adapter start
    model = model_mod.load_model(plan.model_dir, model_mod.torch_dtype(fp16, bf16), cfg.model.trust_remote_code)
    model.config.use_cache = False  # no KV cache while training (and gradient checkpointing needs it off)
    checkpointing, why = gradient_checkpointing(plan, info, fp16, bf16)
    if (env.rank or 0) == 0:
        logger.info("%s", (_("gradient checkpointing on: {why}") if checkpointing else _("gradient checkpointing off: {why}"))
                    .format(why=why))
    if checkpointing:
        model.enable_input_require_grads()
    model = model_mod.attach_lora(model, plan.lora_targets, cfg.finetune.lora_rank, cfg.lora_alpha, cfg.finetune.lora_dropout)
    trainable, total = model_mod.count_parameters(model)
    # LLaMA-Factory's own line, word for word in every language (people grep logs for it; bench/gpu_train.py reads it)
    logger.info("trainable params: %d || all params: %d || trainable%%: %.4f", trainable, total, 100 * trainable / total)

    # fit: TrainingArguments also joins the process group, so every rank has its plan by then
    args = training_arguments(plan, info, fp16, bf16, checkpointing)
    run_files_class, divergence_class = _run_callback_classes()
    run_files, divergence = run_files_class(plan), divergence_class()
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=plan.train_rows, eval_dataset=plan.eval_rows or None,
        data_collator=make_collator(tokenizer), processing_class=tokenizer,
        callbacks=[_log_callback_class()(cfg.train.output_dir), run_files, divergence],
    )
    result = trainer.train(resume_from_checkpoint=plan.resume_from)
    manifest = run_files.manifest  # rank 0's; None on the others
    if manifest is not None:
        manifest.prune()  # a save the divergence stop cancelled, checkpoints the Trainer rotated away
    if divergence.step is not None:
        raise TrainingDiverged(diverged_message(plan, divergence.step, divergence.loss))

    # finish: the adapter, then metrics, state and plots, as LLaMA-Factory writes them
    out = Path(cfg.train.output_dir)
    before = {p.name for p in out.iterdir()} if manifest is not None else set()
    if manifest is not None:  # listed before they are written: a run killed while finishing still owns them
        manifest.add(*(n for n in output_mod.RUN_FILES if n not in before or n in manifest.entries))
    trainer.save_model()
    if trainer.is_world_process_zero():
        _clean_tokenizer_config(Path(cfg.train.output_dir))
    metrics = dict(result.metrics)
    metrics["train_peak_memory_mib"] = peak_memory_mib(info)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    if plan.eval_rows:
        eval_metrics = final_evaluation(trainer.state) or trainer.evaluate(metric_key_prefix="eval")
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        metrics.update(eval_metrics)
    if cfg.train.do_predict:  # LLaMA-Factory's do_predict: generate on the prediction set and score it (rank 0)
        from kit.evaluate.predict import after_training

        metrics.update(after_training(cfg, trainer.model, tokenizer, plan.template, manifest, trainer.is_world_process_zero()))
    if trainer.is_world_process_zero() and cfg.finetune.plot_loss:
        for path in plot_loss(cfg.train.output_dir, ["loss", "eval_loss"] if plan.eval_rows else ["loss"]):
            logger.info("%s", _("figure saved at {path}").format(path=path))
    if manifest is not None:  # what finishing wrote, under whatever names this transformers version uses
        manifest.add(*({p.name for p in out.iterdir()} - before - {output_mod.MANIFEST}))
        manifest.prune()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kit.train --plan DIR`` (kit/train.py) (a rank started by kit train) or ``CONFIG.yaml [key=value ...]``."""
    from kit.config.command_line import split_config_args

    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="[kit %(levelname)s] %(message)s")
    # DeepSpeed's "Setting accelerator to CPU ... unable to detect it", on its import in each rank: the kit's device
    # check (kit doctor, kit demo, notebook 00) says which device and why no NPU, in the person's language, with the fix.
    model_mod.drop_deepspeed_cpu_note()
    try:
        env = EnvSettings.from_environ()
        if argv[:1] == ["--plan"] and len(argv) == 2:
            plan = RunPlan.load(Path(argv[1]), env)
            logger.info("%s", _("rank {rank}: plan and {train} + {eval} encoded examples read from {folder}").format(
                rank=env.rank, train=len(plan.train_rows), eval=len(plan.eval_rows), folder=argv[1]))
        else:
            path, overrides = split_config_args(argv)
            plan = plan_mod.build(config_mod.load(path, overrides), env)
            if (env.rank or 0) == 0:
                output_mod.prepare_output(plan.cfg, plan.output)
        metrics = run_sft(plan)
    except KitError as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return 2
    if (env.rank or 0) == 0:
        print(json.dumps({"metrics": metrics}))
    _leave_process_group()
    if (env.world_size or 1) > 1:
        _end_rank(0)
    return 0


def _leave_process_group() -> None:
    """End the rank's process group before the interpreter exits, as LLaMA-Factory's run does.

    Left to the interpreter's exit, the communication library's threads can still be running when C++ tears them
    down ("terminate called without an active exception", SIGABRT): seen once in a ZeRO-3 run of two ranks on
    CPU, after the run had finished and saved everything, and torchrun then reports the whole run failed.
    """
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception as exc:  # the run's results are saved; a failed tear-down is a warning, not a failed run
        logger.warning("%s", _("could not end the process group cleanly: {error}").format(error=exc))


def _end_rank(code: int) -> NoReturn:
    """End a rank of a finished run of several processes without the interpreter's C++ teardown.

    The run's files are written and closed and the process group is ended. What a normal exit does next is kept, in
    its order: wait for the threads that are not daemons, run the exit functions (logging's flush, a library's own,
    such as an experiment tracker's upload), flush the output. What is skipped is the destruction of every remaining
    object and of the libraries' C++ state at process exit, where a communication library's thread could still be
    alive and abort the process (SIGABRT, "terminate called without an active exception"): seen again in a ZeRO-3 run
    of two ranks on CPU after it had saved everything, with the process group ended, and torchrun then reported the
    whole run as failed (and the other node waited 300 s at its exit barrier)."""
    import atexit
    import os
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # the interpreter's own first step at exit
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
