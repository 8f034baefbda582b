"""Launching: the plan (unit), and real runs on CPU: ZeRO-0 launched three ways, nproc 2 with DDP, two nodes with ZeRO-3.

The real runs only start processes and wait for them: tests/launch_runs.py makes them once per session, beside the
other tests (tests/notebook_runs.py), and the tests here assert on what they left.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit import config
from kit.run import launch
from kit import device as device_mod
from kit.device import DeviceInfo
from kit.envvars import EnvSettings

from helpers import write_yaml

CPU = DeviceInfo("cpu", 1, "gloo", True, False, "cpu", "no NPU", None)


def _env(**kw):
    return EnvSettings.from_environ({k: str(v) for k, v in kw.items()})


def test_plan_in_process_without_deepspeed_on_cpu():
    assert launch.plan_launch(config.from_dict({}), _env(), CPU) is None


def test_plan_torchrun_for_deepspeed_one_process_on_cpu():
    plan = launch.plan_launch(config.from_dict({"deepspeed": "ds_z0_config.json"}), _env(), CPU)
    assert plan.nproc_per_node == 1 and "deepspeed" in plan.reason
    # one node without MASTER_PORT: torchrun binds and holds its own port (no bind-and-close race)
    assert plan.master_port == 0 and "--standalone" in launch.torchrun_command(plan, ["--plan", "x"])
    given = launch.plan_launch(config.from_dict({"deepspeed": "ds_z0_config.json"}), _env(MASTER_PORT=7007), CPU)
    cmd = launch.torchrun_command(given, ["x"])
    assert "--standalone" not in cmd and cmd[cmd.index("--master_port") + 1] == "7007"
    assert cmd[cmd.index("--master_addr") + 1] == "127.0.0.1"  # one node: loopback by default


def test_kit_train_hosts_one_deepspeed_process_itself():
    """kit train (host_one): DeepSpeed on one device of one node runs in its own process, as LLaMA-Factory does
    without FORCE_TORCHRUN; anything more than one process, or FORCE_TORCHRUN, still goes through torchrun."""
    ds = config.from_dict({"deepspeed": "ds_z0_config.json"})
    npu1 = DeviceInfo("npu", 1, "hccl", True, True, "Ascend910B", None, [0])
    npu8 = DeviceInfo("npu", 8, "hccl", True, True, "Ascend910B", None, list(range(8)))
    assert launch.plan_launch(ds, _env(), CPU, host_one=True) is None
    assert launch.plan_launch(ds, _env(), npu1, host_one=True) is None
    assert launch.plan_launch(ds, _env(NPROC_PER_NODE=1), npu8, host_one=True).reason == "8 npu devices are visible"
    assert launch.plan_launch(ds, _env(FORCE_TORCHRUN=1), CPU, host_one=True).reason == "FORCE_TORCHRUN is set"
    two = launch.plan_launch(ds, _env(NPROC_PER_NODE=2), CPU, host_one=True)
    assert two.nproc_per_node == 2 and "deepspeed is set" in two.reason
    nodes = launch.plan_launch(ds, _env(NNODES=2, NODE_RANK=0, MASTER_ADDR="10.0.0.1", MASTER_PORT=1234), npu1, host_one=True)
    assert nodes.nnodes == 2 and "deepspeed is set" in nodes.reason


def test_plan_honours_documented_variables():
    plan = launch.plan_launch(config.from_dict({}), _env(FORCE_TORCHRUN=1, NPROC_PER_NODE=2, NNODES=2, NODE_RANK=1,
                                                        MASTER_ADDR="10.0.0.1", MASTER_PORT=7007), CPU)
    assert (plan.nproc_per_node, plan.nnodes, plan.node_rank, plan.master_addr, plan.master_port) == (2, 2, 1, "10.0.0.1", 7007)
    cmd = launch.torchrun_command(plan, ["cfg.yaml"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"] and cmd[-3:] == ["-m", "kit.train", "cfg.yaml"]
    assert cmd[cmd.index("--nproc_per_node") + 1] == "2" and cmd[cmd.index("--node_rank") + 1] == "1"


def test_plan_counts_accelerators():
    npu = DeviceInfo("npu", 8, "hccl", True, True, "Ascend910B", None, [0, 1, 2, 3, 4, 5, 6, 7])
    plan = launch.plan_launch(config.from_dict({}), _env(), npu)
    assert plan.nproc_per_node == 8 and "8 npu devices" in plan.reason


def test_plan_never_zero_processes_and_checks_nodes():
    with pytest.raises(config.ConfigError, match="NPROC_PER_NODE=0"):
        launch.plan_launch(config.from_dict({}), _env(FORCE_TORCHRUN=1, NPROC_PER_NODE=0), CPU)
    with pytest.raises(config.ConfigError, match="MASTER_PORT"):
        launch.plan_launch(config.from_dict({}), _env(NNODES=2, NODE_RANK=0, MASTER_ADDR="10.0.0.1"), CPU)
    with pytest.raises(config.ConfigError, match="NODE_RANK must be between"):
        launch.plan_launch(config.from_dict({}), _env(NNODES=2, NODE_RANK=2, MASTER_PORT=1234, MASTER_ADDR="10.0.0.1"), CPU)
    # several nodes need MASTER_ADDR: without it the other nodes would dial their own loopback and hang
    with pytest.raises(config.ConfigError, match="needs MASTER_ADDR"):
        launch.plan_launch(config.from_dict({}), _env(NNODES=2, NODE_RANK=1, MASTER_PORT=1234), CPU)


def test_child_environment_threads_and_passthrough():
    env = launch.child_environment(_env(PYTORCH_NPU_ALLOC_CONF="expandable_segments:True"), CPU, 1, base={})
    assert env["OMP_NUM_THREADS"] == str(launch.cpu_threads(1)) and env["PYTORCH_NPU_ALLOC_CONF"] == "expandable_segments:True"
    # one process: every physical core it may use; several: a share each, never none
    assert launch.cpu_threads(1) >= launch.cpu_threads(2) >= 1 and launch.cpu_threads(64) == 1
    assert launch.child_environment(_env(), CPU, 2, base={})["OMP_NUM_THREADS"] == str(launch.cpu_threads(2))
    assert "TORCH_EXTENSIONS_DIR" in env
    assert launch.child_environment(_env(), CPU, 1, base={"OMP_NUM_THREADS": "4"})["OMP_NUM_THREADS"] == "4"


def test_extensions_dir_is_per_environment(tmp_path, monkeypatch):
    """DeepSpeed's op cache: the person's TORCH_EXTENSIONS_DIR; else inside the environment; else a folder named for it."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "mine"))
    assert device_mod.extensions_dir() == tmp_path / "mine"
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(device_mod.Path, "home", classmethod(lambda cls: tmp_path / "home"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv-a"))
    assert device_mod.extensions_dir() == tmp_path / "venv-a" / ".kit-torch-extensions"
    # an environment that cannot be written (a system Python, an image's read-only venv): one folder per environment
    # under ~/.cache/kit, so two of them never share (nor rebuild) one op
    readonly = tmp_path / "venv-b"
    readonly.write_text("not a folder")  # mkdir under it fails as under a read-only prefix, as root too
    monkeypatch.setattr(sys, "prefix", str(readonly))
    got = device_mod.extensions_dir()
    assert got.parent == tmp_path / "home" / ".cache" / "kit" / "torch_extensions-envs" and got.is_dir()
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv-c"))
    (tmp_path / "venv-c").write_text("")
    assert device_mod.extensions_dir() != got
    # the ranks inherit it, and so does an in-process run (kit.run.recipe calls use_extensions_dir)
    assert launch.child_environment(_env(), CPU, 1, base={})["TORCH_EXTENSIONS_DIR"] == str(device_mod.extensions_dir())
    device_mod.use_extensions_dir()
    assert os.environ["TORCH_EXTENSIONS_DIR"] == str(device_mod.extensions_dir())


# ---------------------------------------------------------------- real runs (slow), made by tests/launch_runs.py

@pytest.fixture(scope="module")
def three_launches_run(notebook_runs) -> dict:
    """launch_runs.three_launches, made once for the session beside the other tests (tests/notebook_runs.py)."""
    return notebook_runs.get("three_launches").result


@pytest.fixture(scope="module")
def two_processes_run(notebook_runs) -> dict:
    """launch_runs.two_processes, made once for the session beside the other tests."""
    return notebook_runs.get("two_processes").result


@pytest.fixture(scope="module")
def two_nodes_run(notebook_runs) -> dict:
    """launch_runs.two_nodes, made once for the session beside the other tests."""
    return notebook_runs.get("two_nodes").result


def _results(out):
    for name in ("adapter_model.safetensors", "adapter_config.json", "trainer_log.jsonl", "all_results.json", "training_loss.png"):
        assert (out / name).is_file(), name
    return json.loads((out / "all_results.json").read_text())


def test_kit_train_hosts_the_rank_only_as_its_own_program(tmp_path, monkeypatch):
    """The kit command (argv from the command line) ends with the run: it may host the one DeepSpeed rank.
    cli.main([...]) from a person's Python or a test goes on after it: torchrun, so nothing stays behind."""
    from kit import cli

    seen = []
    monkeypatch.setattr(launch, "launch_sft", lambda cfg, host_one=False: seen.append(host_one) or 0)
    cfg = write_yaml(tmp_path / "c.yaml", {"model_name_or_path": "m", "dataset": "identity", "output_dir": str(tmp_path / "o")})
    assert cli.main(["train", str(cfg)]) == 0
    monkeypatch.setattr(sys, "argv", ["kit", "train", str(cfg)])
    assert cli.main() == 0
    assert seen == [False, True]


def _quiet(output: str, op_cache: Path) -> None:
    """What a DeepSpeed run of one process on the CPU must not print (issue 21; tests/test_quiet.py has the rest):
    DeepSpeed's accelerator note, transformers' loading bar, accelerate's OMP_NUM_THREADS and accumulation notes, and
    no compiler output: one process needs no shared-memory all-reduce, so DeepSpeed is not asked to build its op
    (about 40 s of g++ and a "built successfully" line; a failed run where there is no g++)."""
    for line in ("Setting accelerator to CPU", "Loading weights", "OMP_NUM_THREADS", "built successfully",
                 "Gradient accumulation steps mismatch"):  # the quick start accumulates 2; accelerate's plugin has 1
        assert line not in output, (line, output[-5000:])
    assert not any(op_cache.glob("*/*.so"))


@pytest.mark.slow
def test_three_launches_give_the_same_result_and_print_no_library_notes(three_launches_run):
    """torchrun as the quick start types it, kit train, and run_sft in Python: ZeRO-0, one process, each importing
    DeepSpeed and joining a process group on the CPU in a fresh Python, where DeepSpeed's notes are logged; each with
    an empty op cache and no working C++ compiler (tests/launch_runs.py)."""
    made = three_launches_run
    runs = made["runs"]
    for name, r in runs.items():
        assert r["returncode"] == 0, (name, r["stdout"][-3000:] + r["stderr"][-5000:])
        _quiet(r["stdout"] + r["stderr"], Path(made["op_cache"]))
    hosted = runs["kit train"]
    assert "one process: DeepSpeed runs in this one" in hosted["stdout"] + hosted["stderr"]
    assert "launching torchrun" not in hosted["stdout"]
    r1, r2, r3 = (_results(Path(runs[name]["out"])) for name in ("torchrun", "kit train", "run_sft"))
    assert r1["eval_loss"] == pytest.approx(r2["eval_loss"], rel=1e-5) == pytest.approx(r3["eval_loss"], rel=1e-5)
    assert r1["train_loss"] == pytest.approx(r2["train_loss"], rel=1e-5)


@pytest.mark.slow
def test_two_processes_on_one_node(two_processes_run):
    """FORCE_TORCHRUN with NPROC_PER_NODE=2, DDP. DeepSpeed over a world of two is test_two_nodes_on_loopback's run
    (ZeRO-3, one process on each node: the trainer sees the same world of two; only the launch differs), and
    ZeRO-2 starts and steps over two processes of one node in tests/test_processes.py."""
    r = two_processes_run
    assert r["returncode"] == 0, r["stdout"][-3000:] + r["stderr"][-5000:]
    assert "nproc_per_node=2" in r["stdout"]
    out = Path(r["out"])
    results = _results(out)
    state = json.loads((out / "trainer_state.json").read_text())
    # 14 valid examples, 2 held out; 12 / (batch 1 x accumulation 2 x 2 processes) = 3 steps per epoch
    assert state["max_steps"] == 6, state["max_steps"]
    assert results["train_loss"] > 0


@pytest.mark.slow
def test_two_nodes_on_loopback(two_nodes_run):
    """Two kit train commands as two nodes of one process each (NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT), with
    ZeRO-3: the parameters sharded over both, gathered to save the adapter (tests/launch_runs.py)."""
    made = two_nodes_run
    outputs = made["outputs"]
    assert made["returncodes"] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    out = Path(made["out"])
    _results(out)
    assert json.loads((out / "trainer_state.json").read_text())["max_steps"] == 6  # as two processes on one node


END_RANK = """
import atexit, sys, threading, time
from pathlib import Path
from kit.run.recipe import _end_rank

folder = Path(sys.argv[1])
atexit.register(lambda: (folder / "atexit").write_text("ran"))
threading.Thread(target=lambda: (time.sleep(0.3), (folder / "thread").write_text("done"))).start()
print("metrics line", end="")  # no newline: only a flush writes it
_end_rank(3)
print("never")
"""


def test_a_finished_rank_ends_as_python_would_without_its_teardown(tmp_path):
    """kit.run.recipe._end_rank (a rank of several, after its run): threads joined, exit functions run, output flushed,
    the status given; nothing after it runs."""
    proc = subprocess.run([sys.executable, "-c", END_RANK, str(tmp_path)], cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "metrics line"
    assert (tmp_path / "thread").read_text() == "done" and (tmp_path / "atexit").read_text() == "ran"
