"""kit doctor's report: every problem has a fix, text, HTML and JSON, a crashing check, and doctor_main
on this machine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import kit.doctor
from kit.doctor import FAIL, OK, WARN, Check, TorchFacts, TorchNpuFacts, checks

from doctor_fakes import cpu_facts, npu_facts
from doctor_fakes import _english_then_back  # noqa: F401  (autouse: English, then the language as it was)

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
                                               device_count=2, device_names=["Ascend910B3"] * 2), torch=TorchFacts(version="2.13.0"),
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
