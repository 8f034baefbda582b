"""Values published by notebooks, running notebooks with papermill, and sweeps of them.

In a notebook, ``kit.tutorial.publish("final_loss", 1.23)`` records a JSON-able value in the cell's output
under its own MIME type. ``kit.tutorial.read(executed.ipynb)`` returns every value a notebook published,
so tests, ``kit demo`` and ``kit batch`` read results, not printed text. ``kit.tutorial.batch`` runs a
notebook over a grid of parameters (kit.tutorial.sweep). The work is done in kit.tutorial.values and kit.tutorial.sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from kit.tutorial.sweep import run_batch
from kit.tutorial.values import MIME, NotebookError, execute, notebook_dir, publish, read

__all__ = ["MIME", "NotebookError", "batch", "execute", "notebook_dir", "publish", "read"]


def batch(notebook: str | Path, parameters: Mapping[str, Any], out: str | Path, parallel: int | None = None,
          devices: str | Sequence[Any] | None = None, **options: Any) -> list[dict[str, Any]]:
    """Run ``notebook`` once per combination of ``parameters`` (a list is a sweep) into ``out``; the results table.

    ``kit.tutorial.batch("20_lora_sft", {"lora_rank": [2, 8, 32], "max_samples": 20}, "runs/rank")`` is
    ``kit batch 20_lora_sft -p lora_rank 2 8 32 -p max_samples 20 --out runs/rank``; see kit.tutorial.sweep.run_batch
    for ``options`` (kernel_name, timeout, lang, log).
    """
    return run_batch(notebook, parameters, out, parallel, devices, **options)
