"""The kit as a user installs it: a wheel (not editable) in a fresh venv, ``kit demo --lang zh`` run elsewhere.

A checkout hides what a wheel forgets: there the notebooks, the tiny model and the data all lie next
to the package. Here the wheel is built from this tree, installed into a new venv, and ``kit demo``
runs from a folder outside the repository, so only what the wheel carries is there. The session makes
all three once, in the background (tests/wheel_build.py, run by tests/notebook_runs.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wheel_build import clean_env, run as run_checked

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_run(notebook_runs) -> dict:
    pytest.importorskip("papermill", reason="kit demo runs the notebooks with papermill (pip install 'kit[notebooks]')")
    return notebook_runs.get("wheel").result


@pytest.fixture(scope="module")
def wheel(wheel_run: dict) -> Path:
    return Path(wheel_run["wheel"])


@pytest.fixture(scope="module")
def venv(wheel_run: dict) -> Path:
    return Path(wheel_run["venv"])


def _installed_kit(venv: Path) -> Path:
    out = run_checked([str(venv / "bin" / "python"), "-c", "import kit; print(kit.__file__)"], cwd=venv, env=clean_env()).stdout
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


def test_kit_demo_runs_from_the_installed_wheel(wheel_run: dict, venv: Path) -> None:
    kit_dir = _installed_kit(venv)
    assert kit_dir.is_relative_to(venv) and not kit_dir.is_relative_to(REPO), kit_dir

    work = Path(wheel_run["work"])  # not the checkout: nothing found relative to the working directory
    report = json.loads(wheel_run["stdout"].strip().splitlines()[-1])  # kit demo --json's last line
    run = (work / "run").resolve()
    assert Path(report["run_dir"]) == run and Path(report["output_dir"]).is_relative_to(run)
    assert set(report["notebooks"]) == set(report["values"]) and all(Path(p).is_file() for p in report["notebooks"].values())
    adapter = Path(report["values"]["20_lora_sft"]["output_dir"])
    assert adapter.is_relative_to(run)
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (adapter / name).is_file(), name
    # The notebooks' kernel imported the installed kit too: notebook 20 prints the quick-start YAML's path.
    executed = (run / "zh" / "20_lora_sft.ipynb").read_text(encoding="utf-8")  # the Chinese edition (notebook_runs.py)
    assert str(kit_dir / "examples") in executed
    assert str(REPO / "kit") + os.sep not in executed
