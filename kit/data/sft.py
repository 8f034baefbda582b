"""Supervised fine-tuning examples: conversations -> input_ids and labels, as LLaMA-Factory 0.9.5 makes them."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.data.cut import Encoder, Ids, TooLong
from kit.data.loader import DataError, Example, LoadReport, load_examples, resolve_dataset_dir
from kit.data.template import Template, with_thinking
from kit.i18n import _

logger = logging.getLogger("kit.data")

IGNORE_INDEX = -100


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """How many prompt and response tokens to keep within ``cutoff_len`` (LLaMA-Factory's rule).

    A short response is kept whole and the prompt truncated; a short prompt is kept whole and the
    response truncated; otherwise both shrink in proportion to their lengths.
    """
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    max_source_len = max(cutoff_len - new_target_len, 0)
    new_source_len = min(max_source_len, source_len)
    return new_source_len, new_target_len


@dataclass(frozen=True)
class Encoded:
    """One example encoded, with what truncation did to it."""

    input_ids: list[int]
    labels: list[int]
    full_length: int  # tokens before truncation to cutoff_len
    prompt_length: int  # tokens before the last response, before truncation
    # False when a text was cut before tokenizing (kit.data.cut): the two lengths above are then lower
    # bounds (above cutoff_len); input_ids and labels are exact either way.
    lengths_exact: bool = True

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def _seqlen(source_ids: list[int], target_ids: list[int], budget: int) -> tuple[int, int]:
    """``infer_seqlen`` of one turn, exact when a side was cut before tokenizing (``kit.data.cut.Ids``).

    A cut side holds more than cutoff_len tokens, so its own length decides nothing when the other
    side is short: "prompt short" and "response short" give the same result for every longer length.
    Only when both sides are long does LLaMA-Factory share the budget in proportion to the whole
    lengths; then what was cut is counted (piece by piece, in bounded memory).
    """
    s, t = len(source_ids), len(target_ids)
    if (isinstance(source_ids, Ids) or isinstance(target_ids, Ids)) and s * 2 >= budget and t * 2 >= budget:
        s += source_ids.tail if isinstance(source_ids, Ids) else 0
        t += target_ids.tail if isinstance(target_ids, Ids) else 0
    return infer_seqlen(s, t, budget)


def encode_example(template: Template, tokenizer: Any, example: Example, cutoff_len: int,
                   train_on_prompt: bool = False, mask_history: bool = False, encoder: Encoder | None = None) -> Encoded:
    """``encode_supervised``'s ids and labels, with the lengths before truncation.

    A reasoning template encodes thoughts by its ``enable_thinking`` (``build_sft`` sets it from the
    config); with ``mask_history`` only the last reply keeps its thought, as in LLaMA-Factory.
    A text much longer than cutoff_len can use is cut before tokenizing where the tokens kept are
    provably the same (``kit.data.cut``); ``encoder`` (one per run) does it. A text too long to
    tokenize that cannot be cut raises ``kit.data.cut.TooLong``, a DataError.
    """
    discard_history_thoughts = mask_history and not template.preserve_thinking
    pairs = template.encode_multiturn(tokenizer, example.prompt + example.response, example.system,
                                      discard_history_thoughts=discard_history_thoughts,
                                      encode=encoder if encoder is not None else Encoder(tokenizer, cutoff_len))
    lengths_exact = not any(isinstance(ids, Ids) for pair in pairs for ids in pair)
    full_length = sum(len(s) + len(t) for s, t in pairs) + (1 if template.efficient_eos else 0)
    prompt_length = full_length - (len(pairs[-1][1]) if pairs else 0)
    input_ids: list[int] = []
    labels: list[int] = []
    total_length = 1 if template.efficient_eos else 0
    if mask_history:
        pairs = pairs[::-1]  # the last turn gets the budget first
    for turn, (source_ids, target_ids) in enumerate(pairs):
        if total_length >= cutoff_len:
            break
        source_len, target_len = _seqlen(source_ids, target_ids, cutoff_len - total_length)
        source_ids, target_ids = source_ids[:source_len], target_ids[:target_len]
        total_length += source_len + target_len
        if train_on_prompt:
            source_label = source_ids
        elif template.efficient_eos and turn != 0:
            source_label = [tokenizer.eos_token_id] + [IGNORE_INDEX] * (source_len - 1)
        else:
            source_label = [IGNORE_INDEX] * source_len
        target_label = [IGNORE_INDEX] * target_len if (mask_history and turn != 0) else target_ids
        if mask_history:
            input_ids = source_ids + target_ids + input_ids
            labels = source_label + target_label + labels
        else:
            input_ids += source_ids + target_ids
            labels += source_label + target_label
    if template.efficient_eos:
        input_ids += [tokenizer.eos_token_id]
        labels += [tokenizer.eos_token_id]
    return Encoded(input_ids, labels, full_length, prompt_length, lengths_exact)


def encode_supervised(template: Template, tokenizer: Any, example: Example, cutoff_len: int,
                      train_on_prompt: bool = False, mask_history: bool = False) -> tuple[list[int], list[int]]:
    """input_ids and labels of one example, as LLaMA-Factory's supervised processor makes them."""
    enc = encode_example(template, tokenizer, example, cutoff_len, train_on_prompt, mask_history)
    return enc.input_ids, enc.labels


def split_indices(n: int, val_size: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and eval indices, the same split as ``datasets.Dataset.train_test_split`` gives LLaMA-Factory."""
    n_test = int(val_size) if val_size > 1 else math.ceil(val_size * n)
    n_train = n - n_test
    if n_test <= 0:
        raise DataError(_("val_size: {val_size} of {count} examples holds out nothing; raise it or set val_size: 0 and "
                          "eval_strategy: no").format(val_size=val_size, count=n))
    if n_train <= 0:
        raise DataError(_("val_size: {val_size} of {count} examples leaves no training data; lower it (e.g. 0.1)").format(
            val_size=val_size, count=n))
    permutation = np.random.default_rng(seed).permutation(n)
    return permutation[n_test:].tolist(), permutation[:n_test].tolist()


@dataclass
class SFTData:
    """Encoded examples in dataset order (``all``), and the train / eval split of them."""

    all: list[dict[str, list[int]]]
    train: list[dict[str, list[int]]]
    eval: list[dict[str, list[int]]]
    sources: list[Example] = field(repr=False)  # the example each encoded row came from
    report: LoadReport = field(repr=False)

    def stats(self) -> dict[str, Any]:
        lengths = [len(r["input_ids"]) for r in self.all]
        trained = [sum(1 for x in r["labels"] if x != IGNORE_INDEX) for r in self.all]
        per = self.report.per_dataset.values()
        return {"examples": len(self.all), "train": len(self.train), "eval": len(self.eval),
                "dropped": len(self.report.dropped), "malformed": sum(c.get("malformed", 0) for c in per),
                "truncated": sum(c.get("truncated", 0) for c in per),
                "no_trained_tokens": sum(c.get("no_trained_tokens", 0) for c in per),
                "per_dataset": self.report.per_dataset,
                "tokens": int(sum(lengths)), "trained_tokens": int(sum(trained)),
                "max_len": max(lengths, default=0), "mean_len": float(np.mean(lengths)) if lengths else 0.0}


def build_sft(cfg: Any, tokenizer: Any, template: Template, split: bool = True) -> SFTData:
    """Read the config's datasets, encode every valid example, split off val_size.

    Malformed examples are dropped and reported. So are examples that keep no trained token within
    ``cutoff_len`` (a prompt so long that the response is cut away): LLaMA-Factory keeps them, but
    they add nothing to the loss (a batch of only such examples gives a NaN loss), so dropping them,
    with a warning, is the kinder choice. When no example keeps a trained token, cutoff_len is too
    small for the data and a DataError says so. Per dataset, the report counts the examples read,
    malformed, truncated (longer than cutoff_len before truncation) and left with no trained token.
    The config's ``enable_thinking`` replaces the template's (only a reasoning template uses it).
    """
    d = cfg.data
    template = with_thinking(template, d.enable_thinking)  # the data config decides, as LLaMA-Factory's does
    if d.enable_thinking is not True and not template.reasoning:
        logger.info(_("enable_thinking: {value} has no effect with template {template}, which is not a reasoning template").format(
            value=d.enable_thinking, template=template.name))
    fills = {k: v for k, v in (("name", d.identity_name), ("author", d.identity_author)) if v is not None}
    dataset_dir = resolve_dataset_dir(d.dataset_dir, cfg.config_dir)
    examples, report = load_examples(cfg.dataset_names, dataset_dir, d.max_samples, fills)
    for counts in report.per_dataset.values():
        counts.update(truncated=0, no_trained_tokens=0)
    rows: list[dict[str, list[int]]] = []
    sources: list[Example] = []
    untrained: list[tuple[Example, Encoded]] = []
    encoder = Encoder(tokenizer, d.cutoff_len)  # cuts texts far longer than cutoff_len before tokenizing
    for ex in examples:
        # LLaMA-Factory's supervised processor keeps only an odd number of prompt messages and one response.
        if ex.problem is None and (len(ex.prompt) % 2 != 1 or len(ex.response) != 1):
            ex.problem = _("prompt/response turns do not alternate")
            report.dropped.append(f"{ex.dataset}[{ex.index}]: {ex.problem}")
            report.per_dataset[ex.dataset]["malformed"] += 1
        if ex.problem is not None:
            continue
        try:
            enc = encode_example(template, tokenizer, ex, d.cutoff_len, d.train_on_prompt, d.mask_history, encoder)
        except TooLong as exc:
            ex.problem = str(exc)
            report.dropped.append(f"{ex.dataset}[{ex.index}]: {ex.problem}")
            report.per_dataset[ex.dataset]["malformed"] += 1
            continue
        counts = report.per_dataset[ex.dataset]
        if enc.full_length > d.cutoff_len:
            counts["truncated"] += 1
        if enc.trained_tokens == 0:
            counts["no_trained_tokens"] += 1
            untrained.append((ex, enc))
            continue
        rows.append({"input_ids": enc.input_ids, "attention_mask": [1] * len(enc.input_ids), "labels": enc.labels})
        sources.append(ex)
    malformed = list(report.dropped)
    if malformed:
        logger.warning(_("dropped {count} malformed example(s) of {total}: {examples}").format(
            count=len(malformed), total=len(examples), examples="; ".join(malformed[:3]) + (" ..." if len(malformed) > 3 else "")))
    if untrained:
        shortest = min(enc.prompt_length for _ex, enc in untrained)
        advice = _("raise cutoff_len above the prompt length (the shortest such prompt has {tokens} tokens; "
                   "LLaMA-Factory's quick start uses 1024)").format(tokens=shortest)
        if not rows:
            extra = _("; {count} more are malformed").format(count=len(malformed)) if malformed else ""
            raise DataError(_("cutoff_len: {cutoff_len} leaves no trained token in any of the {count} example(s) of {datasets}{extra}: "
                              "each is cut to its prompt, so the loss would be NaN; {advice}").format(
                cutoff_len=d.cutoff_len, count=len(untrained), datasets=", ".join(cfg.dataset_names), extra=extra, advice=advice))
        untrained_line = _("no trained token within cutoff_len {cutoff_len} (prompt of {tokens} tokens)")
        report.dropped += [f"{ex.dataset}[{ex.index}]: " + untrained_line.format(cutoff_len=d.cutoff_len, tokens=enc.prompt_length)
                           for ex, enc in untrained]
        logger.warning(_("dropped {count} example(s) of {total} that keep no trained token within cutoff_len {cutoff_len}; {advice}").format(
            count=len(untrained), total=len(examples), cutoff_len=d.cutoff_len, advice=advice))
    truncated = sum(c["truncated"] for c in report.per_dataset.values())
    if truncated:
        logger.info(_("{count} example(s) longer than cutoff_len {cutoff_len} were truncated").format(
            count=truncated, cutoff_len=d.cutoff_len))
    if not examples:
        raise DataError(_("dataset: {datasets} holds no examples (its files are empty); add examples to the files "
                          "dataset_info.json names for it, or train on other datasets").format(datasets=", ".join(cfg.dataset_names)))
    if not rows:
        raise DataError(_("dataset: every one of the {count} example(s) in {datasets} is malformed (first: {first}); "
                          "check the file and its columns in dataset_info.json").format(
            count=len(examples), datasets=", ".join(cfg.dataset_names),
            first=report.dropped[0] if report.dropped else _("no examples at all")))
    if split and d.val_size > 0:
        train_idx, eval_idx = split_indices(len(rows), d.val_size, cfg.train.seed)
        train, evals = [rows[i] for i in train_idx], [rows[i] for i in eval_idx]
    else:
        train, evals = rows, []
    return SFTData(rows, train, evals, sources, report)


def preview(row: dict[str, list[int]], tokenizer: Any) -> tuple[str, str]:
    """(prompt text, trained text) of one encoded example, for showing a person what is learned."""
    ids, labels = row["input_ids"], row["labels"]
    prompt = tokenizer.decode([t for t, l in zip(ids, labels) if l == IGNORE_INDEX], skip_special_tokens=False)
    trained = tokenizer.decode([l for l in labels if l != IGNORE_INDEX], skip_special_tokens=False)
    return prompt, trained


def check_new_output(path: Path) -> None:
    """``kit preprocess --output``: a new file only. A file already there (a person's data, the very dataset
    being encoded, an earlier output) is never replaced; a folder or a file where a folder must be is named."""
    if path.is_dir():
        raise DataError(_("--output: {path} is a folder; name a new file in it, e.g. {example}").format(
            path=path, example=path / "encoded.jsonl"))
    if path.exists() or path.is_symlink():
        raise DataError(_("--output: {path} already exists and the kit does not replace a file it did not just write; "
                          "remove it yourself or name a new file").format(path=path))
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(_("--output: {parent} is a file, so {path} cannot be written under it; name a file in a "
                                  "folder").format(parent=parent, path=path))
            break


def write_jsonl(rows: list[dict[str, list[int]]], path: Path) -> None:
    """Every encoded example as one JSON line, into a new file: written whole under a temporary name of its
    own, then moved into place only if ``path`` is still free (nothing half-written, nothing replaced)."""
    import json
    import os
    import tempfile

    check_new_output(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise DataError(_("--output: cannot write into {folder} ({error}); name a file in a folder you can write to").format(
            folder=path.parent, error=exc.strerror or exc)) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"input_ids": r["input_ids"], "labels": r["labels"]}) + "\n")
        try:
            os.link(tmp, path)  # fails if something appeared at path meanwhile: nothing is replaced
        except FileExistsError:
            check_new_output(path)
            raise
        except OSError:  # a file system without hard links: the check above is the guard
            check_new_output(path)
            os.replace(tmp, path)
    except OSError as exc:
        raise DataError(_("--output: could not write {path} ({error}); nothing was written there").format(
            path=path, error=exc.strerror or exc)) from None
    finally:
        tmp.unlink(missing_ok=True)
