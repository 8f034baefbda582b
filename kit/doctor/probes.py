"""Gathering the doctor's facts: files, commands, imports, the environment mapping, disk and memory.

Every probe catches its own errors and records them as facts; gathering never raises. Probes that
may hang (``npu-smi info``, DeepSpeed's accelerator probe, a matmul on the device) run with a time
limit; the two that run other programs run beside this process's own imports.

The errors recorded here are shown to people as a check's found text, so they are made in the language
chosen (``kit.i18n._``); the gathering runs after ``doctor(lang=...)`` has set it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kit import device as kit_device
from kit.doctor.facts import (DEFAULT_SOURCE, MINIMUM_VERSIONS, CannFacts, DeepSpeedFacts, DiskFacts, DriverFacts, Facts,
                              MemoryFacts, NpuChip, NpuProcess, NpuSmiFacts, SmokeFacts, TorchFacts, TorchNpuFacts)
from kit.envvars import EnvError, EnvSettings
from kit.i18n import _
from kit.processes import die_with_parent

NPU_SMI_TIMEOUT_S = 10.0
SMOKE_TIMEOUT_S = 120.0
DEEPSPEED_PROBE_TIMEOUT_S = 90.0

_DRIVER_FILES = (Path("/usr/local/Ascend/driver/version.info"),)
_NPU_SMI_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/local/Ascend/driver/tools")
_BUS_ID = re.compile(r"\b[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]\b")
_USED_TOTAL = re.compile(r"(\d+)\s*/\s*(\d+)")


# ------------------------------------------------------------------------------------------ versions

def release(version: str | None) -> tuple[int, ...] | None:
    """Leading numeric release of a version string: '2.12.0.post3' -> (2, 12, 0), '8.0.RC3' -> (8, 0)."""
    if not version:
        return None
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def at_least(version: str | None, minimum: str | tuple[int, ...]) -> bool:
    have = release(version)
    want = release(minimum) if isinstance(minimum, str) else minimum
    if have is None or want is None:
        return False
    n = max(len(have), len(want))
    return have + (0,) * (n - len(have)) >= want + (0,) * (n - len(want))


def distribution_version(name: str) -> str | None:
    """Installed version from package metadata (no import, so a broken package still reports one)."""
    for candidate in (name, name.replace("_", "-"), name.replace("-", "_")):
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def read_key_value_file(path: Path) -> dict[str, str]:
    """Read Ascend's ``key=value`` files (version.info, *_install.info). Raises OSError / ValueError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(_("{path} is not a text file (it could not be decoded as UTF-8)").format(path=path)) from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, _sep, value = line.partition("=")
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def _read_version_file(path: Path, key: str = "version") -> tuple[str | None, str | None]:
    """(version, error): a missing key or a value that is not a version is an error, not a crash."""
    try:
        values = read_key_value_file(path)
    except (OSError, ValueError) as exc:
        return None, _("cannot read {path}: {error}").format(path=path, error=exc)
    value = values.get(key)
    if value is None:
        return None, _("{path} has no '{key}=' line (the file may be corrupt or from an unknown release)").format(path=path, key=key)
    if release(value) is None:
        return None, _("{path} says {key}={value!r}, which is not a version number").format(path=path, key=key, value=value)
    return value, None


# ---------------------------------------------------------------------------------------- CANN, driver

def default_cann_roots(home: str | None) -> list[Path]:
    """Where CANN installs by default: older toolkit layout, newer (8.5+) layout, versioned, non-root."""
    bases = [Path("/usr/local/Ascend")]
    if home:
        bases.append(Path(home) / "Ascend")
    roots: list[Path] = []
    for base in bases:
        roots += [base / "ascend-toolkit" / "latest", base / "cann"]
        roots += sorted(base.glob("cann-*"), reverse=True)  # newest version first
    return roots


