"""Shared fixtures: a tiny Qwen2 model and LoRA adapters made here, never downloaded; the notebooks executed once.

``tiny_model_dir`` is a copy of LLaMA-Factory's reference tiny-qwen when the reference is present
(the same files LLaMA-Factory was run on), else a random-init Qwen2ForCausalLM with a byte-level BPE
tokenizer trained on a few lines (ChatML special tokens at ids 0, 1, 2, as in Qwen).

``demo`` (kit demo: notebooks 00-30, English), ``experiments`` (notebook 40), ``demo_zh`` (the Chinese edition,
from the installed wheel: test_wheel reads the same run), test_batch's sweep, the vLLM runs and the launches of
tests/launch_runs.py run once per session (tests/notebook_runs.py) and are shared by every test that reads them. They start in the background as soon as
the tests are collected, and the tests that read them run last. The English runs are made under Binder's session
environment with their process tree's memory sampled, which the Binder memory test (tests/test_binder.py) reads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub: a stray download must fail loudly, not hang or succeed.
os.environ["HF_HUB_OFFLINE"] = "1"
# The tests read English messages; a developer's LANG=zh_CN.UTF-8 must not change them (the Chinese ones are tested explicitly).
os.environ["KIT_LANG"] = "en"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models on a few cores: one intra-op thread is many times faster than several fighting over
# the cores (measured: 8 LoRA steps 0.34 s with 1 thread, 7.5 s with 2 on a 2-core machine).
os.environ.setdefault("OMP_NUM_THREADS", "1")


# Every kernel, torchrun and rank a test starts inherits DeepSpeed's op cache of this environment (kit.device's
# own rule, set here once so that every process agrees on it).
from kit.device import extensions_dir as _extensions_dir  # noqa: E402

os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(_extensions_dir()))

import pytest

from notebook_runs import ORDER, NotebookRuns

REPO = Path(__file__).resolve().parents[1]


def build_tiny_qwen(out: Path, hidden_size: int = 128, seed: int = 0) -> Path:
    """A random-init Qwen2 model and a tokenizer trained here; small enough to build in a second.

    hidden 128 over 4 heads is the reference tiny-qwen's shape: head size 32, which vLLM's CPU attention
    kernels support (16, from hidden 64, is refused), so the vLLM comparison runs on either model.
    """
    from helpers import make_tiny_model

    return make_tiny_model(out, hidden=hidden_size, seed=seed)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 model folder (config, safetensors, tokenizer), writable, shared by the session."""
    from helpers import session_tiny_model

    return session_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen")


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter trained for a few steps by the kit's own run_sft on tiny_model_dir (helpers.train_tiny_adapter)."""
    from helpers import train_tiny_adapter

    return train_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapters") / "sft")


@pytest.fixture(scope="session")
def lf_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adapter in LLaMA-Factory's layout (adapter_config.json + adapter_model.safetensors only),
    made with peft directly, with the reference run's LoRA settings (q_proj,v_proj, r 8, alpha 16).

    The LoRA B weights are random rather than zero (init_lora_weights=False), so it changes replies.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    lora = LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    out = tmp_path_factory.mktemp("adapters") / "lf-layout"
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def base(tiny_model_dir: Path):
    """A greedy chat engine over the tiny base model."""
    from kit.chat import Engine

    return Engine(tiny_model_dir, do_sample=False, max_new_tokens=24)


@pytest.fixture(scope="session")
def tuned(tiny_model_dir: Path, tiny_adapter_dir: Path):
    """A greedy chat engine with the tiny adapter merged."""
    from kit.chat import Engine

    return Engine(tiny_model_dir, tiny_adapter_dir, do_sample=False, max_new_tokens=24)


# ---------------------------------------------------------------- the notebooks, executed once per session

# The fixtures that read the session's notebook runs (tests/notebook_runs.py), and the run each needs.
RUN_OF_FIXTURE = {"demo_executed": "demo", "experiments": "experiments", "demo_zh": "wheel", "wheel_run": "wheel",
                  "sweep": "sweep", "vllm_predict_run": "vllm_predict", "vllm_compare_run": "vllm_compare",
                  "two_nodes_run": "two_nodes", "three_launches_run": "three_launches", "two_processes_run": "two_processes",
                  "killed_run": "killed_and_resumed"}
_RUNS = pytest.StashKey[NotebookRuns]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that read the session's runs go last, so the runs (in the background) have the others' time; among
    them, those whose runs finish first (ORDER) go first. Only the readers move: the rest of their modules runs
    in its place (a module-scoped fixture both use is then made twice, a second at most)."""
    def last_run(item: pytest.Item) -> int:
        needed = [ORDER.index(RUN_OF_FIXTURE[name]) for name in getattr(item, "fixturenames", ()) if name in RUN_OF_FIXTURE]
        return max(needed, default=-1)

    readers = sorted((i for i in items if last_run(i) >= 0), key=last_run)  # stable: collection order within a run
    items[:] = [i for i in items if last_run(i) < 0] + readers


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the runs the selected tests read, in the background, now: on a second core while the other tests run.

    Not with one core (nothing to gain), nor with KIT_TEST_NOTEBOOKS_IN_FOREGROUND=1: then each runs when a test
    first needs it.
    """
    if (session.config.option.collectonly or os.environ.get("KIT_TEST_NOTEBOOKS_IN_FOREGROUND") == "1"
            or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) < 2):
        return
    runs = _runs(session.config)
    runs.start({RUN_OF_FIXTURE[name] for item in session.items for name in getattr(item, "fixturenames", ())
                if name in RUN_OF_FIXTURE})


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    """The background runs' wall times, beside the slowest tests: the suite's other half of its 10 minutes."""
    runs = config.stash.get(_RUNS, None)
    line = runs.timeline() if runs is not None else ""
    if line:
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    runs = session.config.stash.get(_RUNS, None)
    if runs is not None:
        runs.stop()


