"""Notebook 20, the settings and their cost: schedule, ZeRO stages, the measured run, time on a card, your own data."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from kit.config import Config
from kit.fmt import GiB, html_table, size
from kit.i18n import N_, _
from kit.tutorial.display import card_name, figure_fonts, html_escape, plot_label, png_html
from kit.tutorial.lessons.common import QUICKSTART_MODEL, lesson_model_dir, matmul_parameters
from kit.tutorial.lessons.lora_data import DataLesson


# ---------------------------------------------------------------- the settings and their cost

@dataclass
class ScheduleLesson:
    per_device: int
    accumulation: int
    processes: int
    examples: int  # kept by the encoder
    train_examples: int
    epochs: float
    max_steps: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    learning_rate: float
    scheduler: str
    lrs: list[float]  # the learning rate optimizer step 1 .. total_steps uses (index 0: step 1)

    @property
    def effective_batch(self) -> int:
        return self.per_device * self.accumulation * self.processes

    def lr_at(self, step: int) -> float:
        """The learning rate optimizer step ``step`` (from 1) uses: what the trainer logs at that step."""
        return self.lrs[min(max(step, 1), len(self.lrs)) - 1]

    def values(self) -> dict[str, Any]:
        return {"effective_batch": self.effective_batch, "train_examples": self.train_examples,
                "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "peak_lr": max(self.lrs) if self.lrs else 0.0}

    def figure(self, log: Sequence[Mapping[str, Any]] = ()) -> Any:
        with figure_fonts():
            return self._figure(log)

    def _figure(self, log: Sequence[Mapping[str, Any]]) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3))
        ax = fig.subplots()
        ax.plot(range(1, len(self.lrs) + 1), self.lrs, label=plot_label(N_("{scheduler} with {warmup} warm-up steps (transformers)")).format(
            scheduler=self.scheduler, warmup=self.warmup_steps))
        ax.axvspan(0, self.warmup_steps, color="#f6c177", alpha=0.3)
        logged = [(r["current_steps"], r["lr"]) for r in log if "lr" in r]
        if logged:
            ax.plot(*zip(*logged), "o", markersize=3, color="#d62728", label=plot_label(N_("logged by the training run")))
        ax.set_xlabel(plot_label(N_("optimizer step")))
        ax.set_ylabel(plot_label(N_("learning rate")))
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def against(self, log: Sequence[Mapping[str, Any]]) -> "LrCheck":
        """The learning rates a run logged (trainer_log.jsonl), on this schedule."""
        logged = [(int(r["current_steps"]), float(r["lr"])) for r in log if "lr" in r and "current_steps" in r]
        worst = max((abs(lr - self.lr_at(step)) for step, lr in logged), default=None)
        return LrCheck(self, logged, worst)

    def _rows(self) -> list[tuple[str, str]]:
        epochs = (_("max_steps {n}").format(n=self.max_steps) if self.max_steps > 0 else
                  _("{epochs:g} epochs x {per} steps per epoch").format(epochs=self.epochs, per=self.steps_per_epoch))
        return [
            (_("effective batch"), _("{per} per device x {acc} accumulation x {proc} process(es) = {eff} examples per optimizer step").format(
                per=self.per_device, acc=self.accumulation, proc=self.processes, eff=self.effective_batch)),
            (_("examples trained on"), _("{train} of {n} (the rest is val_size)").format(train=self.train_examples, n=self.examples)),
            (_("steps per epoch"), _("ceil(ceil({train} / {proc} / {per}) / {acc}) = {steps}").format(
                train=self.train_examples, proc=self.processes, per=self.per_device, acc=self.accumulation, steps=self.steps_per_epoch)),
            (_("optimizer steps"), f"{epochs} = {self.total_steps}"),
            (_("learning rate"), _("{scheduler}: up from 0 over {warmup} steps to {lr:g}, then down to 0").format(
                scheduler=self.scheduler, warmup=self.warmup_steps, lr=self.learning_rate))]

    def _repr_html_(self) -> str:
        return (html_table([_("setting"), ("", "text-align:left")], [[html_escape(k), (html_escape(v), "text-align:left")] for k, v in self._rows()])
                + png_html(self.figure()))

    def __repr__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self._rows())


@dataclass
class LrCheck:
    schedule: ScheduleLesson
    logged: list[tuple[int, float]]  # (step, learning rate) as the run logged them
    largest_difference: float | None  # against the schedule computed before training

    def _text(self) -> str:
        if self.largest_difference is None:
            return _("the run logged no learning rate (raise the steps or lower logging_steps)")
        return _("{n} logged learning rates; the largest difference from the schedule computed before training: {d:.1e}").format(
            n=len(self.logged), d=self.largest_difference)

    def _repr_html_(self) -> str:
        return f"<p>{html_escape(self._text())}</p>" + png_html(self.schedule.figure([{"current_steps": s, "lr": lr} for s, lr in self.logged]))

    def __repr__(self) -> str:
        return self._text()


def processes(cfg: Config) -> int:
    """Processes kit train starts for this config here (torchrun's --nproc_per_node, 1 in process)."""
    from kit.tutorial.helpers import launch_preview

    preview = launch_preview(cfg)
    return 1 if preview.reason is None else int(preview.flags[0][1])


def schedule_lesson(cfg: Config, examples: int, nproc: int | None = None) -> ScheduleLesson:
    """Batch, steps and the learning rate of every step, as transformers' Trainer will compute them for this run."""
    import torch
    from transformers import get_scheduler

    from kit.data import split_indices

    t = cfg.train
    nproc = nproc or processes(cfg)
    train_n = len(split_indices(examples, cfg.data.val_size, t.seed)[0]) if cfg.data.val_size > 0 else examples
    batches = math.ceil(math.ceil(train_n / nproc) / t.per_device_train_batch_size)  # each process's share, in batches
    per_epoch = max(math.ceil(batches / t.gradient_accumulation_steps), 1)  # Trainer: a partial accumulation still steps
    total = t.max_steps if t.max_steps > 0 else math.ceil(t.num_train_epochs * per_epoch)
    warmup = t.warmup_steps if t.warmup_steps >= 1 else math.ceil(total * t.warmup_ratio)  # TrainingArguments.get_warmup_steps
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=t.learning_rate)
    scheduler = get_scheduler(t.lr_scheduler_type, optimizer, num_warmup_steps=warmup, num_training_steps=total)
    lrs = []
    for _step in range(total):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return ScheduleLesson(t.per_device_train_batch_size, t.gradient_accumulation_steps, nproc, examples, train_n,
                          t.num_train_epochs, t.max_steps, per_epoch, total, warmup, t.learning_rate, t.lr_scheduler_type, lrs)


