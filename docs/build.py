"""Build the documentation site: executed notebooks in, HTML out (called by scripts/build_docs.sh).

    python docs/build.py [EXECUTED_DIR] [--lang en,zh] [--out docs/_build/html] [--docs docs]

1. Executed notebooks. EXECUTED_DIR (or $KIT_DOCS_EXECUTED) holds notebooks that already ran, as
   ``EXECUTED_DIR/<lang>/<name>.ipynb`` (``EXECUTED_DIR/notebooks/<lang>/<name>.ipynb`` also works).
   Without it, the notebooks under ``notebooks/<lang>/`` are executed here, in order, in one scratch
   folder per language, with papermill (kit.tutorial.execute) and their default parameters, which run on
   the CPU with the embedded tiny model. $KIT_DOCS_PARAMETERS (a JSON object) overrides parameters.
2. They are copied into ``docs/<lang>/notebooks/`` (git-ignored), checked to carry outputs.
3. ``sphinx-build -W --keep-going -n -E -b html`` per language: any warning, broken cross-reference
   included, fails the build. The notebooks are never executed by Sphinx (nb_execution_mode "off").

Exit status: 0 on success, 1 when a build failed, 2 when the inputs are missing or wrong.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
LANGUAGES = ("en", "zh")
# The notebooks the pages link to by name; notebooks/<lang>/ may hold more (all are rendered).
NOTEBOOKS = ("00_environment_check", "10_npu_setup", "20_lora_sft", "30_chat_inference")
GENERATED = "notebooks"  # docs/<lang>/notebooks/: executed copies, git-ignored


class BuildError(Exception):
    """Missing or unusable inputs: a message for the person building, no traceback."""


def expected_notebooks(lang: str, repo: Path = REPO) -> list[str]:
    """Names the site needs for ``lang``: the repository's notebooks plus the ones the pages link to."""
    present = {p.stem for p in (repo / "notebooks" / lang).glob("*.ipynb")}
    return sorted(present | set(NOTEBOOKS))


def _has_outputs(path: Path) -> bool:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return any(cell.get("outputs") for cell in nb.get("cells", []) if cell.get("cell_type") == "code")


def find_executed(executed_dir: Path, lang: str, names: Sequence[str]) -> dict[str, Path]:
    """``{name: path}`` of the executed copies of ``names`` for ``lang``; BuildError if any is missing."""
    folders = [executed_dir / lang, executed_dir / "notebooks" / lang]
    found: dict[str, Path] = {}
    for name in names:
        for folder in folders:
            if (folder / f"{name}.ipynb").is_file():
                found[name] = folder / f"{name}.ipynb"
                break
    missing = [n for n in names if n not in found]
    if missing:
        raise BuildError(f"no executed copy of {', '.join(m + '.ipynb' for m in missing)} for '{lang}' in "
                         f"{' or '.join(str(f) for f in folders)}; run the notebooks first (kit demo), or call "
                         f"scripts/build_docs.sh without EXECUTED_DIR to execute them here")
    empty = [str(p) for p in found.values() if not _has_outputs(p)]
    if empty:
        raise BuildError(f"these notebooks have no outputs (not executed?): {', '.join(empty)}; the site shows "
                         "the outputs of a real run")
    return found


def execute_notebooks(lang: str, into: Path, parameters: dict | None = None, repo: Path = REPO) -> Path:
    """Run ``notebooks/<lang>/*.ipynb`` in name order, all in one scratch folder; return ``into``.

    The notebooks build on each other (the chat notebook loads the adapter the training notebook
    wrote), hence one working folder per language.
    """
    from kit import tutorial as nb

    sources = sorted((repo / "notebooks" / lang).glob("*.ipynb"))
    if not sources:
        raise BuildError(f"no notebooks in {repo / 'notebooks' / lang} to execute")
    work = into / lang / "work"
    work.mkdir(parents=True, exist_ok=True)
    for source in sources:
        start = time.monotonic()
        print(f"[docs] executing {lang}/{source.name} ...", flush=True)
        nb.execute(source, into / lang / source.name, parameters or {}, cwd=work)
        print(f"[docs]   done in {time.monotonic() - start:.0f} s", flush=True)
    return into