def find_cann(env: Mapping[str, str], roots: Sequence[Path] | None = None, arch: str | None = None) -> CannFacts:
    """Locate the CANN toolkit and read its version; ``roots`` replaces the default install paths."""
    arch = arch or platform.machine()
    candidates: list[tuple[Path, str]] = []
    for var in ("ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"):
        if env.get(var):
            candidates.append((Path(env[var]), var))
    for r in (default_cann_roots(env.get("HOME")) if roots is None else roots):
        candidates.append((Path(r), DEFAULT_SOURCE))
    facts = CannFacts(searched=[str(c) for c, _source in candidates])
    for root, source in candidates:
        if not root.is_dir():
            continue
        facts.root, facts.source = root, source
        names = [root / f"{arch}-linux" / "ascend_toolkit_install.info", *sorted(root.glob("*-linux/ascend_toolkit_install.info")),
                 root / "ascend_toolkit_install.info"]
        info = next((p for p in names if p.exists()), None)
        for p in (root.parent / "set_env.sh", root / "set_env.sh"):
            if p.is_file():
                facts.set_env = p
                break
        if info is None:
            facts.error = _("found {root} (from {source}) but no ascend_toolkit_install.info under it: "
                            "the toolkit install is incomplete or this is not a CANN toolkit folder").format(root=root, source=_(source))
            return facts
        facts.info_file = info
        facts.version, facts.error = _read_version_file(info)
        try:
            facts.arch = read_key_value_file(info).get("arch")
        except (OSError, ValueError):
            pass
        ops = info.parent / "ascend_ops_install.info"
        if ops.exists():
            facts.ops_version = _read_version_file(ops)[0]
            try:
                facts.ops_package = read_key_value_file(ops).get("package_name")
            except (OSError, ValueError):
                pass
        return facts
    return facts


def find_driver(paths: Sequence[Path] = _DRIVER_FILES) -> DriverFacts:
    facts = DriverFacts(searched=[str(p) for p in paths])
    for p in paths:
        if Path(p).exists():
            facts.path = Path(p)
            facts.version, facts.error = _read_version_file(Path(p), "version")
            return facts
    return facts


# ------------------------------------------------------------------------------------------- npu-smi

def find_npu_smi(env: Mapping[str, str], extra_dirs: Sequence[str] = _NPU_SMI_DIRS) -> str | None:
    found = shutil.which("npu-smi", path=env.get("PATH", ""))
    if found:
        return found
    for d in extra_dirs:  # sbin is often missing from a container user's PATH
        p = Path(d) / "npu-smi"
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def run_command(cmd: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> tuple[int | None, str, str | None]:
    """Run a command; (returncode, output, error). A hang is killed with its whole process group.

    ``subprocess.run(timeout=...)`` kills only the direct child and then waits for the pipe to close,
    which a grandchild (a shell script's ``sleep``, a hung driver tool) can keep open forever.
    """
    try:
        # SIGKILL with the thread that started it: the probes now run beside this process's imports, and a crash of
        # this process there (a broken torch_npu) must not leave a probe running, maybe hung, in its own session.
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=None if env is None else dict(env), start_new_session=True,
                                preexec_fn=die_with_parent(signal.SIGKILL))
    except OSError as exc:
        return None, "", _("cannot run {command}: {error}").format(command=cmd[0], error=exc)
    try:
        out, _err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        out, _err = proc.communicate()
        return (None, out.decode("utf-8", "replace"),
                _("{command} did not finish within {timeout:g} s and was stopped").format(command=" ".join(cmd), timeout=timeout))
    return proc.returncode, out.decode("utf-8", "replace"), None


