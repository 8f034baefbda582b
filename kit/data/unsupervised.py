"""Prediction examples: prompt ids and reference ids, as LLaMA-Factory 0.9.5's unsupervised processor makes them.

LLaMA-Factory encodes its prediction set (``do_predict`` with ``predict_with_generate``) with
``data/processor/unsupervised.py``: the conversation up to the last reply is the prompt, the last reply is
the reference ("label"), and both are cut to ``cutoff_len`` by the same ``infer_seqlen`` rule as training
(a long prompt loses its end, so a cut prompt may stop before the assistant's turn starts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.data.loader import Example, LoadReport, load_examples, resolve_dataset_dir
from kit.data.sft import infer_seqlen
from kit.data.template import Template, with_thinking


@dataclass(frozen=True)
class PromptExample:
    """One prediction example: what the model is given, the reference it is scored against, and where it came from."""

    input_ids: list[int]
    labels: list[int]
    dataset: str
    index: int  # position in its dataset file
    full_length: int  # prompt + reference tokens before cutting to cutoff_len

    @property
    def cut(self) -> bool:
        return self.full_length > len(self.input_ids) + len(self.labels)


def encode_unsupervised(template: Template, tokenizer: Any, example: Example, cutoff_len: int) -> tuple[list[int], list[int], int]:
    """(prompt ids, reference ids, length before cutting) of one example, as LLaMA-Factory's unsupervised processor.

    An example with one response is encoded with it as the reference; otherwise (no response) the
    reference is empty and the prompt ends where the assistant's reply starts.
    """
    if len(example.response) == 1:
        messages = example.prompt + example.response
    else:
        messages = example.prompt + [{"role": "assistant", "content": ""}]
    input_ids, labels = template.encode_oneturn(tokenizer, messages, example.system)
    if template.efficient_eos:
        labels = labels + [tokenizer.eos_token_id]
    full_length = len(input_ids) + len(labels)
    source_len, target_len = infer_seqlen(len(input_ids), len(labels), cutoff_len)
    return input_ids[:source_len], labels[:target_len], full_length


def build_unsupervised(examples: list[Example], tokenizer: Any, template: Template, cutoff_len: int,
                       enable_thinking: bool | None = True) -> tuple[list[PromptExample], list[str]]:
    """Encode examples in order; returns the encoded ones and "dataset[index]: why" for each one left out.

    LLaMA-Factory drops an example whose prompt does not hold an odd number of messages; the kit's
    reader also leaves out what it found malformed (with the reason it gave).
    """
    template = with_thinking(template, enable_thinking)
    rows: list[PromptExample] = []
    dropped: list[str] = []
    for ex in examples:
        if ex.problem is not None:
            dropped.append(f"{ex.dataset}[{ex.index}]: {ex.problem}")
            continue
        if len(ex.prompt) % 2 != 1:
            from kit.i18n import _

            dropped.append(f"{ex.dataset}[{ex.index}]: " + _("prompt/response turns do not alternate"))
            continue
        input_ids, labels, full_length = encode_unsupervised(template, tokenizer, ex, cutoff_len)
        rows.append(PromptExample(input_ids, labels, ex.dataset, ex.index, full_length))
    return rows, dropped


def load_prediction_set(names: list[str], dataset_dir: str | None, config_dir: Path | None, max_samples: int | None,
                        fills: dict[str, str] | None = None) -> tuple[list[Example], LoadReport]:
    """The named datasets' examples in order, each capped at max_samples (LLaMA-Factory caps before concatenating)."""
    return load_examples(names, resolve_dataset_dir(dataset_dir, config_dir), max_samples, fills)
