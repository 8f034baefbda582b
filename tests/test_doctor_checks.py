"""kit doctor's other checks: CUDA, packages, DeepSpeed and the compiler, the hub, disk, memory, the
distributed variables, HCCL and the smoke test."""

from __future__ import annotations

import pytest

from kit.doctor import FAIL, OK, WARN, DeepSpeedFacts, DiskFacts, MemoryFacts, SmokeFacts, TorchFacts, checks, facts, npu_checks, probes
from kit.envvars import EnvError, EnvSettings, rendezvous_problems

from doctor_fakes import GiB, cpu_facts, npu_facts
from doctor_fakes import _english_then_back  # noqa: F401  (autouse: English, then the language as it was)

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