def parse_npu_smi(text: str) -> tuple[list[NpuChip], str | None]:
    """Parse ``npu-smi info``: each chip is a row with name/health followed by a row with its PCI bus id.

    Keys on the bus id (stable across driver releases) rather than column positions, so the layout
    variations in FACTS.md (``NPU ID`` heading, empty chip cell, ``used/total`` without spaces, no
    AICore column) all parse. Process-table rows carry no bus id and are skipped.
    """
    chips: list[NpuChip] = []
    header_m = re.search(r"Version:\s*([0-9][\w.\-]*)", text)
    hbm = "HBM" in text
    prev: list[str] | None = None
    for line in text.splitlines():
        s = line.strip()
        if not (s.startswith("|") and s.endswith("|") and len(s) > 1):
            prev = None  # a border line separates cards
            continue
        cells = [c.strip() for c in s[1:-1].split("|")]
        bus_i = next((i for i, c in enumerate(cells) if _BUS_ID.search(c)), None)
        if bus_i is not None and prev is not None and len(prev) >= 2:
            first = prev[0].split()
            if first and first[0].isdigit():
                pairs = [(int(u), int(t)) for u, t in _USED_TOTAL.findall(" ".join(cells[bus_i + 1:]))]
                if not pairs:
                    used = total = None
                elif hbm:
                    used, total = pairs[-1]  # HBM-Usage is the last column; Memory-Usage is the control CPU's
                else:
                    used, total = max(pairs, key=lambda p: p[1])
                chip_tok = cells[0].split()
                chips.append(NpuChip(
                    npu_id=int(first[0]), chip=int(chip_tok[0]) if chip_tok and chip_tok[0].isdigit() else None,
                    name=" ".join(first[1:]) or "?", health=(prev[1].split() or ["?"])[0],
                    bus_id=_BUS_ID.search(cells[bus_i]).group(0), memory_used_mb=used, memory_total_mb=total))
        prev = cells
    return chips, header_m.group(1) if header_m else None


def parse_npu_processes(text: str) -> list[NpuProcess]:
    """The process table under the chips in ``npu-smi info``: rows of NPU id, chip, process id, name, memory.

    It starts at a heading with "Process id"; "No running processes found in NPU n" rows are skipped.
    """
    procs: list[NpuProcess] = []
    in_table = False
    for line in text.splitlines():
        s = line.strip()
        if "process id" in s.lower():
            in_table = True
            continue
        if not in_table or not (s.startswith("|") and s.endswith("|")):
            continue
        cells = [c.strip() for c in s[1:-1].split("|")]
        if len(cells) < 3:
            continue
        first = cells[0].split()
        if not (first and first[0].isdigit() and cells[1].isdigit()):
            continue
        mem = re.match(r"\d+", cells[3]) if len(cells) > 3 else None
        procs.append(NpuProcess(npu_id=int(first[0]), pid=int(cells[1]), name=cells[2] or "?",
                                memory_mb=int(mem.group(0)) if mem else None))
    return procs


def gather_npu_smi(env: Mapping[str, str], timeout: float = NPU_SMI_TIMEOUT_S,
                   extra_dirs: Sequence[str] = _NPU_SMI_DIRS) -> NpuSmiFacts:
    path = find_npu_smi(env, extra_dirs)
    if path is None:
        return NpuSmiFacts()
    rc, out, err = run_command([path, "info"], timeout, env)
    facts = NpuSmiFacts(path=path, returncode=rc, output=out, error=err)
    if err is None and rc == 0:
        facts.chips, facts.version = parse_npu_smi(out)
        facts.processes = parse_npu_processes(out)
        if not facts.chips:
            facts.parse_error = _("no NPU rows found (each card should have a row with a PCI bus id such as 0000:C1:00.0)")
    return facts


# ---------------------------------------------------------------------------- torch, torch_npu, DeepSpeed

def gather_torch() -> TorchFacts:
    facts = TorchFacts()
    try:
        import torch
    except Exception as exc:  # a broken torch_npu auto-load raises from `import torch`
        facts.error = f"{type(exc).__name__}: {exc}"
        facts.version = distribution_version("torch")
        return facts
    facts.version = torch.__version__
    facts.cuda_build = getattr(torch.version, "cuda", None)
    facts.hip_build = getattr(torch.version, "hip", None)
    try:
        facts.cuda_available = bool(torch.cuda.is_available())
        if facts.cuda_available:
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                facts.cuda_devices.append({"name": p.name, "total_bytes": int(p.total_memory)})
    except Exception as exc:
        facts.cuda_error = f"{type(exc).__name__}: {exc}"
    return facts


