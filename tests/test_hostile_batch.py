"""Sweeps and notebook folders off the happy path (issue 20): a person's files, failed checks, the OS's refusals.

The kit writes into folders a person names (a sweep's --out, notebook 20's own-data folder, a demo's run
folder). It replaces only what it wrote there and recorded (kit_files.json); everything else is refused,
naming the file. Two kit processes never write into one folder at once. A notebook whose published
values report a failed check is a failed run. What the operating system refuses is one message, exit 2.

Notebooks here are small ones made in tmp_path: each run costs a kernel start, not a training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kit import cli
from kit.tutorial import sweep as batch
from kit.tutorial import demo
from kit.tutorial import values as notebook_io
from kit.errors import KitError
from kit.tutorial.lessons import own_dataset

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _notebook(path: Path, parameters: str, body: str) -> Path:
    book = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    book.cells = [cell, nbformat.v4.new_code_cell(body)]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, path)
    return path


@pytest.fixture
def double(tmp_path: Path) -> Path:
    return _notebook(tmp_path / "double.ipynb", "x = 1", "import kit.tutorial\nkit.tutorial.publish('double', 2 * x)")


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


# ---------------------------------------------------------------- 1. a person's files in --out are theirs

def test_results_files_the_sweep_did_not_write_are_refused_and_left_alone(tmp_path, double, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("my,own\n1,2\n")
    (out / "notes.txt").write_text("mine")
    before = _tree(out)
    assert cli.main(["batch", str(double), "-p", "x", "1", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "results.csv" in err and "did not write" in err and "Traceback" not in err
    assert _tree(out) == before  # nothing run, nothing written


def test_results_changed_since_the_sweep_wrote_them_are_refused(tmp_path, double, capsys):
    out = tmp_path / "out"
    (out).mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main(["batch", str(double), "-p", "x", "1", "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine"  # beside the sweep's files, untouched
    record = json.loads((out / "kit_files.json").read_text())
    assert {"results.csv", "results.json"} <= set(record["entries"]) and "notes.txt" not in record["entries"]
    # the same sweep again: its own files are replaced (the run is skipped: done)
    assert cli.main(["batch", str(double), "-p", "x", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "results.json").write_text("[]  # my edit\n")
    assert cli.main(["batch", str(double), "-p", "x", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and "changed since" in err
    assert (out / "results.json").read_text() == "[]  # my edit\n"


def test_a_run_folder_the_sweep_did_not_make_is_refused(tmp_path, double, capsys):
    out = tmp_path / "out"
    plan = batch.make_plan(double, {"x": ["1", "2"]}, out)
    mine = out / plan.runs[1].run_id
    mine.mkdir(parents=True)
    (mine / "double.ipynb").write_text("{}")
    assert cli.main(["batch", str(double), "-p", "x", "1", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert plan.runs[1].run_id in err and "Traceback" not in err
    assert (mine / "double.ipynb").read_text() == "{}" and not (out / "results.csv").exists()


def test_a_second_sweep_into_a_busy_folder_is_refused_naming_the_process(tmp_path, double, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom kit.tutorial.values import KitFolder\n"
        f"folder = KitFolder.open({str(out)!r}, 'test')\nprint('held', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli.main(["batch", str(double), "-p", "x", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "Traceback" not in err
        assert not (out / "results.csv").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_line(tmp_path, double):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".kit_files.lock").write_text(f"{dead.pid}\n")
    lines: list[str] = []
    rows = batch.run_batch(double, {"x": [3]}, out, log=lines.append)
    assert rows[0]["status"] == "ok" and rows[0]["double"] == 6
    assert any(f"process {dead.pid}" in line and "taking over" in line for line in lines), lines
    assert not (out / ".kit_files.lock").exists()  # released at the end


# ---------------------------------------------------------------- 2. a failed check is a failed run

def test_a_notebook_reporting_a_failed_or_crashed_check_is_a_failed_run(tmp_path, capsys):
    book = _notebook(tmp_path / "checks.ipynb", "case = 'fine'", (
        "import kit.tutorial\n"
        "from kit.doctor.report import Check, DoctorReport\n"
        "crashed = Check('smoke', 'smoke', 'fail', \"the doctor's own check crashed: ValueError: x\", 'report it')\n"
        "checks = {'fine': {'torch': 'ok', 'npu': 'warn'}, 'failed': {'torch': 'ok', 'npu_smi': 'fail'}}.get(case, {})\n"
        "kit.tutorial.publish('doctor_ok', case not in ('failed', 'flag', 'report'))\n"
        "kit.tutorial.publish('checks', checks)\n"
        "if case == 'report':\n"
        "    kit.tutorial.publish('report', DoctorReport([Check('python', 'python', 'ok', '3'), crashed]).to_dict())\n"))
    out = tmp_path / "out"
    assert cli.main(["batch", str(book), "-p", "case", "fine", "failed", "flag", "report", "--out", str(out)]) == 1
    rows = {r["case"]: r for r in json.loads((out / "results.json").read_text())}
    assert rows["fine"]["status"] == "ok" and rows["fine"]["error"] is None
    assert rows["failed"]["status"] == "failed" and "npu_smi" in rows["failed"]["error"] and "torch" not in rows["failed"]["error"]
    assert rows["flag"]["status"] == "failed" and "doctor_ok" in rows["flag"]["error"]
    assert rows["report"]["status"] == "failed" and "smoke" in rows["report"]["error"]
    assert "python" not in rows["report"]["error"]
    printed = capsys.readouterr().out
    assert "1 of 4 run(s) ok, 3 failed" in printed and "cell None" not in printed
    assert "FAILED (the notebook reported failed checks: npu_smi (checks))" in printed
    # failed for a check: retried on the next sweep, as any failed run
    lines: list[str] = []
    batch.run_batch(book, {"case": ["fine", "failed", "flag", "report"]}, out, log=lines.append)
    assert "1 already done, 3 to run" in lines[0]


def test_failed_checks_reads_every_form_the_notebooks_publish():
    read = notebook_io.failed_checks
    assert read({"final_loss": 1.0, "npu_steps": {"npu": "ok", "cann": "warn"}, "doctor_ok": True}) == []
    assert read({"npu_steps": {"npu": "ok", "cann_env": "fail", "npu_smi": "fail"}}) == ["cann_env, npu_smi (npu_steps)"]
    assert read({"doctor_ok": False, "problems": {"cann_env": "source set_env.sh"}}) == [
        "doctor_ok is false (problems: cann_env)"]
    # a named failure makes the bare flag redundant
    assert read({"doctor_ok": False, "checks": {"smoke": "fail"}}) == ["smoke (checks)"]
    report = {"status": "fail", "ok": False, "checks": [{"name": "python", "status": "ok"}, {"name": "smoke", "status": "fail"}]}
    assert read({"doctor": report}) == ["smoke (doctor)"]
    # words that are not statuses, and other booleans, are not checks
    assert read({"vllm": "differs", "name_learned": False, "answers": {"q": "an answer", "r": "ok"}, "export_same_answer": False}) == []


# ---------------------------------------------------------------- 3. the operating system's refusals

def _refused(capsys, args: list[str], *says: str) -> str:
    assert cli.main(["batch", *args]) == 2
    err = capsys.readouterr().err
    for text in says:
        assert text in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_out_that_is_a_file_or_runs_through_one_is_one_message(tmp_path, double, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    _refused(capsys, [str(double), "-p", "x", "1", "--out", str(afile)], str(afile), "is a file, not a folder")
    _refused(capsys, [str(double), "-p", "x", "1", "--out", str(afile / "out")], str(afile / "out"), f"{afile} is a file")
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "double.ipynb"]
    from kit import i18n

    try:  # in Chinese too, as every message
        assert cli.main(["--lang", "zh", "batch", str(double), "-p", "x", "1", "--out", str(afile)]) == 2
    finally:
        i18n.set_language(None)
    assert f"{afile} 是文件，不是目录" in capsys.readouterr().err


def test_out_that_cannot_be_written_is_one_message(tmp_path, double, capsys, unwritable):
    locked = unwritable(tmp_path / "locked")
    _refused(capsys, [str(double), "-p", "x", "1", "--out", str(locked / "out")], str(locked / "out"), "cannot be written")
    _refused(capsys, [str(double), "-p", "x", "1", "--out", str(locked)], str(locked), "cannot be written")
    assert list(locked.iterdir()) == []


def test_a_folder_the_user_may_not_write_is_named_before_anything_is_made(tmp_path, double, capsys, monkeypatch):
    """As root no folder refuses a write, so the permission check is made to answer no for one folder."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != locked and real(path, mode, **kw))
    _refused(capsys, [str(double), "-p", "x", "1", "--out", str(locked / "a" / "out")], str(locked / "a" / "out"),
             f"{locked} is not writable", "choose a folder you can write to")
    with pytest.raises(KitError, match="cannot be written"):
        own_dataset(locked / "my_data")
    assert list(locked.iterdir()) == []


