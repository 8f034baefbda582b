"""kit doctor's npu-smi probe and check: the tables of several drivers, health, busy memory, a tool that
hangs, garbles or fails, and none."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kit.doctor import FAIL, OK, WARN, npu_checks, probes

from doctor_fakes import (NPU_SMI_310P, NPU_SMI_910B, NPU_SMI_NEWER, cpu_facts, npu_facts, printing,
                          write_npu_smi)
from doctor_fakes import _english_then_back  # noqa: F401  (autouse: English, then the language as it was)

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


def _gone(pid: int, seconds: float = 5.0) -> bool:
    """Has ``pid`` ended within ``seconds``? Killed here if not, so a failing test leaves nothing behind."""
    deadline = time.monotonic() + seconds
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _running(pid):
        return True
    os.kill(pid, signal.SIGKILL)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_npu_smi_that_hangs_is_stopped_with_its_children_and_fails(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    # A hung driver tool may leave children behind; they must die with it, not linger holding the device.
    env = write_npu_smi(tmp_path / "bin", f"sleep 300 >/dev/null &\necho $! > {pid_file}\nwait\n")
    s = probes.gather_npu_smi(env, timeout=1, extra_dirs=())
    # SIGKILL to the group is delivered asynchronously: on a loaded machine the grandchild may need a moment to go.
    assert _gone(int(pid_file.read_text())), "the sleeping grandchild outlived the timeout: the process group was not killed"
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


DOCTOR_THAT_CRASHES = """
import os, signal, sys, threading, time
from kit.doctor import probes

env = {"PATH": sys.argv[1]}
threading.Thread(target=probes.gather_npu_smi, args=(env, 300), kwargs={"extra_dirs": ()}).start()
time.sleep(1.5)  # the probe runs beside this process's own work, as doctor() runs it
os.kill(os.getpid(), signal.SIGKILL)  # a crash (a broken torch_npu's import) or a kill from outside
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_probe_does_not_outlive_a_doctor_that_crashes(tmp_path):
    """The probes run in sessions of their own beside doctor()'s imports; a doctor that dies there takes them along."""
    import subprocess
    import sys

    pid_file = tmp_path / "npu-smi.pid"
    env = write_npu_smi(tmp_path / "bin", f"echo $$ > {pid_file}\nexec sleep 300\n")
    proc = subprocess.run([sys.executable, "-c", DOCTOR_THAT_CRASHES, env["PATH"]], cwd=Path(__file__).parents[1],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _gone(int(pid_file.read_text())), "the hung npu-smi outlived the doctor that started it"