def gather_torch_npu(import_fn: Callable[[], tuple[Any | None, str | None]] = kit_device.import_torch_npu,
                     version_fn: Callable[[str], str | None] = distribution_version) -> TorchNpuFacts:
    """Import torch_npu only through kit.device; any exception becomes a recorded fact."""
    facts = TorchNpuFacts(version=version_fn("torch-npu"))
    try:
        module, reason = import_fn()
    except Exception as exc:
        module, reason = None, _("torch_npu import raised {type}: {error}").format(type=type(exc).__name__, error=exc)
    facts.installed = module is not None or facts.version is not None
    if module is None:
        facts.import_error = reason if facts.installed else None
        return facts
    facts.imported = True
    facts.version = facts.version or getattr(module, "__version__", None)
    try:
        import torch

        facts.cann_in_torch = getattr(torch.version, "cann", None)
        facts.available = bool(torch.npu.is_available())
        if facts.available:
            facts.device_count = int(torch.npu.device_count())
            facts.device_names = [str(torch.npu.get_device_name(i)) for i in range(facts.device_count)]
    except Exception as exc:
        facts.error = f"{type(exc).__name__}: {exc}"
    return facts


_DS_PROBE = ("from deepspeed.accelerator import get_accelerator\n"
             "a = get_accelerator()\n"
             "print('KIT_DS=' + a.device_name() + ',' + a.communication_backend_name())\n")


def gather_deepspeed(env: Mapping[str, str], timeout: float = DEEPSPEED_PROBE_TIMEOUT_S) -> DeepSpeedFacts:
    """Ask DeepSpeed which accelerator it picks, in a child process.

    A child keeps DeepSpeed's stdout logging out of ``--json`` output, keeps a slow or crashing
    accelerator probe from taking the doctor down, and leaves this process's DeepSpeed state untouched.
    """
    rc, out, err = run_command([sys.executable, "-c", _DS_PROBE], timeout, env)
    if err:
        return DeepSpeedFacts(error=err)
    m = re.search(r"^KIT_DS=(\w+),(\w+)", out, re.M)
    if rc != 0 or not m:
        tail = out.strip().splitlines()[-1:] or [_("(no output)")]
        return DeepSpeedFacts(error=_("deepspeed.accelerator.get_accelerator() failed (exit {code}): {output}").format(code=rc, output=tail[0]))
    return DeepSpeedFacts(accelerator=m.group(1), backend=m.group(2))


# ------------------------------------------------------------------------------ disk, memory, smoke test

