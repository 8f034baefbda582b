"""The kit as a user installs it: a wheel built from this tree, a new venv with it, ``kit demo`` run elsewhere.

tests/test_wheel.py reads what ``wheel_demo`` made; the session makes it once, in the background
(tests/notebook_runs.py), while the other tests run. That demo is the session's run of the Chinese edition with
other knobs, which tests/test_notebooks.py reads too: one whole demo for both.

The new venv gets the kit from the wheel and nothing else: its dependencies (torch, transformers,
papermill, ...) come from the test's own venv through a ``.pth`` line naming that venv's
site-packages, instead of a gigabyte reinstall. A ``.pth`` line adds a folder to ``sys.path`` but
does not run the ``.pth`` files inside it, so the editable install of the kit there stays inactive.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# What the wheel is built from: the packaging files, the package and the notebooks it maps in.
# Built from a copy, so the build leaves no build/ or egg-info in the checkout and no stale
# build/lib from an earlier build can slip into the wheel.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "kit", "notebooks")


def run(cmd: list[str], cwd: Path, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def clean_env() -> dict[str, str]:
    # Nothing may point the new venv back at the checkout.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def build_wheel(src: Path, dist: Path) -> Path:
    src.mkdir(parents=True)
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    dist.mkdir(parents=True)
    # No build isolation: the test venv's setuptools builds it, offline, in seconds.
    run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)], cwd=src)
    (built,) = dist.glob("kit-*.whl")
    return built


def make_venv(wheel: Path, root: Path) -> Path:
    root.parent.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root.parent)
    python = root / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_kit_test_dependencies.pth").write_text("".join(f"{p}\n" for p in ours), encoding="utf-8")
    # This venv's pip installs into the new one (pip >= 22.3), so the new venv needs no pip of its own.
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=root)
    return root


def wheel_demo(folder: Path, overrides: list[str], lang: str) -> dict[str, Any]:
    """Build the wheel, install it into a new venv, run ``kit demo OVERRIDES --lang LANG`` from a folder outside the
    checkout; ``report`` is what its ``--json`` printed."""
    wheel = build_wheel(folder / "src", folder / "dist")
    venv = make_venv(wheel, folder / "venv" / "venv")
    work = folder / "elsewhere"  # not the checkout: nothing found relative to the working directory
    work.mkdir()
    proc = run([str(venv / "bin" / "kit"), "demo", *overrides, "--lang", lang, "--run_dir", "run", "--json"], cwd=work,
               timeout=1200, env=clean_env())
    return {"wheel": str(wheel), "venv": str(venv), "work": str(work), "stdout": proc.stdout,
            "report": json.loads(proc.stdout.strip().splitlines()[-1])}