def stage_notebooks(executed: dict[str, Path], lang: str, docs: Path = DOCS) -> Path:
    """Copy the executed notebooks into docs/<lang>/notebooks/ (replacing what was there)."""
    target = docs / lang / GENERATED
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, path in executed.items():
        shutil.copyfile(path, target / f"{name}.ipynb")
    return target


def sphinx_command(source: Path, out: Path, doctrees: Path) -> list[str]:
    # -W: warnings are errors; --keep-going: report all of them; -n: nitpicky (every broken reference);
    # -E: fresh environment, so references generated from the code are never stale; -q: warnings only;
    # -d: Sphinx's pickled environment goes to a scratch folder, not into the published HTML.
    return [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-E", "-q", "-b", "html",
            "-d", str(doctrees), str(source), str(out)]


LANDING = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>kit</title>
<meta http-equiv="refresh" content="0; url=en/index.html"></head>
<body><p><a href="en/index.html">English</a> | <a href="zh/index.html">中文</a></p></body></html>
"""


def build(executed_dir: Path | None, languages: Sequence[str], out: Path, docs: Path = DOCS,
          parameters: dict | None = None) -> int:
    # Before anything slow (executing notebooks takes minutes).
    missing = [m for m in ("sphinx", "myst_nb", "sphinx_book_theme") if importlib.util.find_spec(m) is None]
    if missing:
        raise BuildError(f"{', '.join(missing)} not installed: pip install -e '.[docs]'")
    scratch = None
    try:
        if executed_dir is None:
            scratch = Path(tempfile.mkdtemp(prefix="kit-docs-exec-"))
            for lang in languages:
                execute_notebooks(lang, scratch, parameters)
            executed_dir = scratch
        for lang in languages:
            stage_notebooks(find_executed(executed_dir, lang, expected_notebooks(lang)), lang, docs)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    failed = []
    for lang in languages:
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="kit-docs-doctrees-") as doctrees:
            # KIT_LANG: whatever the kit writes into this edition's pages (the generated references) is in its language.
            result = subprocess.run(sphinx_command(docs / lang, out / lang, Path(doctrees)), cwd=docs,
                                    env={**os.environ, "KIT_LANG": lang})
        status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"[docs] {lang}: {status} in {time.monotonic() - start:.1f} s -> {out / lang / 'index.html'}", flush=True)
        if result.returncode != 0:
            failed.append(lang)
    # myst-nb stages notebook images in <out>/jupyter_execute (beside each language's folder); the
    # pages use the copies in <lang>/_images, so the staging folder is not part of the site.
    shutil.rmtree(out / "jupyter_execute", ignore_errors=True)
    if failed:
        print(f"[docs] the build of {', '.join(failed)} failed: every warning above is an error", file=sys.stderr)
        return 1
    (out / "index.html").write_text(LANDING, encoding="utf-8")
    (out / ".nojekyll").write_text("", encoding="utf-8")  # GitHub Pages: serve _static/ as is
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/build_docs.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("executed_dir", nargs="?", default=os.environ.get("KIT_DOCS_EXECUTED") or None,
                        help="folder with executed notebooks as <lang>/<name>.ipynb (default: execute them now)")
    parser.add_argument("--lang", default=",".join(LANGUAGES), help="languages to build, comma separated (en,zh)")
    parser.add_argument("--out", default=str(DOCS / "_build" / "html"), help="output folder (default docs/_build/html)")
    parser.add_argument("--docs", default=str(DOCS), help="the docs source folder (tests build a modified copy)")
    ns = parser.parse_args(argv)
    languages = [x.strip() for x in ns.lang.split(",") if x.strip()]
    unknown = [x for x in languages if x not in LANGUAGES]
    if unknown:
        print(f"error: --lang {','.join(unknown)}: the site exists in {', '.join(LANGUAGES)}", file=sys.stderr)
        return 2
    try:
        parameters = json.loads(os.environ.get("KIT_DOCS_PARAMETERS") or "{}")
    except json.JSONDecodeError as exc:
        print(f"error: KIT_DOCS_PARAMETERS is not a JSON object: {exc}", file=sys.stderr)
        return 2
    try:
        return build(Path(ns.executed_dir).resolve() if ns.executed_dir else None, languages,
                     Path(ns.out).resolve(), Path(ns.docs).resolve(), parameters)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a notebook that failed to run (kit.tutorial.NotebookError names the cell)
        from kit.errors import KitError

        if not isinstance(exc, KitError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
