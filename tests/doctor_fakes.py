"""What the tests of ``kit doctor`` (tests/test_doctor_*.py) share: faked facts and a faked Ascend stack.

The NPU checks are exercised with faked facts: a temporary CANN tree, an ``npu-smi`` script on a
PATH given in an env dict, and torch_npu import functions that succeed, return a reason or raise.
Nothing here imports torch_npu. A test module imports ``_english_then_back`` to have it apply (autouse).
"""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from kit import i18n
from kit.doctor import (CannFacts, DeepSpeedFacts, DiskFacts, DriverFacts, Facts, MemoryFacts, NpuChip, NpuSmiFacts,
                        SmokeFacts, TorchFacts, TorchNpuFacts)

GiB = 1 << 30


@pytest.fixture(autouse=True)
def _english_then_back():
    """The English assertions hold whatever the runner's locale; each test leaves the language as it found it."""
    i18n.set_language("en")
    yield
    i18n.set_language(None)

NPU_SMI_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.rc2                 Version: 24.1.rc2                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 92.7        47                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3402 / 65536         |
+===========================+===============+====================================================+
| 1     910B3               | {health}       | 95.0        49                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          {used}/ 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 1       0                 | 812345        | python                   | 57600                   |
+===========================+===============+====================================================+
"""

NPU_SMI_310P = """\
+-------------------+-----------------+------------------------------------------------------+
| NPU     Name      | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device    | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===================+=================+======================================================+
| 0       310P3     | OK              | 16.1         41                0    / 0              |
| 0       0         | 0000:82:00.0    | 0            1100 / 21534                            |
+===================+=================+======================================================+
"""

# Newer driver: "NPU ID" heading, empty chip cell, used/total without spaces, no AICore column.
NPU_SMI_NEWER = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 25.0.rc1                 Version: 25.0.rc1                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU ID  Name              | Health        | Power(W)    Temp(C)     Hugepages-Usage(page)      |
| Chip                      | Bus-Id        | Memory-Usage(MB)  HBM-Usage(MB)                    |
+===========================+===============+====================================================+
| 0       910B4             | OK            | 80.1        40          0/0                        |
|                           | 0000:01:00.0  | 0/0         2900/32768                             |
+===========================+===============+====================================================+
| 1       910B4             | OK            | 80.5        41          0/0                        |
|                           | 0000:02:00.0  | 0/0         2950/32768                             |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
+===========================+===============+====================================================+
"""


# ------------------------------------------------------------------------------------- builders

def cpu_facts(**changes) -> Facts:
    """A healthy CPU-only machine with no Ascend software."""
    f = Facts(python_version="3.11.7", os_name="Linux", arch="x86_64", env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
              torch=TorchFacts(version="2.13.0+cpu"),
              packages={"transformers": "5.24.0", "peft": "0.21.2", "accelerate": "1.15.0", "deepspeed": "0.19.8", "modelscope": "1.40.0",
                        "decorator": "5.2.1"},
              deepspeed=DeepSpeedFacts(accelerator="cpu", backend="gloo"), compiler="/usr/bin/c++",
              disk=DiskFacts(path=".", checked_path="/work", free_bytes=100 * GiB),
              memory=MemoryFacts(total_bytes=64 * GiB, available_bytes=60 * GiB),
              smoke=SmokeFacts(device="cpu", ok=True, max_abs_error=0.0))
    return replace(f, **changes)


def healthy_chips(n: int = 2, used: int = 3402) -> list[NpuChip]:
    return [NpuChip(i, 0, "910B3", "OK", f"0000:C{i + 1}:00.0", used, 65536) for i in range(n)]


def npu_facts(**changes) -> Facts:
    """A healthy 910B3 machine as LLaMA-Factory's NPU image has it today: CANN 9.1.0 (with its kernels) sourced,
    torch_npu 2.12.0 with torch 2.12.0 (a pairing in Ascend's compatibility table, release 26.1.0)."""
    root = Path("/usr/local/Ascend/ascend-toolkit/latest")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "ASCEND_HOME_PATH": str(root), "ASCEND_TOOLKIT_HOME": str(root),
           "LD_LIBRARY_PATH": f"{root}/lib64:{root}/lib64/plugin/opskernel"}
    f = cpu_facts(
        env=env, arch="aarch64",
        torch=TorchFacts(version="2.12.0"),
        torch_npu=TorchNpuFacts(installed=True, version="2.12.0", imported=True, available=True, device_count=2,
                                device_names=["Ascend910B3"] * 2, cann_in_torch="9.1.0"),
        cann=CannFacts(root=root, source="ASCEND_HOME_PATH", info_file=root / "aarch64-linux/ascend_toolkit_install.info",
                       version="9.1.0", ops_version="9.1.0", ops_package="Ascend-cann-kernels-910b",
                       set_env=root.parent / "set_env.sh"),
        driver=DriverFacts(path=Path("/usr/local/Ascend/driver/version.info"), version="24.1.rc2"),
        npu_smi=NpuSmiFacts(path="/usr/local/sbin/npu-smi", returncode=0, chips=healthy_chips(), version="24.1.rc2"),
        davinci_devices=["/dev/davinci0", "/dev/davinci1"],
        deepspeed=DeepSpeedFacts(accelerator="npu", backend="hccl"),
        smoke=SmokeFacts(device="npu (Ascend910B3)", ok=True, max_abs_error=0.0))
    return replace(f, **changes)


def write_cann(base: Path, version: str = "8.0.RC3", layout: str = "old", arch: str = "x86_64", ops: str | None = None) -> Path:
    """A CANN tree as the installer leaves it; returns the toolkit root."""
    if layout == "old":
        root = base / "ascend-toolkit" / "latest"
        set_env = base / "ascend-toolkit" / "set_env.sh"
    else:
        root = base / "cann"
        set_env = root / "set_env.sh"
    info_dir = root / f"{arch}-linux"
    info_dir.mkdir(parents=True)
    (info_dir / "ascend_toolkit_install.info").write_text(
        f"package_name=Ascend-cann-toolkit\nversion={version}\narch={arch}\nos=linux\npath={root}\n")
    if ops:
        (info_dir / "ascend_ops_install.info").write_text(f"package_name=Ascend-cann-kernels\nversion={ops}\n")
    set_env.write_text("export ASCEND_HOME_PATH=...\n")
    return root


def write_npu_smi(folder: Path, body: str) -> dict[str, str]:
    """An ``npu-smi`` shell script in ``folder``; returns an env whose PATH finds it first."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "npu-smi"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{folder}:/usr/bin:/bin", "HOME": str(folder)}


def printing(table: str, exit_code: int = 0) -> str:
    return f"cat <<'EOF'\n{table}EOF\nexit {exit_code}\n"


def npu_smi_table(name: str = "910B3", processes: str = "") -> str:
    """``npu-smi info`` for two cards of ``name`` (the 910B layout of FACTS.md), with ``processes`` as the
    process table's rows ("" prints "No running processes found")."""
    rows = processes or "| No running processes found in NPU 0                                                            |\n"
    table = NPU_SMI_910B.format(health="OK     ", used=" 3402").replace("910B3", f"{name:<5}")
    head, _sep, _old = table.partition("| NPU     Chip              | Process id")
    return (head + "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |\n"
            "+===========================+===============+====================================================+\n"
            + rows + "+===========================+===============+====================================================+\n")


def write_driver(base: Path, version: str = "25.3.rc1") -> Path:
    """The driver's version.info (key=value lines, FACTS.md)."""
    path = base / "driver" / "version.info"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Version={version}\n")
    return path