@dataclass
class ZeroTable:
    model: str
    card: str
    card_bytes: int
    estimates: list[Any]  # kit.estimate.Estimate, per (devices, stage)


@dataclass
class ZeroLesson:
    tables: list[ZeroTable]  # the chosen model on the chosen card; with the tiny model, the quick start's too

    def values(self) -> dict[str, Any]:
        first = self.tables[0]
        return {f"zero{e.zero_stage}_x{e.num_devices}": e.per_device_bytes for e in first.estimates}

    @staticmethod
    def _rows(table: ZeroTable) -> list[list[str]]:
        rows = []
        for e in table.estimates:
            by = {it.name: it.bytes for it in e.items}
            lora = by.get("LoRA weights", 0) + by.get("LoRA gradients", 0) + by.get("optimizer state", 0)
            rows.append([f"ZeRO-{e.zero_stage}", str(e.num_devices), size(by.get("base weights", 0)), size(lora),
                         size(by.get("activations", 0)), size(by.get("framework overhead", 0)), f"<b>{size(e.per_device_bytes)}</b>",
                         html_escape(_verdict(e.verdict))])
        return rows

    def _repr_html_(self) -> str:
        out = []
        for table in self.tables:
            head = [_("DeepSpeed"), _("cards"), _("base weights"), _("LoRA weights, gradients, optimizer"), _("activations"),
                    _("overhead"), _("per card"), _("on {card} ({memory})").format(card=html_escape(card_name(table.card)), memory=size(table.card_bytes))]
            out.append(f"<p><b>{html_escape(table.model)}</b></p>" + html_table(head, self._rows(table)))
        return "".join(out)

    def __repr__(self) -> str:
        return "\n".join(_("{model} ZeRO-{stage} x {cards}: {size} per card ({verdict})").format(
            model=t.model, stage=e.zero_stage, cards=e.num_devices, size=size(e.per_device_bytes), verdict=_verdict(e.verdict))
            for t in self.tables for e in t.estimates)


