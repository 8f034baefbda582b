"""The helpers every notebook file uses (md, code, params), the rule that keeps the two editions' code identical,
and writing the notebooks (or, with --check, comparing them).

A cell is written as plain strings, exactly as the notebook shows it (no f-strings, no doubled braces), and starts
with its name, which is its cell id in both editions: ``code("train-run", "...")``. Names are unique within a
notebook and are nbformat ids (1 to 64 letters, digits, - or _); a new cell takes a new name and no other cell's
id changes.

A code cell is written once, or twice where it has comments: ``code(name, en, zh)`` gives the Chinese edition its
own comments, and the two copies must be the same code once comments are removed (``without_comments``;
tests/test_notebooks.py checks the committed notebooks the same way). A cell written once gets its comments
translated by COMMENTS.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / "notebooks"
EDITIONS = ("en", "zh")

# nbformat's rule for a cell id.
CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@dataclass(frozen=True)
class Cell:
    id: str
    kind: str  # "markdown", "code", "parameters" (a code cell tagged parameters) or "bookkeeping" (see bookkeeping())
    en: str
    zh: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not CELL_ID.fullmatch(self.id):
            raise ValueError(f"cell name {self.id!r}: a cell starts with its name, 1 to 64 letters, digits, - or _, "
                             f'e.g. code("train-run", ...)')


def md(cell_id: str, en: str, zh: str) -> Cell:
    """A markdown cell: its English and its Chinese."""
    return Cell(cell_id, "markdown", en.strip(), zh.strip())


def without_comments(source: str) -> str:
    """``source`` with every comment removed (found by tokenize, so a '#' inside a string stays), and the lines
    that held only a comment dropped: what runs, to compare the two editions' code cells."""
    lines = source.splitlines()
    drop = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            kept = lines[row - 1][:col].rstrip()
            if not kept:
                drop.add(row - 1)
            lines[row - 1] = kept
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


# The comments of the code cells written once, code(name, src), and their Chinese for the Chinese edition.
COMMENTS = {
    "# the kit's messages, tables and errors from here on are in this language": "# 从这里起，kit 的消息、表格和错误都使用这种语言",
    "# First, before anything imports torch_npu: the NPU runtime reads these once, when it starts.":
        "# 先于任何导入 torch_npu 的代码：NPU 运行时只在启动时读取一次这些变量。",
    "# What kit demo and the tests read back from this notebook (recorded, not shown).":
        "# kit demo 和测试从本 Notebook 读回的值（只记录，不显示）。",
    "# What kit demo, kit batch and the tests read back from this notebook (recorded, not shown).":
        "# kit demo、kit batch 和测试从本 Notebook 读回的值（只记录，不显示）。",
    "# What kit demo and the tests read back (recorded, not shown).": "# kit demo 和测试读回的值（只记录，不显示）。",
    "# Replaces only an earlier export of the kit's (it carries kit_export.json); any other folder is refused.":
        "# 只替换 kit 之前导出的目录（其中有 kit_export.json）；其他任何目录都会被拒绝。",
    "# a list is a sweep over its values": "# 列表表示对其中每个值各运行一次",
    "# the runs that completed: a colour per rank, a line style per learning rate": "# 已完成的运行：每个秩一种颜色，每个学习率一种线型",
}


def comments(source: str) -> list[str]:
    return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def _edition(en: str, zh: str | None) -> str:
    """The Chinese edition's copy of a code cell: ``zh`` where given, else ``en`` with COMMENTS translated. It may
    differ from ``en`` in comments only, and every comment in it must be Chinese."""
    en = en.strip()
    if zh is None:
        zh = en
        for english, chinese in COMMENTS.items():
            zh = zh.replace(english, chinese)
    zh = zh.strip()
    if without_comments(en) != without_comments(zh):
        raise ValueError(f"the Chinese copy of this code cell differs in more than comments:\n{en}\n---\n{zh}")
    english = [c for c in comments(zh) if not is_chinese(c)]
    if english:
        raise ValueError(f"comments in English in the Chinese edition: {english}; add them to COMMENTS or give code(name, en, zh)")
    return zh


