"""What notebooks 20 and 30 teach, as numbers and pictures computed for the chosen model and data.

    lora_lesson(cfg)                  W + BA for the adapted layers, the trainable count (peft's, exact)
    data_lesson(cfg)                  raw rows, counts, token lengths against cutoff_len, truncation
    schedule_lesson(cfg, examples)    effective batch, optimizer steps, the learning rate of every step
    zero_lesson(cfg, card)            the memory estimate for ZeRO-0/2/3, on one card and on eight
    run_cost(...)                     after training: time, peak memory, tokens/s next to the estimate
    time_on_card(...)                 realistic compute time on a card from FLOPs, with every assumption stated
    own_dataset(folder)               a small alpaca and sharegpt dataset and their dataset_info.json
    identity_check(engine, name)      the share of held-out identity questions answered with the new name
    sampling_lesson / wrong_template  greedy vs sampling; a reply with the wrong template, and the warning

Each returns an object that renders as HTML (a table, a picture) in JupyterLab and in the docs, as text
elsewhere, and carries the numbers a notebook publishes and its tests read. The numbers come from the
code paths training itself uses (peft attached to the model built on the meta device, the SFT encoder,
transformers' scheduler functions, kit.estimate); where a table adds rows by a rule (LoRA's r x (d_in +
d_out) for other ranks), tests/test_tutorial.py checks the rule against peft.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from kit.config import Config
from kit.fmt import GiB, html_table, size
from kit.i18n import N_, _

# ---------------------------------------------------------------- shared

CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei",
             "Microsoft YaHei", "PingFang SC", "Heiti SC")


@functools.lru_cache(maxsize=1)
def _cjk_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _label(message: str) -> str:
    """``_(message)`` for text drawn in a figure; where no installed font has Chinese glyphs the English is
    drawn instead of a translation that would come out as empty boxes."""
    text = _(message)
    return text if text.isascii() or _cjk_font() else message


def _fonts() -> Any:
    """While drawing: a CJK font first in line when one is installed (matplotlib's default has no Chinese)."""
    import contextlib

    import matplotlib

    font = _cjk_font()
    if font is None:
        return contextlib.nullcontext()
    return matplotlib.rc_context({"font.sans-serif": [font, *matplotlib.rcParams["font.sans-serif"]]})


def _img(fig: Any, dpi: int = 100) -> str:
    """A matplotlib Figure as an inline PNG (drawn by the Figure itself: no pyplot, the kernel's backend stays)."""
    buf = io.BytesIO()
    with _fonts():
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'/>"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _model_dir(cfg: Config) -> Path:
    from kit.estimate import _model_dir as resolve  # a local folder without a hub call, else config.json only

    return resolve(cfg.model.model_name_or_path, cfg.model.cache_dir)


def _meta(config: str | Path | Mapping[str, Any], trust_remote_code: bool = False) -> Any:
    """The model on the meta device (shapes, no memory) from its folder or a config.json dict."""
    from kit import model as model_mod

    if isinstance(config, Mapping):
        with tempfile.TemporaryDirectory(prefix="kit-lessons-") as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(dict(config)), encoding="utf-8")
            return model_mod.meta_model(Path(tmp), trust_remote_code)
    return model_mod.meta_model(Path(config), trust_remote_code)


