"""Tests of ``kit.fmt``: the helpers the doctor, the estimate and the notebooks share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit.fmt import GiB, MiB, gib, html_table, jsonable, size


def test_sizes():
    assert gib(None) == "?" and gib(int(22.74 * GiB)) == "22.7 GiB" and gib(64 * GiB, 2) == "64.00 GiB"
    assert size(3 * GiB) == "3.00 GiB" and size(142 * MiB) == "142.0 MiB" and size(0) == "0.0 MiB"


@dataclass
class Point:
    where: Path
    xy: tuple[int, int]


def test_jsonable_turns_paths_dataclasses_and_tensors_into_json():
    torch = pytest.importorskip("torch")
    value = {"p": Path("/a/b"), "pt": Point(Path("x"), (1, 2)), "t": torch.tensor(1.5), "ts": (1, "a"), 3: object}
    out = jsonable(value)
    assert out["p"] == "/a/b" and out["pt"] == {"where": "x", "xy": [1, 2]} and out["t"] == 1.5 and out["ts"] == [1, "a"]
    assert out["3"] == str(object)  # keys become text, unknown objects their str
    assert json.loads(json.dumps(out)) == out


def test_html_table_styles_cells_and_leaves_markup_to_the_caller():
    table = html_table(["a", ("b", "text-align:left")], [["<b>1</b>", ("2", "color:red")]])
    assert table == ("<table><thead><tr><th>a</th><th style='text-align:left'>b</th></tr></thead>"
                     "<tbody><tr><td><b>1</b></td><td style='color:red'>2</td></tr></tbody></table>")


def test_picture_gives_ipython_a_png_without_pyplot():
    """A bare Figure has no IPython formatter without pyplot's inline backend: notebooks showed '<Figure ...>'."""
    import matplotlib
    from matplotlib.figure import Figure

    from kit.fmt import Picture

    backend = matplotlib.get_backend()
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [1, 0])
    png = Picture(fig)._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 500
    assert matplotlib.get_backend() == backend
