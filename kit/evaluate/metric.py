"""BLEU-4 and ROUGE-1/2/L exactly as LLaMA-Factory 0.9.5 computes them (``train/sft/metric.py``, ComputeSimilarity).

ROUGE on jieba's word split with ``rouge_chinese``; BLEU-4 on characters with nltk's ``sentence_bleu`` and
smoothing method 3; each score times 100, rounded to 4 places, then averaged over the examples. An empty
prediction or reference (nothing but white space after jieba's split) scores 0 for ROUGE; BLEU is still
computed, as LLaMA-Factory does. jieba, nltk and rouge-chinese are the kit's ``eval`` extra, imported
only when scores are computed.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from kit.errors import KitError
from kit.i18n import _

SCORE_KEYS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")


class MetricsMissingError(KitError):
    """jieba, nltk or rouge-chinese is not installed."""


def _libraries() -> tuple[Any, Any, Any, Any]:
    missing = []
    try:
        import jieba  # type: ignore
    except ImportError:
        missing.append("jieba")
    try:
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # type: ignore
    except ImportError:
        missing.append("nltk")
    try:
        from rouge_chinese import Rouge  # type: ignore
    except ImportError:
        missing.append("rouge-chinese")
    if missing:
        raise MetricsMissingError(_("scoring predictions needs {packages} (not installed); install the kit's eval extra: "
                                    "pip install \"kit[eval]\" (or pip install jieba nltk rouge-chinese)").format(
            packages=", ".join(missing)))
    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict" lines on every first use
    return jieba, Rouge, SmoothingFunction, sentence_bleu


def require_metrics() -> None:
    """Raise MetricsMissingError (the install command) before a long generation, not after it."""
    _libraries()


def score_one(predict: str, label: str) -> dict[str, float]:
    """The four scores of one prediction against its reference, each x100 and rounded to 4 places."""
    jieba, Rouge, SmoothingFunction, sentence_bleu = _libraries()
    hypothesis = list(jieba.cut(predict))
    reference = list(jieba.cut(label))
    if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
        result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        result = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    scores = {k: round(v["f"] * 100, 4) for k, v in result.items()}
    bleu = sentence_bleu([list(label)], list(predict), smoothing_function=SmoothingFunction().method3)
    scores["bleu-4"] = round(bleu * 100, 4)
    return scores


def score(predicts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Mean scores over the examples (numpy's mean, as LLaMA-Factory takes it): bleu-4, rouge-1, rouge-2, rouge-l."""
    import numpy as np

    per = {k: [] for k in SCORE_KEYS}
    for predict, label in zip(predicts, labels):
        for k, v in score_one(predict, label).items():
            per[k].append(v)
    return {k: float(np.mean(v)) for k, v in per.items()}
