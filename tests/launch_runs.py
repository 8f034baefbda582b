"""The launches tests/test_launch.py and tests/test_processes.py check, made as session runs (tests/notebook_runs.py):
each only starts processes, waits for them (and kills one), so the session runs them beside the other tests, and the
tests assert on what they left.

Each function takes an empty folder, makes its own tiny model and data there, and returns what every command
printed and exited with, and where its run wrote; nothing here asserts, so a failed launch reaches the test with
its output.
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
from typing import Any

from helpers import make_dataset_dir, make_tiny_model, quickstart, write_yaml

ROOT = Path(__file__).resolve().parents[1]
# kit train, torchrun and run_sft with an empty op cache and no working C++ compiler: a DeepSpeed run of one process
# needs no shared-memory all-reduce, so nothing may try to build DeepSpeed's op
NO_COMPILER = {"CXX": "/bin/false", "CC": "/bin/false"}
# the variables run_sft sets while it hosts its group of one, and must give back
GROUP_VARIABLES = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"]


def _setup(folder: Path) -> tuple[Path, Path]:
    return make_tiny_model(folder / "model"), make_dataset_dir(folder / "data")


def _cfg(folder: Path, dirs: tuple[Path, Path], name: str, **kw: Any) -> tuple[Path, Path]:
    model_dir, data_dir = dirs
    out = folder / name
    cfg = quickstart(model_dir, data_dir, out, max_samples=8, num_train_epochs=2.0, logging_steps=1,
                     save_steps=500, eval_steps=4, **kw)
    return write_yaml(folder / f"{name}.yaml", cfg), out


def _environment(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """This environment with OMP_NUM_THREADS=1 and ``extra``; None unsets a variable."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra or {})}
    return {k: v for k, v in env.items() if v is not None}


def _run(cmd: list[str], out: Path, extra: dict[str, str | None] | None = None, timeout: int = 600) -> dict[str, Any]:
    r = subprocess.run(cmd, cwd=ROOT, env=_environment(extra), capture_output=True, text=True, timeout=timeout)
    return {"cmd": cmd, "returncode": r.returncode, "stdout": r.stdout, "stderr": r.stderr, "out": str(out)}


def three_launches(folder: Path) -> dict[str, Any]:
    """ZeRO-0, one process, three ways: torchrun as the quick start types it, kit train as the kit command (its own
    process hosts the one rank; OMP_NUM_THREADS unset, where accelerate would say it sets it), and run_sft from
    Python (which must give its group's variables back)."""
    from kit.ports import free_port

    dirs = _setup(folder)
    op_cache = folder / "empty-op-cache"
    quiet = {**NO_COMPILER, "TORCH_EXTENSIONS_DIR": str(op_cache)}
    cfg1, out1 = _cfg(folder, dirs, "torchrun")
    torchrun = Path(sys.executable).with_name("torchrun")  # the quick start's command, from this environment
    runs = {"torchrun": _run([str(torchrun) if torchrun.exists() else "torchrun", "--nproc_per_node", "1", "--nnodes",
                              "1", "--node_rank", "0", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                              "-m", "kit.train", str(cfg1)], out1, quiet)}
    cfg2, out2 = _cfg(folder, dirs, "cli")
    runs["kit train"] = _run([sys.executable, "-m", "kit.cli", "train", str(cfg2)], out2, {**quiet, "OMP_NUM_THREADS": None})
    cfg3, out3 = _cfg(folder, dirs, "python")
    runs["run_sft"] = _run([sys.executable, "-c", f"import os\nfrom kit.run.recipe import run_sft\nrun_sft({str(cfg3)!r})\n"
                            f"assert not [k for k in {GROUP_VARIABLES!r} if k in os.environ], os.environ"], out3, quiet)
    return {"runs": runs, "op_cache": str(op_cache)}


def two_nodes(folder: Path) -> dict[str, Any]:
    """Two kit train commands as two nodes of one process each on loopback (NNODES, NODE_RANK, MASTER_ADDR,
    MASTER_PORT), ZeRO-3, started together."""
    from kit.ports import free_port

    cfg, out = _cfg(folder, _setup(folder), "nodes", deepspeed="ds_z3_config.json")
    env = _environment({"NNODES": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())})
    procs = [subprocess.Popen([sys.executable, "-m", "kit.cli", "train", str(cfg)], cwd=ROOT, env={**env, "NODE_RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    return {"returncodes": [p.returncode for p in procs], "outputs": outputs, "out": str(out)}


def two_processes(folder: Path) -> dict[str, Any]:
    """kit train with FORCE_TORCHRUN=1 and NPROC_PER_NODE=2: torchrun with two ranks on one node, DDP."""
    cfg, out = _cfg(folder, _setup(folder), "nproc2", deepspeed=None)
    return _run([sys.executable, "-m", "kit.cli", "train", str(cfg)], out, {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "2"})


# ---------------------------------------------------------------- a run killed and started again (tests/test_processes.py)

def _restore_sigint() -> None:
    # A background job of a non-interactive shell starts with SIGINT ignored; a terminal's child has the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_kit_train(cfg_file: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """``kit train CFG`` in a session (process group) of its own, as a terminal starts it; stderr piped."""
    return subprocess.Popen([sys.executable, "-m", "kit.cli", "train", str(cfg_file)], cwd=ROOT, env=_environment(extra_env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_restore_sigint)


def logged_steps(out: Path) -> int:
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


def wait_for_step(proc: subprocess.Popen, out: Path, step: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while logged_steps(out) < step:
        assert proc.poll() is None, f"the run ended before step {step}: {proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, f"no step {step} within {timeout} s"
        time.sleep(0.05)


def killed_and_resumed(folder: Path) -> dict[str, Any]:
    """An uninterrupted run of 30 steps, and the same settings SIGKILLed (the whole process group) at a seeded random
    step and started again with the same command: both runs' eval_loss, and what the second start said and logged."""
    model_dir, data_dir = _setup(folder)
    settings = dict(deepspeed=None, max_steps=30, save_steps=4, logging_steps=1, eval_steps=1000, plot_loss=False,
                    overwrite_output_dir=False)
    reference = folder / "reference"
    ref = start_kit_train(write_yaml(folder / "ref.yaml", quickstart(model_dir, data_dir, reference, **settings)))
    ref_code, ref_err = ref.wait(300), ref.stderr.read()
    out = folder / "trial"
    cfg_file = write_yaml(folder / "trial.yaml", quickstart(model_dir, data_dir, out, **settings))
    kill_at = random.Random(1234).randint(5, 28)  # one kill; bench/kill_resume.py runs 10 at random steps
    proc = start_kit_train(cfg_file)
    try:
        wait_for_step(proc, out, kill_at)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended before the step (wait_for_step says so)
            pass
        proc.wait()
    finished_before_kill = (out / "all_results.json").exists()
    again = start_kit_train(cfg_file)
    code, err = again.wait(300), again.stderr.read()

    def eval_loss(run: Path) -> float | None:
        path = run / "all_results.json"
        return json.loads(path.read_text())["eval_loss"] if path.is_file() else None

    log = out / "trainer_log.jsonl"
    return {"reference": {"returncode": ref_code, "stderr": ref_err[-3000:], "eval_loss": eval_loss(reference)},
            "kill_at": kill_at, "finished_before_kill": finished_before_kill,
            "resumed": {"returncode": code, "stderr": err, "eval_loss": eval_loss(out),
                        "steps": [json.loads(line)["current_steps"] for line in log.read_text().splitlines()]
                        if log.is_file() else []}}