def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (output_dir and caches may not exist yet)."""
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def gather_disk(output_dir: str | Path) -> DiskFacts:
    facts = DiskFacts(path=str(output_dir))
    try:
        checked = nearest_existing(Path(output_dir))
        facts.checked_path = str(checked)
        facts.free_bytes = shutil.disk_usage(checked).free
    except OSError as exc:
        facts.error = str(exc)
    return facts


def gather_memory() -> MemoryFacts:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return MemoryFacts(total_bytes=int(vm.total), available_bytes=int(vm.available))
    except ImportError:
        pass
    try:
        values = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _sep, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
        return MemoryFacts(total_bytes=values.get("MemTotal"), available_bytes=values.get("MemAvailable"))
    except (OSError, ValueError, IndexError) as exc:
        return MemoryFacts(error=_("cannot read memory size (no psutil, /proc/meminfo: {error})").format(error=exc))


def run_smoke_test(requested: str, env: Mapping[str, str], timeout: float = SMOKE_TIMEOUT_S) -> SmokeFacts:
    """A small matmul on the device, compared with the CPU result (the Ascend docs' first test).

    Integer-valued inputs make the exact product representable in fp16/fp32, so any difference is a
    wrong result rather than rounding. Runs in a thread so a hung device becomes a failed check.
    """
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            import torch

            settings = EnvSettings.from_environ(env)
            info = kit_device.detect(None if requested == "auto" else requested, settings)
            result["device"] = info.kind if info.name == info.kind else f"{info.kind} ({info.name})"
            if info.kind != "cpu":
                kit_device.setup(info, settings)
            g = torch.Generator().manual_seed(0)
            a = torch.randint(-2, 3, (64, 48), generator=g).float()
            b = torch.randint(-2, 3, (48, 32), generator=g).float()
            expected = a @ b
            start = time.perf_counter()
            dev = info.torch_device(0)
            got = (a.to(dev) @ b.to(dev)).cpu()
            result["seconds"] = time.perf_counter() - start
            result["err"] = float((got - expected).abs().max())
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    device = result.get("device", requested)
    if t.is_alive():
        return SmokeFacts(device=device, ok=False,
                          error=_("the matmul did not finish within {timeout:g} s (the device may be hung)").format(timeout=timeout))
    if "error" in result:
        return SmokeFacts(device=device, ok=False, error=result["error"])
    err = result["err"]
    return SmokeFacts(device=device, ok=err < 1e-3, max_abs_error=err, seconds=result.get("seconds"),
                      error=None if err < 1e-3 else _("the result differs from the CPU's by up to {error:g}").format(error=err))


# ------------------------------------------------------------------------------------------- gather

def gather(device: str = "auto", output_dir: str | Path = ".", nproc: int | None = None, nnodes: int | None = None,
           env: Mapping[str, str] | None = None, timeout: float = NPU_SMI_TIMEOUT_S, smoke: bool = True) -> Facts:
    """Collect the facts for the checks. Never raises on a broken environment: failures become facts."""
    env = dict(os.environ if env is None else env)
    facts = Facts(python_version=platform.python_version(), os_name=platform.system(), arch=platform.machine(),
                  env=env, requested_device=device, nproc=nproc, nnodes=nnodes)
    try:
        settings = EnvSettings.from_environ(env)
        facts.nnodes = nnodes if nnodes is not None else settings.nnodes
        facts.nproc = nproc if nproc is not None else settings.nproc_per_node
        if facts.nproc is None and settings.world_size:
            # Under a launcher WORLD_SIZE counts every process of every node.
            facts.nproc = max(1, settings.world_size // max(1, facts.nnodes or 1))
    except EnvError as exc:
        facts.env_error, facts.env_variable = str(exc), exc.variable
    facts.packages = {name: distribution_version(name) for name in MINIMUM_VERSIONS}
    facts.packages["decorator"] = distribution_version("decorator")  # torch_npu needs it (LLaMA-Factory PR #3930)
    # The two probes in other processes (DeepSpeed's import in a child Python, npu-smi) start first and run while
    # this process imports torch and torch_npu: on a 910B machine each of the three takes seconds, and one after
    # another they were most of the doctor's time. Each keeps its own time limit.
    background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kit-doctor")
    try:
        deepspeed = background.submit(gather_deepspeed, env) if facts.packages.get("deepspeed") else None
        npu_smi = background.submit(gather_npu_smi, env, timeout)
        facts.torch = gather_torch()
        if facts.torch.error is None:
            facts.torch_npu = gather_torch_npu()
        else:
            facts.torch_npu = TorchNpuFacts(installed=distribution_version("torch-npu") is not None,
                                            version=distribution_version("torch-npu"),
                                            import_error=_("not tried: import torch failed"))
        facts.cann = find_cann(env)
        facts.driver = find_driver()
        facts.davinci_devices = sorted(str(p) for p in Path("/dev").glob("davinci[0-9]*"))
        facts.npu_smi = npu_smi.result()
        if deepspeed is not None:
            facts.deepspeed = deepspeed.result()
    finally:
        background.shutdown(wait=True)
    facts.compiler = shutil.which("c++", path=env.get("PATH", "")) or shutil.which("g++", path=env.get("PATH", ""))
    facts.disk = gather_disk(output_dir)
    facts.memory = gather_memory()
    if smoke and facts.torch.error is None and facts.env_error is None:
        facts.smoke = run_smoke_test(device, env)
    return facts
