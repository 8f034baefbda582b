"""No process outlives the command that started it; a killed run resumes to the same result.

Real runs on CPU: a two-process DeepSpeed run under torchrun, stopped mid-training by SIGINT to its
process group (a terminal's Ctrl-C) and, separately, by SIGTERM to ``kit train`` alone (``kill``, a
job scheduler); and a run SIGKILLed at a random step, then started again with the same command (made once per
session beside the other tests by tests/launch_runs.py).
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from helpers import make_dataset_dir, make_tiny_model, quickstart, write_yaml
from launch_runs import start_kit_train, wait_for_step


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("processes")
    return make_tiny_model(base / "model"), make_dataset_dir(base / "data")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint-group", "sigterm-parent"])
def test_a_stopped_run_leaves_no_process(tmp_path, dirs, how):
    model_dir, data_dir = dirs
    out = tmp_path / "out"
    cfg = quickstart(model_dir, data_dir, out, deepspeed="ds_z2_config.json", max_steps=100000, logging_steps=1,
                     save_steps=100000, val_size=0, eval_strategy="no", plot_loss=False)
    proc = start_kit_train(write_yaml(tmp_path / "c.yaml", cfg), {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "2"})
    tree: list[psutil.Process] = []
    try:
        wait_for_step(proc, out, 2)
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


@pytest.fixture(scope="module")
def killed_run(notebook_runs) -> dict:
    """launch_runs.killed_and_resumed, made once for the session beside the other tests (tests/notebook_runs.py)."""
    return notebook_runs.get("killed_and_resumed").result


@pytest.mark.slow
def test_killed_run_resumed_gives_the_same_eval_loss(killed_run):
    """SIGKILL at a random step, then the same command again: it resumes (as LLaMA-Factory does) and ends the same."""
    reference, resumed = killed_run["reference"], killed_run["resumed"]
    assert reference["returncode"] == 0, reference["stderr"]
    assert not killed_run["finished_before_kill"]
    assert resumed["returncode"] == 0, resumed["stderr"][-3000:]
    assert "resuming from" in resumed["stderr"]
    assert resumed["eval_loss"] == pytest.approx(reference["eval_loss"], abs=1e-6), killed_run["kill_at"]
    steps = resumed["steps"]
    assert steps == sorted(steps) and steps[-1] == 30  # the steps trained twice are logged once