def test_a_notebook_path_that_is_a_folder_or_not_a_notebook_is_one_message(tmp_path, double, capsys):
    out = tmp_path / "out"
    _refused(capsys, [str(tmp_path), "-p", "x", "1", "--out", str(out)], str(tmp_path), "is a folder", "double.ipynb")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    _refused(capsys, [str(broken), "-p", "x", "1", "--out", str(out)], str(broken), "not a Jupyter notebook")
    binary = tmp_path / "binary.ipynb"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    _refused(capsys, [str(binary), "-p", "x", "1", "--out", str(out)], str(binary), "not a Jupyter notebook")
    assert not out.exists()


def test_a_notebook_that_is_a_pipe_is_refused_without_reading_it(tmp_path, capsys):
    pipe = tmp_path / "pipe.ipynb"
    os.mkfifo(pipe)  # reading it would wait for a writer for ever
    _refused(capsys, [str(pipe), "-p", "x", "1", "--out", str(tmp_path / "out")], str(pipe), "not a regular file")
    assert not (tmp_path / "out").exists()


def test_a_kernel_that_is_not_installed_or_a_zero_timeout_is_refused_before_any_run(tmp_path, double, capsys):
    out = tmp_path / "out"
    _refused(capsys, [str(double), "-p", "x", "1", "2", "--kernel", "no-such-kernel", "--out", str(out)],
             "no Jupyter kernel named 'no-such-kernel'", "python3")
    nameless = _notebook(tmp_path / "nameless.ipynb", "x = 1", "pass")
    book = nbformat.read(nameless, as_version=4)
    book.metadata = {}
    nbformat.write(book, nameless)
    _refused(capsys, [str(nameless), "-p", "x", "1", "--out", str(out)], "names no Jupyter kernel", "--kernel NAME")
    _refused(capsys, [str(double), "-p", "x", "1", "--timeout", "0", "--out", str(out)], "--timeout 0: give the seconds")
    assert not out.exists()
    with pytest.raises(KitError, match="no-such-kernel"):
        notebook_io.execute(double, tmp_path / "o.ipynb", kernel_name="no-such-kernel")


