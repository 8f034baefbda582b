"""Start training under torchrun, as a subprocess (for the CLI and for notebooks), and never leave it behind.

``kit train`` re-launches itself under torchrun when DeepSpeed is set, FORCE_TORCHRUN is set, or
more than one accelerator is visible; otherwise it trains in-process. The plan (checks, encoded
data) is built once here and saved for the ranks. The command uses ``sys.executable -m
torch.distributed.run`` rather than ``torchrun`` from PATH, because a notebook kernel's PATH may not
include the venv's bin directory.

torchrun runs in its own session, so only this process decides when it stops: Ctrl-C (SIGINT),
SIGTERM and SIGHUP to ``kit train``, and any exception in a notebook (the stop button included),
stop torchrun and every rank it started (ranks run in sessions of their own), with SIGKILL for any
still alive after a grace period. A rank left running would hold the card's memory, and with the
quick start's ``ddp_timeout: 180000000`` it would never time out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from kit import device as device_mod
from kit.run import plan as plan_mod
from kit.run import output as output_mod
from kit.config import Config, ConfigError
from kit.envvars import EnvSettings, master_addr, rendezvous_problems
from kit.errors import KitError, Terminated
from kit import ports
from kit.i18n import _, language



@dataclass(frozen=True)
class TorchrunLaunch:
    nproc_per_node: int
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int  # 0: one node, torchrun picks and holds a free port itself (--standalone)
    reason: str  # why torchrun is used

    def describe(self) -> str:
        where = (f"master={self.master_addr}:{self.master_port}" if self.master_port
                 else _("standalone: torchrun picks a free port on this machine"))
        return f"nproc_per_node={self.nproc_per_node} nnodes={self.nnodes} node_rank={self.node_rank} {where}"


def plan_launch(cfg: Config, env: EnvSettings, info: device_mod.DeviceInfo, host_one: bool = False) -> TorchrunLaunch | None:
    """How to launch, or None to train in this process.

    ``host_one``: the caller can host one DeepSpeed process itself (``kit train``, whose process ends
    with the run), so DeepSpeed alone, on one device and one node, is no reason for torchrun: as
    LLaMA-Factory does without FORCE_TORCHRUN, and without starting and importing everything twice.
    A notebook's kernel cannot: it would keep the card's memory after the run.
    """
    reasons = []
    # On CPU one process unless told otherwise (LLaMA-Factory counts 0 devices there and fails).
    nproc = env.nproc_per_node if env.nproc_per_node is not None else (info.count if info.is_accelerator else 1)
    if cfg.train.deepspeed and not (host_one and nproc == 1 and env.nnodes <= 1):
        reasons.append(_("deepspeed is set"))
    if env.force_torchrun:
        reasons.append(_("FORCE_TORCHRUN is set"))
    if info.is_accelerator and info.count > 1:
        reasons.append(_("{count} {kind} devices are visible").format(count=info.count, kind=info.kind))
    if env.nnodes > 1:
        reasons.append(f"NNODES={env.nnodes}")
    if env.nproc_per_node is not None and env.nproc_per_node > 1:
        reasons.append(f"NPROC_PER_NODE={env.nproc_per_node}")
    problems = rendezvous_problems(env)  # the same rules kit doctor checks, whether or not torchrun is needed
    if problems:
        raise ConfigError(problems)
    if not reasons:
        return None
    port = env.master_port if (env.master_port or env.nnodes > 1) else 0
    return TorchrunLaunch(nproc, env.nnodes, env.node_rank, master_addr(env), port, ", ".join(reasons))


def torchrun_command(plan: TorchrunLaunch, train_args: Sequence[str]) -> list[str]:
    if plan.master_port:
        where = ["--nnodes", str(plan.nnodes), "--node_rank", str(plan.node_rank),
                 "--master_addr", plan.master_addr, "--master_port", str(plan.master_port)]
    else:  # torchrun binds port 0 and keeps it: no race with another run starting at the same moment
        where = ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(plan.nproc_per_node), *where,
            "-m", "kit.train", *train_args]


def child_environment(env: EnvSettings, info: device_mod.DeviceInfo, nproc: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The ranks' environment: this process's, with the documented variables as ``env`` read them.

    A notebook's ``visible_devices``, ``npu_alloc_conf`` and ``use_modelscope_hub`` (set by
    ``kit.envvars.apply`` in the kernel) reach every rank this way: each rank's NPU runtime reads
    them when it starts. Plus unbuffered output, DeepSpeed's op cache, and OpenMP threads on a CPU.
    """
    out = device_mod.subprocess_env(env, dict(os.environ if base is None else base))
    out.setdefault("PYTHONUNBUFFERED", "1")
    # The ranks speak the language this process chose (kit --lang zh, a notebook's lang), not only the locale's.
    out["KIT_LANG"] = language()
    # DeepSpeed compiles a C++ op on first use (about a minute); keep it between runs.
    out.setdefault("TORCH_EXTENSIONS_DIR", str(device_mod.extensions_dir()))
    if info.kind == "cpu" and "OMP_NUM_THREADS" not in out:
        out["OMP_NUM_THREADS"] = str(cpu_threads(nproc))
    return out