def _verdict(code: str) -> str:
    """An estimate's verdict (an English code: fits, tight, ...) in words of the person's language."""
    from kit.estimate import VERDICT_WORD

    return _(VERDICT_WORD[code]) if code in VERDICT_WORD else code


def _zero_rows(model: Any, cfg: Config, device: str, memory: int, stages: Sequence[int], devices: Sequence[int],
               dtype: str | None = None) -> list[Any]:
    from kit.estimate import estimate

    t = cfg.train
    dtype = dtype or ("bf16" if t.bf16 else "fp16" if t.fp16 else "fp32")
    return [estimate(model, lora_rank=cfg.finetune.lora_rank, lora_target=cfg.finetune.lora_target, dtype=dtype,
                     cutoff_len=cfg.data.cutoff_len, batch_size=t.per_device_train_batch_size,
                     gradient_accumulation_steps=t.gradient_accumulation_steps, zero_stage=stage, num_devices=n,
                     gradient_checkpointing=t.disable_gradient_checkpointing is not True, device=device,
                     device_memory_gib=memory / GiB, trust_remote_code=cfg.model.trust_remote_code, suggest=False)
            for n in devices for stage in stages]


def zero_lesson(cfg: Config, card: str | None = None, stages: Sequence[int] = (0, 2, 3), devices: Sequence[int] = (1, 8)) -> ZeroLesson:
    """kit estimate for this run under each ZeRO stage, on one card and on several (what sharding saves).

    With the embedded tiny model the quick start's own model follows, Qwen1.5-7B in fp16 on a 910B, where
    the differences are large enough to read.
    """
    from kit.estimate.devices import lookup_device
    from kit.tutorial.helpers import card_memory, is_tiny

    name, memory, kind = card_memory(card, cfg.model.device)
    tables = [ZeroTable(str(cfg.model.model_name_or_path), name, memory,
                        _zero_rows(lesson_model_dir(cfg), cfg, "cpu" if kind == "cpu" else name, memory, stages, devices))]
    if is_tiny(cfg.model.model_name_or_path):
        npu_name, npu_memory, _kind = lookup_device("910B")
        tables.append(ZeroTable("qwen/Qwen1.5-7B (" + _("the quick start, fp16") + ")", npu_name, npu_memory,
                                _zero_rows(QUICKSTART_MODEL, cfg, "910B", npu_memory, stages, devices, dtype="fp16")))
    return ZeroLesson(tables)


# ---------------------------------------------------------------- after training: measured next to predicted

def flops_per_token(matmul_params: int, checkpointing: bool) -> int:
    """Training FLOPs per token under LoRA: forward 2N, backward 2N (gradients of the activations only: the
    frozen weights get none), and 2N more when gradient checkpointing runs the forward again.

    LoRA's own matrices (well under 1% of N) and attention's score products (about 4 x layers x sequence
    x hidden per token, under 1% at a few hundred tokens) are left out.
    """
    return (6 if checkpointing else 4) * matmul_params


