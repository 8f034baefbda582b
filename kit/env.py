"""``kit doctor``: is this machine ready for the quick start, and if not, what to do about it.

The doctor works in two steps so that every check can be tested without an NPU:

1. ``gather(...)`` collects *facts*: versions, files (CANN ``*.info``, the driver's ``version.info``),
   the output of ``npu-smi info`` (run with a time limit), imports (torch, torch_npu through
   ``kit.device``), the environment mapping, disk and memory, and a small matmul on the device.
   Every probe catches its own errors and records them as facts; gathering never raises.
2. ``run_checks(facts)`` turns the facts into a ``DoctorReport``: one ``Check`` per question, each
   ``ok`` / ``warn`` / ``fail`` with what was found and, for every warn or fail, the command to run or
   the variable to set.

Tests build ``Facts`` by hand (or gather from a fake CANN tree and a fake ``npu-smi`` script) and call
the checks directly. On a machine with no Ascend hardware at all, the NPU checks say "not present"
with status ok: the kit then trains on CUDA or the CPU, which is a supported set-up, not an error.
"""

from __future__ import annotations

import argparse
import html
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kit import device as kit_device
from kit.envvars import EnvSettings

OK, WARN, FAIL = "ok", "warn", "fail"
_STATUS_ORDER = {OK: 0, WARN: 1, FAIL: 2}

# The kit's minimum versions, in one place (pyproject.toml states the same floors for pip).
MINIMUM_VERSIONS: dict[str, str] = {
    "transformers": "4.45",
    "peft": "0.12",
    "accelerate": "0.34",
    "deepspeed": "0.15",
    "modelscope": "1.18",
}
# Missing optional packages are a warning: the kit runs without them (no DeepSpeed config, no ModelScope ids).
OPTIONAL_PACKAGES: dict[str, str] = {
    "deepspeed": "needed only when the config names a DeepSpeed JSON (deepspeed: ...)",
    "modelscope": "needed only to download models from ModelScope (USE_MODELSCOPE_HUB=1)",
}
MINIMUM_TORCH = "2.1"
MINIMUM_PYTHON = (3, 10)
# LLaMA-Factory's Ascend install page asks for CANN >= 8.0.RC1.
MINIMUM_CANN = (8, 0)

NPU_SMI_TIMEOUT_S = 10.0
SMOKE_TIMEOUT_S = 120.0
DEEPSPEED_PROBE_TIMEOUT_S = 90.0
DISK_FAIL_BYTES = 1 << 30  # below 1 GiB even the adapter and logs may not fit
DISK_WARN_BYTES = 20 << 30  # a 7B model download alone is ~15 GB
MEMORY_FAIL_BYTES = 1 << 30
MEMORY_WARN_BYTES = 16 << 30  # loading a 7B model in bf16 goes through ~15 GB of host memory
NPU_BUSY_FRACTION = 0.2  # an idle 910B shows ~5% of HBM in use; far more means another job holds the chip

_DRIVER_FILES = (Path("/usr/local/Ascend/driver/version.info"),)
_NPU_SMI_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/local/Ascend/driver/tools")
_BUS_ID = re.compile(r"\b[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]\b")
_USED_TOTAL = re.compile(r"(\d+)\s*/\s*(\d+)")
_HEALTH_WARN = {"warning"}
_DOCS_NPU = "https://llamafactory.readthedocs.io/en/latest/advanced/npu_installation.html"


# ----------------------------------------------------------------------------------------- report

@dataclass(frozen=True)
class Check:
    """One question the doctor answers."""

    name: str  # stable id, used in JSON and tests
    title: str  # what was checked, for people
    status: str  # ok | warn | fail
    found: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in _STATUS_ORDER:
            raise ValueError(f"check {self.name}: status {self.status!r} is not ok, warn or fail")
        # A warning without a remedy only worries people; every warn/fail must say what to do.
        if self.status != OK and not self.fix:
            raise ValueError(f"check {self.name}: a {self.status} needs a fix")