def _runs(config: pytest.Config) -> NotebookRuns:
    if _RUNS not in config.stash:
        factory = getattr(config, "_tmp_path_factory", None)  # tmp_path_factory's, kept as pytest keeps tmp_path
        root = factory.mktemp("notebook-runs") if factory else Path(tempfile.mkdtemp(prefix="kit-notebook-runs-"))
        config.stash[_RUNS] = NotebookRuns(root)
    return config.stash[_RUNS]


@pytest.fixture(scope="session")
def notebook_runs(pytestconfig: pytest.Config) -> NotebookRuns:
    return _runs(pytestconfig)


@dataclass
class Executed:
    """A session run: what it returned, the memory its processes took (for the runs under Binder's environment),
    and its folder."""

    result: Any  # kit demo's DemoRun, or notebook 40's published values
    memory: Any  # tests/peak_memory.py's PeakMemory, or None
    folder: Path


def _keep_executed(folder: Path, lang: str) -> None:
    """CI builds the docs from these executed notebooks (KIT_EXECUTED_DIR) instead of running them again."""
    keep = os.environ.get("KIT_EXECUTED_DIR")
    if keep:
        shutil.copytree(folder, Path(keep) / lang, dirs_exist_ok=True)


def _demo_run(r: dict[str, Any], lang: str) -> Any:
    """kit demo's DemoRun from what run_demo returned, or kit demo --json printed."""
    from kit.tutorial.demo import DemoRun

    run = DemoRun(Path(r["run_dir"]), Path(r["output_dir"]), notebooks={k: Path(v) for k, v in r["notebooks"].items()},
                  values=r["values"], seconds=r["seconds"])
    _keep_executed(run.run_dir / lang, lang)
    return run


@pytest.fixture(scope="session")
def demo_executed(notebook_runs: NotebookRuns) -> Executed:
    """kit demo (notebooks 00-30, English) with a name that is not the default one, run once for the session under
    binder/start's environment, its memory sampled."""
    job = notebook_runs.get("demo")
    return Executed(_demo_run(job.result, "en"), job.memory, job.folder)


@pytest.fixture(scope="session")
def demo(demo_executed: Executed):
    """The English kit demo's DemoRun: executed notebooks, published values, output folder."""
    return demo_executed.result


@pytest.fixture(scope="session")
def demo_zh(notebook_runs: NotebookRuns):
    """kit demo of the Chinese edition, with non-default knobs (another name, another lora_target, cutoff_len 96), run
    as a person who installed the wheel runs it: kit demo --lang zh --json from a new venv, outside the checkout."""
    return _demo_run(notebook_runs.get("wheel").result["report"], "zh")


@pytest.fixture(scope="session")
def experiments(notebook_runs: NotebookRuns) -> Executed:
    """Notebook 40 (English) sweeping two short runs of notebook 20 into ``folder / "sweep"``, run once for the
    session under binder/start's environment, its memory sampled; ``result`` holds its published values.

    Its working directory is ``folder``; the executed notebook is ``folder / "en" / "40_experiments.ipynb"``.
    """
    job = notebook_runs.get("experiments")
    return Executed(job.result["values"], job.memory, job.folder)


@pytest.fixture
def restore_environ():
    """os.environ as it was before the test (monkeypatch.delenv of an unset variable records nothing to undo,
    so a variable a test's code wrote, e.g. USE_MODELSCOPE_HUB=1, would reach later tests)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def unwritable():
    """Makes folders this process cannot write in, root included, and makes them writable again after the test.

    For a user, mode 555. Root writes through modes, so for root (how these tests run in CI, and how many people run
    containers on an Ascend server) the folder gets the immutable flag (``chattr +i``), which refuses root as a
    read-only mount does: os.access answers no and a write fails. Where chattr is missing or not permitted (a
    container without CAP_LINUX_IMMUTABLE) the test is skipped and says so."""
    import subprocess

    made: list[Path] = []

    def release(folder: Path) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                proc = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
            except FileNotFoundError:
                pytest.skip("root ignores folder modes and chattr is not installed to make a folder read-only")
            if proc.returncode != 0:
                pytest.skip(f"root ignores folder modes and chattr +i is refused here: {proc.stderr.strip()}")
        else:
            folder.chmod(0o555)
        made.append(folder)
        try:
            (folder / ".probe").touch()
        except OSError:
            return folder
        (folder / ".probe").unlink()
        pytest.skip(f"{folder} could not be made read-only for this process")

    yield make
    for folder in reversed(made):
        release(folder)
