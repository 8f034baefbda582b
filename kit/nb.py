"""Values published by notebooks, and running notebooks with papermill.

In a notebook, ``kit.nb.publish("final_loss", 1.23)`` records a JSON-able value in the cell's output
under its own MIME type. ``kit.nb.read(executed.ipynb)`` returns every value a notebook published,
so tests, ``kit demo`` and ``kit batch`` read results, not printed text. ``kit.nb.batch`` runs a
notebook over a grid of parameters (kit.batch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from kit.errors import KitError
from kit.fmt import jsonable

MIME = "application/vnd.kit.published+json"


class NotebookError(KitError):
    """A cell failed: ``cell`` is its execution count, ``error`` the exception as ``Name: message``."""

    def __init__(self, message: str, cell: int | None = None, error: str | None = None):
        super().__init__(message)
        self.cell = cell
        self.error = error


def publish(name: str, value: Any, show: bool = True) -> Any:
    """Record ``value`` under ``name`` in this cell's output (and show it, unless ``show`` is False)."""
    from IPython.display import display

    data = {MIME: {name: jsonable(value)}}
    if show:
        data["text/plain"] = f"{name} = {value!r}"
    display(data, raw=True)
    return value


def read(path: str | Path) -> dict[str, Any]:
    """Every value published in an executed notebook, later cells overriding earlier ones."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    values: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {})
            if MIME in data:
                payload = data[MIME]
                values.update(json.loads(payload) if isinstance(payload, str) else payload)
    return values


def execute(notebook: str | Path, output: str | Path, parameters: Mapping[str, Any] | None = None,
            cwd: str | Path | None = None, kernel_name: str | None = None, timeout: int | None = None) -> dict[str, Any]:
    """Run ``notebook`` with papermill into ``output`` and return its published values.

    A failing cell raises NotebookError naming the notebook, the cell and the error; the executed
    notebook is kept at ``output`` for inspection.
    """
    import logging

    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.WARNING)  # its per-run INFO lines drown the kit's own
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(notebook), str(output), parameters=dict(parameters or {}), cwd=str(cwd) if cwd else None,
                            kernel_name=kernel_name, progress_bar=False, execution_timeout=timeout)
    except pm.PapermillExecutionError as exc:
        raise NotebookError(f"{Path(notebook).name}: cell {exc.exec_count} failed with {exc.ename}: {exc.evalue} "
                            f"(the executed notebook is kept at {output})", exc.exec_count, f"{exc.ename}: {exc.evalue}") from None
    return read(output)


def batch(notebook: str | Path, parameters: Mapping[str, Any], out: str | Path, parallel: int | None = None,
          devices: str | Sequence[Any] | None = None, **options: Any) -> list[dict[str, Any]]:
    """Run ``notebook`` once per combination of ``parameters`` (a list is a sweep) into ``out``; the results table.

    ``kit.nb.batch("20_lora_sft", {"lora_rank": [2, 8, 32], "max_samples": 20}, "runs/rank")`` is
    ``kit batch 20_lora_sft -p lora_rank 2 8 32 -p max_samples 20 --out runs/rank``; see kit.batch.run_batch
    for ``options`` (kernel_name, timeout, lang, log).
    """
    from kit.batch import run_batch

    return run_batch(notebook, parameters, out, parallel, devices, **options)
