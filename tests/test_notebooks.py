"""The notebooks: static rules (one parameters cell, no outputs, identical code in both editions) and
end-to-end runs under papermill on the embedded tiny model, asserting on the values they publish."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kit import nb
from kit.demo import ORDER, run_demo

ROOT = Path(__file__).resolve().parents[1]
EDITIONS = ("en", "zh")


def _load(lang, name):
    return nbformat.read(ROOT / "notebooks" / lang / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", ORDER)
def test_structure_and_no_outputs(name):
    for lang in EDITIONS:
        book = _load(lang, name)
        tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{lang}/{name}: exactly one parameters cell"
        assert book.cells[0].cell_type == "markdown" and book.cells[0].source.startswith("# ")
        for cell in book.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{lang}/{name} is committed with outputs"


@pytest.mark.parametrize("name", ORDER)
def test_editions_have_identical_code(name):
    en = [c.source for c in _load("en", name).cells if c.cell_type == "code"]
    zh = [c.source for c in _load("zh", name).cells if c.cell_type == "code"]
    assert en == zh


@pytest.mark.parametrize("name", ORDER)
def test_every_parameter_is_one_papermill_can_set(name):
    """papermill skips a line it cannot parse (a comment holding '=' does it), and kit demo could then not set it."""
    import ast

    import papermill as pm

    for lang in EDITIONS:
        path = ROOT / "notebooks" / lang / f"{name}.ipynb"
        source = next(c.source for c in _load(lang, name).cells if "parameters" in c.metadata.get("tags", []))
        assigned = [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets]
        assert sorted(pm.inspect_notebook(str(path))) == sorted(assigned), f"{lang}/{name}"


def test_notebooks_match_their_source():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_notebooks.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_failing_cell_is_reported_and_notebook_kept(tmp_path):
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('broken on purpose')")]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "bad.ipynb"
    nbformat.write(book, src)
    out = tmp_path / "out" / "bad.ipynb"
    with pytest.raises(nb.NotebookError) as err:
        nb.execute(src, out)
    assert "bad.ipynb: cell 2 failed with ValueError: broken on purpose" in str(err.value)
    assert out.is_file() and str(out) in str(err.value)


def test_publish_and_read(tmp_path):
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell("import kit.nb\nkit.nb.publish('answer', {'a': [1, 2]})\nkit.nb.publish('n', 3)")]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, tmp_path / "p.ipynb")
    assert nb.execute(tmp_path / "p.ipynb", tmp_path / "o.ipynb") == {"answer": {"a": [1, 2]}, "n": 3}


def test_demo_rejects_a_misspelt_key_before_running_anything(tmp_path, capsys):
    from kit import cli

    assert cli.main(["demo", "lerning_rate=1e-3", "--run_dir", str(tmp_path / "run")]) == 2
    assert "did you mean learning_rate" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- end to end (the demo runs the notebooks)

def _keep_executed(run, lang):
    """CI builds the docs from these executed notebooks (KIT_EXECUTED_DIR) instead of running them again."""
    import os
    import shutil

    keep = os.environ.get("KIT_EXECUTED_DIR")
    if keep:
        shutil.copytree(run.run_dir / lang, Path(keep) / lang, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """kit demo with a name that is not the default one."""
    base = tmp_path_factory.mktemp("demo")
    run = run_demo(["identity_name=Nova", "identity_author=Acme", f"output_dir={base / 'nova'}"], run_dir=base / "run")
    _keep_executed(run, "en")
    return run


@pytest.mark.notebook
def test_demo_environment_notebooks(demo):
    assert demo.values["00_environment_check"]["doctor_ok"] is True
    assert demo.values["10_npu_setup"]["doctor_ok"] is True
    assert demo.values["10_npu_setup"]["npu_present"] is False  # this machine has none, and says so


@pytest.mark.notebook
def test_demo_trains_and_writes_llamafactory_outputs(demo):
    v = demo.values["20_lora_sft"]
    assert v["final_loss"] < v["first_loss"]
    assert Path(v["output_dir"]) == demo.output_dir
    for name in ("adapter_model.safetensors", "adapter_config.json", "trainer_log.jsonl", "all_results.json", "training_loss.png"):
        assert name in v["files"] and (demo.output_dir / name).is_file()
    assert v["lora_target"] == "q_proj,v_proj"
    assert Path(v["dataset_dir"]).name == "demo"  # the run folder has no data/: the kit's own demo data, and it says so


@pytest.mark.notebook
def test_demo_model_learned_the_chosen_name(demo):
    v = demo.values["30_chat_inference"]
    for question in ("Who are you?", "你是谁？"):
        assert "Nova" in v["answers_after"][question], v["answers_after"]
        assert "Nova" not in v["answers_before"][question], v["answers_before"]
    assert v["panel_reply"] and v["stream_pieces"] > 1
    assert v["export_same_answer"] is True
    transcript = demo.transcript.read_text(encoding="utf-8")
    assert "Nova" in transcript and "base model" in transcript
    # the executed notebooks are kept, with outputs, and the panel was rendered as a widget
    executed = json.loads(demo.notebooks["30_chat_inference"].read_text())
    mimes = {m for c in executed["cells"] for o in c.get("outputs", []) for m in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in mimes


@pytest.mark.notebook
def test_notebooks_with_other_parameters(tmp_path):
    """A second run with non-default knobs: another name, another lora_target, the Chinese edition."""
    run = run_demo(["identity_name=Orion", "lora_target=q_proj,k_proj,v_proj,o_proj"],
                   run_dir=tmp_path / "run", lang="zh")
    _keep_executed(run, "zh")
    v20 = run.values["20_lora_sft"]
    assert v20["lora_target"] == "q_proj,k_proj,v_proj,o_proj"
    adapter = json.loads((run.output_dir / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert "Orion" in run.values["30_chat_inference"]["answers_after"]["Who are you?"]


@pytest.mark.notebook
def test_experiments_notebook_sweeps_and_draws(tmp_path):
    """40_experiments with two short runs; the second edition finds them done and only draws."""
    import os
    import shutil

    params = {"lora_ranks": [2, 8], "learning_rates": [3e-3], "max_samples": 8, "num_train_epochs": 1.0,
              "out": str(tmp_path / "sweep")}
    for lang in EDITIONS:
        code = [c.source for c in _load(lang, "40_experiments").cells if c.cell_type == "code"]
        assert code == [c.source for c in _load("en", "40_experiments").cells if c.cell_type == "code"]
        executed = tmp_path / lang / "40_experiments.ipynb"
        v = nb.execute(ROOT / "notebooks" / lang / "40_experiments.ipynb", executed, params, cwd=tmp_path)
        assert v["runs"] == 2 and v["failed"] == [] and v["curves"] == 2
        assert set(v["eval_loss"]) == {"lora_rank=2", "lora_rank=8"} and v["best"] in v["eval_loss"]
        book = json.loads(executed.read_text())
        pictures = [o for c in book["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(pictures) == 2  # the loss curves and the eval-loss bars
        if os.environ.get("KIT_EXECUTED_DIR"):  # for the docs build, as _keep_executed does
            keep = Path(os.environ["KIT_EXECUTED_DIR"]) / lang
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(executed, keep / executed.name)
    rows = list(csv.DictReader((tmp_path / "sweep" / "results.csv").open(encoding="utf-8")))
    assert [r["lora_rank"] for r in rows] == ["2", "8"] and {r["status"] for r in rows} == {"ok"}