def test_execute_refuses_to_write_over_its_own_notebook_or_into_a_file(tmp_path, double):
    before = double.read_bytes()
    with pytest.raises(KitError, match="same file"):
        notebook_io.execute(double, double)
    assert double.read_bytes() == before
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(KitError, match="is a file"):
        notebook_io.execute(double, afile / "out.ipynb")
    with pytest.raises(KitError, match="is a folder"):
        notebook_io.execute(tmp_path, tmp_path / "o.ipynb")
    with pytest.raises(KitError, match="is a folder"):
        notebook_io.read(tmp_path)


# ---------------------------------------------------------------- notebook 20's own-data folder

def test_own_data_rewrites_its_own_files_and_refuses_a_persons(tmp_path):
    folder = tmp_path / "my_data"
    first = own_dataset(folder)
    assert set(first.files) == {"my_alpaca.json", "my_sharegpt.json", "dataset_info.json"}
    own_dataset(folder)  # again: its own files, replaced
    (folder / "my_alpaca.json").write_text('[{"instruction": "mine", "output": "edited"}]')
    with pytest.raises(KitError, match="my_alpaca.json.*changed since"):
        own_dataset(folder)
    assert "edited" in (folder / "my_alpaca.json").read_text()

    theirs = tmp_path / "data"  # a LLaMA-Factory data/ folder given as own_data_dir
    theirs.mkdir()
    (theirs / "dataset_info.json").write_text('{"identity": {"file_name": "identity.json"}}')
    with pytest.raises(KitError, match="dataset_info.json.*did not write"):
        own_dataset(theirs)
    assert json.loads((theirs / "dataset_info.json").read_text()) == {"identity": {"file_name": "identity.json"}}
    assert sorted(p.name for p in theirs.iterdir()) == ["dataset_info.json"]  # not even half the files


