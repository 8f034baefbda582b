"""Notebook 20, before training: LoRA in a picture and a number, and the data the run will see."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kit.config import Config
from kit.fmt import html_table
from kit.i18n import N_, _
from kit.tutorial.display import figure_fonts, html_escape, plot_label, png_html
from kit.tutorial.lessons.common import QUICKSTART_MODEL, lesson_model_dir, linear_shapes, meta_model


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
    # The same rank and lora_target on the quick start's Qwen1.5-7B: (model, trainable, base), computed from its
    # config by r x (d_in + d_out) per adapted matrix; None when the chosen model is that model.
    quickstart: tuple[str, int, int] | None = None

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
                "targets": list(self.targets), "by_rank_and_target": [list(r) for r in self.table],
                "quickstart_trainable": self.quickstart[1] if self.quickstart else None}

    def figure(self) -> Any:
        with figure_fonts():
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
            boxes = [(0.0, w, h, "#cfd8e3", plot_label(N_("W (frozen)")), f"{d_out} x {d_in}"),
                     (w + 0.5, thin, h, "#f6c177", "B", f"{d_out} x {self.rank}"),
                     (w + 0.5 + thin + 0.5, w, thin, "#9ccfd8", "A", f"{self.rank} x {d_in}")]
            for x, bw, bh, colour, label, dims in boxes:
                ax.add_patch(Rectangle((x, h - bh), bw, bh, facecolor=colour, edgecolor="#333"))
                ax.text(x + bw / 2, h + 0.08, f"{label}\n{dims}", ha="center", va="bottom", fontsize=8)
            ax.text(w + 0.25, h / 2, "+", ha="center", va="center", fontsize=14)
            ax.text(w + 0.5 + thin + 0.25, h - thin / 2, "x", ha="center", va="center", fontsize=11)
            ax.text(2 * w + 1.6 + thin, h / 2, plot_label(N_("{target}: {full:,} frozen\n+ {lora:,} trained ({share:.2%})")).format(
                target=target, full=d_out * d_in, lora=self.per_matrix(target), share=self.per_matrix(target) / (d_out * d_in)),
                va="center", fontsize=8)
            ax.set_xlim(-0.1, 2 * w + 4.2 + thin)
            ax.set_ylim(-0.1, h + 0.7)
            ax.set_aspect("equal")
            ax.axis("off")
        fig.suptitle(plot_label(N_("h = W x + (alpha / r) B A x, alpha / r = {alpha} / {rank} = {scale:g}")).format(
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
        table = html_table([_("what"), ("", "text-align:left")], [[html_escape(k), (html_escape(v), "text-align:left")] for k, v in self._rows()])
        compare = html_table([_("lora_rank"), _("lora_target"), (_("trainable parameters"), "text-align:right"),
                              (_("of the model"), "text-align:right")],
                             [[str(r), f"<code>{html_escape(t)}</code>", (f"{n:,}", "text-align:right"),
                               (f"{n / self.base:.3%}", "text-align:right")] for r, t, n in self.table])
        other = html_escape(_("Trainable parameters for other settings (peft, exact):"))  # outside the f-string, for the extractor
        return table + self._beside_html() + png_html(self.figure()) + f"<p>{other}</p>" + compare

    def _beside(self) -> list[tuple[str, int, int]]:
        return [(self.model, self.trainable, self.base), *([self.quickstart] if self.quickstart else [])]

    def _beside_html(self) -> str:
        if not self.quickstart:
            return ""
        head = html_escape(_("The same lora_rank and lora_target on this model and on the quick start's model:"))
        rows = [[html_escape(m), (f"{t:,}", "text-align:right"), (f"{b / 1e9:.2f} B", "text-align:right"),
                 (f"{t / b:.3%}", "text-align:right")] for m, t, b in self._beside()]
        return f"<p>{head}</p>" + html_table([_("model"), (_("trainable parameters"), "text-align:right"),
                                               (_("the whole model"), "text-align:right"), (_("of the model"), "text-align:right")], rows)

    def __repr__(self) -> str:
        lines = [f"{k}: {v}" for k, v in self._rows()] + [""]
        lines += [f"  lora_rank {r:>3}  {t:<32} {n:>14,}  ({n / self.base:.3%})" for r, t, n in self.table]
        if self.quickstart:
            lines += [""] + [f"  {m:<24} {t:>14,}  ({t / b:.3%} of {b / 1e9:.2f} B)" for m, t, b in self._beside()]
        return "\n".join(lines)


def lora_lesson(cfg: Config, ranks: Sequence[int] = LORA_RANKS) -> LoraLesson:
    """LoRA for this config's model: the shapes it adapts, its exact trainable count, and other ranks/targets."""
    from kit import model as model_mod
    from kit.estimate import count_parameters, parse_targets

    model_dir = lesson_model_dir(cfg)
    trust = cfg.model.trust_remote_code
    f = cfg.finetune
    counts = count_parameters(model_dir, f.lora_rank, f.lora_target, trust)  # peft attached to the meta model
    meta = meta_model(model_dir, trust)
    shapes = linear_shapes(meta)
    # Other settings by LoRA's own rule, r x (d_in + d_out) per adapted matrix: for the chosen setting it
    # gives peft's count exactly (tests/test_tutorial.py), without building the model once per row.
    available = [n for n in shapes if n in model_mod.linear_module_names(meta)]  # in the model's order
    table = []
    for target in dict.fromkeys([f.lora_target, "all"]):
        names = parse_targets(target, available)
        for rank in sorted({*ranks, f.lora_rank}):
            table.append((rank, target, sum(rank * (shapes[n][0] + shapes[n][1]) * shapes[n][2] for n in names)))
    quickstart = None
    if "qwen1.5-7b" not in str(cfg.model.model_name_or_path).lower():
        quickstart = quickstart_lora(f.lora_rank, f.lora_target)
    return LoraLesson(model=str(cfg.model.model_name_or_path), rank=f.lora_rank, alpha=cfg.lora_alpha,
                      alpha_given=f.lora_alpha is not None, targets=counts.targets,
                      shapes={t: shapes[t] for t in counts.targets}, base=counts.base, trainable=counts.trainable, table=table,
                      quickstart=quickstart)


