"""Tests of ``kit doctor`` (kit/doctor/): probes, the NPU checks, the other checks, the report.

The NPU checks are exercised with faked facts: a temporary CANN tree, an ``npu-smi`` script on a
PATH given in an env dict, and torch_npu import functions that succeed, return a reason or raise.
Nothing here imports torch_npu.
"""

from __future__ import annotations

import gettext
import json
import os
import shutil
import signal
import time
import stat
from dataclasses import replace
from pathlib import Path

import pytest

import kit.doctor
from kit import i18n
from kit.doctor import (FAIL, OK, WARN, CannFacts, Check, DeepSpeedFacts, DiskFacts, DriverFacts, Facts, MemoryFacts,
                        NpuChip, NpuSmiFacts, SmokeFacts, TorchFacts, TorchNpuFacts, checks, facts, npu_checks, probes)
from kit.doctor.report import display_width, wrap
from kit.envvars import EnvError, EnvSettings, rendezvous_problems

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
              packages={"transformers": "5.24.0", "peft": "0.21.2", "accelerate": "1.15.0", "deepspeed": "0.19.8", "modelscope": "1.40.0"},
              deepspeed=DeepSpeedFacts(accelerator="cpu", backend="gloo"), compiler="/usr/bin/c++",
              disk=DiskFacts(path=".", checked_path="/work", free_bytes=100 * GiB),
              memory=MemoryFacts(total_bytes=64 * GiB, available_bytes=60 * GiB),
              smoke=SmokeFacts(device="cpu", ok=True, max_abs_error=0.0))
    return replace(f, **changes)


def healthy_chips(n: int = 2, used: int = 3402) -> list[NpuChip]:
    return [NpuChip(i, 0, "910B3", "OK", f"0000:C{i + 1}:00.0", used, 65536) for i in range(n)]