def linear_shapes(model: Any) -> dict[str, tuple[int, int, int]]:
    """Per linear-layer short name: (out_features, in_features, how many layers have one)."""
    import torch

    shapes: dict[str, tuple[int, int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            short = name.rsplit(".", 1)[-1]
            out_f, in_f, n = shapes.get(short, (module.out_features, module.in_features, 0))
            shapes[short] = (out_f, in_f, n + 1)
    return shapes


def matmul_parameters(config: str | Path | Mapping[str, Any], trust_remote_code: bool = False) -> int:
    """Weights that take part in a matrix multiply per token: every linear layer's weight, the output head included.

    The input embedding is a table lookup, not a multiply; a tied output head multiplies by the same
    table, so it counts once as the head.
    """
    return sum(o * i * n for o, i, n in linear_shapes(_meta(config, trust_remote_code)).values())


# ---------------------------------------------------------------- LoRA in a picture and a number

LORA_RANKS = (2, 8, 32)


@dataclass
class LoraLesson:
    model: str
    rank: int
    alpha: int
    alpha_given: bool  # lora_alpha in the YAML; else the kit's default, 2 x lora_rank
    targets: tuple[str, ...]
    shapes: dict[str, tuple[int, int, int]]  # target -> (d_out, d_in, layers)
    base: int  # the model's own parameters, frozen
    trainable: int  # what peft adds: exact, peft attached to the meta model
    table: list[tuple[int, str, int]] = field(default_factory=list)  # (rank, lora_target, trainable)

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def per_matrix(self, target: str) -> int:
        d_out, d_in, _n = self.shapes[target]
        return self.rank * (d_in + d_out)

    def formula(self) -> str:
        terms = " + ".join(f"{self.shapes[t][2]} x {t} {self.rank} x ({self.shapes[t][1]} + {self.shapes[t][0]})" for t in self.targets)
        return f"{terms} = {sum(self.shapes[t][2] * self.per_matrix(t) for t in self.targets):,}"

    def values(self) -> dict[str, Any]:
        return {"trainable": self.trainable, "base": self.base, "rank": self.rank, "alpha": self.alpha,
                "targets": list(self.targets), "by_rank_and_target": [list(r) for r in self.table]}

    def figure(self) -> Any:
        with _fonts():
            return self._figure()

    def _figure(self) -> Any:
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        shown = self.targets[:3]
        fig = Figure(figsize=(7.5, 2.3 * len(shown)))
        axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
        for ax, target in zip(axes, shown):
            d_out, d_in, _n = self.shapes[target]
            unit = 2.2 / max(d_out, d_in)
            w, h = d_in * unit, d_out * unit
            thin = max(self.rank * unit, 0.12)  # r is a sliver at scale: drawn wider, labelled with its size
            boxes = [(0.0, w, h, "#cfd8e3", _label(N_("W (frozen)")), f"{d_out} x {d_in}"),
                     (w + 0.5, thin, h, "#f6c177", "B", f"{d_out} x {self.rank}"),
                     (w + 0.5 + thin + 0.5, w, thin, "#9ccfd8", "A", f"{self.rank} x {d_in}")]
            for x, bw, bh, colour, label, dims in boxes:
                ax.add_patch(Rectangle((x, h - bh), bw, bh, facecolor=colour, edgecolor="#333"))
                ax.text(x + bw / 2, h + 0.08, f"{label}\n{dims}", ha="center", va="bottom", fontsize=8)
            ax.text(w + 0.25, h / 2, "+", ha="center", va="center", fontsize=14)
            ax.text(w + 0.5 + thin + 0.25, h - thin / 2, "x", ha="center", va="center", fontsize=11)
            ax.text(2 * w + 1.6 + thin, h / 2, _label(N_("{target}: {full:,} frozen\n+ {lora:,} trained ({share:.2%})")).format(
                target=target, full=d_out * d_in, lora=self.per_matrix(target), share=self.per_matrix(target) / (d_out * d_in)),
                va="center", fontsize=8)
            ax.set_xlim(-0.1, 2 * w + 4.2 + thin)
            ax.set_ylim(-0.1, h + 0.7)
            ax.set_aspect("equal")
            ax.axis("off")
        fig.suptitle(_label(N_("h = W x + (alpha / r) B A x, alpha / r = {alpha} / {rank} = {scale:g}")).format(
            alpha=self.alpha, rank=self.rank, scale=self.scaling), fontsize=10)
        return fig

    def _rows(self) -> list[tuple[str, str]]:
        alpha_from = _("lora_alpha in the YAML") if self.alpha_given else _("not in the YAML: the kit's default, 2 x lora_rank")
        return [(_("model"), self.model), (_("adapted layers (lora_target)"), ", ".join(self.targets)),
                (_("rank r (lora_rank)"), str(self.rank)), (_("lora_alpha"), f"{self.alpha} ({alpha_from})"),
                (_("trainable parameters"), f"{self.trainable:,} = {self.formula()}"),
                (_("the whole model"), _("{base:,} frozen; the adapter is {share:.3%} of it").format(
                    base=self.base, share=self.trainable / self.base))]

    def _repr_html_(self) -> str:
        table = html_table([_("what"), ("", "text-align:left")], [[_esc(k), (_esc(v), "text-align:left")] for k, v in self._rows()])
        compare = html_table([_("lora_rank"), _("lora_target"), (_("trainable parameters"), "text-align:right"),
                              (_("of the model"), "text-align:right")],
                             [[str(r), f"<code>{_esc(t)}</code>", (f"{n:,}", "text-align:right"),
                               (f"{n / self.base:.3%}", "text-align:right")] for r, t, n in self.table])
        return table + _img(self.figure()) + f"<p>{_esc(_('Trainable parameters for other settings (peft, exact):'))}</p>" + compare

    def __repr__(self) -> str:
        lines = [f"{k}: {v}" for k, v in self._rows()] + [""]
        lines += [f"  lora_rank {r:>3}  {t:<32} {n:>14,}  ({n / self.base:.3%})" for r, t, n in self.table]
        return "\n".join(lines)


def lora_lesson(cfg: Config, ranks: Sequence[int] = LORA_RANKS) -> LoraLesson:
    """LoRA for this config's model: the shapes it adapts, its exact trainable count, and other ranks/targets."""
    from kit import model as model_mod
    from kit.estimate import count_parameters, parse_targets

    model_dir = _model_dir(cfg)
    trust = cfg.model.trust_remote_code
    f = cfg.finetune
    counts = count_parameters(model_dir, f.lora_rank, f.lora_target, trust)  # peft attached to the meta model
    meta = _meta(model_dir, trust)
    shapes = linear_shapes(meta)
    # Other settings by LoRA's own rule, r x (d_in + d_out) per adapted matrix: for the chosen setting it
    # gives peft's count exactly (tests/test_tutorial.py), without building the model once per row.
    available = [n for n in shapes if n in model_mod.linear_module_names(meta)]  # in the model's order
    table = []
    for target in dict.fromkeys([f.lora_target, "all"]):
        names = parse_targets(target, available)
        for rank in sorted({*ranks, f.lora_rank}):
            table.append((rank, target, sum(rank * (shapes[n][0] + shapes[n][1]) * shapes[n][2] for n in names)))
    return LoraLesson(model=str(cfg.model.model_name_or_path), rank=f.lora_rank, alpha=cfg.lora_alpha,
                      alpha_given=f.lora_alpha is not None, targets=counts.targets,
                      shapes={t: shapes[t] for t in counts.targets}, base=counts.base, trainable=counts.trainable, table=table)


# ---------------------------------------------------------------- the data before training

@dataclass
class DataLesson:
    folder: Path
    cutoff_len: int
    raw: dict[str, list[dict[str, Any]]]  # the first rows of each file, as written
    formatting: dict[str, str]
    counts: dict[str, dict[str, int]]  # per dataset, as the encoder counted: read, malformed, truncated, no_trained_tokens
    lengths: dict[str, list[int]]  # per dataset: tokens of each example before truncation
    encoded: Any = field(repr=False)  # kit.preview.Encoded: every kept example, as training encodes it
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def truncated(self) -> int:
        """Examples longer than cutoff_len, as build_sft counted them."""
        return int(self.stats.get("truncated", 0))

    @property
    def longer_than_cutoff(self) -> int:
        """The same, counted from the lengths drawn in the histogram."""
        return sum(1 for ls in self.lengths.values() for n in ls if n > self.cutoff_len)

    def example(self, index: int = 0) -> Any:
        """Example ``index`` with the trained part marked (kit.tutorial.ExamplePreview), from this encoding."""
        from kit.tutorial import preview_example

        return preview_example(None, index, encoded=self.encoded)

    def values(self) -> dict[str, Any]:
        return {"truncated": self.truncated, "longer_than_cutoff": self.longer_than_cutoff, "cutoff_len": self.cutoff_len,
                "per_dataset": self.counts, "examples": int(self.stats.get("examples", 0)),
                "tokens": int(self.stats.get("tokens", 0)), "max_len": int(self.stats.get("max_len", 0))}

    def figure(self) -> Any:
        with _fonts():
            return self._figure()

    def _figure(self) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3.2))
        ax = fig.subplots()
        longest = max((n for ls in self.lengths.values() for n in ls), default=1)
        right = max(longest, self.cutoff_len) if self.cutoff_len <= 2 * longest else longest
        bins = list(range(0, int(right * 1.05) + 2, max(1, int(right * 1.05) // 40)))
        ax.hist([ls for ls in self.lengths.values()], bins=bins, stacked=True, label=list(self.lengths))
        ax.set_xlabel(_label(N_("tokens per example, before truncation")))
        ax.set_ylabel(_label(N_("examples")))
        if self.cutoff_len <= right:
            ax.axvline(self.cutoff_len, color="#d62728", linestyle="--")
            ax.text(self.cutoff_len, ax.get_ylim()[1] * 0.95, f" cutoff_len {self.cutoff_len}", color="#d62728", va="top")
        else:  # far off to the right: say where it is instead of squeezing the bars
            ax.annotate(f"cutoff_len {self.cutoff_len} \u2192", xy=(1, 0.9), xycoords="axes fraction", ha="right", color="#d62728")
        ax.set_title(_label(N_("{truncated} of {n} examples are longer than cutoff_len")).format(
            truncated=self.longer_than_cutoff, n=sum(len(v) for v in self.lengths.values())))
        ax.legend()
        fig.tight_layout()
        return fig

    def _count_rows(self) -> list[list[str]]:
        rows = []
        for name, c in self.counts.items():
            ls = self.lengths.get(name) or [0]
            rows.append([f"<code>{_esc(name)}</code>", _esc(self.formatting.get(name, "")), str(c.get("read", 0)),
                         str(c.get("malformed", 0)), str(c.get("truncated", 0)), str(c.get("no_trained_tokens", 0)),
                         f"{min(ls)} / {sum(ls) / len(ls):.0f} / {max(ls)}"])
        return rows

    def _repr_html_(self) -> str:
        parts = [f"<p>{_esc(_('Datasets from {folder}').format(folder=self.folder))}</p>"]
        for name, rows in self.raw.items():
            parts.append(f"<p><b>{_esc(name)}</b> ({_esc(self.formatting.get(name, ''))}), "
                         f"{_esc(_('the first {n} rows as written in the file:').format(n=len(rows)))}</p>"
                         f"<pre style='white-space:pre-wrap'>{_esc(json.dumps(rows, ensure_ascii=False, indent=1))}</pre>")
        parts.append(html_table([_("dataset"), _("format"), _("read"), _("malformed"), _("truncated"), _("no trained token"),
                                 _("tokens min / mean / max")], self._count_rows()))
        return "".join(parts) + _img(self.figure())

    def __repr__(self) -> str:
        lines = [_("Datasets from {folder}").format(folder=self.folder)]
        for name, rows in self.raw.items():
            lines += [f"{name} ({self.formatting.get(name, '')}):"] + [f"  {json.dumps(r, ensure_ascii=False)}" for r in rows]
        lines += [f"{name}: {c}" for name, c in self.counts.items()]
        lines.append(_("{truncated} example(s) longer than cutoff_len {cutoff}").format(truncated=self.truncated, cutoff=self.cutoff_len))
        return "\n".join(lines)


def data_lesson(cfg: Config, rows: int = 2) -> DataLesson:
    """The config's datasets before training: raw rows, counts, every example's length, encoded as training encodes."""
    from kit import config as config_mod
    from kit import model as model_mod
    from kit.data import build_sft, encode_example, load_examples, read_registry, resolve_dataset_dir, with_thinking
    from kit.data.loader import _read_records, dataset_attr
    from kit.preview import Encoded

    config_mod.require(cfg, "preprocess")
    d = cfg.data
    stage = model_mod.tokenizer_stage(cfg)
    data = build_sft(cfg, stage.tokenizer, stage.template, split=False)
    folder = resolve_dataset_dir(d.dataset_dir, cfg.config_dir)
    registry = read_registry(folder)
    raw, formatting = {}, {}
    for name in cfg.dataset_names:
        attr = dataset_attr(name, registry, folder)
        raw[name] = _read_records(folder / attr.file_name, name)[:rows]
        formatting[name] = attr.formatting
    # Every example's length before truncation, from the encoder itself (build_sft keeps only the result).
    template = with_thinking(stage.template, d.enable_thinking)
    fills = {k: v for k, v in (("name", d.identity_name), ("author", d.identity_author)) if v is not None}
    examples, _report = load_examples(cfg.dataset_names, folder, d.max_samples, fills)
    lengths: dict[str, list[int]] = {name: [] for name in cfg.dataset_names}
    for ex in examples:
        if ex.problem is None and len(ex.prompt) % 2 == 1 and len(ex.response) == 1:
            enc = encode_example(template, stage.tokenizer, ex, d.cutoff_len, d.train_on_prompt, d.mask_history)
            lengths[ex.dataset].append(enc.full_length)
    stats = data.stats()
    return DataLesson(folder, d.cutoff_len, raw, formatting, {k: dict(v) for k, v in stats["per_dataset"].items()}, lengths,
                      Encoded(stage.tokenizer, data), stats)


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
        with _fonts():
            return self._figure(log)

    def _figure(self, log: Sequence[Mapping[str, Any]]) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3))
        ax = fig.subplots()
        ax.plot(range(1, len(self.lrs) + 1), self.lrs, label=_label(N_("{scheduler} with {warmup} warm-up steps (transformers)")).format(
            scheduler=self.scheduler, warmup=self.warmup_steps))
        ax.axvspan(0, self.warmup_steps, color="#f6c177", alpha=0.3)
        logged = [(r["current_steps"], r["lr"]) for r in log if "lr" in r]
        if logged:
            ax.plot(*zip(*logged), "o", markersize=3, color="#d62728", label=_label(N_("logged by the training run")))
        ax.set_xlabel(_label(N_("optimizer step")))
        ax.set_ylabel(_label(N_("learning rate")))
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
        return (html_table([_("setting"), ("", "text-align:left")], [[_esc(k), (_esc(v), "text-align:left")] for k, v in self._rows()])
                + _img(self.figure()))

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
        return f"<p>{_esc(self._text())}</p>" + _img(self.schedule.figure([{"current_steps": s, "lr": lr} for s, lr in self.logged]))

    def __repr__(self) -> str:
        return self._text()


def processes(cfg: Config) -> int:
    """Processes kit train starts for this config here (torchrun's --nproc_per_node, 1 in process)."""
    from kit.tutorial import launch_preview

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
                         _esc(e.verdict)])
        return rows

    def _repr_html_(self) -> str:
        out = []
        for table in self.tables:
            head = [_("DeepSpeed"), _("cards"), _("base weights"), _("LoRA weights, gradients, optimizer"), _("activations"),
                    _("overhead"), _("per card"), _("on {card} ({memory})").format(card=_esc(table.card), memory=size(table.card_bytes))]
            out.append(f"<p><b>{_esc(table.model)}</b></p>" + html_table(head, self._rows(table)))
        return "".join(out)

    def __repr__(self) -> str:
        return "\n".join(f"{t.model} ZeRO-{e.zero_stage} x {e.num_devices}: {size(e.per_device_bytes)} per card ({e.verdict})"
                         for t in self.tables for e in t.estimates)


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
    from kit.device_memory import lookup_device
    from kit.tutorial import card_memory, is_tiny

    name, memory, kind = card_memory(card, cfg.model.device)
    tables = [ZeroTable(str(cfg.model.model_name_or_path), name, memory,
                        _zero_rows(_model_dir(cfg), cfg, "cpu" if kind == "cpu" else name, memory, stages, devices))]
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
            (_("peak memory, measured"), f"{self.peak_mib:,.0f} MiB" if self.peak_mib is not None else "?", memory_note),
            (_("peak memory, kit estimate"), size(self.estimated_bytes), _("predicted before loading (the table above)"))]

    def _repr_html_(self) -> str:
        return html_table([_("what"), (_("value"), "text-align:right"), ("", "text-align:left")],
                          [[_esc(a), (_esc(b), "text-align:right"), (_esc(c), "text-align:left")] for a, b, c in self._rows()])

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
                   fit.per_device_bytes, fit.device_kind, report.checkpointing, matmul_parameters(_model_dir(cfg), cfg.model.trust_remote_code))