def cpu_threads(nproc: int) -> int:
    """OpenMP threads per training process on a CPU.

    Several processes share the cores: measured on 2 cores, DeepSpeed ran 25-37 steps/s with 1 thread
    per process, under 2 with the default. One process gets every physical core, as torch and accelerate
    would give it: on 2 cores the quick start's tiny run took 26-28 steps/s with 2 threads, 20-23 with 1.
    """
    import psutil

    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    if nproc > 1:
        return max(1, min(cores, usable) // (2 * nproc))
    return max(1, min(cores, usable))


def prebuild_deepspeed_ops(folder: Path | None = None) -> bool:
    """Compile DeepSpeed's CPU communication op now, into the cache training uses, instead of in the first run.

    The compile takes about a minute and, with g++ on torch's headers, gigabytes of memory: Binder's
    postBuild does it at image build time so a 2 GB session never has to.
    """
    code = ("from deepspeed.accelerator import get_accelerator; "
            "b = get_accelerator().create_op_builder('ShareMemCommBuilder'); b is not None and b.load()")
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(folder or device_mod.extensions_dir())}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0


# ---------------------------------------------------------------- processes

GRACE_SECONDS = 8.0  # after the signal, before SIGKILL; well inside what a person waits for a prompt


@contextlib.contextmanager
def signals_raise(interrupt: bool = False) -> Iterator[None]:
    """While training runs, SIGTERM and SIGHUP raise Terminated in the main thread, so the ranks are stopped.

    Each handler first remembers this process's descendants for stop_descendants; ``interrupt``: Ctrl+C's
    SIGINT too (raising KeyboardInterrupt as Python's own handler does). A signal a person has set to be
    ignored (nohup) stays ignored; outside the main thread (where Python cannot install handlers) nothing
    changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: object) -> None:
        _remember_descendants()
        raise Terminated(signum)

    def raise_interrupt(signum: int, frame: object) -> None:
        _remember_descendants()
        raise KeyboardInterrupt

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, raise_terminated)
    if interrupt and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, raise_interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# The processes below this one when a signal arrived: stop_descendants stops these too. A library's clean-up
# that runs while the signal's exception unwinds (nbclient shutting its kernel down) can end a process in the
# middle of a tree, and what that process had started in a session of its own (torchrun and its ranks) is then
# no longer this process's descendant.
_AT_SIGNAL: list = []


def _remember_descendants() -> None:
    try:
        import psutil

        _AT_SIGNAL[:] = psutil.Process().children(recursive=True)
    except Exception:  # psutil missing or /proc unreadable: the descendants found later are stopped all the same
        pass


def stop_tree(proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """Stop torchrun and every process under it: SIGTERM to the ranks (and what they started), SIGKILL after ``grace``.

    torchrun itself is killed at once, just after its ranks are signalled. It holds nothing to save, and any
    signal it could handle (SIGINT, SIGTERM) makes it print a 30-line SignalException traceback, or a
    ChildFailedError report once it sees its ranks end: noise after a person's Ctrl+C, which the kit answers with
    one line.
    """
    import psutil

    try:
        root = psutil.Process(proc.pid)
        ranks = root.children(recursive=True)
    except psutil.NoSuchProcess:
        root, ranks = None, []
    for p in ranks:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.send_signal(signal.SIGTERM)
    if root is not None:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            root.kill()
    _stop(ranks, grace, signalled=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def stop_descendants(grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to every process this one started (and theirs), SIGKILL after ``grace``.

    For a command that runs its work in other processes it did not start itself as torchrun
    (kit batch: pool workers, their notebook kernels, the kernels' torchrun and ranks).
    """
    import psutil

    tree = psutil.Process().children(recursive=True)
    pids = {p.pid for p in tree}
    # psutil refuses to signal a remembered process whose PID was reused since: only the same processes are stopped.
    tree += [p for p in _AT_SIGNAL if p.pid not in pids and p.is_running()]
    _AT_SIGNAL.clear()
    _stop(tree, grace)


def _stop(tree: list, grace: float, signalled: bool = False) -> None:
    """SIGTERM to ``tree`` (unless ``signalled`` already), SIGKILL to what is left after ``grace`` seconds."""
    import psutil

    for p in tree if not signalled else ():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


def exit_code(returncode: int) -> int:
    """A shell's convention: a process killed by signal N exits 128+N (Popen reports -N)."""
    return 128 - returncode if returncode < 0 else returncode


