"""Notebooks as the kit runs them: where its own are, publishing values, executing with papermill.

``kit.nb`` is the face of this module for notebooks and people (with ``kit.nb.batch``); ``kit.demo``
and ``kit.batch`` use it directly.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from kit.errors import KitError
from kit.fmt import jsonable
from kit.i18n import _

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
        raise NotebookError(_("{notebook}: cell {cell} failed with {error} (the executed notebook is kept at {output})").format(
            notebook=Path(notebook).name, cell=exc.exec_count, error=f"{exc.ename}: {exc.evalue}", output=output),
            exc.exec_count, f"{exc.ename}: {exc.evalue}") from None
    return read(output)


def notebook_dir() -> Path:
    """The notebooks ``kit demo`` runs (``en/``, ``zh/``).

    An installed wheel carries them as package data, ``kit/notebooks`` (setup.py maps the
    repository's ``notebooks/`` there, so git keeps one copy); an editable install or a checkout
    reads ``notebooks/`` at the repository root, next to the package.
    """
    packaged = Path(str(resources.files("kit") / "notebooks"))
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[1] / "notebooks"
    if checkout.is_dir():
        return checkout
    raise KitError(_("the tutorial notebooks are missing: neither {packaged} nor {checkout} exists; reinstall the kit").format(
        packaged=packaged, checkout=checkout))
