"""kit doctor in Chinese: titles, findings and fixes in text, HTML and JSON, columns and line breaks,
the --lang option and the locale."""

from __future__ import annotations

import gettext
import json

import pytest

import kit.doctor
from kit import i18n
from kit.doctor import FAIL, OK, DiskFacts, Facts, MemoryFacts, NpuSmiFacts, SmokeFacts, TorchFacts, TorchNpuFacts, checks
from kit.doctor.report import display_width, wrap

from doctor_fakes import GiB, cpu_facts, healthy_chips, npu_facts
from doctor_fakes import _english_then_back  # noqa: F401  (autouse: English, then the language as it was)

# ------------------------------------------------------------------------------------- Chinese

ZH = gettext.translation("doctor", localedir=i18n.LOCALE_DIR, languages=["zh"])


def broken_npu_facts() -> Facts:
    """torch_npu not matching torch (a failure) and modelscope missing (a warning)."""
    return npu_facts(torch_npu=TorchNpuFacts(installed=True, version="2.12.0", imported=True, available=True,
                                             device_count=2, device_names=["Ascend910B3"] * 2), torch=TorchFacts(version="2.13.0"),
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
    assert text.splitlines()[0] == "kit doctor：共 30 项检查，28 项正常，1 项警告，1 项失败"
    assert "失败  torch_npu" in text and "修复：pip install torch==2.12.0" in text and "状态" in text
    assert "STATUS" not in text and "fix:" not in text and "FAIL" not in text

    html = zh._repr_html_()
    assert "<th>状态</th>" in html and "检查结果 / 修复方法" in html and "<b>修复：</b>" in html and "CANN 工具包" in html
    assert "found / fix" not in html and ">FAIL<" not in html

    data, english = json.loads(zh.to_json()), json.loads(en.to_json())
    assert data.keys() == english.keys() and data["status"] == FAIL and data["summary"].startswith("共 30 项检查")
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["torch_npu"]["status"] == "fail" and by_name["torch_npu"]["fix"] == torch_npu.fix
    assert by_name["cann"]["title"] == "CANN 工具包" and set(by_name["cann"]) == set(english["checks"][0])


def test_the_same_report_in_english_is_as_before():
    en = in_language("en", broken_npu_facts())
    assert en.get("cann").title == "CANN toolkit" and en.get("npu").title == "Ascend NPU"
    text = en.render_text()
    assert text.splitlines()[0] == "kit doctor: 30 checks: 28 ok, 1 warning(s), 1 failure(s)"
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
    assert capsys.readouterr().out.startswith("kit doctor：共 30 项检查")

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