def run_supervised(cmd: Sequence[str], env: dict[str, str], cwd: str | Path | None = None,
                   on_line: Callable[[str], None] | None = None, on_tick: Callable[[], None] | None = None,
                   tick_seconds: float = 1.0) -> int:
    """Run ``cmd`` in a session of its own; stop its whole tree on any signal or exception here. Returns its exit code.

    With ``on_line`` / ``on_tick`` its output is captured line by line and ``on_tick`` called about
    every ``tick_seconds``; otherwise it writes to this process's stdout and stderr.
    """
    capture = on_line is not None or on_tick is not None
    proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, start_new_session=True,
                            stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
                            text=True, bufsize=1, errors="replace")
    reader = None
    try:
        with signals_raise():
            if capture:
                emit = on_line or (lambda line: None)

                def pump() -> None:
                    assert proc.stdout is not None
                    for line in proc.stdout:
                        emit(line.rstrip("\n"))

                reader = threading.Thread(target=pump, daemon=True)
                reader.start()
            while proc.poll() is None:
                if on_tick is not None:
                    on_tick()
                if reader is not None:
                    reader.join(tick_seconds)
                else:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(tick_seconds)
    except BaseException:  # Ctrl-C, the notebook's stop button, SIGTERM/SIGHUP, or a failing on_tick
        ignore = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)} \
            if threading.current_thread() is threading.main_thread() else {}
        try:
            stop_tree(proc)
        finally:
            for s, handler in ignore.items():
                signal.signal(s, handler)
        raise
    if reader is not None:
        reader.join(5)
    if on_tick is not None:
        on_tick()
    return exit_code(proc.returncode)


@contextlib.contextmanager
def _launch_folder(plan: plan_mod.RunPlan) -> Iterator[str]:
    """A temporary folder holding the plan and the encoded data for the ranks; a full or unwritable TMPDIR is a message."""
    folder = None
    try:
        folder = tempfile.TemporaryDirectory(prefix="kit-launch-")
        plan.save(Path(folder.name))
    except OSError as exc:
        if folder is not None:
            folder.cleanup()
        raise KitError(_("could not write the plan for the training processes into the temporary folder ({error}); free "
                         "space there, or set TMPDIR to a folder with space").format(error=exc)) from None
    with folder as tmp:
        yield tmp


def launch_sft(cfg: Config, on_line: Callable[[str], None] | None = None, env: EnvSettings | None = None,
               cwd: str | Path | None = None, on_tick: Callable[[], None] | None = None, tick_seconds: float = 1.0,
               host_one: bool = False) -> int:
    """Run training as the config says: under torchrun when needed, else in this process. Returns an exit code.

    The plan is built once, here: a person's mistake is reported once (not by every rank) and the
    data is encoded once. ``on_line`` receives every output line of the training processes and
    ``on_tick`` is called about every ``tick_seconds`` while they run (a notebook redraws its
    progress bar and loss plot there); without either, the output goes to this process's stdout.
    ``host_one`` (``kit train``): one DeepSpeed process runs here, not under torchrun (see plan_launch).
    """
    from kit.run import recipe as train

    emit = on_line or (lambda line: print(line, flush=True))
    env = env or EnvSettings.from_environ()
    info = device_mod.detect(cfg.model.device, env, query=False)  # kind and count only: card 0 stays free for the ranks
    launch = plan_launch(cfg, env, info, host_one=host_one)
    if launch is not None and launch.master_port and launch.node_rank == 0:
        ports.require_free_port(launch.master_port)  # node 0 hosts the rendezvous on it; other nodes only connect
    plan = plan_mod.build(cfg, env)
    # What happens to output_dir, said once: to on_line's reader (a notebook), else on standard error with the
    # kit's other status lines (prepare_output below does not log it again).
    if plan.output.message:
        if on_line is not None:
            emit(f"[kit] {plan.output.message}")
        else:
            print(f"[kit] {plan.output.message}", file=sys.stderr, flush=True)
    if launch is None:
        if plan.deepspeed_path:
            from kit.model import drop_deepspeed_cpu_note

            drop_deepspeed_cpu_note()  # this process is a rank now: the kit's device check says what DeepSpeed's note would
            emit("[kit] " + _("one process: DeepSpeed runs in this one, as LLaMA-Factory does on one device "
                              "(FORCE_TORCHRUN=1 starts torchrun instead)"))
        output_mod.prepare_output(plan.cfg, plan.output, say=False)
        train.run_sft(plan)
        return 0
    with _launch_folder(plan) as tmp:
        output_mod.prepare_output(plan.cfg, plan.output, say=False)
        emit("[kit] " + _("launching torchrun ({reason}): {launch}").format(reason=launch.reason, launch=launch.describe()))
        return run_supervised(torchrun_command(launch, ["--plan", tmp]), child_environment(env, info, launch.nproc_per_node),
                              cwd, on_line, on_tick, tick_seconds)