def code(cell_id: str, en: str, zh: str | None = None) -> Cell:
    """A code cell; ``zh``, where given, is the Chinese edition's copy with its own comments (the code the same)."""
    return Cell(cell_id, "code", en.strip(), _edition(en, zh))


# The tag and metadata of a notebook's bookkeeping cell: JupyterLab shows it folded (source and outputs hidden; the
# classic notebook reads "collapsed"), and the docs leave it out (myst-nb's remove-cell).
BOOKKEEPING_TAG = "bookkeeping"
BOOKKEEPING_METADATA = {"tags": [BOOKKEEPING_TAG, "remove-cell"], "collapsed": True,
                        "jupyter": {"source_hidden": True, "outputs_hidden": True}}


def bookkeeping(cell_id: str, en: str, zh: str | None = None) -> Cell:
    """The notebook's last cell: every ``kit.tutorial.publish`` of the values kit demo, kit batch and the tests read
    back, in one place out of the reader's way (tagged, folded). No other cell publishes (tests/test_notebooks.py)."""
    return Cell(cell_id, "bookkeeping", en.strip(), _edition(en, zh))


# The first parameter of every notebook: the language of everything the kit shows (kit.i18n.set_language).
LANG_COMMENT = {"en": "# the language of the kit's output (tables, messages, errors): en or zh",
                "zh": "# kit 输出（表格、消息、错误）的语言：en 或 zh"}


def _with_lang(src: str, lang: str) -> str:
    """``lang = "<edition>"`` first, its comment in the column the cell's other comments use."""
    column = next((line.index("  #") + 2 for line in src.splitlines() if "  #" in line), 0)
    assignment = f'lang = "{lang}"'
    return f"{assignment.ljust(max(column, len(assignment) + 2))}{LANG_COMMENT[lang]}\n{src}"


def params(cell_id: str, en: str, zh: str | None = None) -> Cell:
    """The parameters cell (tagged ``parameters``, papermill's and kit demo's knobs). The helper puts
    ``lang = "en"`` or ``lang = "zh"`` first, with its comment, so the source starts at the second parameter;
    ``zh``: the Chinese edition's copy with its own comments."""
    return Cell(cell_id, "parameters", _with_lang(en.strip(), "en"), _with_lang(_edition(en, zh), "zh"))


def notebooks() -> dict[str, list[Cell]]:
    """Every notebook's cells by notebook name, in order: nbNN_<name>.py gives NN_<name>."""
    found = {}
    for path in sorted(HERE.glob("nb[0-9][0-9]_*.py")):
        module = importlib.import_module(f".{path.stem}", __package__)
        found[path.stem[2:]] = module.CELLS
    return found


def build(name: str, cells: list[Cell], lang: str) -> nbformat.NotebookNode:
    """One edition of a notebook, its cells' ids their names."""
    if any(c.kind == "bookkeeping" for c in cells[:-1]):
        raise ValueError(f"{name}: the bookkeeping cell is the notebook's last cell, and there is one")
    seen = set()
    for cell in cells:
        if cell.id in seen:
            raise ValueError(f"{name}: two cells named {cell.id!r}; a name is a cell id and must be unique in its notebook")
        seen.add(cell.id)
    book = nbformat.v4.new_notebook()
    book.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}}
    for cell in cells:
        text = cell.en if lang == "en" else cell.zh
        if cell.kind == "markdown":
            made = nbformat.v4.new_markdown_cell(text)
        else:
            made = nbformat.v4.new_code_cell(text)
            if cell.kind == "parameters":
                made.metadata["tags"] = ["parameters"]
            elif cell.kind == "bookkeeping":
                made.metadata.update(copy.deepcopy(BOOKKEEPING_METADATA))
        made["id"] = cell.id
        book.cells.append(made)
    nbformat.validate(book)
    return book


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make_notebooks.py",
                                 description="Write notebooks/en and notebooks/zh from scripts/notebooks/.")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed notebooks differ from the source")
    a = ap.parse_args(argv)
    books = notebooks()
    stale = []
    for lang in EDITIONS:
        for name, cells in books.items():
            path = OUT / lang / f"{name}.ipynb"
            text = nbformat.writes(build(name, cells, lang)) + "\n"
            if a.check:
                if not path.is_file() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python scripts/make_notebooks.py):", *stale, sep="\n  ")
        return 1
    return 0
