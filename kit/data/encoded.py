"""Encoded examples written once by the launching process and read by every torchrun rank.

Three flat numpy arrays (input_ids, labels, row offsets) plus the train / eval indices. numpy is
already a dependency; the arrays are memory-mapped, so eight ranks on one machine share the pages
instead of holding eight copies, and no rank re-reads or re-tokenises the datasets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np


class EncodedRows:
    """A read-only sequence of ``{"input_ids", "attention_mask", "labels"}`` rows over flat arrays."""

    def __init__(self, input_ids: np.ndarray, labels: np.ndarray, offsets: np.ndarray, indices: Sequence[int]):
        self._ids, self._labels, self._offsets = input_ids, labels, offsets
        self._indices = list(indices)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        row = self._indices[i]
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        ids = self._ids[start:end].tolist()
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": self._labels[start:end].tolist()}

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self._indices)


def save(folder: Path, rows: Sequence[dict[str, list[int]]], train_idx: Sequence[int], eval_idx: Sequence[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lengths = np.fromiter((len(r["input_ids"]) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    np.save(folder / "input_ids.npy", np.fromiter((t for r in rows for t in r["input_ids"]), dtype=np.int64, count=int(offsets[-1])))
    np.save(folder / "labels.npy", np.fromiter((t for r in rows for t in r["labels"]), dtype=np.int64, count=int(offsets[-1])))
    np.save(folder / "offsets.npy", offsets)
    (folder / "split.json").write_text(json.dumps({"train": list(map(int, train_idx)), "eval": list(map(int, eval_idx))}), encoding="utf-8")


def load(folder: Path) -> tuple[EncodedRows, EncodedRows]:
    """(train rows, eval rows) as the launching process saved them."""
    ids = np.load(folder / "input_ids.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy", mmap_mode="r")
    offsets = np.load(folder / "offsets.npy")
    split: dict[str, Any] = json.loads((folder / "split.json").read_text(encoding="utf-8"))
    return EncodedRows(ids, labels, offsets, split["train"]), EncodedRows(ids, labels, offsets, split["eval"])