def npu_facts(**changes) -> Facts:
    """A healthy 910B machine with CANN sourced and torch_npu matching torch."""
    root = Path("/usr/local/Ascend/ascend-toolkit/latest")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "ASCEND_HOME_PATH": str(root), "ASCEND_TOOLKIT_HOME": str(root),
           "LD_LIBRARY_PATH": f"{root}/lib64:{root}/lib64/plugin/opskernel"}
    f = cpu_facts(
        env=env, arch="aarch64",
        torch=TorchFacts(version="2.13.0"),
        torch_npu=TorchNpuFacts(installed=True, version="2.13.0", imported=True, available=True, device_count=2,
                                device_names=["Ascend910B3"] * 2, cann_in_torch="8.0.RC3"),
        cann=CannFacts(root=root, source="ASCEND_HOME_PATH", info_file=root / "aarch64-linux/ascend_toolkit_install.info",
                       version="8.0.RC3", set_env=root.parent / "set_env.sh"),
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


# -------------------------------------------------------------------------------------- npu-smi

def test_parse_910b_table_reads_chips_health_and_hbm():
    chips, version = probes.parse_npu_smi(NPU_SMI_910B.format(health="Warning", used="61021"))
    assert version == "24.1.rc2"
    assert [(c.npu_id, c.name, c.health, c.bus_id) for c in chips] == [
        (0, "910B3", "OK", "0000:C1:00.0"), (1, "910B3", "Warning", "0000:C2:00.0")]
    # HBM (the last pair), not the control CPU's Memory-Usage 0 / 0; the process table is not a chip.
    assert [(c.memory_used_mb, c.memory_total_mb) for c in chips] == [(3402, 65536), (61021, 65536)]


def test_parse_310p_table_and_newer_layout():
    chips, version = probes.parse_npu_smi(NPU_SMI_310P)
    assert version is None
    assert [(c.npu_id, c.chip, c.name, c.memory_used_mb, c.memory_total_mb) for c in chips] == [(0, 0, "310P3", 1100, 21534)]
    chips, version = probes.parse_npu_smi(NPU_SMI_NEWER)
    assert version == "25.0.rc1"
    assert [(c.npu_id, c.chip, c.name, c.memory_used_mb, c.memory_total_mb) for c in chips] == [
        (0, None, "910B4", 2900, 32768), (1, None, "910B4", 2950, 32768)]


@pytest.mark.parametrize("text", ["", "command not found\n", "| a | b |\n| c | d |\n", "\x00\x01garbage 0000:zz"])
def test_parse_garbage_gives_no_chips(text):
    assert probes.parse_npu_smi(text)[0] == []


def test_npu_smi_script_healthy_is_ok(tmp_path):
    env = write_npu_smi(tmp_path / "bin", printing(NPU_SMI_910B.format(health="OK     ", used=" 3500")))
    s = probes.gather_npu_smi(env, timeout=5, extra_dirs=())
    assert s.path == str(tmp_path / "bin" / "npu-smi") and s.returncode == 0 and len(s.chips) == 2
    c = npu_checks.check_npu_smi(npu_facts(npu_smi=s))
    assert c.status == OK, c
    assert "2 chip(s): 910B3" in c.found and c.details["chips"][1]["memory_used_mb"] == 3500


def test_npu_smi_warning_health_and_busy_memory_warn(tmp_path):
    env = write_npu_smi(tmp_path / "bin", printing(NPU_SMI_910B.format(health="Warning", used="61021")))
    c = npu_checks.check_npu_smi(npu_facts(npu_smi=probes.gather_npu_smi(env, timeout=5, extra_dirs=())))
    assert c.status == WARN
    assert "NPU 1 Warning" in c.found and "61021/65536" in c.found
    assert "ASCEND_RT_VISIBLE_DEVICES" in c.fix


def test_npu_smi_critical_health_fails(tmp_path):
    env = write_npu_smi(tmp_path / "bin", printing(NPU_SMI_910B.format(health="Critical", used=" 3000")))
    c = npu_checks.check_npu_smi(npu_facts(npu_smi=probes.gather_npu_smi(env, timeout=5, extra_dirs=())))
    assert c.status == FAIL and "NPU 1 Critical" in c.found


def _running(pid: int) -> bool:
    """Is ``pid`` alive (a killed process waiting to be reaped by init does not count)?"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_npu_smi_that_hangs_is_stopped_with_its_children_and_fails(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    # A hung driver tool may leave children behind; they must die with it, not linger holding the device.
    env = write_npu_smi(tmp_path / "bin", f"sleep 300 >/dev/null &\necho $! > {pid_file}\nwait\n")
    s = probes.gather_npu_smi(env, timeout=1, extra_dirs=())
    grandchild = int(pid_file.read_text())
    # SIGKILL to the group is delivered asynchronously: on a loaded machine the grandchild may need a moment to go.
    deadline = time.monotonic() + 5
    while _running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not _running(grandchild), "the sleeping grandchild outlived the timeout: the process group was not killed"
    finally:
        if _running(grandchild):
            os.kill(grandchild, signal.SIGKILL)
    c = npu_checks.check_npu_smi(npu_facts(npu_smi=s))
    assert c.status == FAIL and "did not finish within 1 s" in c.found and c.fix


def test_npu_smi_garbage_output_fails_with_what_it_printed(tmp_path):
    env = write_npu_smi(tmp_path / "bin", "echo 'Segmentation fault in dcmi'\necho 'zzz'\n")
    s = probes.gather_npu_smi(env, timeout=5, extra_dirs=())
    assert s.parse_error
    c = npu_checks.check_npu_smi(npu_facts(npu_smi=s))
    assert c.status == FAIL and "could not read" in c.found and "zzz" in c.found


def test_npu_smi_error_exit_fails(tmp_path):
    env = write_npu_smi(tmp_path / "bin", "echo 'dcmi module initialize failed. ret is -8005'\nexit 2\n")
    c = npu_checks.check_npu_smi(npu_facts(npu_smi=probes.gather_npu_smi(env, timeout=5, extra_dirs=())))
    assert c.status == FAIL and "status 2" in c.found and "-8005" in c.found and "davinci" in c.fix


def test_npu_smi_absent(tmp_path):
    s = probes.gather_npu_smi({"PATH": str(tmp_path)}, timeout=1, extra_dirs=())
    assert s.path is None
    absent = npu_checks.check_npu_smi(cpu_facts(npu_smi=s))
    assert absent.status == OK and absent.found.startswith("not present")
    assert npu_checks.check_npu_smi(npu_facts(npu_smi=s)).status == FAIL  # the rest of the stack is there: npu-smi should be


# ------------------------------------------------------------------------------------------ CANN

def test_find_cann_old_layout_default_path(tmp_path):
    root = write_cann(tmp_path, "8.0.RC3", "old", ops="8.0.RC3")
    c = probes.find_cann({}, roots=[tmp_path / "nowhere", root], arch="x86_64")
    assert (c.root, c.version, c.source, c.ops_version) == (root, "8.0.RC3", "default install path", "8.0.RC3")
    assert c.set_env == tmp_path / "ascend-toolkit" / "set_env.sh" and c.error is None
    check = npu_checks.check_cann(npu_facts(cann=c))
    assert check.status == OK and "CANN 8.0.RC3" in check.found and "ops package 8.0.RC3" in check.found


def test_find_cann_newer_layout_from_env_and_other_arch(tmp_path):
    root = write_cann(tmp_path, "8.5.0", "new", arch="aarch64")
    c = probes.find_cann({"ASCEND_HOME_PATH": str(root)}, roots=[], arch="x86_64")
    assert (c.root, c.version, c.source, c.arch) == (root, "8.5.0", "ASCEND_HOME_PATH", "aarch64")
    assert c.set_env == root / "set_env.sh"


def test_find_cann_default_roots_cover_documented_layouts():
    roots = [str(r) for r in probes.default_cann_roots("/home/me")]
    assert "/usr/local/Ascend/ascend-toolkit/latest" in roots and "/usr/local/Ascend/cann" in roots
    assert "/home/me/Ascend/ascend-toolkit/latest" in roots


def test_old_cann_warns(tmp_path):
    c = probes.find_cann({}, roots=[write_cann(tmp_path, "7.0.RC1")], arch="x86_64")
    check = npu_checks.check_cann(npu_facts(cann=c))
    assert check.status == WARN and "8.0.RC1" in check.found


@pytest.mark.parametrize("content, message", [
    ("package_name=Ascend-cann-toolkit\narch=x86_64\n", "no 'version=' line"),
    ("version=latest-and-greatest\n", "not a version number"),
    (b"\xff\xfe\x00binary\x80", "not a text file"),
])
def test_corrupt_cann_info_fails(tmp_path, content, message):
    root = write_cann(tmp_path)
    info = root / "x86_64-linux" / "ascend_toolkit_install.info"
    info.write_bytes(content) if isinstance(content, bytes) else info.write_text(content)
    c = probes.find_cann({}, roots=[root], arch="x86_64")
    check = npu_checks.check_cann(npu_facts(cann=c))
    assert check.status == FAIL and message in check.found and str(info) in check.found and check.fix


def test_unreadable_cann_info_fails(tmp_path):
    root = write_cann(tmp_path)
    info = root / "x86_64-linux" / "ascend_toolkit_install.info"
    info.unlink()
    info.mkdir()  # unreadable as a file even for root (chmod 000 is not, under root)
    check = npu_checks.check_cann(npu_facts(cann=probes.find_cann({}, roots=[root], arch="x86_64")))
    assert check.status == FAIL and "cannot read" in check.found


def test_cann_folder_without_info_file_fails(tmp_path):
    (tmp_path / "cann").mkdir()
    check = npu_checks.check_cann(npu_facts(cann=probes.find_cann({}, roots=[tmp_path / "cann"], arch="x86_64")))
    assert check.status == FAIL and "no ascend_toolkit_install.info" in check.found


def test_cann_absent():
    missing = CannFacts(searched=["/usr/local/Ascend/ascend-toolkit/latest"])
    assert npu_checks.check_cann(cpu_facts(cann=missing)).status == OK
    failed = npu_checks.check_cann(npu_facts(cann=missing))
    assert failed.status == FAIL and "8.0.RC1" in failed.fix


def test_cann_env_sourced_or_not():
    assert npu_checks.check_cann_env(npu_facts()).status == OK
    unsourced = npu_facts(env={"PATH": "/usr/bin", "HOME": "/tmp"}, torch_npu=TorchNpuFacts(installed=True, version="2.13.0", import_error="ImportError: libhccl.so: cannot open shared object file"))
    c = npu_checks.check_cann_env(unsourced)
    assert c.status == FAIL and c.fix.startswith("source /usr/local/Ascend/ascend-toolkit/set_env.sh")
    assert "LD_LIBRARY_PATH" in c.found
    # torch_npu imported anyway: the libraries were found some other way, so only a warning.
    assert npu_checks.check_cann_env(replace(unsourced, torch_npu=npu_facts().torch_npu)).status == WARN
    mismatch = npu_facts(torch_npu=replace(npu_facts().torch_npu, cann_in_torch="7.0.0"))
    assert npu_checks.check_cann_env(mismatch).status == WARN
    assert npu_checks.check_cann_env(cpu_facts()).status == OK


# ---------------------------------------------------------------------------------------- driver

def test_driver_file(tmp_path):
    good = tmp_path / "version.info"
    good.write_text("Version=24.1.rc2\nascendhal_version=7.35.23\n")
    d = probes.find_driver([tmp_path / "missing", good])
    assert d.version == "24.1.rc2"
    assert npu_checks.check_driver(npu_facts(driver=d)).status == OK
    good.write_text("garbage without equals\n")
    bad = npu_checks.check_driver(npu_facts(driver=probes.find_driver([good])))
    assert bad.status == FAIL and "no 'version=' line" in bad.found
    absent = probes.find_driver([tmp_path / "missing"])
    assert npu_checks.check_driver(cpu_facts(driver=absent)).status == OK
    assert npu_checks.check_driver(npu_facts(driver=absent)).status == FAIL


# ------------------------------------------------------------------------------ torch, torch_npu

def test_gather_torch_npu_import_that_raises_becomes_a_failed_check():
    def boom():
        raise OSError("libascendcl.so: cannot open shared object file")

    tn = probes.gather_torch_npu(import_fn=boom, version_fn=lambda name: "2.13.0")
    assert tn.installed and not tn.imported and "libascendcl.so" in tn.import_error
    c = npu_checks.check_torch_npu(npu_facts(torch_npu=tn))
    assert c.status == FAIL and "OSError" in c.found and "set_env.sh" in c.fix
    npu = npu_checks.check_npu(npu_facts(torch_npu=tn))
    assert npu.status == FAIL and "does not import" in npu.found and npu.details["present"] is True


def test_gather_torch_npu_reason_and_not_installed():
    tn = probes.gather_torch_npu(import_fn=lambda: (None, "torch_npu is installed but failed to import: RuntimeError: x"),
                              version_fn=lambda name: "2.13.0")
    assert tn.import_error.endswith("RuntimeError: x")
    absent = probes.gather_torch_npu(import_fn=lambda: (None, "torch_npu is not installed"), version_fn=lambda name: None)
    assert not absent.installed and absent.import_error is None
    assert npu_checks.check_torch_npu(cpu_facts(torch_npu=absent)).status == OK
    c = npu_checks.check_torch_npu(npu_facts(torch_npu=absent))
    assert c.status == FAIL and c.fix.startswith("pip install torch-npu==2.13.0")


@pytest.mark.parametrize("torch_v, npu_v, status", [
    ("2.13.0", "2.13.0", OK),
    ("2.12.0", "2.12.0.post3", OK),
    ("2.11.0+cpu", "2.11.0.post3", OK),
    ("2.13.0+cpu", "2.12.0.post3", FAIL),
    ("2.7.1", "2.7.0", FAIL),
    ("weird", "2.13.0", WARN),
])
def test_torch_npu_version_must_match_torch(torch_v, npu_v, status):
    f = npu_facts(torch=TorchFacts(version=torch_v), torch_npu=replace(npu_facts().torch_npu, version=npu_v))
    c = npu_checks.check_torch_npu(f)
    assert c.status == status, c
    if status == FAIL:
        assert f"pip install torch=={'.'.join(npu_v.split('.')[:3])}" in c.fix


def test_torch_import_failure_from_torch_npu_autoload():
    err = "RuntimeError: Failed to load the backend extension: torch_npu. You can disable extension auto-loading with TORCH_DEVICE_BACKEND_AUTOLOAD=0."
    c = checks.check_torch(cpu_facts(torch=TorchFacts(version="2.13.0", error=err)))
    assert c.status == FAIL and "TORCH_DEVICE_BACKEND_AUTOLOAD=0" in c.fix and "set_env.sh" in c.fix
    assert checks.check_torch(cpu_facts(torch=TorchFacts(version="2.0.1"))).status == FAIL
    ok = checks.check_torch(npu_facts())
    assert ok.status == OK and ok.details["build"] == "npu (torch_npu)"
    assert checks.check_torch(cpu_facts(torch=TorchFacts(version="2.13.0", cuda_build="12.8"))).details["build"] == "cuda 12.8"


def test_npu_check_states():
    absent = npu_checks.check_npu(cpu_facts())
    assert absent.status == OK and absent.details["present"] is False and "will run on cpu" in absent.found
    asked = npu_checks.check_npu(cpu_facts(requested_device="npu"))
    assert asked.status == FAIL and "/dev/davinci0" in asked.fix
    ok = npu_checks.check_npu(npu_facts())
    assert ok.status == OK and "2 NPU(s)" in ok.found
    unavailable = npu_checks.check_npu(npu_facts(torch_npu=replace(npu_facts().torch_npu, available=False)))
    assert unavailable.status == FAIL and "is_available() is False" in unavailable.found
    # The user chose the CPU on an NPU machine: the NPU checks inform, they do not fail.
    assert npu_checks.check_npu(npu_facts(torch_npu=TorchNpuFacts(), requested_device="cpu")).status == OK


def test_python_and_os():
    assert checks.check_python(cpu_facts()).status == OK
    assert checks.check_python(cpu_facts(python_version="3.9.18")).status == FAIL
    assert checks.check_python(npu_facts(os_name="Darwin", arch="arm64")).status == WARN


def test_environment_parse_error():
    c = checks.check_environment(cpu_facts(env_error="environment variable NNODES='two' is not an integer"))
    assert c.status == FAIL and "NNODES" in c.found


# ------------------------------------------------------------------------------- visible devices

@pytest.mark.parametrize("value, nproc, status, text", [
    (None, None, OK, "unset: all 2 NPU(s) visible"),
    ("1", None, OK, "1 NPU(s) visible"),
    ("0,1", 2, OK, "2 NPU(s) visible"),
    ("1,5", None, FAIL, "names device(s) [5]"),
    ("0,x", None, FAIL, "not a device number"),
    ("", None, FAIL, "empty"),
    ("0", 2, FAIL, "2 processes per node"),
])
def test_visible_devices(value, nproc, status, text):
    env = dict(npu_facts().env)
    if value is not None:
        env["ASCEND_RT_VISIBLE_DEVICES"] = value
    c = npu_checks.check_visible_devices(npu_facts(env=env, nproc=nproc))
    assert c.status == status and text in c.found, c


def test_visible_devices_without_npu():
    assert npu_checks.check_visible_devices(cpu_facts()).status == OK
    c = npu_checks.check_visible_devices(cpu_facts(env={"HOME": "/tmp", "ASCEND_RT_VISIBLE_DEVICES": "0"}))
    assert c.status == WARN and "unset ASCEND_RT_VISIBLE_DEVICES" in c.fix


# ---------------------------------------------------------------------------------- the others

def test_cuda():
    assert checks.check_cuda(cpu_facts()).status == OK
    gpu = cpu_facts(torch=TorchFacts(version="2.13.0", cuda_build="12.8", cuda_available=True,
                                     cuda_devices=[{"name": "NVIDIA H200", "total_bytes": 150 * 10**9}]))
    assert "NVIDIA H200" in checks.check_cuda(gpu).found
    assert checks.check_cuda(cpu_facts(requested_device="cuda")).status == FAIL
    assert checks.check_cuda(cpu_facts(torch=TorchFacts(version="2.13.0", cuda_build="12.8"))).status == WARN


def test_packages():
    by_name = {c.name: c for c in checks.check_packages(cpu_facts())}
    assert set(by_name) == set(facts.MINIMUM_VERSIONS) and all(c.status == OK for c in by_name.values())
    pk = {"transformers": "4.44.2", "peft": None, "accelerate": "1.0", "deepspeed": None, "modelscope": "1.9.5"}
    by_name = {c.name: c for c in checks.check_packages(cpu_facts(packages=pk))}
    assert by_name["transformers"].status == FAIL and "4.45" in by_name["transformers"].fix
    assert by_name["peft"].status == FAIL  # required
    assert by_name["deepspeed"].status == WARN and by_name["deepspeed"].fix == "pip install 'deepspeed>=0.15'"
    assert by_name["modelscope"].status == FAIL  # 1.9.5 < 1.18 numerically, not as text
    assert by_name["accelerate"].status == OK


def test_version_helpers():
    assert probes.release("2.12.0.post3") == (2, 12, 0) and probes.release("8.0.RC3") == (8, 0) and probes.release("x") is None
    assert probes.at_least("1.18.0", "1.18") and not probes.at_least("1.9.5", "1.18") and probes.at_least("8.0.RC1", (8, 0))


def test_deepspeed_accelerator_and_compiler():
    assert checks.check_deepspeed_accelerator(npu_facts()).status == OK
    mismatch = checks.check_deepspeed_accelerator(npu_facts(deepspeed=DeepSpeedFacts(accelerator="cpu", backend="gloo")))
    assert mismatch.status == WARN and mismatch.fix.startswith("export DS_ACCELERATOR=npu")
    assert checks.check_deepspeed_accelerator(cpu_facts(deepspeed=DeepSpeedFacts(error="boom"))).status == WARN
    assert checks.check_deepspeed_accelerator(cpu_facts(deepspeed=None)).status == OK
    assert checks.check_compiler(cpu_facts(compiler=None)).status == WARN
    assert checks.check_compiler(cpu_facts(compiler=None, deepspeed=None)).status == OK


def test_hub(tmp_path):
    assert checks.check_hub(cpu_facts(env={"HOME": str(tmp_path)})).status == OK
    ms = cpu_facts(env={"HOME": str(tmp_path), "USE_MODELSCOPE_HUB": "1"}, packages={**cpu_facts().packages, "modelscope": None})
    c = checks.check_hub(ms)
    assert c.status == FAIL and "pip install 'modelscope>=1.18'" in c.fix
    ok = checks.check_hub(cpu_facts(env={"HOME": str(tmp_path), "USE_MODELSCOPE_HUB": "1", "MODELSCOPE_CACHE": str(tmp_path / "ms")}))
    assert ok.status == OK and str(tmp_path / "ms") in ok.found and ok.details["hub"] == "modelscope"
    offline = checks.check_hub(cpu_facts(env={"HOME": str(tmp_path), "HF_HUB_OFFLINE": "true"}))
    assert "offline (HF_HUB_OFFLINE=1)" in offline.found  # read as kit.envvars reads it


def test_hub_unwritable_cache(tmp_path):
    (tmp_path / "a_file").write_text("")  # a cache under a file can never be created, even by root
    c = checks.check_hub(cpu_facts(env={"HOME": str(tmp_path), "HF_HOME": str(tmp_path / "a_file" / "hf")}))
    assert c.status == WARN and c.fix.startswith("export HF_HOME=")


@pytest.mark.parametrize("free, status", [(100 * GiB, OK), (5 * GiB, WARN), (GiB // 2, FAIL)])
def test_disk(free, status):
    assert checks.check_disk(cpu_facts(disk=DiskFacts(path="out", checked_path="/", free_bytes=free))).status == status


def test_gather_disk_walks_up_to_an_existing_folder(tmp_path):
    d = probes.gather_disk(tmp_path / "not" / "yet" / "made")
    assert d.checked_path == str(tmp_path) and d.free_bytes > 0


@pytest.mark.parametrize("avail, status", [(60 * GiB, OK), (8 * GiB, WARN), (GiB // 2, FAIL)])
def test_memory(avail, status):
    assert checks.check_memory(cpu_facts(memory=MemoryFacts(total_bytes=64 * GiB, available_bytes=avail))).status == status
    assert probes.gather_memory().available_bytes > 0


def test_distributed():
    assert checks.check_distributed(cpu_facts(nproc=2)).status == OK
    missing = checks.check_distributed(npu_facts(nnodes=2, nproc=8))
    assert missing.status == FAIL and "needs MASTER_ADDR" in missing.found and "needs MASTER_PORT" in missing.found
    assert "MASTER_ADDR=<node 0 IP>" in missing.fix
    env = {**npu_facts().env, "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "NODE_RANK": "1"}
    ok = checks.check_distributed(npu_facts(nnodes=2, env=env))
    assert ok.status == OK and "this is node 1, master 10.0.0.1:29500" in ok.found
    assert ok.details["MASTER_PORT"] == 29500 and ok.details["NODE_RANK"] == 1
    wrong_rank = checks.check_distributed(npu_facts(nnodes=2, env={**env, "NODE_RANK": "2"}))
    assert wrong_rank.status == FAIL and "NODE_RANK=2" in wrong_rank.found
    # --nnodes given to the doctor overrides NNODES, as the person will launch with it.
    assert checks.check_distributed(cpu_facts(nnodes=1, env={**cpu_facts().env, "NNODES": "2"})).status == OK
    port = checks.check_distributed(cpu_facts(env={**cpu_facts().env, "MASTER_PORT": "70000"}))
    assert port.status == FAIL and "MASTER_PORT=70000" in port.found and port.fix


def test_distributed_with_an_unparsable_variable_fails_like_the_launcher():
    env = {**cpu_facts().env, "NNODES": "two"}
    with pytest.raises(EnvError, match="NNODES='two'"):
        EnvSettings.from_environ(env)
    c = checks.check_distributed(cpu_facts(env=env, env_error="environment variable NNODES='two' is not an integer"))
    assert c.status == FAIL and "NNODES='two'" in c.found and "environment check" in c.fix


@pytest.mark.parametrize("variables", [
    {},  # one node, nothing set: the launcher uses 127.0.0.1 and a free port
    {"NNODES": "1", "NPROC_PER_NODE": "4"},
    {"NNODES": "2"},  # several nodes without MASTER_ADDR: both refuse
    {"NNODES": "2", "MASTER_PORT": "29500"},
    {"NNODES": "2", "MASTER_ADDR": "10.0.0.1"},
    {"NNODES": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "NODE_RANK": "1"},
    {"NNODES": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "NODE_RANK": "2"},
    {"NNODES": "0"},
    {"NPROC_PER_NODE": "0"},
    {"MASTER_PORT": "70000"},
])
def test_distributed_check_agrees_with_the_launchers_rules(variables):
    env = {**cpu_facts().env, **variables}
    problems = rendezvous_problems(EnvSettings.from_environ(env))
    check = checks.check_distributed(cpu_facts(env=env))
    assert (check.status == FAIL) == bool(problems), (check, problems)
    for problem in problems:  # the doctor names every problem the launcher would refuse with
        assert problem in check.found


def test_several_nodes_without_master_addr_are_refused_and_one_node_is_fine():
    two = {**cpu_facts().env, "NNODES": "2", "MASTER_PORT": "29500", "NODE_RANK": "0"}
    assert any("MASTER_ADDR" in p for p in rendezvous_problems(EnvSettings.from_environ(two)))
    c = checks.check_distributed(cpu_facts(env=two))
    assert c.status == FAIL and "MASTER_ADDR" in c.found
    one = {**cpu_facts().env, "NPROC_PER_NODE": "2"}
    assert rendezvous_problems(EnvSettings.from_environ(one)) == []
    assert checks.check_distributed(cpu_facts(env=one)).status == OK


def test_hccl():
    env = {**npu_facts().env, "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "NODE_RANK": "1"}
    hccl = npu_checks.check_hccl(npu_facts(nnodes=2, env=env))
    assert hccl.status == WARN and "HCCL_SOCKET_IFNAME" in hccl.fix
    full = {**env, "HCCL_SOCKET_IFNAME": "eth0", "HCCL_CONNECT_TIMEOUT": "1200"}
    assert npu_checks.check_hccl(npu_facts(nnodes=2, env=full)).status == OK
    assert npu_checks.check_hccl(npu_facts(nproc=2, env={**full, "HCCL_CONNECT_TIMEOUT": "soon"})).status == FAIL
    assert npu_checks.check_hccl(cpu_facts(nproc=4)).status == OK


def test_smoke():
    assert checks.check_smoke(cpu_facts()).status == OK
    real = probes.run_smoke_test("cpu", {}, timeout=60)
    assert real.ok and real.max_abs_error == 0.0
    c = checks.check_smoke(cpu_facts(smoke=SmokeFacts(device="npu", ok=False, error="RuntimeError: ACL error 507018")))
    assert c.status == FAIL and "507018" in c.found and "torch_npu" in c.fix


def test_smoke_on_a_missing_npu_fails_with_the_reason():
    if npu_checks.npu_signs(cpu_facts(torch_npu=probes.gather_torch_npu())):
        pytest.skip("torch_npu is installed here")
    s = probes.run_smoke_test("npu", {}, timeout=60)
    assert not s.ok and "npu was asked for" in s.error


# ------------------------------------------------------------------------------------- the report

def test_every_warn_and_fail_has_a_fix():
    with pytest.raises(ValueError, match="needs a fix"):
        Check("x", "x", WARN, "something")
    with pytest.raises(ValueError, match="not ok, warn or fail"):
        Check("x", "x", "bad", "something")


def test_report_on_a_healthy_npu_machine_passes():
    report = checks.run_checks(npu_facts(nproc=2))
    assert report.status == OK and report.exit_code == 0, report.render_text()
    assert report.get("npu").details["present"] is True


def test_report_renders_text_html_and_json():
    broken = npu_facts(torch_npu=TorchNpuFacts(installed=True, version="2.12.0", imported=True, available=True,
                                               device_count=2, device_names=["Ascend910B3"] * 2),
                       packages={**cpu_facts().packages, "modelscope": None})
    report = checks.run_checks(broken)
    assert report.exit_code == 1 and report.status == FAIL
    assert [c.name for c in report.failures] == ["torch_npu"] and [c.name for c in report.warnings] == ["modelscope"]
    text = report.render_text()
    assert "FAIL    torch_npu" in text and "fix: pip install torch==2.12.0" in text
    html = report._repr_html_()
    assert html.count("<tr>") == len(report.checks) + 1 and "<table>" in html and "pip install torch==2.12.0" in html
    data = json.loads(report.to_json())
    assert data["ok"] is False and data["status"] == FAIL
    assert {c["name"]: c["status"] for c in data["checks"]}["torch_npu"] == FAIL


def test_a_crashing_check_becomes_a_failure_not_a_crash():
    report = checks.run_checks(cpu_facts(disk="not a DiskFacts"))
    disk = report.get("disk")
    assert disk.status == FAIL and "crashed" in disk.found and "Traceback" in disk.details["traceback"]
    assert report.get("python").status == OK  # the other checks still ran


@pytest.mark.skipif(Path("/usr/local/Ascend").exists() or shutil.which("npu-smi") is not None,
                    reason="this machine has Ascend software; the test is for a machine without an NPU")
def test_doctor_main_on_this_machine_passes_and_says_the_npu_is_absent(capsys, tmp_path):
    code = kit.doctor.doctor_main(["--json", "--output_dir", str(tmp_path / "out")])
    out = capsys.readouterr().out
    data = json.loads(out)  # stdout is pure JSON: DeepSpeed's own logging is kept in its probe process
    by_name = {c["name"]: c for c in data["checks"]}
    assert code == 0, [c for c in data["checks"] if c["status"] == FAIL]
    assert by_name["npu"]["status"] == OK and by_name["npu"]["details"]["present"] is False
    assert "no Ascend NPU on this machine" in by_name["npu"]["found"]
    assert by_name["smoke"]["status"] == OK and by_name["disk"]["details"]["path"] == str(tmp_path)
    if by_name["deepspeed"]["status"] == OK:  # the real DeepSpeed probe ran in its child process
        assert by_name["ds_accelerator"]["details"]["accelerator"] == "cpu"


def test_doctor_main_rejects_an_unknown_device(capsys):
    with pytest.raises(SystemExit) as exc:
        kit.doctor.doctor_main(["--device", "tpu"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- Chinese

ZH = gettext.translation("doctor", localedir=i18n.LOCALE_DIR, languages=["zh"])


def broken_npu_facts() -> Facts:
    """torch_npu not matching torch (a failure) and modelscope missing (a warning)."""
    return npu_facts(torch_npu=TorchNpuFacts(installed=True, version="2.12.0", imported=True, available=True,
                                             device_count=2, device_names=["Ascend910B3"] * 2),
                     packages={**cpu_facts().packages, "modelscope": None})


def in_language(lang: str, facts: Facts) -> "kit.doctor.DoctorReport":
    i18n.set_language(lang)
    return checks.run_checks(facts)


STATES = {
    "cpu": lambda: cpu_facts(),
    "npu": lambda: npu_facts(nproc=2),
    "broken npu": broken_npu_facts,
    "npu asked for on a cpu machine": lambda: cpu_facts(requested_device="npu", smoke=SmokeFacts(device="npu", ok=False, error="x")),
    "npu stack without the environment": lambda: npu_facts(env={"PATH": "/usr/bin", "HOME": "/tmp"}, torch_npu=TorchNpuFacts(
        installed=True, version="2.13.0", import_error="libhccl.so: cannot open shared object file")),
    "sick chips and low resources": lambda: npu_facts(
        npu_smi=NpuSmiFacts(path="/usr/local/sbin/npu-smi", returncode=0, chips=healthy_chips(used=60000), version="24.1.rc2"),
        disk=DiskFacts(path=".", checked_path="/", free_bytes=5 * GiB), memory=MemoryFacts(total_bytes=8 * GiB, available_bytes=4 * GiB),
        nnodes=2, nproc=2, compiler=None),
    "cuda asked for, bad variables": lambda: cpu_facts(requested_device="cuda", env_error="NNODES='two' is not an integer"),
}


def test_a_chinese_report_has_chinese_titles_and_fixes_in_text_html_and_json():
    en = in_language("en", broken_npu_facts())
    zh = in_language("zh", broken_npu_facts())
    assert zh.get("cann").title == "CANN 工具包" and zh.get("npu").title == "昇腾 NPU" and zh.get("driver").title == "昇腾驱动"
    torch_npu = zh.get("torch_npu")
    assert torch_npu.found == "torch_npu 2.12.0 要求 torch 2.12.0，但安装的是 torch 2.13.0"
    assert torch_npu.fix.startswith("pip install torch==2.12.0 torch-npu==2.12.0（两者一起安装）")  # the command as it was
    translated = 0
    for e, z in zip(en.checks, zh.checks):
        assert (z.name, z.status, z.details) == (e.name, e.status, e.details)  # machine keys stay English
        assert z.title == ZH.gettext(e.title)
        if ZH.gettext(e.title) != e.title:  # a title with a translation never shows its English
            translated += 1
            assert z.title != e.title
    assert translated >= 12, translated

    text = zh.render_text()
    assert text.splitlines()[0] == "kit doctor：共 24 项检查，22 项正常，1 项警告，1 项失败"
    assert "失败  torch_npu" in text and "修复：pip install torch==2.12.0" in text and "状态" in text
    assert "STATUS" not in text and "fix:" not in text and "FAIL" not in text

    html = zh._repr_html_()
    assert "<th>状态</th>" in html and "检查结果 / 修复方法" in html and "<b>修复：</b>" in html and "CANN 工具包" in html
    assert "found / fix" not in html and ">FAIL<" not in html

    data, english = json.loads(zh.to_json()), json.loads(en.to_json())
    assert data.keys() == english.keys() and data["status"] == FAIL and data["summary"].startswith("共 24 项检查")
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["torch_npu"]["status"] == "fail" and by_name["torch_npu"]["fix"] == torch_npu.fix
    assert by_name["cann"]["title"] == "CANN 工具包" and set(by_name["cann"]) == set(english["checks"][0])


def test_the_same_report_in_english_is_as_before():
    en = in_language("en", broken_npu_facts())
    assert en.get("cann").title == "CANN toolkit" and en.get("npu").title == "Ascend NPU"
    text = en.render_text()
    assert text.splitlines()[0] == "kit doctor: 24 checks: 22 ok, 1 warning(s), 1 failure(s)"
    assert text.splitlines()[1].split() == ["STATUS", "CHECK", "FOUND"] and "FAIL    torch_npu" in text
    assert "<th>status</th>" in en._repr_html_() and "<b>fix:</b>" in en._repr_html_()


@pytest.mark.parametrize("state", list(STATES))
def test_every_shown_title_and_fix_is_chinese_in_every_state(state):
    """Nothing a check says slipped past _(): in Chinese, every title with a translation and every fix
    that is more than a bare command differ from the English."""
    en, zh = in_language("en", STATES[state]()), in_language("zh", STATES[state]())
    assert [(c.name, c.status) for c in zh.checks] == [(c.name, c.status) for c in en.checks]
    for e, z in zip(en.checks, zh.checks):
        assert z.title == ZH.gettext(e.title), e.name
        if e.fix:
            bare_command = e.fix.startswith(("pip install", "export ")) and " or " not in e.fix and "(" not in e.fix
            assert bare_command or z.fix != e.fix, (e.name, e.fix)
        # The environment and distributed failures show kit.envvars' own messages, which that module translates.
        from_envvars = e.name == "environment" or (e.name == "distributed" and e.status == FAIL)
        if (e.status != OK or e.name in ("npu", "cann", "smoke", "disk", "memory", "hub", "hccl")) and not from_envvars:
            assert z.found != e.found, (e.name, e.found)


def test_chinese_text_keeps_its_columns_and_width():
    for state in STATES:
        zh = in_language("zh", STATES[state]())
        lines = zh.render_text(width=100).splitlines()
        found_at = display_width(lines[1][:lines[1].index("检查结果")])
        for c in zh.checks:
            row = next(line for line in lines if line.split()[1:2] == [c.name])
            assert display_width(row[:row.index(c.name)]) == display_width(lines[1][:lines[1].index("检查项")]), row
            name_end = row.index(c.name) + len(c.name)
            rest = row[name_end:]
            assert display_width(row[:name_end]) + len(rest) - len(rest.lstrip(" ")) == found_at, row
        # Only a single unbreakable piece (a URL with its closing punctuation) may run past the width.
        assert all(display_width(line) <= 100 or " " not in line.strip() for line in lines), state


def test_wrap_breaks_chinese_between_characters_but_never_a_command():
    text = "先解决 npu / torch_npu 检查项的问题；然后试试 python -c \"import torch, torch_npu; print(torch.ones(2,2).npu())\""
    lines = wrap(text, 24)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(display_width(line) <= 24 for line in lines if " " in line.strip() or not line.isascii())
    assert lines[:2] == ["先解决 npu / torch_npu", "检查项的问题；然后试试"] and lines[-1] == "print(torch.ones(2,2).npu())\""
    assert any("torch_npu" in line for line in lines) and not any(line.startswith(("；", "，")) for line in lines)
    assert wrap("安装驱动（https://example.com/a/long/page）；然后", 12) == ["安装驱动", "（https://example.com/a/long/page）；", "然后"]
    assert wrap("plain English text stays with textwrap", 12) == ["plain", "English text", "stays with", "textwrap"]


def test_doctor_with_lang_speaks_chinese(monkeypatch):
    monkeypatch.setattr(kit.doctor, "gather", lambda *args, **kwargs: cpu_facts())
    report = kit.doctor.doctor(lang="zh")
    assert i18n.language() == "zh" and report.get("python").title == "Python 与操作系统"
    assert kit.doctor.doctor(lang="en").get("python").title == "Python and OS"
    with pytest.raises(i18n.LanguageError):
        kit.doctor.doctor(lang="fr")


def test_doctor_main_lang_option_and_the_locale_choose_chinese(monkeypatch, capsys):
    monkeypatch.setattr(kit.doctor, "gather", lambda *args, **kwargs: cpu_facts())
    assert kit.doctor.doctor_main(["--lang", "zh", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {c["name"]: c["title"] for c in data["checks"]}["cann"] == "CANN 工具包" and data["status"] == OK

    i18n.set_language(None)
    for key in ("KIT_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert kit.doctor.doctor_main([]) == 0
    assert capsys.readouterr().out.startswith("kit doctor：共 24 项检查")

    with pytest.raises(SystemExit):
        kit.doctor.doctor_main(["--help"])
    help_text = capsys.readouterr().out
    assert help_text.startswith("用法：kit doctor") and "以 JSON 格式输出报告" and "显示此帮助信息并退出" in help_text
    with pytest.raises(SystemExit):
        kit.doctor.doctor_main(["--lang", "en", "--help"])
    assert "print the report as JSON" in capsys.readouterr().out


def test_doctor_main_reader_that_stops_early_is_not_a_crash(monkeypatch, tmp_path):
    """`kit doctor --json | head`: Chinese JSON takes several pipe writes; the closed pipe ends the output quietly."""
    monkeypatch.setattr(kit.doctor, "gather", lambda *args, **kwargs: cpu_facts())

    class ClosedPipe:
        def __init__(self, fh):
            self.fh = fh

        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return self.fh.fileno()

    with open(tmp_path / "stdout", "w") as fh:
        monkeypatch.setattr("sys.stdout", ClosedPipe(fh))
        assert kit.doctor.doctor_main(["--lang", "zh", "--json"]) == 0