@dataclass
class RunCost:
    seconds: float  # the training loop (train_runtime)
    wall_seconds: float  # the whole command: start-up, data, loading, saving
    steps: int
    tokens: int
    peak_mib: float | None  # train_peak_memory_mib
    estimated_bytes: int  # kit estimate's per-device total
    device_kind: str
    checkpointing: bool | None
    matmul_params: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def achieved_flops(self) -> float:
        return flops_per_token(self.matmul_params, bool(self.checkpointing)) * self.tokens_per_second

    def values(self) -> dict[str, Any]:
        return {"train_runtime": self.seconds, "tokens": self.tokens, "tokens_per_second": round(self.tokens_per_second, 1),
                "peak_memory_mib": self.peak_mib, "estimated_mib": round(self.estimated_bytes / 2**20, 1),
                "achieved_gflops": round(self.achieved_flops / 1e9, 2), "gradient_checkpointing": self.checkpointing}

    def _rows(self) -> list[tuple[str, str, str]]:
        memory_note = (_("the process's peak resident memory: Python, torch and the libraries (a few hundred MiB) count here, "
                         "the estimate leaves them out on a CPU") if self.device_kind == "cpu" else
                       _("the card's allocator peak (torch max_memory_allocated)"))
        ckpt = {True: _("on"), False: _("off"), None: _("not logged")}[self.checkpointing]
        return [
            (_("training loop"), f"{self.seconds:.1f} s", _("{steps} optimizer steps; the whole command took {wall:.0f} s with start-up, "
                                                           "loading and saving").format(steps=self.steps, wall=self.wall_seconds)),
            (_("tokens"), f"{self.tokens:,}", _("the trained split's tokens x the epochs run")),
            (_("tokens per second"), f"{self.tokens_per_second:,.0f}", _("gradient checkpointing {state}").format(state=ckpt)),
            (_("compute achieved"), f"{self.achieved_flops / 1e9:,.1f} GFLOP/s",
             _("{fpt:,} FLOPs per token x tokens per second").format(fpt=flops_per_token(self.matmul_params, bool(self.checkpointing)))),
            # A CPU's memory is system memory (内存), a card's is device memory (显存): the labels differ in Chinese.
            (_("peak system memory, measured") if self.device_kind == "cpu" else _("peak memory, measured"),
             f"{self.peak_mib:,.0f} MiB" if self.peak_mib is not None else "?", memory_note),
            (_("peak system memory, kit estimate") if self.device_kind == "cpu" else _("peak memory, kit estimate"),
             size(self.estimated_bytes), _("predicted before loading (the table above)"))]

    def _repr_html_(self) -> str:
        return html_table([_("what"), (_("value"), "text-align:right"), ("", "text-align:left")],
                          [[html_escape(a), (html_escape(b), "text-align:right"), (html_escape(c), "text-align:left")] for a, b, c in self._rows()])

    def __repr__(self) -> str:
        return "\n".join(f"{a}: {b} ({c})" for a, b, c in self._rows())


def run_cost(report: Any, fit: Any, data: DataLesson, schedule: ScheduleLesson, cfg: Config) -> RunCost:
    """What training measured (TrainReport), next to what kit estimate predicted (``fit``)."""
    from kit.data import split_indices

    rows = data.encoded.data.all
    train_idx = split_indices(len(rows), cfg.data.val_size, cfg.train.seed)[0] if cfg.data.val_size > 0 else range(len(rows))
    per_epoch = sum(len(rows[i]["input_ids"]) for i in train_idx)
    steps = report.log[-1]["current_steps"] if report.log else schedule.total_steps
    tokens = round(per_epoch * steps / schedule.steps_per_epoch)
    m = report.metrics
    return RunCost(float(m.get("train_runtime", report.seconds)), report.seconds, steps, tokens, m.get("train_peak_memory_mib"),
                   fit.per_device_bytes, fit.device_kind, report.checkpointing, matmul_parameters(lesson_model_dir(cfg), cfg.model.trust_remote_code))


# ---------------------------------------------------------------- realistic times on a card

# The quick start's data as LLaMA-Factory 0.9.5 ships it: identity.json (91 examples, 6,423 characters) and
# alpaca_en_demo.json (999 examples, 786,622 characters); max_samples 1000, val_size 0.1, 3 epochs.
QUICKSTART_DATA = {"examples": 91 + 999, "characters": 6_423 + 786_622, "val_size": 0.1, "epochs": 3}
CHARS_PER_TOKEN = 4.0  # assumed: English text with Qwen's byte-level BPE
TEMPLATE_TOKENS = 20  # assumed: the qwen template's system prompt and turn markers around each example

# Published peaks, dense FP16 matrix throughput. Huawei published 256 TFLOPS FP16 for the first Ascend 910
# (Hot Chips 31, 2019); for the 910B it publishes no per-model datasheet figure, and the figure below is the
# one commonly reported by the trade press (model to model they report about 280-376 TFLOPS). Both are
# assumptions here, stated wherever they are used; pass your card's own figure when you have it.
PEAK_TFLOPS = {"Ascend 910B": (320.0, N_("commonly reported FP16 peak for the 910B (not a Huawei datasheet figure)")),
               "Ascend 910": (256.0, N_("Huawei's published FP16 peak for the Ascend 910 (Hot Chips 31, 2019)"))}