def quickstart_lora(rank: int, lora_target: str) -> tuple[str, int, int]:
    """(model, trainable, base) for LoRA at ``rank`` on ``lora_target`` of the quick start's Qwen1.5-7B, from its config
    (kit.tutorial.lessons.common.QUICKSTART_MODEL: hidden 4096, 32 layers) on the meta device: r x (d_in + d_out) per
    adapted matrix, summed over the layers; base is every parameter of the model."""
    from kit import model as model_mod
    from kit.estimate import parse_targets

    meta = meta_model(QUICKSTART_MODEL)
    shapes = linear_shapes(meta)
    names = parse_targets(lora_target, [n for n in shapes if n in model_mod.linear_module_names(meta)])
    trainable = sum(rank * (shapes[n][0] + shapes[n][1]) * shapes[n][2] for n in names)
    return "qwen/Qwen1.5-7B", trainable, sum(p.numel() for p in meta.parameters())


# ---------------------------------------------------------------- the data before training

@dataclass
class DataLesson:
    folder: Path
    cutoff_len: int
    raw: dict[str, list[dict[str, Any]]]  # the first rows of each file, as written
    formatting: dict[str, str]
    counts: dict[str, dict[str, int]]  # per dataset, as the encoder counted: read, malformed, truncated, no_trained_tokens
    lengths: dict[str, list[int]]  # per dataset: tokens of each example before truncation
    encoded: Any = field(repr=False)  # kit.data.preprocess.Encoded: every kept example, as training encodes it
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
        """Example ``index`` with the trained part marked (kit.tutorial.helpers.ExamplePreview), from this encoding."""
        from kit.tutorial.helpers import preview_example

        return preview_example(None, index, encoded=self.encoded)

    def values(self) -> dict[str, Any]:
        return {"truncated": self.truncated, "longer_than_cutoff": self.longer_than_cutoff, "cutoff_len": self.cutoff_len,
                "per_dataset": self.counts, "examples": int(self.stats.get("examples", 0)),
                "tokens": int(self.stats.get("tokens", 0)), "max_len": int(self.stats.get("max_len", 0))}

    def figure(self) -> Any:
        with figure_fonts():
            return self._figure()

    def _figure(self) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3.2))
        ax = fig.subplots()
        longest = max((n for ls in self.lengths.values() for n in ls), default=1)
        right = max(longest, self.cutoff_len) if self.cutoff_len <= 2 * longest else longest
        bins = list(range(0, int(right * 1.05) + 2, max(1, int(right * 1.05) // 40)))
        ax.hist([ls for ls in self.lengths.values()], bins=bins, stacked=True, label=list(self.lengths))
        ax.set_xlabel(plot_label(N_("tokens per example, before truncation")))
        ax.set_ylabel(plot_label(N_("examples")))
        if self.cutoff_len <= right:
            ax.axvline(self.cutoff_len, color="#d62728", linestyle="--")
            ax.text(self.cutoff_len, ax.get_ylim()[1] * 0.95, f" cutoff_len {self.cutoff_len}", color="#d62728", va="top")
        else:  # far off to the right: say where it is instead of squeezing the bars
            ax.annotate(f"cutoff_len {self.cutoff_len} \u2192", xy=(1, 0.9), xycoords="axes fraction", ha="right", color="#d62728")
        ax.set_title(plot_label(N_("{truncated} of {n} examples are longer than cutoff_len")).format(
            truncated=self.longer_than_cutoff, n=sum(len(v) for v in self.lengths.values())))
        ax.legend()
        fig.tight_layout()
        return fig

    def _count_rows(self) -> list[list[str]]:
        rows = []
        for name, c in self.counts.items():
            ls = self.lengths.get(name) or [0]
            rows.append([f"<code>{html_escape(name)}</code>", html_escape(self.formatting.get(name, "")), str(c.get("read", 0)),
                         str(c.get("malformed", 0)), str(c.get("truncated", 0)), str(c.get("no_trained_tokens", 0)),
                         f"{min(ls)} / {sum(ls) / len(ls):.0f} / {max(ls)}"])
        return rows

    def _repr_html_(self) -> str:
        # Messages outside the f-strings: gettext's extractor does not look inside them.
        parts = ["<p>" + html_escape(_("Datasets from {folder}").format(folder=self.folder)) + "</p>"]
        for name, rows in self.raw.items():
            parts.append(f"<p><b>{html_escape(name)}</b> ({html_escape(self.formatting.get(name, ''))}), "
                         + html_escape(_("the first {n} rows as written in the file:").format(n=len(rows))) + "</p>"
                         f"<pre style='white-space:pre-wrap'>{html_escape(json.dumps(rows, ensure_ascii=False, indent=1))}</pre>")
        parts.append(html_table([_("dataset"), _("format"), _("read"), _("malformed"), _("truncated"), _("no trained token"),
                                 _("tokens min / mean / max")], self._count_rows()))
        return "".join(parts) + png_html(self.figure())

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
    from kit.data.loader import read_records, dataset_attr
    from kit.data.preprocess import Encoded

    config_mod.require(cfg, "preprocess")
    d = cfg.data
    stage = model_mod.tokenizer_stage(cfg)
    data = build_sft(cfg, stage.tokenizer, stage.template, split=False)
    folder = resolve_dataset_dir(d.dataset_dir, cfg.config_dir)
    registry = read_registry(folder)
    raw, formatting = {}, {}
    for name in cfg.dataset_names:
        attr = dataset_attr(name, registry, folder)
        raw[name] = read_records(folder / attr.file_name, name)[:rows]
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