def test_own_data_folder_that_is_a_file_or_runs_through_one_is_one_message(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(KitError, match="is a file, not a folder"):
        own_dataset(afile)
    with pytest.raises(KitError, match=f"{afile} is a file"):
        own_dataset(afile / "my_data")
    assert afile.read_text() == "x"


def test_own_data_folder_that_cannot_be_written_is_one_message(tmp_path, unwritable):
    locked = unwritable(tmp_path / "locked")
    with pytest.raises(KitError, match="cannot be written"):
        own_dataset(locked / "my_data")
    assert list(locked.iterdir()) == []


# ---------------------------------------------------------------- kit demo's run folder

def test_demo_refuses_a_persons_file_in_its_run_folder_before_running_anything(tmp_path, monkeypatch):
    ran: list[str] = []

    def execute(source, target, parameters, cwd=None, **kw):
        ran.append(Path(source).stem)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text("{}")
        return {}

    monkeypatch.setattr(notebook_io, "execute", execute)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "transcript.md").write_text("my notes")
    with pytest.raises(KitError, match="transcript.md"):
        demo.run_demo([], run_dir=run_dir)
    assert ran == [] and (run_dir / "transcript.md").read_text() == "my notes"
    (run_dir / "transcript.md").unlink()
    demo.run_demo([], run_dir=run_dir, log=lambda line: None)  # an empty folder: the demo's own
    demo.run_demo([], run_dir=run_dir, log=lambda line: None)  # and again: its own files replaced
    assert len(ran) == 8


def test_demo_run_folder_that_is_a_file_is_one_message(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert cli.main(["demo", "--run_dir", str(afile / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{afile} is a file" in err and "Traceback" not in err and afile.read_text() == "x"


@pytest.mark.notebook
def test_notebook_00_with_a_failing_doctor_is_a_failed_run_naming_the_checks(tmp_path):
    """device=npu on a machine without one: every cell runs, the doctor reports FAILs; the run is failed, not ok."""
    from kit.device import detect

    if detect("auto").kind == "npu":
        pytest.skip("an NPU is here: device=npu passes")
    rows = batch.run_batch("00_environment_check", {"device": ["cpu", "npu"]}, tmp_path / "out", lang="en", log=lambda line: None)
    by = {r["device"]: r for r in rows}
    assert by["cpu"]["status"] == "ok", by["cpu"]
    assert by["npu"]["status"] == "failed" and by["npu"]["failed_cell"] is None
    named = by["npu"]["error"].rpartition(": ")[2]  # "cann, ..., npu_smi, ... (checks)": the doctor's FAIL rows
    assert "npu_smi" in named.split(" (")[0].split(", ") and named.endswith("(checks)"), by["npu"]["error"]
    assert by["npu"]["error"].startswith("the notebook reported failed checks: ")
