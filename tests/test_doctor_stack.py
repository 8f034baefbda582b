"""kit doctor on the Ascend stack people install today (issue 23), on faked files: CANN trees in both
layouts (install.info, ascend_ops_install.info), the driver's version.info and an ``npu-smi`` script,
gathered by the real probes; torch and torch_npu are facts (nothing here imports torch_npu)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import kit.config
from kit.doctor import FAIL, OK, WARN, TorchFacts, TorchNpuFacts, checks, probes, stack, stack_checks
from kit.doctor.npu_checks import check_visible_devices, set_env_cmd

from doctor_fakes import cpu_facts, npu_facts, npu_smi_table, printing, write_cann, write_driver, write_npu_smi
from doctor_fakes import _english_then_back  # noqa: F401  (autouse)

ROOT = Path(__file__).resolve().parents[1]


def faked_stack(tmp_path: Path, chip: str = "910B3", cann: str = "9.1.0", ops: str | None = "9.1.0", layout: str = "new",
                torch_npu: str = "2.12.0", torch: str = "2.12.0", processes: str = "", **env):
    """Facts gathered from a faked CANN tree, driver file and npu-smi, as on a machine that sourced set_env.sh."""
    root = write_cann(tmp_path / "Ascend", version=cann, layout=layout, arch="aarch64", ops=ops)
    npu_env = write_npu_smi(tmp_path / "bin", printing(npu_smi_table(chip, processes)))
    npu_env.update({"ASCEND_HOME_PATH": str(root), "LD_LIBRARY_PATH": f"{root}/lib64", **env})
    f = npu_facts(env=npu_env,
                  torch=TorchFacts(version=torch),
                  torch_npu=TorchNpuFacts(installed=True, version=torch_npu, imported=True, available=True, device_count=2,
                                          device_names=[f"Ascend{chip}"] * 2, cann_in_torch=cann),
                  cann=probes.find_cann(npu_env, roots=[]),
                  driver=probes.find_driver([write_driver(tmp_path / "Ascend")]),
                  npu_smi=probes.gather_npu_smi(npu_env, extra_dirs=()),
                  nproc=int(env.get("NPROC_PER_NODE", 1)))
    return f, checks.run_checks(f)


def test_910b3_on_cann_9_1_with_torch_npu_2_12_is_all_good(tmp_path):
    f, report = faked_stack(tmp_path)
    assert f.cann.version == "9.1.0" and f.cann.ops_version == "9.1.0" and f.cann.set_env.name == "set_env.sh"
    assert [c.name for c in f.npu_smi.chips] == ["910B3", "910B3"] and f.npu_smi.processes == []
    assert report.status == OK, report.render_text()
    assert "9.1.0" in report.get("stack_pairing").found and report.get("bf16").status == OK
    assert report.get("card_processes").found == "no process holds a card"


def test_cann_9_1_in_the_cann_layout_sources_cann_set_env(tmp_path):
    f, report = faked_stack(tmp_path, layout="new")
    assert f.cann.root.name == "cann" and set_env_cmd(f) == f"source {f.cann.root / 'set_env.sh'}"
    assert report.get("cann").status == OK and "CANN 9.1.0" in report.get("cann").found
    # Not sourced: torch_npu does not import and the NPU check says training would fall to the CPU.
    unsourced = replace(f, env={"PATH": f.env["PATH"], "HOME": "/tmp"},
                        torch_npu=TorchNpuFacts(installed=True, version="2.12.0", import_error="ImportError: libhccl.so: cannot open shared object file"))
    r = checks.run_checks(unsourced)
    assert r.get("npu").status == FAIL and "fall back to cpu" in r.get("npu").found
    assert r.get("cann_env").status == FAIL and str(f.cann.root / "set_env.sh") in r.get("cann_env").fix


def test_older_layout_and_nothing_found_name_both_set_env_files(tmp_path):
    f, _report = faked_stack(tmp_path, layout="old", cann="8.0.RC3", ops="8.0.RC3")
    assert set_env_cmd(f).endswith("ascend-toolkit/set_env.sh")
    cmd = set_env_cmd(npu_facts(cann=replace(f.cann, root=None, set_env=None)))
    assert "/usr/local/Ascend/cann/set_env.sh" in cmd and "/usr/local/Ascend/ascend-toolkit/set_env.sh" in cmd


def test_910a_has_no_bf16(tmp_path):
    _f, report = faked_stack(tmp_path, chip="910A")
    c = report.get("bf16")
    assert c.status == WARN and "910A: no bf16" in c.found and "fp16: true" in c.fix


def test_310p_has_no_bf16(tmp_path):
    _f, report = faked_stack(tmp_path, chip="310P3")
    assert report.get("bf16").status == WARN and "310P3: no bf16" in report.get("bf16").found


@pytest.mark.parametrize("name, capable", [
    ("Ascend910B1", True), ("910B4", True), ("Ascend910_9382", True), ("Ascend950PR", True),
    ("Ascend910A", False), ("Ascend910ProB", False), ("Ascend910B", False), ("310P3", False), ("Ascend999", None)])
def test_bf16_from_the_chip_name(name, capable):
    assert stack.bf16_capable(name) is capable


def test_an_unknown_torch_npu_is_a_warning_naming_the_tables_date(tmp_path):
    _f, report = faked_stack(tmp_path, torch_npu="2.99.0", torch="2.99.0")
    c = report.get("stack_pairing")
    assert c.status == WARN and "does not know torch_npu 2.99.0" in c.found and stack.table_date() in c.found
    assert "COMPATIBILITY" in c.fix
    assert report.get("torch_npu").status == OK  # the X.Y.Z rule still holds; only the table does not know it


def test_a_known_torch_npu_on_another_cann_is_a_warning(tmp_path):
    _f, report = faked_stack(tmp_path, torch_npu="2.9.0.post2", torch="2.9.0")
    c = report.get("stack_pairing")
    assert c.status == WARN and "CANN 9.0.0" in c.found and "CANN 9.1.0 is installed" in c.found


def test_the_table_is_data_with_its_date_and_source():
    table = json.loads(stack.STACK_FILE.read_text())
    assert table["date"] and "COMPATIBILITY" in table["sources"]["pairing"]
    assert stack.pairing("2.12.0") == stack.Pairing("2.12.0", "2.12.0", ("9.1.0",))
    assert stack.pairing("2.12.0+cpu") is not None and stack.pairing("1.0.0") is None
    assert stack.cann_matches("9.1.0", ("9.1.0",)) and not stack.cann_matches("9.10.0", ("9.1.0",))


def test_kernels_package_missing_or_of_another_release(tmp_path):
    _f, report = faked_stack(tmp_path, ops=None)
    c = report.get("kernels")
    assert c.status == WARN and "Op Cast does not has any binary" in c.found and "910B3" in c.fix and "9.1.0" in c.fix
    _f, report = faked_stack(tmp_path / "old", layout="old", cann="8.0.RC3", ops=None)
    assert report.get("kernels").status == OK and "not checked" in report.get("kernels").found
    _f, report = faked_stack(tmp_path / "b", ops="8.5.0")
    assert report.get("kernels").status == WARN and "CANN 9.1.0" in report.get("kernels").found


def test_decorator_missing_fails_only_with_torch_npu():
    f = npu_facts(packages={**npu_facts().packages, "decorator": None})
    assert stack_checks.check_decorator(f).status == FAIL and stack_checks.check_decorator(f).fix == "pip install decorator"
    assert stack_checks.check_decorator(cpu_facts(packages={"decorator": None})).status == OK


def test_npu_visible_devices_is_the_wrong_name(tmp_path):
    _f, report = faked_stack(tmp_path, NPU_VISIBLE_DEVICES="0")
    c = report.get("npu_visible_name")
    assert c.status == WARN and "does not read it" in c.found and c.fix.startswith("export ASCEND_RT_VISIBLE_DEVICES=0")


def test_more_processes_than_visible_cards(tmp_path):
    _f, report = faked_stack(tmp_path, ASCEND_RT_VISIBLE_DEVICES="0", NPROC_PER_NODE="2")
    c = report.get("visible_devices")
    assert c.status == FAIL and "hangs" in c.found and "--nproc_per_node 1" in c.fix
    # WORLD_SIZE counts the processes when NPROC_PER_NODE is not set (a launcher's child).
    assert probes.gather(env={"WORLD_SIZE": "4", "PATH": "/nonexistent"}, smoke=False).nproc == 4
    # A variable that does not parse: the fix names that variable, not another.
    facts = probes.gather(env={"WORLD_SIZE": "abc", "PATH": "/nonexistent"}, smoke=False)
    fix = checks.check_environment(facts).fix
    assert facts.env_variable == "WORLD_SIZE" and fix == "unset WORLD_SIZE or set it to a whole number", fix


def test_another_process_holding_the_card(tmp_path):
    row = "| 1       0                 | 812345        | python                   | 57600                   |\n"
    f, report = faked_stack(tmp_path, processes=row)
    assert [(p.npu_id, p.pid, p.name, p.memory_mb) for p in f.npu_smi.processes] == [(1, 812345, "python", 57600)]
    c = report.get("card_processes")
    assert c.status == WARN and "Maybe the last training process is running" in c.found and "kill 812345" in c.fix


def test_chinese_fixes_for_the_new_checks(tmp_path):
    from kit import i18n

    i18n.set_language("zh")
    _f, report = faked_stack(tmp_path, chip="910A", ops=None, torch_npu="2.99.0", torch="2.99.0", NPU_VISIBLE_DEVICES="0")
    for name in ("stack_pairing", "kernels", "bf16", "npu_visible_name"):
        c = report.get(name)
        assert c.status == WARN and any("\u4e00" <= ch <= "\u9fff" for ch in c.found + c.fix), (name, c.found)


def test_llamafactorys_qwen3_example_loads_with_only_the_model_overridden(tmp_path):
    """kit/examples/qwen3_lora_sft.yaml is LLaMA-Factory's file as written; its keys load unchanged."""
    example = ROOT / "kit" / "examples" / "qwen3_lora_sft.yaml"
    text = example.read_text()
    assert "model_name_or_path: Qwen/Qwen3-4B-Instruct-2507" in text and "lora_target: all" in text
    cfg = kit.config.load(example, ["model_name_or_path=tiny-qwen3"])
    assert Path(cfg.model.model_name_or_path).name == "tiny-qwen3"
    assert (cfg.finetune.lora_target, cfg.data.template, cfg.train.bf16, cfg.train.fp16) == ("all", "qwen3_nothink", True, False)


def test_fp16_on_a_chip_with_bf16_says_why_bf16_is_safer():
    """kit/device.resolve_precision (the line the training run logs): fp16 kept, with the advice, on a 910B only."""
    from kit import device

    b3 = device.DeviceInfo("npu", 1, "hccl", True, True, "Ascend910B3", None, None)
    fp16, bf16, advice = device.resolve_precision(b3, True, False)
    assert (fp16, bf16) == (True, False) and "bf16: true" in advice and "fp16=false bf16=true" in advice and "Ascend910B3" in advice
    assert device.resolve_precision(b3, False, True) == (False, True, None)
    a = device.DeviceInfo("npu", 1, "hccl", False, True, "Ascend910A", None, None)
    assert device.resolve_precision(a, True, False) == (True, False, None)
    cuda = device.DeviceInfo("cuda", 1, "nccl", True, True, "H200", None, None)
    assert device.resolve_precision(cuda, True, False) == (True, False, None)
