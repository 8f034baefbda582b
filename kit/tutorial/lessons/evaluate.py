"""Notebook 30: the base model and the adapter scored on the same held-out set, as LLaMA-Factory scores predictions.

The held-out set (``kit/data/demo/heldout.json``) holds identity questions the identity data does not contain, in
English and Chinese, with reference answers that name the trained name and author, and a few general-knowledge
questions that training should not destroy. Both models answer greedily from one engine (the adapter switched off
for the base model); the answers are scored with ``kit.evaluate.metric`` (LLaMA-Factory's BLEU-4 on characters and
ROUGE on jieba's words) and, for identity questions, by whether they name the learned name as a whole word.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from kit.fmt import html_table
from kit.i18n import N_, _
from kit.tutorial.display import Picture, html_escape, plot_label

HELDOUT_FILE = Path(__file__).resolve().parents[2] / "data" / "demo" / "heldout.json"
KINDS = ("identity", "general")
LANGS = ("en", "zh")
# What the table and the picture show of kit.evaluate.metric's scores.
SHOWN_SCORES = ("bleu-4", "rouge-1", "rouge-l")


def heldout_items(name: str, author: str, path: str | Path | None = None) -> list[dict[str, str]]:
    """The held-out items (lang, kind, question, reference) with ``{{name}}`` and ``{{author}}`` filled as in training."""
    items = json.loads(Path(path or HELDOUT_FILE).read_text(encoding="utf-8"))["items"]
    return [{**item, "reference": item["reference"].replace("{{name}}", name).replace("{{author}}", author)} for item in items]


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def names(answer: str, name: str) -> bool:
    """Whether ``answer`` gives ``name`` as a whole word: "I am Lumi." and "我是Lumi。" do, "WELumi" and "Lumis" do not.

    A name that begins or ends with a Latin letter or digit must not touch another one on that side (case ignored,
    as a person reads it). Chinese has no spaces between words, so Chinese characters around the name are no
    boundary to check, and a Chinese name counts as written.
    """
    if not name:
        return False
    before = r"(?<![A-Za-z0-9_])" if _is_word_char(name[0]) else ""
    after = r"(?![A-Za-z0-9_])" if _is_word_char(name[-1]) else ""
    return re.search(before + re.escape(name) + after, answer, flags=re.IGNORECASE) is not None


@dataclass
class HeldoutScores:
    """The answers of both models on the held-out set, and their scores per group (kind x language)."""

    name: str
    items: list[dict[str, str]]
    answers: dict[str, list[str]]  # "base" / "adapter" -> one answer per item
    rows: list[dict[str, Any]] = field(default_factory=list)

    def values(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "items": self.items, "answers": self.answers}

    def row(self, kind: str, lang: str, model: str) -> dict[str, Any]:
        return next(r for r in self.rows if (r["kind"], r["lang"], r["model"]) == (kind, lang, model))

    def _repr_html_(self) -> str:
        head = [html_escape(h) for h in (_("questions"), _("model"), _("examples"), _("names {name}").format(name=self.name))]
        head += [s.upper() for s in SHOWN_SCORES]
        body = []
        for r in self.rows:
            share = f"{r['name_share']:.0%}" if r["name_share"] is not None else "\u2013"
            body.append([html_escape(group_label(r["kind"], r["lang"])), html_escape(model_label(r["model"])), str(r["n"]), share]
                        + [f"{r[s]:.1f}" for s in SHOWN_SCORES])
        return html_table(head, body)

    def __repr__(self) -> str:
        lines = []
        for r in self.rows:
            share = f"{r['name_share']:.0%}" if r["name_share"] is not None else "-"
            lines.append(f"{group_label(r['kind'], r['lang'])} | {model_label(r['model'])} | n={r['n']} | "
                         + _("names {name}").format(name=self.name) + f" {share} | "
                         + " ".join(f"{s}={r[s]:.1f}" for s in SHOWN_SCORES))
        return "\n".join(lines)

    def figure(self) -> Any:
        """Base against adapter: the share naming the name (identity questions) and ROUGE-L / BLEU-4 per group."""
        from matplotlib.figure import Figure

        groups = [(k, lang) for k in KINDS for lang in LANGS if any(r["kind"] == k and r["lang"] == lang for r in self.rows)]
        labels = [group_label(k, lang, drawn=True) for k, lang in groups]
        fig = Figure(figsize=(10, 3.4))
        axes = fig.subplots(1, 3)
        panels = [("name_share", plot_label(N_("names the new name (%)")), [g for g in groups if g[0] == "identity"]),
                  ("rouge-l", "ROUGE-L", groups), ("bleu-4", "BLEU-4", groups)]
        width = 0.38
        for ax, (key, title, shown) in zip(axes, panels):
            xs = range(len(shown))
            for offset, model, colour in ((-width / 2, "base", "#9e9e9e"), (width / 2, "adapter", "#1f77b4")):
                heights = [(self.row(k, lang, model)[key] or 0) * (100 if key == "name_share" else 1) for k, lang in shown]
                drawn = ax.bar([x + offset for x in xs], heights, width, color=colour, label=plot_label(MODEL_LABELS[model]))
                ax.bar_label(drawn, fmt="%.0f", fontsize=7)
            ax.set_xticks(list(xs), [labels[groups.index(g)] for g in shown], fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.set_ylim(0, 112)  # room for the label above a bar at 100
        handles, names_ = axes[0].get_legend_handles_labels()
        fig.legend(handles, names_, fontsize=8, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 1.02))
        # Not tight_layout: it measures text now, outside the CJK font Picture draws with (missing-glyph warnings).
        fig.subplots_adjust(left=0.05, right=0.99, top=0.8, bottom=0.12, wspace=0.22)
        return fig

    def picture(self) -> Picture:
        return Picture(self.figure())


MODEL_LABELS = {"base": N_("base model"), "adapter": N_("with the adapter")}
GROUP_LABELS = {("identity", "en"): N_("identity, en"), ("identity", "zh"): N_("identity, zh"),
                ("general", "en"): N_("general, en"), ("general", "zh"): N_("general, zh")}


def model_label(model: str) -> str:
    return _(MODEL_LABELS[model])


def group_label(kind: str, lang: str, drawn: bool = False) -> str:
    """The group's name in the kit's language (``drawn``: in a figure, English where no font has Chinese glyphs)."""
    if (kind, lang) not in GROUP_LABELS:
        return f"{kind}, {lang}"
    return plot_label(GROUP_LABELS[(kind, lang)]) if drawn else _(GROUP_LABELS[(kind, lang)])


def score_rows(name: str, items: Sequence[Mapping[str, str]], answers: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """One row per group (kind, lang) and model: examples, the share naming ``name`` (identity only), the four scores."""
    from kit.evaluate.metric import score

    rows = []
    for kind in KINDS:
        for lang in LANGS:
            picked = [i for i, item in enumerate(items) if item["kind"] == kind and item["lang"] == lang]
            if not picked:
                continue
            for model, said in answers.items():
                predicts = [said[i] for i in picked]
                scores = score(predicts, [items[i]["reference"] for i in picked])
                share = sum(names(p, name) for p in predicts) / len(picked) if kind == "identity" else None
                rows.append({"kind": kind, "lang": lang, "model": model, "n": len(picked), "name_share": share, **scores})
    return rows


def heldout_scores(engine: Any, name: str, author: str, items: Sequence[Mapping[str, str]] | None = None,
                   known: Mapping[str, Mapping[str, str]] | None = None) -> HeldoutScores:
    """Ask every held-out question of the base model (adapter off) and of the adapter, greedily, from one engine; score.

    ``known``: answers already given (``{"base": {question: answer}, "adapter": {...}}``, e.g. identity_check's), reused
    rather than generated again, since greedy answers repeat exactly.
    """
    from kit.evaluate.metric import require_metrics

    require_metrics()  # the install command before any generation, not after it
    items = [dict(i) for i in (items if items is not None else heldout_items(name, author))]
    known = known or {}
    answers: dict[str, list[str]] = {}
    for model, adapter in (("base", False), ("adapter", True)):
        seen = known.get(model, {})
        answers[model] = [seen[item["question"]] if item["question"] in seen else
                          engine.chat([{"role": "user", "content": item["question"]}], adapter=adapter, do_sample=False)
                          for item in items]
    return HeldoutScores(name, items, answers, score_rows(name, items, answers))