# ---------------------------------------------------------------- realistic times on a card

# The quick start's model, Qwen1.5-7B (its config.json, the fields that fix its shape), so the time on a
# 910B can be worked out on any machine, offline.
QUICKSTART_MODEL = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 4096, "intermediate_size": 11008,
                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 151936,
                    "tie_word_embeddings": False, "max_position_embeddings": 32768}
# The quick start's data as LLaMA-Factory 0.9.5 ships it: identity.json (91 examples, 6,423 characters) and
# alpaca_en_demo.json (999 examples, 786,622 characters); max_samples 1000, val_size 0.1, 3 epochs.
QUICKSTART_DATA = {"examples": 91 + 999, "characters": 6_423 + 786_622, "val_size": 0.1, "epochs": 3}
CHARS_PER_TOKEN = 4.0  # assumed: English text with Qwen's byte-level BPE
TEMPLATE_TOKENS = 20  # assumed: the qwen template's system prompt and turn markers around each example

# Published peaks, dense FP16 matrix throughput. Huawei published 256 TFLOPS FP16 for the first Ascend 910
# (Hot Chips 31, 2019); for the 910B it publishes no per-model datasheet figure, and the figure below is the
# one commonly reported by the trade press (model to model they report about 280-376 TFLOPS). Both are
# assumptions here, stated wherever they are used; pass your card's own figure when you have it.
PEAK_TFLOPS = {"Ascend 910B": (320.0, "commonly reported FP16 peak for the 910B (not a Huawei datasheet figure)"),
               "Ascend 910": (256.0, "Huawei's published FP16 peak for the Ascend 910 (Hot Chips 31, 2019)")}
