"""What the doctor knows about a machine: plain dataclasses, filled by ``probes`` and read by ``checks``.

Tests build these by hand to put a check in any state without an NPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.envvars import EnvError, EnvSettings
from kit.i18n import N_

# The kit's minimum versions, in one place (pyproject.toml states the same floors for pip). The probes
# read the installed version of exactly these packages; the checks compare.
MINIMUM_VERSIONS: dict[str, str] = {
    "transformers": "4.45",
    "peft": "0.12",
    "accelerate": "0.34",
    "deepspeed": "0.15",
    "modelscope": "1.18",
}
# Missing optional packages are a warning: the kit runs without them (no DeepSpeed config, no ModelScope ids).
# Marked N_: the checks translate them when they show them.
OPTIONAL_PACKAGES: dict[str, str] = {
    "deepspeed": N_("needed only when the config names a DeepSpeed JSON (deepspeed: ...)"),
    "modelscope": N_("needed only to download models from ModelScope (USE_MODELSCOPE_HUB=1)"),
}
MINIMUM_TORCH = "2.1"
MINIMUM_PYTHON = (3, 10)
# LLaMA-Factory's Ascend install page asks for CANN >= 8.0.RC1.
MINIMUM_CANN = (8, 0)
# CannFacts.source when no variable named the toolkit: kept English in the facts (tests and JSON details
# read it), translated when the cann check shows it.
DEFAULT_SOURCE = N_("default install path")


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
    source: str | None = None  # which variable named it, or DEFAULT_SOURCE (English here; the check translates it)
    info_file: Path | None = None
    version: str | None = None
    arch: str | None = None
    ops_version: str | None = None  # the kernels/ops package, when its .info file is beside the toolkit's
    ops_package: str | None = None  # its package_name= line, which may name the chip it was built for
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
class NpuProcess:
    npu_id: int
    pid: int
    name: str
    memory_mb: int | None


@dataclass
class NpuSmiFacts:
    path: str | None = None
    returncode: int | None = None
    output: str = ""
    error: str | None = None  # could not run / timed out
    chips: list[NpuChip] = field(default_factory=list)
    version: str | None = None  # from the table's header line, when it has one
    parse_error: str | None = None
    processes: list[NpuProcess] = field(default_factory=list)  # npu-smi info's process table


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
    env_variable: str | None = None  # ... and which one
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

    def settings(self) -> EnvSettings | None:
        """The documented variables of ``env`` as the launcher reads them; None when one does not parse
        (``env_error`` and the environment check say which)."""
        try:
            return EnvSettings.from_environ(self.env)
        except EnvError:
            return None
