"""No process outlives the command that started it; a killed run resumes to the same result.

Real runs on CPU: a two-process DeepSpeed run under torchrun, stopped mid-training by SIGINT to its
process group (a terminal's Ctrl-C) and, separately, by SIGTERM to ``kit train`` alone (``kill``, a
job scheduler); and a run SIGKILLed at a random step, then started again with the same command.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from helpers import make_dataset_dir, make_tiny_model, quickstart, write_yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("processes")
    return make_tiny_model(base / "model"), make_dataset_dir(base / "data")


def _restore_sigint() -> None:
    # A background job of a non-interactive shell starts with SIGINT ignored; a terminal's child has the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cfg_file: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-m", "kit.cli", "train", str(cfg_file)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_restore_sigint)


def _logged_steps(out: Path) -> int:
    path = out / "trainer_log.jsonl"
    if not path.is_file():
        return 0
    steps = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            steps = json.loads(line)["current_steps"]
        except (ValueError, KeyError):
            break
    return steps


def _wait_for_step(proc: subprocess.Popen, out: Path, step: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while _logged_steps(out) < step:
        assert proc.poll() is None, f"the run ended before step {step}: {proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, f"no step {step} within {timeout} s"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint-group", "sigterm-parent"])
def test_a_stopped_run_leaves_no_process(tmp_path, dirs, how):
    model_dir, data_dir = dirs
    out = tmp_path / "out"
    cfg = quickstart(model_dir, data_dir, out, deepspeed="ds_z2_config.json", max_steps=100000, logging_steps=1,
                     save_steps=100000, val_size=0, eval_strategy="no", plot_loss=False)
    proc = _start(write_yaml(tmp_path / "c.yaml", cfg), {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "2"})
    tree: list[psutil.Process] = []
    try:
        _wait_for_step(proc, out, 2)
        tree = psutil.Process(proc.pid).children(recursive=True)
        ranks = [p for p in tree if "kit.train" in " ".join(p.cmdline()) and "torch.distributed.run" not in " ".join(p.cmdline())]
        assert len(ranks) == 2, [p.cmdline() for p in tree]
        if how == "sigint-group":
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole foreground group
            expected = 130
        else:
            proc.send_signal(signal.SIGTERM)  # kill PID: only kit train itself
            expected = 128 + signal.SIGTERM
        start = time.time()
        code = proc.wait(15)
        _, alive = psutil.wait_procs(tree, timeout=max(0.1, 15 - (time.time() - start)))
        assert not alive, [(p.pid, p.cmdline()) for p in alive if p.is_running()]
        err = proc.stderr.read()
        assert code == expected, err[-2000:]
        # One line says so; torchrun's SignalException traceback or ChildFailedError report is not shown.
        said = "interrupted" if how == "sigint-group" else "stopped by SIGTERM"
        assert said in err.splitlines()[-1] and "Traceback" not in err and "ChildFailedError" not in err, err[-3000:]
    finally:  # whatever of this run is left; not every child of pytest (the session's notebook runs are some)
        _kill([proc.pid], tree)


def _kill(pids: list[int], known: list[psutil.Process]) -> None:
    """SIGKILL to ``pids`` with all their descendants, and to the ``known`` processes still running."""
    left = list(known)
    for pid in pids:
        try:
            root = psutil.Process(pid)
            left += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for p in left:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _eval_loss(out: Path) -> float:
    return json.loads((out / "all_results.json").read_text())["eval_loss"]


@pytest.mark.slow
def test_killed_run_resumed_gives_the_same_eval_loss(tmp_path, dirs):
    """SIGKILL at a random step, then the same command again: it resumes (as LLaMA-Factory does) and ends the same."""
    model_dir, data_dir = dirs
    settings = dict(deepspeed=None, max_steps=30, save_steps=4, logging_steps=1, eval_steps=1000, plot_loss=False,
                    overwrite_output_dir=False)
    reference = tmp_path / "reference"
    ref_cfg = write_yaml(tmp_path / "ref.yaml", quickstart(model_dir, data_dir, reference, **settings))
    ref = _start(ref_cfg)
    assert ref.wait(300) == 0, ref.stderr.read()[-3000:]
    expected = _eval_loss(reference)
    rng = random.Random(1234)
    for trial in range(2):  # bench/kill_resume.py runs 10 such trials at random steps
        out = tmp_path / f"trial{trial}"
        cfg_file = write_yaml(tmp_path / f"t{trial}.yaml", quickstart(model_dir, data_dir, out, **settings))
        kill_at = rng.randint(5, 28)
        proc = _start(cfg_file)
        _wait_for_step(proc, out, kill_at)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (out / "all_results.json").exists()
        again = _start(cfg_file)
        assert again.wait(300) == 0, again.stderr.read()[-3000:]
        assert "resuming from" in again.stderr.read()
        assert _eval_loss(out) == pytest.approx(expected, abs=1e-6), (trial, kill_at)
        steps = [json.loads(line)["current_steps"] for line in (out / "trainer_log.jsonl").read_text().splitlines()]
        assert steps == sorted(steps) and steps[-1] == 30  # the steps trained twice are logged once
