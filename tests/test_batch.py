"""kit batch: papermill sweeps, one folder per run, a results table that fills, resuming, failures, cards.

The sweeps of notebook 20 train for real on the embedded tiny model (short settings) and are shared
between the asserts; the cheaper behaviours (retrying a failed run, one card per run) use small
notebooks made here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from kit import cli
from kit.tutorial import sweep as batch
from kit import tutorial as nb
from kit.errors import KitError
from notebook_runs import NB20  # tests/ is on sys.path, as for conftest.py

ROOT = Path(__file__).resolve().parents[1]

def _notebook(path: Path, parameters: str, body: str) -> Path:
    book = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    book.cells = [cell, nbformat.v4.new_code_cell(body)]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, path)
    return path


def _csv(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- mistakes: one message, exit 2, nothing written

def test_unknown_parameter_lists_the_notebooks_parameters_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "runs"
    assert cli.main(["batch", str(NB20), "-p", "lora_rnk", "2", "8", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no parameter 'lora_rnk'" in err and "did you mean lora_rank?" in err
    assert "its parameters: " + ", ".join(batch.notebook_parameters(NB20)) in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("args, says", [
    (["-p", "max_samples", "8", "many"], "max_samples: 'many' is not an integer"),
    (["-p", "seed", "1.5"], "seed: '1.5' is not an integer (the notebook's default is 42)"),
    (["-p", "max_samples"], "-p max_samples: give a value"),
    (["-p", "seed", "1", "-p", "seed", "2"], "-p seed is given twice"),
    (["--parallel", "0"], "--parallel 0: give 1 or more"),
])
def test_bad_values_are_refused_before_anything_runs(tmp_path, capsys, args, says):
    out = tmp_path / "runs"
    assert cli.main(["batch", str(NB20), *args, "--out", str(out)]) == 2
    assert says in capsys.readouterr().err
    assert not out.exists()


def test_devices_need_a_visible_devices_parameter_and_distinct_cards(tmp_path):
    plain = _notebook(tmp_path / "plain.ipynb", "x = 1", "pass")
    with pytest.raises(KitError, match="plain.ipynb has no `visible_devices` parameter"):
        batch.make_plan(plain, {"x": [1, 2]}, tmp_path / "o", devices="0,1")
    cards = _notebook(tmp_path / "cards.ipynb", "x = 1\nvisible_devices = None", "pass")
    with pytest.raises(KitError, match="distinct card numbers"):
        batch.make_plan(cards, {"x": [1, 2]}, tmp_path / "o", devices="0,0")
    assert batch.make_plan(cards, {"x": [1, 2, 3]}, tmp_path / "o", parallel=4, devices="0,1").parallel == 2
    assert not (tmp_path / "o").exists()


def test_missing_notebook_and_help(tmp_path, capsys):
    assert cli.main(["batch", str(tmp_path / "nope.ipynb"), "-p", "x", "1", "--out", str(tmp_path / "o")]) == 2
    assert "nope.ipynb' not found" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert cli.main(["batch", "--help"]) == 0
    assert "-p NAME VALUE [VALUE ...]" in capsys.readouterr().out


def test_lang_chooses_the_edition_and_the_language_of_the_messages(tmp_path, capsys, monkeypatch):
    """kit --lang zh batch (or kit batch ... --lang zh): the Chinese edition of a notebook given by name, Chinese messages."""
    from kit import i18n

    seen = {}

    def run_batch(notebook, parameters, out, parallel, devices, kernel, timeout, lang):
        seen["notebook"] = batch.resolve_notebook(notebook, lang)
        return []

    try:
        assert cli.main(["batch", str(NB20), "-p", "seed", "1.5", "--out", str(tmp_path / "o"), "--lang", "zh"]) == 2
        assert "seed：'1.5' 不是整数" in capsys.readouterr().err
        monkeypatch.setattr(batch, "run_batch", run_batch)
        assert cli.main(["batch", "20_lora_sft", "-p", "seed", "1", "--out", str(tmp_path / "o"), "--lang", "zh"]) == 0
        assert seen["notebook"] == ROOT / "notebooks" / "zh" / "20_lora_sft.ipynb"
        assert batch.make_plan("20_lora_sft", {"seed": 1}, tmp_path / "o", lang="en").notebook.parent.name == "en"
    finally:
        i18n.set_language(None)
    assert batch.command_line("20_lora_sft", {"seed": 1}, "out", lang="zh").endswith("--out out --lang zh")


def test_values_are_typed_as_the_notebooks_defaults_then_the_config_keys():
    plan = batch.make_plan(NB20, {"lora_target": ["q_proj,v_proj"], "seed": ["7"], "learning_rate": ["1e-3", "3e-3"],
                                  "overrides": ["cutoff_len=64"], "lora_rank": ["2", "8"]}, "/tmp/never-written")
    assert len(plan.runs) == 4 and plan.swept == ["learning_rate", "lora_rank"]
    first = plan.runs[0].parameters
    # a comma stays in one value; int from the default 42; float and int from config keys (default None); a list item
    assert first == {"lora_target": "q_proj,v_proj", "seed": 7, "learning_rate": 1e-3, "overrides": ["cutoff_len=64"], "lora_rank": 2}
    # lora_rank is no parameter of notebook 20: it goes into its overrides; output_dir into the run's folder
    given = batch.papermill_parameters(plan, plan.runs[0], None)
    # one route to the config: typed values in a mapping, the overrides given first and the swept key added
    assert given["overrides"] == {"cutoff_len": 64, "lora_rank": 2}
    assert given["output_dir"] == f"/tmp/never-written/{plan.runs[0].run_id}/output"
    assert batch.type_value("flag", "true", False) is True and batch.type_value("xs", "[1, 2]", []) == [1, 2]
    assert batch.type_value("anything", "0.5", None) == 0.5 and batch.type_value("anything", "hello", None) == "hello"


def test_run_ids_are_deterministic_and_distinct():
    a = batch.make_plan(NB20, {"learning_rate": ["1e-3", "3e-3"], "max_samples": ["8"]}, "/tmp/x")
    b = batch.make_plan(NB20, {"max_samples": "8", "learning_rate": [0.001, 0.003]}, "/tmp/y")
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]
    assert a.runs[0].run_id.startswith("learning_rate=0.001-") and len({r.run_id for r in a.runs}) == 2
    c = batch.make_plan(NB20, {"learning_rate": ["1e-3", "3e-3"], "max_samples": ["9"]}, "/tmp/x")
    assert {r.run_id for r in a.runs}.isdisjoint(r.run_id for r in c.runs)  # another fixed value: other runs


# ---------------------------------------------------------------- a 2x2 sweep of notebook 20, for real

GRID = {"learning_rate": [-1.0, 3e-3], "lora_target": ["q_proj,v_proj", "q_proj,k_proj"]}


@pytest.fixture(scope="module")
def sweep(notebook_runs) -> dict:
    """kit batch NB20 -p learning_rate -1 3e-3 -p lora_target q_proj,v_proj q_proj,k_proj (short runs) --parallel 2,
    made once for the session in the background (tests/notebook_runs.py): its folder (``out``), exit status
    (``code``) and standard output. The two runs at learning_rate -1 fail; the other two train."""
    return notebook_runs.get("sweep").result


@pytest.mark.notebook
def test_sweep_runs_every_combination_into_its_own_folder(sweep):
    out = Path(sweep["out"])
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 4 and {(r["learning_rate"], r["lora_target"]) for r in rows} == {
        (lr, t) for lr in GRID["learning_rate"] for t in GRID["lora_target"]}
    assert len({r["run_id"] for r in rows}) == 4 and all((out / r["run_id"] / "20_lora_sft.ipynb").is_file() for r in rows)
    trained = [r for r in rows if r["learning_rate"] > 0]
    assert all(r["status"] == "ok" for r in trained), rows
    for row in trained:
        folder = out / row["run_id"]
        assert nb.read(folder / "20_lora_sft.ipynb")["final_loss"] == row["final_loss"]
        assert row["final_loss"] < row["first_loss"] and isinstance(row["eval_loss"], float)
        assert row["output_dir"] == str(folder / "output")  # the default: in the run's folder
        adapter = json.loads((folder / "output" / "adapter_config.json").read_text())
        assert sorted(adapter["target_modules"]) == sorted(row["lora_target"].split(","))
    table = _csv(out)
    assert [r["run_id"] for r in table] == [r["run_id"] for r in rows]
    assert [float(r["eval_loss"]) if r["eval_loss"] else None for r in table] == [r.get("eval_loss") for r in rows]


@pytest.mark.notebook
def test_a_failing_run_is_recorded_and_the_others_finish(sweep):
    out = Path(sweep["out"])
    assert sweep["code"] == 1
    rows = json.loads((out / "results.json").read_text())
    assert {r["status"] for r in rows if r["learning_rate"] == 3e-3} == {"ok"}
    for bad in (r for r in rows if r["learning_rate"] == -1.0):
        assert bad["status"] == "failed" and isinstance(bad["failed_cell"], int) and bad.get("eval_loss") is None
        assert bad["error"].startswith("ConfigError") and "learning_rate" in bad["error"]
        assert (out / bad["run_id"] / "20_lora_sft.ipynb").is_file()  # kept for inspection
    printed = sweep["stdout"]
    assert "2 of 4 run(s) ok, 2 failed" in printed and "learning_rate: -1.0 must be positive" in printed


@pytest.mark.notebook
def test_running_the_same_sweep_again_runs_only_the_failed_runs(sweep):
    out = Path(sweep["out"])
    rows = {r["run_id"]: r for r in json.loads((out / "results.json").read_text())}
    done = {p: p.stat().st_mtime_ns for p in out.glob("*/20_lora_sft.ipynb") if rows[p.parent.name]["status"] == "ok"}
    lines: list[str] = []
    again = nb.batch(NB20, {**GRID, "max_samples": 8, "num_train_epochs": 1.0, "logging_steps": 1, "train_own_data": False},
                     out, parallel=2, log=lines.append)
    assert len(done) == 2 and {p: p.stat().st_mtime_ns for p in done} == done  # the completed runs are not run again
    assert "2 already done, 2 to run" in lines[0], lines
    assert sorted(r["status"] for r in again) == ["failed", "failed", "ok", "ok"]


# ---------------------------------------------------------------- small notebooks: retries, cards, threads

@pytest.mark.notebook
def test_a_failed_run_is_retried_and_the_completed_ones_are_not(tmp_path):
    gate = tmp_path / "fixed"
    book = _notebook(tmp_path / "gate.ipynb", "x = 1", (
        "import kit.tutorial, pathlib\n"
        f"if x == 2 and not pathlib.Path({str(gate)!r}).exists():\n    raise RuntimeError('not yet')\n"
        "kit.tutorial.publish('double', 2 * x)"))
    out = tmp_path / "runs"
    rows = nb.batch(book, {"x": ["1", "2", "3"]}, out, log=lambda line: None)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"] == "RuntimeError: not yet" and rows[1]["failed_cell"] == 3  # 1 parameters, 2 injected
    done = {r["run_id"]: (out / r["run_id"] / "gate.ipynb").stat().st_mtime_ns for r in rows}
    gate.touch()
    lines: list[str] = []
    rows = nb.batch(book, {"x": [1, 2, 3]}, out, log=lines.append)
    assert [r["status"] for r in rows] == ["ok"] * 3 and [r["double"] for r in rows] == [2, 4, 6]
    assert "2 already done, 1 to run" in lines[0]
    after = {r["run_id"]: (out / r["run_id"] / "gate.ipynb").stat().st_mtime_ns for r in rows}
    assert [after[k] == v for k, v in done.items()] == [True, False, True]


@pytest.mark.notebook
def test_parallel_runs_get_their_own_card_and_a_share_of_the_cores(tmp_path):
    import os

    book = _notebook(tmp_path / "cards.ipynb", "x = 1\nvisible_devices = None\noutput_dir = 'here'", (
        "import os, time, kit.tutorial\nstart = time.time()\ntime.sleep(1.5)\n"
        "kit.tutorial.publish('card', visible_devices)\nkit.tutorial.publish('threads', os.environ.get('OMP_NUM_THREADS'))\n"
        "kit.tutorial.publish('output_dir', output_dir)\nkit.tutorial.publish('start', start)\nkit.tutorial.publish('end', time.time())"))
    out = tmp_path / "runs"
    assert cli.main(["batch", str(book), "-p", "x", "1", "2", "3", "4", "--parallel", "2", "--devices", "0,1",
                     "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 4 and {r["card"] for r in rows} == {"0", "1"}
    for a in rows:  # runs that overlapped in time had different cards
        for b in rows:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["card"] != b["card"], (a, b)
    cores = len(os.sched_getaffinity(0))
    assert {r["threads"] for r in rows} == {str(min(max(1, cores // 2), int(os.environ.get("OMP_NUM_THREADS", cores))))}
    assert rows[0]["output_dir"] == str(out / rows[0]["run_id"] / "output")


@pytest.mark.notebook
@pytest.mark.parametrize("parallel", [2, 1])
def test_sigterm_to_a_parallel_sweep_leaves_no_process(tmp_path, parallel):
    """kill PID of kit batch: the workers, their kernels and what those started (a stand-in for torchrun, in a
    session of its own as kit train starts it) are all gone within 15 s, and the runs are marked interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    marker = f"kit-batch-sigterm-{os.getpid()}"
    book = _notebook(tmp_path / "slow.ipynb", "x = 1\n",
                     "import subprocess, time\n"
                     f"subprocess.Popen(['bash', '-c', 'exec -a {marker} sleep 300'], start_new_session=True)\n"
                     "time.sleep(300)\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "kit.cli", "batch", str(book), "-p", "x", "1", "2", "--parallel", str(parallel),
                             "--out", str(out)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stand_ins():
        return [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]

    deadline = time.time() + 180
    while len(stand_ins()) < parallel:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.time() < deadline, "the two runs did not start"
        time.sleep(0.2)
    tree = psutil.Process(proc.pid).children(recursive=True) + stand_ins()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(20)
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, [(p.pid, p.cmdline()) for p in alive if p.is_running()]
    assert code == 128 + signal.SIGTERM
    rows = json.loads((out / "results.json").read_text())
    assert {r["status"] for r in rows} == {"interrupted"}
    err = proc.stderr.read()
    # One line says what happened; asyncio's "Task exception was never retrieved" traceback is not shown.
    assert "stopped by SIGTERM" in err and "Traceback" not in err and "never retrieved" not in err, err[-3000:]