UTILISATION = 0.2  # assumed: batch 1 and sequences of a few hundred tokens keep a card's matrix units far from full


@dataclass
class CardTime:
    card: str
    peak_tflops: float
    peak_source: str
    utilisation: float
    runs: list[dict[str, Any]]  # key (English, what values() publishes), label, model, matmul_params, checkpointing, tokens, tokens_how

    def seconds(self, run: Mapping[str, Any], utilisation: float | None = None) -> float:
        flops = flops_per_token(run["matmul_params"], run["checkpointing"]) * run["tokens"]
        return flops / (self.peak_tflops * 1e12 * (utilisation or self.utilisation))

    def values(self) -> dict[str, Any]:
        return {r.get("key", r["label"]): self.seconds(r) for r in self.runs}

    def _rows(self) -> list[list[str]]:
        out = []
        for r in self.runs:
            fpt = flops_per_token(r["matmul_params"], r["checkpointing"])
            times = " / ".join(_minutes(self.seconds(r, u)) for u in (self.utilisation / 2, self.utilisation, self.utilisation * 2))
            measured = (_("{seconds} on this {device}").format(seconds=_minutes(r["measured_seconds"]), device=r["measured_on"])
                        if r.get("measured_seconds") else "")
            out.append([html_escape(r["label"]), html_escape(r["model"]), f"{r['matmul_params'] / 1e9:.3g} B", f"{fpt / 1e9:.3g} G",
                        f"{r['tokens']:,} ({html_escape(r['tokens_how'])})", f"{fpt * r['tokens']:.2e}", f"<b>{times}</b>", html_escape(measured)])
        return out

    def _repr_html_(self) -> str:
        u = self.utilisation
        head = [_("run"), _("model"), _("N (matmul weights)"), _("FLOPs per token"), _("tokens"), _("FLOPs"),
                _("compute time at {a:.0%} / {b:.0%} / {c:.0%} utilisation").format(a=u / 2, b=u, c=u * 2), _("measured")]
        source = _(self.peak_source) if self.peak_source else ""
        peak = _("{card}: peak {peak:g} TFLOPS ({source}), assumed utilisation {u:.0%}").format(
            card=card_name(self.card), peak=self.peak_tflops, source=source, u=u)
        return (f"<p>{html_escape(peak)}</p>"
                + html_table(head, self._rows()))

    def __repr__(self) -> str:
        return "\n".join(_("{label}: {time} on {card} at {u:.0%} of {peak:g} TFLOPS").format(
            label=r["label"], time=_minutes(self.seconds(r)), card=card_name(self.card), u=self.utilisation, peak=self.peak_tflops) for r in self.runs)


def _minutes(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2g} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def quickstart_tokens() -> tuple[int, str]:
    """Tokens the quick start trains on (LLaMA-Factory's data, 3 epochs), from its characters, with the assumption stated."""
    q = QUICKSTART_DATA
    per_example = q["characters"] / q["examples"] / CHARS_PER_TOKEN + TEMPLATE_TOKENS
    trained = q["examples"] - math.ceil(q["val_size"] * q["examples"])
    tokens = round(trained * per_example * q["epochs"])
    how = _("{trained} examples x {per:.0f} tokens x {epochs} epochs; tokens assumed from characters / {cpt:g} + {tpl} of template").format(
        trained=trained, per=per_example, epochs=q["epochs"], cpt=CHARS_PER_TOKEN, tpl=TEMPLATE_TOKENS)
    return tokens, how