UTILISATION = 0.2  # assumed: batch 1 and sequences of a few hundred tokens keep a card's matrix units far from full


@dataclass
class CardTime:
    card: str
    peak_tflops: float
    peak_source: str
    utilisation: float
    runs: list[dict[str, Any]]  # label, model, matmul_params, checkpointing, tokens, tokens_how

    def seconds(self, run: Mapping[str, Any], utilisation: float | None = None) -> float:
        flops = flops_per_token(run["matmul_params"], run["checkpointing"]) * run["tokens"]
        return flops / (self.peak_tflops * 1e12 * (utilisation or self.utilisation))

    def values(self) -> dict[str, Any]:
        return {r["label"]: self.seconds(r) for r in self.runs}

    def _rows(self) -> list[list[str]]:
        out = []
        for r in self.runs:
            fpt = flops_per_token(r["matmul_params"], r["checkpointing"])
            times = " / ".join(_minutes(self.seconds(r, u)) for u in (self.utilisation / 2, self.utilisation, self.utilisation * 2))
            measured = (_("{seconds} on this {device}").format(seconds=_minutes(r["measured_seconds"]), device=r["measured_on"])
                        if r.get("measured_seconds") else "")
            out.append([_esc(r["label"]), _esc(r["model"]), f"{r['matmul_params'] / 1e9:.3g} B", f"{fpt / 1e9:.3g} G",
                        f"{r['tokens']:,} ({_esc(r['tokens_how'])})", f"{fpt * r['tokens']:.2e}", f"<b>{times}</b>", _esc(measured)])
        return out

    def _repr_html_(self) -> str:
        u = self.utilisation
        head = [_("run"), _("model"), _("N (matmul weights)"), _("FLOPs per token"), _("tokens"), _("FLOPs"),
                _("compute time at {a:.0%} / {b:.0%} / {c:.0%} utilisation").format(a=u / 2, b=u, c=u * 2), _("measured")]
        return (f"<p>{_esc(_('{card}: peak {peak:g} TFLOPS ({source}), assumed utilisation {u:.0%}').format(card=self.card, peak=self.peak_tflops, source=self.peak_source, u=u))}</p>"
                + html_table(head, self._rows()))

    def __repr__(self) -> str:
        return "\n".join(f"{r['label']}: {_minutes(self.seconds(r))} on {self.card} at {self.utilisation:.0%} of {self.peak_tflops:g} TFLOPS"
                         for r in self.runs)


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

    The quick start trains Qwen1.5-7B with gradient checkpointing, as LLaMA-Factory always does. Loading the
    model, evaluation and saving come on top.
    """
    peak, source = (peak_tflops, _("given")) if peak_tflops else PEAK_TFLOPS.get(card, (None, ""))
    if peak is None:
        from kit.errors import KitError

        raise KitError(_("card {card!r}: no published peak known; give peak_tflops (one of {known})").format(
            card=card, known=", ".join(PEAK_TFLOPS)))
    tokens, how = quickstart_tokens()
    runs = [{"label": _("the quick start"), "model": "qwen/Qwen1.5-7B", "matmul_params": matmul_parameters(QUICKSTART_MODEL),
             "checkpointing": True, "tokens": tokens, "tokens_how": how}]
    if this_run is not None:
        runs.append({"label": _("this notebook's run"), "model": model, "matmul_params": this_run.matmul_params,
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
        return "".join(f"<p><code>{_esc(self.folder / name)}</code></p><pre style='white-space:pre-wrap'>{_esc(text)}</pre>"
                       for name, text in self.files.items())

    def __repr__(self) -> str:
        return "\n\n".join(f"{self.folder / name}:\n{text}" for name, text in self.files.items())


def own_dataset(folder: str | Path) -> OwnDataset:
    """Write a small alpaca dataset, a small sharegpt one, and the dataset_info.json that registers both."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"my_alpaca.json": OWN_ALPACA, "my_sharegpt.json": OWN_SHAREGPT, "dataset_info.json": OWN_REGISTRY}
    written = {}
    for name, content in files.items():
        text = json.dumps(content, ensure_ascii=False, indent=2)
        (folder / name).write_text(text + "\n", encoding="utf-8")
        written[name] = text
    return OwnDataset(folder.resolve(), written)


