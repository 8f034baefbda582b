"""The kit as a user installs it: a wheel (not editable) in a fresh venv, ``kit demo`` run elsewhere.

A checkout hides what a wheel forgets: there the notebooks, the tiny model and the data all lie next
to the package. Here the wheel is built from this tree, installed into a new venv, and ``kit demo``
runs from a folder outside the repository, so only what the wheel carries is there.

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

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# What the wheel is built from: the packaging files, the package and the notebooks it maps in.
# Built from a copy, so the build leaves no build/ or egg-info in the checkout and no stale
# build/lib from an earlier build can slip into the wheel.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "kit", "notebooks")
# Short enough for 2 cores, long enough to write an adapter and log a loss (the demo's summary shows one).
DEMO_ARGS = ("num_train_epochs=1", "max_samples=20", "logging_steps=2", "max_new_tokens=16")


def _run(cmd: list[str], cwd: Path, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _clean_env() -> dict[str, str]:
    # Nothing may point the new venv back at the checkout.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    # No build isolation: the test venv's setuptools builds it, offline, in seconds.
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)], cwd=src)
    (built,) = dist.glob("kit-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("papermill", reason="kit demo runs the notebooks with papermill (pip install 'kit[notebooks]')")
    root = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root.parent)
    python = root / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_kit_test_dependencies.pth").write_text("".join(f"{p}\n" for p in ours), encoding="utf-8")
    # This venv's pip installs into the new one (pip >= 22.3), so the new venv needs no pip of its own.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=root)
    return root


def _installed_kit(venv: Path) -> Path:
    out = _run([str(venv / "bin" / "python"), "-c", "import kit; print(kit.__file__)"], cwd=venv, env=_clean_env()).stdout
    return Path(out.strip()).parent


def test_wheel_carries_what_the_runtime_reads(wheel: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for lang in ("en", "zh"):
        for notebook in (REPO / "notebooks" / lang).glob("*.ipynb"):
            assert f"kit/notebooks/{lang}/{notebook.name}" in names
    for path in ("kit/tiny_qwen/model.safetensors", "kit/tiny_qwen/tokenizer.json", "kit/data/demo/dataset_info.json",
                 "kit/data/templates.json", "kit/deepspeed/ds_z0_config.json", "kit/examples/qwen1_5_lora_sft_ds.yaml",
                 "kit/examples/qwen3_lora_sft.yaml", "kit/estimate/model_shapes.json", "kit/doctor/ascend_stack.json"):
        assert path in names
    # The tiny model's build stays out of the package.
    assert not any(n.startswith(("scripts/", "notebooks/", "tests/")) for n in names)


def test_kit_demo_runs_from_the_installed_wheel(venv: Path, tmp_path: Path) -> None:
    kit_dir = _installed_kit(venv)
    assert kit_dir.is_relative_to(venv) and not kit_dir.is_relative_to(REPO), kit_dir

    work = tmp_path / "elsewhere"  # not the checkout: nothing found relative to the working directory
    work.mkdir()
    proc = _run([str(venv / "bin" / "kit"), "demo", *DEMO_ARGS, "--run_dir", "run", "--json"], cwd=work, timeout=900,
                env=_clean_env())
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    run = (work / "run").resolve()
    assert Path(report["run_dir"]) == run
    adapter = Path(report["values"]["20_lora_sft"]["output_dir"])
    assert adapter.is_relative_to(run)
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (adapter / name).is_file(), name
    # The notebooks' kernel imported the installed kit too: notebook 20 prints the quick-start YAML's path.
    executed = (run / "en" / "20_lora_sft.ipynb").read_text(encoding="utf-8")
    assert str(kit_dir / "examples") in executed
    assert str(REPO / "kit") + os.sep not in executed
