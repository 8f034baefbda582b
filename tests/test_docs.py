"""The documentation site: generated references complete, the build script works, broken links fail it.

The builds use small stand-in notebooks with outputs (written here), never the real notebooks:
running those takes minutes and is the job of `kit demo` / the notebook tests.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# 1x1 PNG: the stand-ins carry an image, as the training notebook's loss plot does.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


kit_docs = _load("kit_docs", DOCS / "_ext" / "kit_docs.py")
docs_build = _load("kit_docs_build", DOCS / "build.py")


def write_standins(root: Path, outputs: bool = True) -> Path:
    """Executed-looking notebooks for every page the site needs, as root/<lang>/<name>.ipynb."""
    nbformat = pytest.importorskip("nbformat")
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    for lang in docs_build.LANGUAGES:
        for name in docs_build.expected_notebooks(lang):
            cells = [
                new_markdown_cell(f"# {name}\n\nA stand-in for the executed notebook."),
                new_code_cell("steps = 3", metadata={"tags": ["parameters"]}, execution_count=1),
                new_code_cell("print('stand-in output')", execution_count=2,
                              outputs=[new_output("stream", name="stdout", text="stand-in output\n")] if outputs else []),
                new_code_cell("plot()", execution_count=3,
                              outputs=[new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})] if outputs else []),
                new_code_cell("kit.tutorial.publish('loss', 1.0, show=False)", execution_count=4,
                              outputs=[new_output("display_data", data={"application/vnd.kit.published+json": {"loss": 1.0}})] if outputs else []),
            ]
            notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
            path = root / lang / f"{name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, path)
    return root


def copy_docs(dest: Path) -> Path:
    """The docs sources without build output or staged notebooks, to build (or break) a copy."""
    ignore = shutil.ignore_patterns("_build", "__pycache__", docs_build.GENERATED)
    shutil.copytree(DOCS, dest, ignore=ignore)
    return dest


def build(args: list[str]) -> subprocess.CompletedProcess:
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        pytest.importorskip(module, reason="the docs extra is not installed: pip install -e '.[docs]'")
    return subprocess.run(["bash", str(REPO / "scripts" / "build_docs.sh"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable})


# ----------------------------------------------------------------------------- generated references

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_config_reference_lists_every_key(lang: str) -> None:
    from kit.config import KEYS, SECTIONS

    text = kit_docs.config_reference_md(lang)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w.]+)` \|.*$", text, re.M)}
    assert set(rows) == set(KEYS), f"missing: {sorted(set(KEYS) - set(rows))}; unknown: {sorted(set(rows) - set(KEYS))}"
    for section in SECTIONS:  # the FAQ links to these labels
        assert f"(config-{section})=" in text
    from kit.config import key_reference

    for row in key_reference():
        line = rows[row["key"]]
        assert f"`{kit_docs.format_default(row['default'])}`" in line, line
        assert row["type"].replace("|", "\\|") in line, line
        for choice in row["choices"]:
            assert f"`{choice}`" in line, line


def test_config_reference_formats_defaults_as_yaml() -> None:
    assert kit_docs.format_default(None) == "null"
    assert kit_docs.format_default(True) == "true"
    assert kit_docs.format_default(5e-5) == "5e-05"
    text = kit_docs.config_reference_md("en")
    assert re.search(r"^\| `cutoff_len` \| int \| `2048` \|", text, re.M)


def test_cli_reference_covers_every_command() -> None:
    from kit.cli import COMMANDS, USAGE

    text = kit_docs.cli_reference_md("en")
    assert USAGE.strip() in text
    for name in COMMANDS:
        assert f"(cli-{name})=" in text and f"## `kit {name}`" in text
    # A command with an argparse page shows it whole, options included.
    assert "usage: kit doctor" in text and "--json" in text and "--no-smoke" in text


def test_usage_lines_are_split_per_command() -> None:
    from kit.cli import COMMANDS

    usages = kit_docs.usage_lines()
    assert set(usages) == set(COMMANDS)
    assert usages["preprocess"].count("\n") == 1  # its description continues on a second line
    assert all(line.startswith(name) for name, line in usages.items())


def test_pages_exist_in_both_languages_with_the_same_labels() -> None:
    def pages(lang: str) -> dict[str, set[str]]:
        root = DOCS / lang
        return {str(p.relative_to(root)): set(re.findall(r"^\((\S+)\)=$", p.read_text(encoding="utf-8"), re.M))
                for p in root.rglob("*.md") if docs_build.GENERATED not in p.relative_to(root).parts}

    en, zh = pages("en"), pages("zh")
    assert set(en) == set(zh), f"pages only in one language: {sorted(set(en) ^ set(zh))}"
    for page in en:
        assert en[page] == zh[page], f"{page}: labels differ between en and zh: {sorted(en[page] ^ zh[page])}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reference_pages_hold_the_generation_markers(lang: str) -> None:
    assert kit_docs.CONFIG_MARKER in (DOCS / lang / "reference" / "config.md").read_text(encoding="utf-8")
    assert kit_docs.CLI_MARKER in (DOCS / lang / "reference" / "cli.md").read_text(encoding="utf-8")
    assert kit_docs.YAML_MARKER in (DOCS / lang / "quickstart.md").read_text(encoding="utf-8")


def test_pages_link_every_notebook_they_need() -> None:
    text = (DOCS / "en" / "quickstart.md").read_text(encoding="utf-8")
    for name in docs_build.NOTEBOOKS:
        assert f"{{doc}}`notebooks/{name}`" in text


# ----------------------------------------------------------------------------- the build script

def test_build_reports_missing_executed_notebooks(tmp_path: Path) -> None:
    (tmp_path / "executed" / "en").mkdir(parents=True)
    result = build([str(tmp_path / "executed"), "--lang", "en", "--docs", str(copy_docs(tmp_path / "docs")),
                    "--out", str(tmp_path / "out")])
    assert result.returncode == 2
    assert "no executed copy of 00_environment_check.ipynb" in result.stderr
    assert not (tmp_path / "out").exists()


def test_build_refuses_notebooks_without_outputs(tmp_path: Path) -> None:
    executed = write_standins(tmp_path / "executed", outputs=False)
    result = build([str(executed), "--lang", "en", "--docs", str(copy_docs(tmp_path / "docs")), "--out", str(tmp_path / "out")])
    assert result.returncode == 2
    assert "no outputs" in result.stderr


@pytest.mark.slow
def test_build_script_builds_both_sites_from_executed_notebooks(tmp_path: Path) -> None:
    executed = write_standins(tmp_path / "executed")
    out = tmp_path / "out"
    result = build([str(executed), "--docs", str(copy_docs(tmp_path / "docs")), "--out", str(out)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "index.html").is_file()
    for lang in docs_build.LANGUAGES:
        for page in ("index", "install", "quickstart", "notebooks", "faq", "reference/cli", "reference/config"):
            assert (out / lang / f"{page}.html").is_file(), f"{lang}/{page}.html was not built"
        for name in docs_build.expected_notebooks(lang):
            html = (out / lang / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
            assert "stand-in output" in html, f"{lang}/{name}: the notebook's outputs are not on the page"
            assert "_images/" in html, f"{lang}/{name}: the notebook's image is not on the page"
        config_html = (out / lang / "reference" / "config.html").read_text(encoding="utf-8")
        from kit.config import KEYS

        missing = [k for k in KEYS if f">{k}<" not in config_html]
        assert not missing, f"{lang}: keys missing from the built config reference: {missing}"
    assert not (out / "jupyter_execute").exists()


@pytest.mark.slow
def test_broken_references_fail_the_build(tmp_path: Path) -> None:
    executed = write_standins(tmp_path / "executed")
    docs = copy_docs(tmp_path / "docs")
    with (docs / "en" / "faq.md").open("a", encoding="utf-8") as f:
        f.write("\nSee {doc}`no-such-page`, {ref}`no-such-label` and [this](no-such-file.md).\n")
    result = build([str(executed), "--lang", "en", "--docs", str(docs), "--out", str(tmp_path / "out")])
    assert result.returncode == 1, result.stdout + result.stderr
    for target in ("no-such-page", "no-such-label", "no-such-file.md"):
        assert target in result.stderr, f"the broken reference {target!r} was not reported:\n{result.stderr}"