@dataclass
class DoctorReport:
    checks: list[Check]

    @property
    def status(self) -> str:
        return max((c.status for c in self.checks), key=_STATUS_ORDER.__getitem__, default=OK)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def subset(self, *names: str) -> "DoctorReport":
        """A report of just these checks, in this order (the NPU notebook shows the stack layer by layer)."""
        return DoctorReport([self.get(n) for n in names])

    def get(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def summary(self) -> str:
        return (f"{len(self.checks)} checks: {len(self.checks) - len(self.warnings) - len(self.failures)} ok, "
                f"{len(self.warnings)} warning(s), {len(self.failures)} failure(s)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "ok": not self.failures,
            "summary": self.summary(),
            "checks": [_jsonable(asdict(c)) for c in self.checks],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def render_text(self, width: int = 100) -> str:
        name_w = max([len(c.name) for c in self.checks] + [5])
        found_w = max(30, width - name_w - 8)
        lines = [f"kit doctor: {self.summary()}", f"{'STATUS':<6}  {'CHECK':<{name_w}}  FOUND",
                 f"{'-' * 6}  {'-' * name_w}  {'-' * found_w}"]
        indent = " " * (6 + 2 + name_w + 2)
        for c in self.checks:
            # Never split a URL, path or command across lines: people copy them.
            wrapped = textwrap.wrap(c.found, found_w, break_long_words=False, break_on_hyphens=False) or [""]
            lines.append(f"{c.status.upper():<6}  {c.name:<{name_w}}  {wrapped[0]}")
            lines += [indent + w for w in wrapped[1:]]
            if c.fix:
                fix = textwrap.wrap("fix: " + c.fix, found_w, break_long_words=False, break_on_hyphens=False)
                lines += [indent + w for w in fix]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render_text()

    def _repr_html_(self) -> str:
        colours = {OK: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e"}
        rows = []
        for c in self.checks:
            fix = f"<br><b>fix:</b> <code>{html.escape(c.fix)}</code>" if c.fix else ""
            rows.append(
                f"<tr><td style='color:{colours[c.status]};font-weight:bold'>{c.status.upper()}</td>"
                f"<td>{html.escape(c.title)}</td><td style='text-align:left'>{html.escape(c.found)}{fix}</td></tr>")
        return (f"<p><b>kit doctor</b>: {html.escape(self.summary())}</p>"
                "<table><thead><tr><th>status</th><th>check</th><th style='text-align:left'>found / fix</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    return value


# ------------------------------------------------------------------------------------------ facts

@dataclass
class TorchFacts:
    version: str | None = None
    error: str | None = None  # import torch failed
    cuda_build: str | None = None  # torch.version.cuda
    hip_build: str | None = None
    cuda_available: bool = False
    cuda_devices: list[dict[str, Any]] = field(default_factory=list)  # name, total_bytes
    cuda_error: str | None = None


@dataclass
class TorchNpuFacts:
    installed: bool = False
    version: str | None = None  # from package metadata, so it is known even when the import fails
    import_error: str | None = None
    imported: bool = False
    available: bool | None = None  # torch.npu.is_available() after the import
    device_count: int | None = None
    device_names: list[str] = field(default_factory=list)
    cann_in_torch: str | None = None  # torch.version.cann: the CANN torch_npu loaded
    error: str | None = None  # the availability probe itself failed


@dataclass
class CannFacts:
    root: Path | None = None  # toolkit root, e.g. /usr/local/Ascend/ascend-toolkit/latest
    source: str | None = None  # which variable or default path named it
    info_file: Path | None = None
    version: str | None = None
    arch: str | None = None
    ops_version: str | None = None  # the kernels/ops package, when its .info file is beside the toolkit's
    set_env: Path | None = None
    error: str | None = None
    searched: list[str] = field(default_factory=list)


@dataclass
class DriverFacts:
    path: Path | None = None
    version: str | None = None
    error: str | None = None
    searched: list[str] = field(default_factory=list)


@dataclass
class NpuChip:
    npu_id: int
    chip: int | None
    name: str
    health: str
    bus_id: str
    memory_used_mb: int | None
    memory_total_mb: int | None


@dataclass
class NpuSmiFacts:
    path: str | None = None
    returncode: int | None = None
    output: str = ""
    error: str | None = None  # could not run / timed out
    chips: list[NpuChip] = field(default_factory=list)
    version: str | None = None  # from the table's header line, when it has one
    parse_error: str | None = None


@dataclass
class DeepSpeedFacts:
    accelerator: str | None = None
    backend: str | None = None
    error: str | None = None


@dataclass
class DiskFacts:
    path: str
    checked_path: str | None = None  # the nearest existing folder (output_dir may not exist yet)
    free_bytes: int | None = None
    error: str | None = None


@dataclass
class MemoryFacts:
    total_bytes: int | None = None
    available_bytes: int | None = None
    error: str | None = None


@dataclass
class SmokeFacts:
    device: str
    ok: bool
    max_abs_error: float | None = None
    seconds: float | None = None
    error: str | None = None


@dataclass
class Facts:
    """Everything the checks look at. Build one by hand in tests; ``gather()`` builds the real one."""

    python_version: str
    os_name: str
    arch: str
    env: dict[str, str]
    requested_device: str = "auto"
    nproc: int | None = None
    nnodes: int | None = None
    env_error: str | None = None  # EnvSettings could not parse a variable
    torch: TorchFacts = field(default_factory=TorchFacts)
    torch_npu: TorchNpuFacts = field(default_factory=TorchNpuFacts)
    cann: CannFacts = field(default_factory=CannFacts)
    driver: DriverFacts = field(default_factory=DriverFacts)
    npu_smi: NpuSmiFacts = field(default_factory=NpuSmiFacts)
    davinci_devices: list[str] = field(default_factory=list)
    packages: dict[str, str | None] = field(default_factory=dict)
    deepspeed: DeepSpeedFacts | None = None
    compiler: str | None = None
    disk: DiskFacts | None = None
    memory: MemoryFacts = field(default_factory=MemoryFacts)
    smoke: SmokeFacts | None = None


# ----------------------------------------------------------------------------------------- gather

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
        raise ValueError(f"{path} is not a text file (it could not be decoded as UTF-8)") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def _read_version_file(path: Path, key: str = "version") -> tuple[str | None, str | None]:
    """(version, error): a missing key or a value that is not a version is an error, not a crash."""
    try:
        values = read_key_value_file(path)
    except (OSError, ValueError) as exc:
        return None, f"cannot read {path}: {exc}"
    value = values.get(key)
    if value is None:
        return None, f"{path} has no '{key}=' line (the file may be corrupt or from an unknown release)"
    if release(value) is None:
        return None, f"{path} says {key}={value!r}, which is not a version number"
    return value, None


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
        candidates.append((Path(r), "default install path"))
    facts = CannFacts(searched=[str(c) for c, _ in candidates])
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
            facts.error = (f"found {root} (from {source}) but no ascend_toolkit_install.info under it: "
                           "the toolkit install is incomplete or this is not a CANN toolkit folder")
            return facts
        facts.info_file = info
        facts.version, facts.error = _read_version_file(info)
        try:
            facts.arch = read_key_value_file(info).get("arch")
        except (OSError, ValueError):
            pass
        ops = info.parent / "ascend_ops_install.info"
        if ops.exists():
            facts.ops_version, _ = _read_version_file(ops)
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
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=None if env is None else dict(env), start_new_session=True)
    except OSError as exc:
        return None, "", f"cannot run {cmd[0]}: {exc}"
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace"), f"{' '.join(cmd)} did not finish within {timeout:g} s and was stopped"
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


def gather_npu_smi(env: Mapping[str, str], timeout: float = NPU_SMI_TIMEOUT_S,
                   extra_dirs: Sequence[str] = _NPU_SMI_DIRS) -> NpuSmiFacts:
    path = find_npu_smi(env, extra_dirs)
    if path is None:
        return NpuSmiFacts()
    rc, out, err = run_command([path, "info"], timeout, env)
    facts = NpuSmiFacts(path=path, returncode=rc, output=out, error=err)
    if err is None and rc == 0:
        facts.chips, facts.version = parse_npu_smi(out)
        if not facts.chips:
            facts.parse_error = "no NPU rows found (each card should have a row with a PCI bus id such as 0000:C1:00.0)"
    return facts


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
        module, reason = None, f"torch_npu import raised {type(exc).__name__}: {exc}"
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
        tail = out.strip().splitlines()[-1:] or ["(no output)"]
        return DeepSpeedFacts(error=f"deepspeed.accelerator.get_accelerator() failed (exit {rc}): {tail[0]}")
    return DeepSpeedFacts(accelerator=m.group(1), backend=m.group(2))


def _nearest_existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def gather_disk(output_dir: str | Path) -> DiskFacts:
    facts = DiskFacts(path=str(output_dir))
    try:
        checked = _nearest_existing(Path(output_dir))
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
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
        return MemoryFacts(total_bytes=values.get("MemTotal"), available_bytes=values.get("MemAvailable"))
    except (OSError, ValueError, IndexError) as exc:
        return MemoryFacts(error=f"cannot read memory size (no psutil, /proc/meminfo: {exc})")


def run_smoke_test(requested: str, env: Mapping[str, str], timeout: float = SMOKE_TIMEOUT_S) -> SmokeFacts:
    """A small matmul on the device, compared with the CPU result (the Ascend docs' first test).

    Integer-valued inputs make the exact product representable in fp16/fp32, so any difference is a
    wrong result rather than rounding. Runs in a thread so a hung device becomes a failed check.
    """
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            import torch

            info = kit_device.detect(None if requested == "auto" else requested, EnvSettings.from_environ(env))
            result["device"] = info.kind if info.name == info.kind else f"{info.kind} ({info.name})"
            if info.kind != "cpu":
                kit_device.setup(info, EnvSettings.from_environ(env))
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
        return SmokeFacts(device=device, ok=False, error=f"the matmul did not finish within {timeout:g} s (the device may be hung)")
    if "error" in result:
        return SmokeFacts(device=device, ok=False, error=result["error"])
    err = result["err"]
    return SmokeFacts(device=device, ok=err < 1e-3, max_abs_error=err, seconds=result.get("seconds"),
                      error=None if err < 1e-3 else f"the result differs from the CPU's by up to {err:g}")


def gather(device: str = "auto", output_dir: str | Path = ".", nproc: int | None = None, nnodes: int | None = None,
           env: Mapping[str, str] | None = None, timeout: float = NPU_SMI_TIMEOUT_S, smoke: bool = True) -> Facts:
    """Collect the facts for the checks. Never raises on a broken environment: failures become facts."""
    env = dict(os.environ if env is None else env)
    facts = Facts(python_version=platform.python_version(), os_name=platform.system(), arch=platform.machine(),
                  env=env, requested_device=device, nproc=nproc, nnodes=nnodes)
    try:
        settings = EnvSettings.from_environ(env)
        facts.nproc = nproc if nproc is not None else settings.nproc_per_node
        facts.nnodes = nnodes if nnodes is not None else settings.nnodes
    except ValueError as exc:
        facts.env_error = str(exc)
    facts.torch = gather_torch()
    if facts.torch.error is None:
        facts.torch_npu = gather_torch_npu()
    else:
        facts.torch_npu = TorchNpuFacts(installed=distribution_version("torch-npu") is not None,
                                        version=distribution_version("torch-npu"),
                                        import_error="not tried: import torch failed")
    facts.cann = find_cann(env)
    facts.driver = find_driver()
    facts.npu_smi = gather_npu_smi(env, timeout)
    facts.davinci_devices = sorted(str(p) for p in Path("/dev").glob("davinci[0-9]*"))
    facts.packages = {name: distribution_version(name) for name in MINIMUM_VERSIONS}
    if facts.packages.get("deepspeed"):
        facts.deepspeed = gather_deepspeed(env)
    facts.compiler = shutil.which("c++", path=env.get("PATH", "")) or shutil.which("g++", path=env.get("PATH", ""))
    facts.disk = gather_disk(output_dir)
    facts.memory = gather_memory()
    if smoke and facts.torch.error is None and facts.env_error is None:
        facts.smoke = run_smoke_test(device, env)
    return facts


# ----------------------------------------------------------------------------------------- checks

def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / (1 << 30):.1f} GiB"


def npu_signs(f: Facts) -> list[str]:
    """What on this machine says an Ascend NPU is meant to be used."""
    signs = []
    if f.driver.path:
        signs.append(f"driver file {f.driver.path}")
    if f.npu_smi.path:
        signs.append(f"npu-smi at {f.npu_smi.path}")
    if f.davinci_devices:
        signs.append(f"{len(f.davinci_devices)} /dev/davinci* device(s)")
    if f.cann.root:
        signs.append(f"CANN at {f.cann.root}")
    if f.torch_npu.installed:
        signs.append("torch_npu installed")
    return signs


def npu_expected(f: Facts) -> bool:
    """True when the NPU checks should hold the machine to NPU standards (warn/fail), not just inform."""
    if f.requested_device == "npu":
        return True
    return f.requested_device == "auto" and bool(npu_signs(f))


def _fallback_kind(f: Facts) -> str:
    return "cuda" if f.torch.cuda_available and f.requested_device != "cpu" else "cpu"


def _not_present(name: str, title: str, what: str, f: Facts, **details: Any) -> Check:
    why = ("not used: --device " + f.requested_device) if f.requested_device in ("cpu", "cuda") else "not present"
    return Check(name, title, OK, f"{why}: {what}", details={"present": False, **details})


def _set_env_cmd(f: Facts) -> str:
    p = f.cann.set_env or (f.cann.root.parent / "set_env.sh" if f.cann.root else Path("/usr/local/Ascend/ascend-toolkit/set_env.sh"))
    return f"source {p}"


def check_python(f: Facts) -> Check:
    found = f"Python {f.python_version} on {f.os_name} {f.arch}"
    details = {"python": f.python_version, "os": f.os_name, "arch": f.arch}
    if not at_least(f.python_version, MINIMUM_PYTHON):
        return Check("python", "Python and OS", FAIL, found + f"; the kit needs Python >= {'.'.join(map(str, MINIMUM_PYTHON))}",
                     "create an environment with a newer Python, e.g. conda create -n kit python=3.11", details)
    if npu_expected(f) and (f.os_name != "Linux" or f.arch not in ("aarch64", "x86_64")):
        return Check("python", "Python and OS", WARN, found + "; the Ascend stack (CANN, torch_npu) supports Linux on aarch64 or x86_64 only",
                     "use a Linux aarch64/x86_64 machine or container for the NPU", details)
    return Check("python", "Python and OS", OK, found, details=details)


def check_environment(f: Facts) -> Check:
    if f.env_error:
        return Check("environment", "Kit environment variables", FAIL, f.env_error,
                     "unset the variable or set it to a whole number (e.g. unset NNODES)")
    return Check("environment", "Kit environment variables", OK, "the documented variables parse (see kit/envvars.py)")


def check_torch(f: Facts) -> Check:
    t = f.torch
    if t.error:
        fix = "pip install torch==2.13.0 (CPU) or the torch that matches your torch_npu / CUDA"
        if "torch_npu" in t.error or "backend extension" in t.error:
            fix = (f"{_set_env_cmd(f)} (torch_npu loads with torch and needs CANN), or export TORCH_DEVICE_BACKEND_AUTOLOAD=0 "
                   "to run without the NPU, or pip uninstall torch-npu on a machine without CANN")
        return Check("torch", "PyTorch", FAIL, f"import torch failed: {t.error}", fix, {"version": t.version})
    build = "npu (torch_npu)" if f.torch_npu.imported else f"cuda {t.cuda_build}" if t.cuda_build else f"rocm {t.hip_build}" if t.hip_build else "cpu"
    details = {"version": t.version, "build": build}
    if not at_least(t.version, MINIMUM_TORCH):
        return Check("torch", "PyTorch", FAIL, f"torch {t.version} is older than {MINIMUM_TORCH}",
                     "pip install --upgrade torch (on an NPU: the version your torch_npu requires)", details)
    return Check("torch", "PyTorch", OK, f"torch {t.version}, {build} build", details=details)


def check_npu(f: Facts) -> Check:
    """The headline NPU answer: present and usable, absent (fine), or present but unusable."""
    signs = npu_signs(f)
    tn = f.torch_npu
    if tn.imported and tn.available:
        names = ", ".join(sorted(set(tn.device_names))) or "npu"
        return Check("npu", "Ascend NPU", OK, f"{tn.device_count} NPU(s) usable by torch: {names}",
                     details={"present": True, "count": tn.device_count})
    if not npu_expected(f):
        fallback = _fallback_kind(f)
        return _not_present("npu", "Ascend NPU",
                            f"no Ascend NPU on this machine (no driver, npu-smi, /dev/davinci*, CANN or torch_npu found); "
                            f"the kit will run on {fallback}" if not signs else
                            f"found {', '.join(signs)} but the kit will run on {fallback}", f, signs=signs)
    if not signs:
        return Check("npu", "Ascend NPU", FAIL, "--device npu was asked for but no Ascend driver, npu-smi, /dev/davinci*, CANN or torch_npu was found",
                     f"install the driver, CANN and torch_npu ({_DOCS_NPU}); in a container pass --device /dev/davinci0 "
                     "--device /dev/davinci_manager --device /dev/devmm_svm --device /dev/hisi_hdc and mount /usr/local/Ascend/driver",
                     {"present": False, "signs": signs})
    if not tn.installed:
        why = "torch_npu is not installed"
        fix = f"pip install torch-npu=={'.'.join(map(str, (release(f.torch.version) or (0,))[:3]))} (the release matching torch {f.torch.version})"
    elif not tn.imported:
        why = f"torch_npu does not import: {tn.import_error}"
        fix = f"{_set_env_cmd(f)}, then check the torch_npu check below"
    elif tn.error:
        why = f"torch.npu failed: {tn.error}"
        fix = "check the driver (npu-smi info) and ASCEND_RT_VISIBLE_DEVICES"
    else:
        why = "torch_npu imports but torch.npu.is_available() is False"
        fix = "check the driver and device files (npu-smi info, ls /dev/davinci*) and ASCEND_RT_VISIBLE_DEVICES"
    return Check("npu", "Ascend NPU", FAIL, f"{why} (found {', '.join(signs)}); training would fall back to {_fallback_kind(f)}, very slowly",
                 fix, {"present": True, "usable": False, "signs": signs})


def check_torch_npu(f: Facts) -> Check:
    tn = f.torch_npu
    title = "torch_npu"
    if not tn.installed:
        if not npu_expected(f):
            return _not_present("torch_npu", title, "torch_npu is not installed (needed only for an Ascend NPU)", f)
        want = ".".join(map(str, (release(f.torch.version) or (0,))[:3]))
        return Check("torch_npu", title, FAIL, "torch_npu is not installed", f"pip install torch-npu=={want} (torch_npu X.Y.Z requires torch X.Y.Z)")
    found = f"torch_npu {tn.version or '(unknown version)'}"
    if tn.import_error:
        return Check("torch_npu", title, FAIL, f"{found} does not import: {tn.import_error}",
                     f"{_set_env_cmd(f)}; then make torch and torch_npu versions match (see the torch and cann checks)",
                     {"version": tn.version})
    tv, nv = release(f.torch.version), release(tn.version)
    if tv is None or nv is None:
        return Check("torch_npu", title, WARN, f"{found} with torch {f.torch.version}: cannot compare the versions",
                     "make sure torch_npu X.Y.Z is paired with torch X.Y.Z (pip show torch torch-npu)", {"version": tn.version})
    if tv[:3] != nv[:3]:
        want = ".".join(map(str, nv[:3]))
        return Check("torch_npu", title, FAIL, f"{found} requires torch {want}, but torch {f.torch.version} is installed",
                     f"pip install torch=={want} torch-npu=={tn.version} (install them together), or the torch_npu release for your torch",
                     {"version": tn.version, "torch": f.torch.version})
    return Check("torch_npu", title, OK, f"{found} imports and matches torch {f.torch.version}",
                 details={"version": tn.version, "cann": tn.cann_in_torch})


def check_cann(f: Facts) -> Check:
    c, title = f.cann, "CANN toolkit"
    if c.root is None:
        if not npu_expected(f):
            return _not_present("cann", title, "no CANN toolkit found (needed only for an Ascend NPU)", f, searched=c.searched)
        return Check("cann", title, FAIL, f"no CANN toolkit found; looked at ASCEND_HOME_PATH, ASCEND_TOOLKIT_HOME and {', '.join(c.searched) or 'the default paths'}",
                     f"install the CANN toolkit >= 8.0.RC1 and the kernels package for your chip ({_DOCS_NPU}), then {_set_env_cmd(f)}",
                     {"searched": c.searched})
    details = {"root": str(c.root), "source": c.source, "version": c.version, "ops_version": c.ops_version,
               "info_file": str(c.info_file) if c.info_file else None}
    if c.error:
        return Check("cann", title, FAIL, c.error,
                     "reinstall the CANN toolkit (its ascend_toolkit_install.info is missing or unreadable), or point ASCEND_HOME_PATH at a complete install",
                     details)
    found = f"CANN {c.version} at {c.root} (from {c.source})"
    if c.ops_version:
        found += f"; ops package {c.ops_version}"
    if not at_least(c.version, MINIMUM_CANN):
        return Check("cann", title, WARN, found + "; LLaMA-Factory asks for CANN >= 8.0.RC1",
                     f"install CANN >= 8.0.RC1 with its kernels package ({_DOCS_NPU})", details)
    return Check("cann", title, OK, found, details=details)


def check_cann_env(f: Facts) -> Check:
    c, title = f.cann, "CANN environment (set_env.sh)"
    if c.root is None:
        if not npu_expected(f):
            return _not_present("cann_env", title, "no CANN toolkit, nothing to source", f)
        return Check("cann_env", title, FAIL, "no CANN toolkit to source", f"install CANN, then {_set_env_cmd(f)}")
    home = f.env.get("ASCEND_HOME_PATH") or f.env.get("ASCEND_TOOLKIT_HOME")
    ld = f.env.get("LD_LIBRARY_PATH", "")
    roots = {str(c.root), str(c.root.resolve())}
    ld_ok = any(r in ld for r in roots) or (home is not None and home in ld)
    details = {"ASCEND_HOME_PATH": f.env.get("ASCEND_HOME_PATH"), "ASCEND_TOOLKIT_HOME": f.env.get("ASCEND_TOOLKIT_HOME"),
               "LD_LIBRARY_PATH_has_toolkit": ld_ok}
    if not home or not ld_ok:
        missing = [] if home else ["ASCEND_HOME_PATH / ASCEND_TOOLKIT_HOME unset"]
        missing += [] if ld_ok else ["LD_LIBRARY_PATH does not contain the toolkit"]
        # torch_npu importing fine means the libraries were found some other way: worth a warning only.
        status = WARN if f.torch_npu.imported else FAIL
        return Check("cann_env", title, status, f"set_env.sh has not been sourced: {'; '.join(missing)}",
                     f"{_set_env_cmd(f)} (add it to ~/.bashrc; a notebook kernel must be started from a shell that sourced it)", details)
    tc = f.torch_npu.cann_in_torch
    if release(tc) and release(c.version) and release(tc)[:2] != release(c.version)[:2]:
        return Check("cann_env", title, WARN, f"sourced, but torch_npu was loaded with CANN {tc} while the toolkit found is {c.version}",
                     f"source the set_env.sh of the CANN your torch_npu was built for, or {_set_env_cmd(f)} in a fresh shell", details)
    return Check("cann_env", title, OK, f"sourced (ASCEND_HOME_PATH={home}, toolkit on LD_LIBRARY_PATH)", details=details)


def check_driver(f: Facts) -> Check:
    d, title = f.driver, "Ascend driver"
    if d.path is None:
        if not npu_expected(f):
            return _not_present("driver", title, "no Ascend driver (" + ", ".join(d.searched) + " absent)", f)
        return Check("driver", title, FAIL, f"driver version file not found ({', '.join(d.searched)})",
                     "install the Ascend driver and firmware; in a container mount the host's /usr/local/Ascend/driver "
                     "(-v /usr/local/Ascend/driver:/usr/local/Ascend/driver)")
    if d.error:
        return Check("driver", title, FAIL, d.error, "reinstall the driver package, or mount the host's /usr/local/Ascend/driver intact",
                     {"path": str(d.path)})
    return Check("driver", title, OK, f"driver {d.version} ({d.path})", details={"version": d.version, "path": str(d.path)})


def check_npu_smi(f: Facts) -> Check:
    s, title = f.npu_smi, "npu-smi info"
    if s.path is None:
        if not npu_expected(f):
            return _not_present("npu_smi", title, "npu-smi is not installed (it comes with the Ascend driver)", f)
        return Check("npu_smi", title, FAIL, "npu-smi not found on PATH or in /usr/local/sbin, /usr/local/bin",
                     "install the Ascend driver (npu-smi comes with it) or add its folder to PATH; "
                     "in a container mount /usr/local/sbin/npu-smi from the host")
    tail = " | ".join(s.output.strip().splitlines()[-3:])[:300]
    if s.error:
        return Check("npu_smi", title, FAIL, s.error,
                     "the driver may be hung or busy: check dmesg, stop leftover processes on the cards, and if it persists reboot or reinstall the driver",
                     {"path": s.path})
    if s.returncode != 0:
        return Check("npu_smi", title, FAIL, f"npu-smi info exited with status {s.returncode}: {tail or '(no output)'}",
                     "check the driver is loaded (lsmod | grep drv_davinci), the device files exist (ls /dev/davinci*), "
                     "and that this user may use them (root or the HwHiAiUser group)", {"path": s.path})
    if s.parse_error:
        return Check("npu_smi", title, FAIL, f"npu-smi info printed output the kit could not read: {s.parse_error}; it printed: {tail or '(nothing)'}",
                     "run npu-smi info yourself; if the table looks normal, report the layout to the kit (with the driver version)",
                     {"path": s.path})
    chips = [asdict(c) for c in s.chips]
    bad = [c for c in s.chips if c.health.lower() != "ok"]
    busy = [c for c in s.chips if c.memory_total_mb and c.memory_used_mb is not None
            and c.memory_used_mb > NPU_BUSY_FRACTION * c.memory_total_mb]
    names = ", ".join(sorted({c.name for c in s.chips}))
    found = f"{len(s.chips)} chip(s): {names}" + (f"; driver {s.version}" if s.version else "")
    details = {"path": s.path, "chips": chips, "version": s.version}
    if any(c.health.lower() not in _HEALTH_WARN for c in bad):
        listing = ", ".join(f"NPU {c.npu_id} {c.health}" for c in bad)
        return Check("npu_smi", title, FAIL, f"{found}; unhealthy: {listing}",
                     "see npu-smi info -t health -i <NPU id> for the alarm; avoid these cards with ASCEND_RT_VISIBLE_DEVICES, "
                     "and contact the machine's administrator", details)
    problems, fixes = [], []
    if bad:
        problems.append("health " + ", ".join(f"NPU {c.npu_id} {c.health}" for c in bad))
        fixes.append("check npu-smi info -t health -i <NPU id>")
    if busy:
        problems.append("memory in use " + ", ".join(f"NPU {c.npu_id}: {c.memory_used_mb}/{c.memory_total_mb} MB" for c in busy))
        fixes.append("another job holds these chips: stop it (see the process table of npu-smi info) or choose free chips with ASCEND_RT_VISIBLE_DEVICES")
    if problems:
        return Check("npu_smi", title, WARN, f"{found}; {'; '.join(problems)}", "; ".join(fixes), details)
    return Check("npu_smi", title, OK, found + ", all healthy", details=details)


def check_visible_devices(f: Facts) -> Check:
    title, raw = "ASCEND_RT_VISIBLE_DEVICES", f.env.get("ASCEND_RT_VISIBLE_DEVICES")
    try:
        ids = kit_device.parse_visible_devices(raw)
    except ValueError as exc:
        return Check("visible_devices", title, FAIL, str(exc), "export ASCEND_RT_VISIBLE_DEVICES=0,1 (card numbers separated by commas) or unset it")
    n_present = len(f.npu_smi.chips) if f.npu_smi.chips else (f.torch_npu.device_count if raw is None else None)
    if not npu_expected(f):
        if raw is None:
            return _not_present("visible_devices", title, "unset, and no NPU to select", f)
        return Check("visible_devices", title, WARN, f"ASCEND_RT_VISIBLE_DEVICES={raw} is set but there is no NPU to select",
                     "unset ASCEND_RT_VISIBLE_DEVICES (or install the NPU stack if this machine should have one)")
    if ids == []:
        return Check("visible_devices", title, FAIL, "ASCEND_RT_VISIBLE_DEVICES is set but empty: no NPU is visible",
                     "export ASCEND_RT_VISIBLE_DEVICES=0 (or the cards you want), or unset it to see all")
    visible = len(ids) if ids is not None else n_present
    if ids is not None and n_present:
        beyond = [i for i in ids if i >= n_present]
        if beyond:
            return Check("visible_devices", title, FAIL,
                         f"ASCEND_RT_VISIBLE_DEVICES={raw} names device(s) {beyond}, but npu-smi shows {n_present} (0..{n_present - 1})",
                         f"export ASCEND_RT_VISIBLE_DEVICES={','.join(str(i) for i in range(min(len(ids), n_present)))}")
    want = f.nproc or 1
    if visible is not None and want > visible:
        return Check("visible_devices", title, FAIL, f"{want} processes per node asked for, but only {visible} NPU(s) visible",
                     f"launch with --nproc_per_node {visible} or make more cards visible (ASCEND_RT_VISIBLE_DEVICES)",
                     {"visible": visible})
    found = (f"unset: all {n_present if n_present is not None else '(unknown number of)'} NPU(s) visible" if ids is None
             else f"{raw}: {len(ids)} NPU(s) visible, numbered 0..{len(ids) - 1} in the process")
    return Check("visible_devices", title, OK, found, details={"ids": ids, "visible": visible})


def check_cuda(f: Facts) -> Check:
    t, title = f.torch, "CUDA"
    if t.cuda_available:
        names = ", ".join(d["name"] for d in t.cuda_devices)
        return Check("cuda", title, OK, f"{len(t.cuda_devices)} CUDA device(s): {names} (CUDA {t.cuda_build})", details={"devices": t.cuda_devices})
    if f.requested_device == "cuda":
        return Check("cuda", title, FAIL, f"--device cuda asked for, but torch {t.version} sees no CUDA device" + (f" ({t.cuda_error})" if t.cuda_error else ""),
                     "check nvidia-smi and CUDA_VISIBLE_DEVICES; a +cpu torch has no CUDA: pip install the CUDA build of torch")
    if t.cuda_build and not npu_expected(f):
        return Check("cuda", title, WARN, f"torch is a CUDA {t.cuda_build} build but no CUDA device is usable" + (f" ({t.cuda_error})" if t.cuda_error else ""),
                     "check nvidia-smi and CUDA_VISIBLE_DEVICES; on a machine without a GPU, pip install torch==2.13.0 from the CPU index saves several GB")
    return Check("cuda", title, OK, "no CUDA device (not needed)", details={"present": False})


def check_packages(f: Facts) -> list[Check]:
    out = []
    for name, minimum in MINIMUM_VERSIONS.items():
        have = f.packages.get(name)
        if have is None:
            if name in OPTIONAL_PACKAGES:
                out.append(Check(name, name, WARN, f"not installed; {OPTIONAL_PACKAGES[name]}", f"pip install '{name}>={minimum}'"))
            else:
                out.append(Check(name, name, FAIL, "not installed", f"pip install '{name}>={minimum}'"))
        elif not at_least(have, minimum):
            out.append(Check(name, name, FAIL, f"{name} {have} is older than the kit's minimum {minimum}",
                             f"pip install --upgrade '{name}>={minimum}'", {"version": have}))
        else:
            out.append(Check(name, name, OK, f"{name} {have} (>= {minimum})", details={"version": have}))
    return out


def _chosen_kind(f: Facts) -> str:
    if f.requested_device != "auto":
        return f.requested_device
    if f.torch_npu.imported and f.torch_npu.available:
        return "npu"
    return _fallback_kind(f)


def check_deepspeed_accelerator(f: Facts) -> Check:
    title = "DeepSpeed accelerator"
    if f.deepspeed is None:
        return Check("ds_accelerator", title, OK, "DeepSpeed is not installed; nothing to check", details={"present": False})
    if f.deepspeed.error:
        return Check("ds_accelerator", title, WARN, f.deepspeed.error,
                     "python -c 'from deepspeed.accelerator import get_accelerator; print(get_accelerator())' shows the full error; "
                     "pip install --upgrade deepspeed")
    kind = _chosen_kind(f)
    found = f"DeepSpeed uses {f.deepspeed.accelerator} (communication backend {f.deepspeed.backend})"
    details = {"accelerator": f.deepspeed.accelerator, "backend": f.deepspeed.backend, "device": kind}
    if f.deepspeed.accelerator != kind:
        return Check("ds_accelerator", title, WARN, f"{found}, but the kit will train on {kind}",
                     f"export DS_ACCELERATOR={kind}" + (" (and make sure torch_npu imports)" if kind == "npu" else ""), details)
    return Check("ds_accelerator", title, OK, found, details=details)


def check_compiler(f: Facts) -> Check:
    title = "C++ compiler (DeepSpeed ops)"
    if f.compiler:
        return Check("compiler", title, OK, f"{f.compiler}", details={"path": f.compiler})
    if f.deepspeed is None:
        return Check("compiler", title, OK, "no c++/g++ found; not needed without DeepSpeed", details={"path": None})
    return Check("compiler", title, WARN, "no c++ or g++ on PATH: DeepSpeed compiles some ops (e.g. CPU Adam) at first start and fails without one",
                 "apt-get install -y g++ (Debian/Ubuntu) or yum install -y gcc-c++; set TORCH_EXTENSIONS_DIR to a lasting cache")


def _writable(path: Path) -> bool:
    """Can ``path`` be created or written? (Its nearest existing ancestor must be a writable folder.)"""
    p = _nearest_existing(path)
    return p.is_dir() and os.access(p, os.W_OK)


def check_hub(f: Facts) -> Check:
    title = "Model hub and caches"
    ms = EnvSettings.from_environ(f.env).use_modelscope_hub if not f.env_error else False
    home = Path(f.env.get("HOME", "~"))
    hf_home = Path(f.env.get("HF_HOME") or home / ".cache" / "huggingface")
    ms_cache = Path(f.env.get("MODELSCOPE_CACHE") or home / ".cache" / "modelscope")
    hub = "ModelScope (USE_MODELSCOPE_HUB=1)" if ms else "Hugging Face"
    offline = " offline (HF_HUB_OFFLINE=1)" if f.env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") else ""
    cache = ms_cache if ms else hf_home
    details = {"hub": "modelscope" if ms else "huggingface", "HF_HOME": str(hf_home), "MODELSCOPE_CACHE": str(ms_cache)}
    found = f"model ids resolve through {hub}{offline}; cache {cache}"
    if ms and not f.packages.get("modelscope"):
        return Check("hub", title, FAIL, "USE_MODELSCOPE_HUB=1 but modelscope is not installed",
                     f"pip install 'modelscope>={MINIMUM_VERSIONS['modelscope']}', or unset USE_MODELSCOPE_HUB to use Hugging Face", details)
    if not _writable(cache):
        var = "MODELSCOPE_CACHE" if ms else "HF_HOME"
        return Check("hub", title, WARN, f"{found}, which is not writable: downloads will fail",
                     f"export {var}=/a/writable/folder (with room for the model)", details)
    if not ms and not f.env.get("HF_ENDPOINT"):
        found += "; in mainland China set USE_MODELSCOPE_HUB=1 or HF_ENDPOINT for faster downloads"
    return Check("hub", title, OK, found, details=details)


def check_disk(f: Facts) -> Check:
    title = "Free disk (output_dir)"
    d = f.disk
    if d is None:
        return Check("disk", title, OK, "not checked")
    if d.error or d.free_bytes is None:
        return Check("disk", title, WARN, f"cannot measure free space for {d.path}: {d.error}", "check the path of output_dir (df -h)")
    found = f"{_gib(d.free_bytes)} free at {d.checked_path} (for output_dir {d.path})"
    details = {"free_bytes": d.free_bytes, "path": d.checked_path}
    if d.free_bytes < DISK_FAIL_BYTES:
        return Check("disk", title, FAIL, found, "free some space or choose another output_dir (df -h shows the file systems)", details)
    if d.free_bytes < DISK_WARN_BYTES:
        return Check("disk", title, WARN, found + "; a 7B model download needs ~15 GB and checkpoints more",
                     "free space or point output_dir and HF_HOME / MODELSCOPE_CACHE at a larger disk", details)
    return Check("disk", title, OK, found, details=details)


def check_memory(f: Facts) -> Check:
    title, m = "Free memory (host RAM)", f.memory
    if m.error or m.available_bytes is None:
        return Check("memory", title, WARN, m.error or "unknown", "pip install psutil so the doctor can read memory")
    found = f"{_gib(m.available_bytes)} available of {_gib(m.total_bytes)}"
    details = {"available_bytes": m.available_bytes, "total_bytes": m.total_bytes}
    if m.available_bytes < MEMORY_FAIL_BYTES:
        return Check("memory", title, FAIL, found, "close other programs; even the tiny demo needs about 1 GiB", details)
    if m.available_bytes < MEMORY_WARN_BYTES:
        return Check("memory", title, WARN, found + "; loading a 7B model passes ~15 GB through host memory (the tiny demo is fine)",
                     "use a machine with more RAM for 7B models, or a smaller model (kit estimate shows what fits)", details)
    return Check("memory", title, OK, found, details=details)


def check_distributed(f: Facts) -> Check:
    """torchrun's variables for several processes or nodes (single process: nothing needed)."""
    title = "torchrun / multi-node"
    nproc, nnodes = f.nproc or 1, f.nnodes or 1
    details = {"nproc_per_node": nproc, "nnodes": nnodes, **{k: f.env.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK")}}
    if nnodes <= 1:
        if nproc <= 1:
            return Check("distributed", title, OK, "one process on one node: no torchrun variables needed", details=details)
        return Check("distributed", title, OK, f"{nproc} processes on one node: torchrun picks the address and port", details=details)
    problems = []
    if not f.env.get("MASTER_ADDR"):
        problems.append("MASTER_ADDR unset (every node must name node 0's address)")
    if not f.env.get("MASTER_PORT"):
        problems.append("MASTER_PORT unset")
    rank = f.env.get("NODE_RANK")
    if rank is None:
        problems.append("NODE_RANK unset")
    elif not rank.isdigit() or int(rank) >= nnodes:
        problems.append(f"NODE_RANK={rank} is not in 0..{nnodes - 1}")
    if problems:
        return Check("distributed", title, FAIL, f"{nnodes} nodes: " + "; ".join(problems),
                     f"on every node: export NNODES={nnodes} NODE_RANK=<0..{nnodes - 1}> MASTER_ADDR=<node 0 IP> MASTER_PORT=29500", details)
    return Check("distributed", title, OK,
                 f"{nnodes} nodes x {nproc} processes; this is node {rank}, master {f.env['MASTER_ADDR']}:{f.env['MASTER_PORT']}", details=details)


def check_hccl(f: Facts) -> Check:
    title = "HCCL (NPU collectives)"
    nproc, nnodes = f.nproc or 1, f.nnodes or 1
    keys = ("HCCL_CONNECT_TIMEOUT", "HCCL_SOCKET_IFNAME", "HCCL_EXEC_TIMEOUT")
    details = {k: f.env.get(k) for k in keys}
    if _chosen_kind(f) != "npu" or (nproc <= 1 and nnodes <= 1):
        return Check("hccl", title, OK, "not needed (one process, or not on an NPU)", details=details)
    timeout = f.env.get("HCCL_CONNECT_TIMEOUT")
    if timeout is not None and not timeout.isdigit():
        return Check("hccl", title, FAIL, f"HCCL_CONNECT_TIMEOUT={timeout!r} is not a number of seconds", "export HCCL_CONNECT_TIMEOUT=1200", details)
    if nnodes > 1:
        missing = [k for k in ("HCCL_SOCKET_IFNAME", "HCCL_CONNECT_TIMEOUT") if not f.env.get(k)]
        if missing:
            return Check("hccl", title, WARN, f"{nnodes} nodes and {', '.join(missing)} unset: HCCL may pick the wrong network or time out while nodes start",
                         "export HCCL_SOCKET_IFNAME=eth0 (the interface carrying MASTER_ADDR; see ip -br addr) HCCL_CONNECT_TIMEOUT=1200", details)
    set_ = ", ".join(f"{k}={v}" for k, v in details.items() if v) or "defaults"
    return Check("hccl", title, OK, f"{nproc} process(es) x {nnodes} node(s); HCCL {set_}", details=details)


def check_smoke(f: Facts) -> Check:
    title = "Smoke test (matmul)"
    s = f.smoke
    if s is None:
        reason = "torch does not import" if f.torch.error else "skipped"
        return Check("smoke", title, OK if not f.torch.error else FAIL, f"not run: {reason}",
                     None if not f.torch.error else "fix the torch check first")
    if not s.ok:
        fix = ("fix the npu / torch_npu checks first; then try python -c \"import torch, torch_npu; print((torch.ones(2,2).npu() @ torch.ones(2,2).npu()).cpu())\""
               if "npu" in s.device or f.requested_device == "npu" else "fix the device checks above (or run with --device cpu)")
        return Check("smoke", title, FAIL, f"64x48 @ 48x32 matmul on {s.device} failed: {s.error}", fix, {"device": s.device})
    return Check("smoke", title, OK, f"64x48 @ 48x32 matmul on {s.device} matches the CPU result (max error {s.max_abs_error:g})",
                 details={"device": s.device, "seconds": s.seconds})


CHECKS: list[Callable[[Facts], Check | list[Check]]] = [
    check_python, check_environment, check_torch, check_npu, check_torch_npu, check_cann, check_cann_env, check_driver,
    check_npu_smi, check_visible_devices, check_cuda, check_packages, check_deepspeed_accelerator, check_compiler,
    check_hub, check_disk, check_memory, check_distributed, check_hccl, check_smoke,
]


def run_checks(facts: Facts) -> DoctorReport:
    checks: list[Check] = []
    for fn in CHECKS:
        try:
            result = fn(facts)
        except Exception as exc:  # a bug in one check must not hide the other answers
            name = fn.__name__.removeprefix("check_")
            result = Check(name, name, FAIL, f"the doctor's own check crashed: {type(exc).__name__}: {exc}",
                           "this is a bug in kit: please report it with the traceback in details",
                           {"traceback": traceback.format_exc()})
        checks += result if isinstance(result, list) else [result]
    return DoctorReport(checks)


def doctor(device: str = "auto", output_dir: str | Path = ".", nproc: int | None = None, nnodes: int | None = None,
           env: Mapping[str, str] | None = None, timeout: float = NPU_SMI_TIMEOUT_S, smoke: bool = True) -> DoctorReport:
    """Gather and check; the report shows as a table in a notebook and prints as text."""
    return run_checks(gather(device, output_dir, nproc, nnodes, env, timeout, smoke))


def doctor_main(argv: list[str]) -> int:
    """``kit doctor``: exit status 1 when any check fails, else 0."""
    parser = argparse.ArgumentParser(prog="kit doctor", description="Check this machine for the LoRA quick start; every warning and failure comes with a fix.")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--device", choices=["auto", "npu", "cuda", "cpu"], default="auto", help="the device you mean to train on")
    parser.add_argument("--output_dir", default=".", help="where training will write (for the free-disk check)")
    parser.add_argument("--nproc", type=int, default=None, help="processes per node you will launch (default: NPROC_PER_NODE or 1)")
    parser.add_argument("--nnodes", type=int, default=None, help="number of nodes (default: NNODES or 1)")
    parser.add_argument("--timeout", type=float, default=NPU_SMI_TIMEOUT_S, help="seconds to wait for npu-smi info")
    parser.add_argument("--no-smoke", dest="smoke", action="store_false", help="skip the matmul smoke test")
    args = parser.parse_args(argv)
    report = doctor(args.device, args.output_dir, args.nproc, args.nnodes, timeout=args.timeout, smoke=args.smoke)
    print(report.to_json() if args.json else report.render_text())
    return report.exit_code


if __name__ == "__main__":
    sys.exit(doctor_main(sys.argv[1:]))
