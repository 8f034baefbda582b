"""kit doctor's torch and torch_npu checks (import failures, version pairing), Python and OS, and
ASCEND_RT_VISIBLE_DEVICES."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kit.doctor import FAIL, OK, WARN, TorchFacts, TorchNpuFacts, checks, npu_checks, probes

from doctor_fakes import cpu_facts, npu_facts
from doctor_fakes import _english_then_back  # noqa: F401  (autouse: English, then the language as it was)

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
    assert c.status == FAIL and c.fix.startswith("pip install torch-npu==2.12.0")


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
