"""Start training under torchrun, as a subprocess (for the CLI and for notebooks).

``kit train`` re-launches itself under torchrun when DeepSpeed is set, FORCE_TORCHRUN is set, or
more than one accelerator is visible; otherwise it trains in-process. The command uses
``sys.executable -m torch.distributed.run`` rather than ``torchrun`` from PATH, because a notebook
kernel's PATH may not include the venv's bin directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import yaml

from kit import config as config_mod
from kit import device as device_mod
from kit.config import Config, ConfigError
from kit.envvars import EnvSettings

DEFAULT_EXTENSIONS_DIR = Path.home() / ".cache" / "kit" / "torch_extensions"


@dataclass(frozen=True)
class LaunchPlan:
    nproc_per_node: int
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int
    reason: str  # why torchrun is used


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now (for MASTER_PORT and test servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plan_launch(cfg: Config, env: EnvSettings, info: device_mod.DeviceInfo) -> LaunchPlan | None:
    """How to launch, or None to train in this process."""
    reasons = []
    if cfg.train.deepspeed:
        reasons.append("deepspeed is set")
    if env.force_torchrun:
        reasons.append("FORCE_TORCHRUN is set")
    if info.is_accelerator and info.count > 1:
        reasons.append(f"{info.count} {info.kind} devices are visible")
    if env.nnodes > 1:
        reasons.append(f"NNODES={env.nnodes}")
    if env.nproc_per_node is not None and env.nproc_per_node > 1:
        reasons.append(f"NPROC_PER_NODE={env.nproc_per_node}")
    if not reasons:
        return None
    if env.nproc_per_node is not None:
        if env.nproc_per_node < 1:
            raise ConfigError([f"NPROC_PER_NODE={env.nproc_per_node}: give at least 1 process per node"])
        nproc = env.nproc_per_node
    else:
        # On CPU one process unless told otherwise (LLaMA-Factory counts 0 devices there and fails).
        nproc = info.count if info.is_accelerator else 1
    if env.nnodes < 1 or not 0 <= env.node_rank < env.nnodes:
        raise ConfigError([f"NNODES={env.nnodes}, NODE_RANK={env.node_rank}: NODE_RANK must be between 0 and NNODES-1"])
    if env.nnodes > 1 and not env.master_port:
        raise ConfigError(["NNODES > 1 needs MASTER_ADDR and MASTER_PORT set to the same values on every node"])
    port = env.master_port or free_port()
    return LaunchPlan(nproc, env.nnodes, env.node_rank, env.master_addr, port, ", ".join(reasons))


def torchrun_command(plan: LaunchPlan, train_args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run",
            "--nproc_per_node", str(plan.nproc_per_node), "--nnodes", str(plan.nnodes),
            "--node_rank", str(plan.node_rank), "--master_addr", plan.master_addr, "--master_port", str(plan.master_port),
            "-m", "kit.train", *train_args]


def child_environment(env: EnvSettings, info: device_mod.DeviceInfo, nproc: int, base: dict[str, str] | None = None) -> dict[str, str]:
    out = device_mod.subprocess_env(env, dict(os.environ if base is None else base))
    out.setdefault("PYTHONUNBUFFERED", "1")
    # DeepSpeed compiles a C++ op on first use (about a minute); keep it between runs.
    out.setdefault("TORCH_EXTENSIONS_DIR", str(DEFAULT_EXTENSIONS_DIR))
    if info.kind == "cpu" and "OMP_NUM_THREADS" not in out:
        # Measured on 2 cores: DeepSpeed ran 25-37 steps/s with 1 thread per process, under 2 with the default.
        out["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // (2 * nproc)) if nproc > 1 else 1)
    return out


def prebuild_deepspeed_ops(extensions_dir: Path | None = None) -> bool:
    """Compile DeepSpeed's CPU communication op now, into the cache training uses, instead of in the first run.

    The compile takes about a minute and, with g++ on torch's headers, gigabytes of memory: Binder's
    postBuild does it at image build time so a 2 GB session never has to.
    """
    code = ("from deepspeed.accelerator import get_accelerator; "
            "b = get_accelerator().create_op_builder('ShareMemCommBuilder'); b is not None and b.load()")
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(extensions_dir or os.environ.get("TORCH_EXTENSIONS_DIR", DEFAULT_EXTENSIONS_DIR))}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0


def portable_config(cfg: Config) -> dict:
    """The config with relative paths made absolute, so it can be written anywhere and mean the same."""
    defaults = config_mod.Config().to_dict()
    data = {k: v for k, v in cfg.to_dict().items() if v != defaults[k] or k == "do_train"}
    if cfg.train.deepspeed:
        data["deepspeed"] = str(config_mod.find_deepspeed_config(cfg.train.deepspeed, cfg.config_dir))
    if cfg.data.dataset_dir:
        from kit.data.loader import resolve_dataset_dir

        data["dataset_dir"] = str(resolve_dataset_dir(cfg.data.dataset_dir, cfg.config_dir).resolve())
    for key in ("model_name_or_path", "resume_from_checkpoint"):  # hub ids and "true" stay as written
        value = data.get(key)
        if value and Path(value).exists():
            data[key] = str(Path(value).resolve())
    if data.get("output_dir"):
        data["output_dir"] = str(Path(data["output_dir"]).resolve())  # it may not exist yet
    return data


def launch_sft(cfg: Config, on_line: Callable[[str], None] | None = None, env: EnvSettings | None = None,
               cwd: str | Path | None = None, on_tick: Callable[[], None] | None = None, tick_seconds: float = 1.0) -> int:
    """Run training as the config says: under torchrun when needed, else in this process. Returns an exit code.

    ``on_line`` receives every output line of the training processes and ``on_tick`` is called about
    every ``tick_seconds`` while they run (a notebook redraws its progress bar and loss plot there);
    without either, the output goes to this process's stdout.
    """
    import threading

    from kit import train

    env = env or EnvSettings.from_environ()
    info = device_mod.detect(cfg.model.device, env)
    plan = plan_launch(cfg, env, info)
    train.preflight(cfg)  # a person's mistake is reported here once, not by every rank
    if plan is None:
        train.run_sft(cfg)
        return 0
    with tempfile.TemporaryDirectory(prefix="kit-launch-") as tmp:
        cfg_file = Path(tmp) / "config.yaml"
        cfg_file.write_text(yaml.safe_dump(portable_config(cfg), sort_keys=False, allow_unicode=True), encoding="utf-8")
        cmd = torchrun_command(plan, [str(cfg_file)])
        child_env = child_environment(env, info, plan.nproc_per_node)
        banner = (f"[kit] launching torchrun ({plan.reason}): nproc_per_node={plan.nproc_per_node} nnodes={plan.nnodes} "
                  f"node_rank={plan.node_rank} master={plan.master_addr}:{plan.master_port}")
        if on_line is None and on_tick is None:
            print(banner, flush=True)
            return subprocess.call(cmd, env=child_env, cwd=cwd)
        emit = on_line or (lambda line: None)
        emit(banner)
        proc = subprocess.Popen(cmd, env=child_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, errors="replace")

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                emit(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            while proc.poll() is None:
                if on_tick is not None:
                    on_tick()
                reader.join(tick_seconds)
        except KeyboardInterrupt:  # the notebook's stop button: end the whole torchrun tree
            proc.terminate()
            proc.wait(30)
            raise
        reader.join(5)
        if on_tick is not None:
            on_tick()
        return proc.returncode
