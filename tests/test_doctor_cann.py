"""kit doctor's CANN toolkit and driver checks, on CANN trees and driver files written here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kit.doctor import FAIL, OK, WARN, CannFacts, TorchNpuFacts, npu_checks, probes

from doctor_fakes import cpu_facts, npu_facts, write_cann
from doctor_fakes import _english_then_back  # noqa: F401  (autouse: English, then the language as it was)

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