def time_on_card(this_run: RunCost | None = None, model: str = "", card: str = "Ascend 910B", peak_tflops: float | None = None,
                 utilisation: float = UTILISATION) -> CardTime:
    """Compute time of the quick start (and of this notebook's run) on ``card``: FLOPs / (peak x utilisation).

    The quick start trains Qwen1.5-7B with gradient checkpointing, LLaMA-Factory's default. Loading the
    model, evaluation and saving come on top.
    """
    peak, source = (peak_tflops, N_("given")) if peak_tflops else PEAK_TFLOPS.get(card, (None, ""))
    if peak is None:
        from kit.errors import KitError

        raise KitError(_("card {card!r}: no published peak known; give peak_tflops (one of {known})").format(
            card=card, known=", ".join(PEAK_TFLOPS)))
    tokens, how = quickstart_tokens()
    runs = [{"key": "the quick start", "label": _("the quick start"), "model": "qwen/Qwen1.5-7B", "matmul_params": matmul_parameters(QUICKSTART_MODEL),
             "checkpointing": True, "tokens": tokens, "tokens_how": how}]
    if this_run is not None:
        runs.append({"key": "this notebook's run", "label": _("this notebook's run"), "model": model, "matmul_params": this_run.matmul_params,
                     "checkpointing": bool(this_run.checkpointing), "tokens": this_run.tokens, "tokens_how": _("counted"),
                     "measured_seconds": this_run.seconds, "measured_on": this_run.device_kind})
    return CardTime(card, peak, source, utilisation, runs)


# ---------------------------------------------------------------- your own data

OWN_ALPACA = [
    {"instruction": "What does the kit's quick start train?", "input": "", "output": "A LoRA adapter for a Qwen model, with DeepSpeed under torchrun."},
    {"instruction": "Translate to English.", "input": "适配器", "output": "adapter"},
    {"instruction": "Which file lists the datasets?", "input": "", "output": "dataset_info.json, in the dataset_dir folder."},
    {"instruction": "快速开始训练的是什么？", "input": "", "output": "一个 Qwen 模型的 LoRA 适配器，在 torchrun 下用 DeepSpeed 训练。"},
]
OWN_SHAREGPT = [
    {"conversations": [{"from": "human", "value": "Which key picks the datasets?"},
                       {"from": "gpt", "value": "dataset: names from dataset_info.json, separated by commas."}]},
    {"conversations": [{"from": "human", "value": "And the folder?"}, {"from": "gpt", "value": "dataset_dir."},
                       {"from": "human", "value": "What if I leave it out?"},
                       {"from": "gpt", "value": "Then ./data is read when it has a dataset_info.json, else the kit's demo data."}]},
    {"conversations": [{"from": "system", "value": "Answer in one sentence."},
                       {"from": "human", "value": "What is lora_rank?"},
                       {"from": "gpt", "value": "The inner size r of the two small matrices LoRA trains."}]},
]
OWN_REGISTRY = {"my_alpaca": {"file_name": "my_alpaca.json"},
                "my_sharegpt": {"file_name": "my_sharegpt.json", "formatting": "sharegpt",
                                "columns": {"messages": "conversations"},
                                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                                         "assistant_tag": "gpt", "system_tag": "system"}}}


@dataclass
class OwnDataset:
    folder: Path
    files: dict[str, str]  # file name -> its text

    @property
    def names(self) -> str:
        return ",".join(OWN_REGISTRY)

    def _repr_html_(self) -> str:
        return "".join(f"<p><code>{html_escape(self.folder / name)}</code></p><pre style='white-space:pre-wrap'>{html_escape(text)}</pre>"
                       for name, text in self.files.items())

    def __repr__(self) -> str:
        return "\n\n".join(f"{self.folder / name}:\n{text}" for name, text in self.files.items())


def own_dataset(folder: str | Path) -> OwnDataset:
    """Write a small alpaca dataset, a small sharegpt one, and the dataset_info.json that registers both.

    ``folder`` is a person's (notebook 20's ``own_data_dir``): the three files are written, or replaced,
    only where the kit wrote them before and they are as it left them (its kit_files.json says); a
    dataset_info.json of theirs (own_data_dir pointed at LLaMA-Factory's data/) or an edited my_alpaca.json
    is refused, naming it, before any file is written.
    """
    from kit.tutorial.values import KitFolder

    files = {"my_alpaca.json": OWN_ALPACA, "my_sharegpt.json": OWN_SHAREGPT, "dataset_info.json": OWN_REGISTRY}
    written = {name: json.dumps(content, ensure_ascii=False, indent=2) for name, content in files.items()}
    # Another kernel writing the same folder holds it for a moment: wait for it rather than refuse.
    with KitFolder.open(folder, "own_data_dir", wait=30) as place:
        place.refuse_foreign(written)
        place.write_files({name: text + "\n" for name, text in written.items()})
    return OwnDataset(place.path.resolve(), written)