# ---------------------------------------------------------------- notebook 30: measured, not only shown

# Identity questions held out from the identity data (the kit's and LLaMA-Factory's): paraphrases that
# training never saw, so a right answer is generalisation, not recall. tests/test_tutorial.py checks that.
HELD_OUT_IDENTITY = {
    "en": ("Who am I speaking with?", "What do people call you?", "Tell me your name, please.", "Could you introduce yourself?",
           "Who are you, exactly?", "Which team made you?"),
    "zh": ("请告诉我你是谁。", "你叫什么？", "介绍一下你自己吧。", "你是哪位？", "谁创造了你？", "我在和谁说话？"),
}


def held_out_questions(lang: str | None = None) -> list[str]:
    return list(HELD_OUT_IDENTITY[lang]) if lang else [q for qs in HELD_OUT_IDENTITY.values() for q in qs]


@dataclass
class IdentityCheck:
    name: str
    before: dict[str, str]
    after: dict[str, str]

    @property
    def questions(self) -> list[str]:
        return list(self.after)

    def share(self, answers: Mapping[str, str]) -> float:
        return sum(self.name.lower() in a.lower() for a in answers.values()) / max(len(answers), 1)

    @property
    def share_before(self) -> float:
        return self.share(self.before)

    @property
    def share_after(self) -> float:
        return self.share(self.after)

    def values(self) -> dict[str, Any]:
        return {"name": self.name, "share_before": self.share_before, "share_after": self.share_after,
                "questions": list(self.after), "before": self.before, "after": self.after}

    def _repr_html_(self) -> str:
        def cell(answer: str) -> tuple[str, str]:
            mark = "\u2714 " if self.name.lower() in answer.lower() else ""
            return f"{mark}{_esc(answer)}", "white-space:pre-wrap;text-align:left"

        rows = [[_esc(q), cell(self.before[q]), cell(a)] for q, a in self.after.items()]
        rows.append([f"<b>{_esc(_('answers naming {name}').format(name=self.name))}</b>",
                     f"<b>{self.share_before:.0%}</b>", f"<b>{self.share_after:.0%}</b>"])
        return html_table([_("held-out question"), _("base model"), _("with the adapter")], rows)

    def __repr__(self) -> str:
        return _("answers naming {name}: {before:.0%} before, {after:.0%} after, on {n} held-out questions").format(
            name=self.name, before=self.share_before, after=self.share_after, n=len(self.after))


