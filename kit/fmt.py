"""Small formatting helpers shared by the reports the kit shows (doctor, estimate, notebook values)."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Sequence, Union

GiB = 1 << 30
MiB = 1 << 20


def gib(n: float | None, decimals: int = 1) -> str:
    """A size in GiB ("?" when unknown): the doctor's free disk and memory."""
    return "?" if n is None else f"{n / GiB:.{decimals}f} GiB"


def size(n: float) -> str:
    """Sizes for people: GiB, or MiB under 1 GiB so small models do not read as 0.00."""
    return gib(n, 2) if n >= GiB else f"{n / MiB:.1f} MiB"


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def ljust(text: str, columns: int) -> str:
    """``text`` padded with spaces to ``columns`` terminal columns (str.ljust counts characters, not columns)."""
    return text + " " * max(0, columns - width(text))


def rjust(text: str, columns: int) -> str:
    return " " * max(0, columns - width(text)) + text


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "tolist"):  # numpy and torch scalars / arrays
        return value.tolist()
    return str(value)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: paths and unknown objects become text, dataclasses dicts, tuples lists."""
    return json.loads(json.dumps(value, default=_default, ensure_ascii=False))


# A table cell: HTML (already escaped by the caller), or (HTML, CSS style).
Cell = Union[str, tuple[str, str]]


def _cell(tag: str, cell: Cell) -> str:
    content, style = (cell, None) if isinstance(cell, str) else cell
    return f"<{tag} style='{style}'>{content}</{tag}>" if style else f"<{tag}>{content}</{tag}>"


def html_table(header: Sequence[Cell], rows: Sequence[Sequence[Cell]]) -> str:
    """A plain HTML table for a notebook; the caller escapes cell contents (they may hold markup)."""
    head = "".join(_cell("th", c) for c in header)
    body = "".join("<tr>" + "".join(_cell("td", c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Picture:
    """A matplotlib Figure that IPython shows as a PNG picture.

    The kit draws on ``matplotlib.figure.Figure`` objects, never through pyplot, so it does not switch
    a notebook kernel's plotting backend; without pyplot's inline backend IPython has no formatter for
    a bare Figure and would print its repr, so this gives it one.
    """

    def __init__(self, figure: Any, dpi: int = 100):
        self.figure, self.dpi = figure, dpi

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=self.dpi, bbox_inches="tight")
        return buf.getvalue()