def identity_check(engine: Any, name: str, questions: Sequence[str] | None = None) -> IdentityCheck:
    """Ask held-out identity questions of the base model (adapter off) and the fine-tuned one, from one engine."""
    from kit.tutorial import ask

    questions = list(questions) if questions else held_out_questions()
    return IdentityCheck(name, ask(engine, questions, adapter=False), ask(engine, questions))


@dataclass
class SamplingLesson:
    question: str
    greedy: str
    sampled: list[str]
    settings: dict[str, Any]

    def values(self) -> dict[str, Any]:
        return {"greedy": self.greedy, "sampled": self.sampled, "distinct_sampled": len(set(self.sampled)), "settings": self.settings}

    def _repr_html_(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        rows = [[_esc(_("greedy (do_sample=False)")), (_esc(self.greedy), "white-space:pre-wrap;text-align:left")]]
        rows += [[_esc(_("sampled #{i} ({settings})").format(i=i, settings=shown)), (_esc(s), "white-space:pre-wrap;text-align:left")]
                 for i, s in enumerate(self.sampled, 1)]
        return f"<p>{_esc(self.question)}</p>" + html_table([_("decoding"), _("reply")], rows)

    def __repr__(self) -> str:
        return "\n".join([f"greedy: {self.greedy}"] + [f"sampled #{i}: {s}" for i, s in enumerate(self.sampled, 1)])


def sampling_lesson(engine: Any, question: str, samples: int = 3, seed: int = 0) -> SamplingLesson:
    """One question answered greedily, then ``samples`` times with the quick start's (LLaMA-Factory's) sampling defaults."""
    from dataclasses import asdict

    from transformers import set_seed

    from kit.chat.engine import GenerationSettings

    defaults = {k: v for k, v in asdict(GenerationSettings()).items() if k in ("do_sample", "temperature", "top_p", "top_k")}
    messages = [{"role": "user", "content": question}]
    greedy = engine.chat(messages, do_sample=False)
    set_seed(seed)  # the same samples on every run of the notebook
    sampled = [engine.chat(messages, **defaults) for _i in range(samples)]
    return SamplingLesson(question, greedy, sampled, defaults)


@dataclass
class WrongTemplate:
    question: str
    trained_with: str
    used: str
    warning: str | None
    right: str
    wrong: str
    prompt: str  # the wrong template's prompt, as text

    def values(self) -> dict[str, Any]:
        return {"warning": self.warning, "right": self.right, "wrong": self.wrong, "template": self.used}

    def _repr_html_(self) -> str:
        warn = (f"<p style='color:#9a6700'><b>TemplateMismatchWarning:</b> {_esc(self.warning)}</p>" if self.warning else "")
        rows = [[f"<code>{_esc(self.trained_with)}</code> ({_esc(_('as trained'))})", (_esc(self.right), "white-space:pre-wrap;text-align:left")],
                [f"<code>{_esc(self.used)}</code>", (_esc(self.wrong), "white-space:pre-wrap;text-align:left")]]
        return (warn + html_table([_("template"), _("reply to {question!r}").format(question=_esc(self.question))], rows)
                + f"<p>{_esc(_('The prompt the {used} template builds:').format(used=self.used))}</p><pre>{_esc(self.prompt)}</pre>")

    def __repr__(self) -> str:
        return f"warning: {self.warning}\n{self.trained_with}: {self.right}\n{self.used}: {self.wrong}"


def wrong_template(engine: Any, question: str, template: str = "default", max_new_tokens: int | None = None) -> WrongTemplate:
    """One reply with another template than the adapter was trained with, from the same loaded copy.

    The warning is the one ``Engine(template=...)`` gives (the same check); the reply is generated from
    the prompt that template builds, so no second copy of the model is loaded.
    """
    import threading
    from dataclasses import replace

    from kit.chat.engine import with_checked_template
    from kit.tutorial import template_mismatch

    warning = template_mismatch(engine.adapter_dirs[-1], template) if engine.adapter_dirs else None
    other = with_checked_template(template, [], engine.cfg.data.default_system, engine.cfg.data.enable_thinking)
    tokenizer = engine.tokenizer
    messages = [{"role": "user", "content": question}]
    ids = other.encode_prompt(tokenizer, messages)
    settings = replace(engine.generation, do_sample=False, max_new_tokens=max_new_tokens or engine.generation.max_new_tokens)
    stop_ids = other.stop_token_ids(tokenizer) or engine.stop_ids
    wrong = "".join(engine.backend.generate(ids, settings, stop_ids, threading.Event()))
    right = engine.chat(messages, do_sample=False)
    return WrongTemplate(question, engine.template.name, template, warning, right, wrong,
                         tokenizer.decode(ids, skip_special_tokens=False))
