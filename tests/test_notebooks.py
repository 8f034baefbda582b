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
def test_each_notebook_ends_with_exercises(name):
    for lang, heading in (("en", "## Try this"), ("zh", "## 动手试试")):
        cells = _load(lang, name).cells
        tail = [c for c in cells[-3:] if c.cell_type == "markdown" and c.source.startswith(heading)]
        assert tail, f"{lang}/{name}: no '{heading}' section among the last cells"
        assert tail[0].source.count("\n1. ") == 1 and "\n2. " in tail[0].source  # two or three numbered exercises


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

def _outputs(path):
    """Every output of an executed notebook: (cell source, output)."""
    book = json.loads(Path(path).read_text(encoding="utf-8"))
    return [(c["source"] if isinstance(c["source"], str) else "".join(c["source"]), o)
            for c in book["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _text(output):
    parts = [output.get("text", "")] + [output.get("data", {}).get(k, "") for k in ("text/plain", "text/html")]
    return "".join("".join(p) if isinstance(p, list) else str(p) for p in parts)


def _check_quiet(run, names=ORDER):
    """Published values are recorded, not shown; no library's deprecation notice reaches the page."""
    for name in names:
        for source, output in _outputs(run.notebooks[name]):
            data = output.get("data", {})
            if nb.MIME in data:
                assert "text/plain" not in data, f"{name}: a published value is shown: {source[:80]}"
            assert "is_gradient_checkpointing" not in _text(output), f"{name}: peft's FutureWarning in the output of {source[:80]}"
            if output.get("output_type") == "execute_result":
                assert not source.rstrip().split("\n")[-1].startswith("kit.nb.publish("), f"{name}: {source[-80:]}"


def _peft_trainable(model, target, rank):
    """What peft trains for ``model`` (a name or folder) with LoRA on ``target`` at ``rank``, counted on the loaded model."""
    import warnings

    from transformers import AutoModelForCausalLM

    from kit import hub
    from kit import model as model_mod

    loaded = AutoModelForCausalLM.from_pretrained(str(hub.resolve_model(model)))
    with warnings.catch_warnings():  # peft reads a property transformers deprecated; not this test's concern
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        peft_model = model_mod.attach_lora(loaded, model_mod.lora_targets(loaded, target), rank, 2 * rank, 0.0)
    return model_mod.count_parameters(peft_model)[0]


def _encoder_truncated(cfg):
    """Examples longer than cutoff_len, counted here with the kit's encoder (not the notebook's lesson)."""
    from kit import model as model_mod
    from kit.data import encode_example, load_examples, resolve_dataset_dir, with_thinking

    d = cfg.data
    stage = model_mod.tokenizer_stage(cfg)
    template = with_thinking(stage.template, d.enable_thinking)
    examples, _report = load_examples(cfg.dataset_names, resolve_dataset_dir(d.dataset_dir, cfg.config_dir), d.max_samples,
                                      {"name": d.identity_name, "author": d.identity_author})
    return sum(encode_example(template, stage.tokenizer, ex, d.cutoff_len, d.train_on_prompt, d.mask_history).full_length
               > d.cutoff_len for ex in examples if ex.problem is None)


def _check_lessons(v20, v30, cfg):
    """Notebook 20's and 30's teaching values, against the libraries and the kit's own code paths."""
    assert v20["lora"]["trainable"] == _peft_trainable(cfg.model.model_name_or_path, cfg.finetune.lora_target, 8)
    assert v20["lora"]["trainable"] < v20["lora"]["base"] / 10
    assert v20["data"]["truncated"] == v20["data"]["longer_than_cutoff"] == _encoder_truncated(cfg)
    assert v20["schedule"]["total_steps"] == v20["total_steps"]  # the steps computed before training are the run's
    assert v20["lr_largest_difference"] is not None and v20["lr_largest_difference"] < 1e-12  # and so are the learning rates
    cost = v20["cost"]
    assert cost["tokens_per_second"] > 0 and cost["peak_memory_mib"] > 0 and cost["estimated_mib"] > 0
    assert cost["gradient_checkpointing"] in (True, False)  # kit train said which
    assert v20["card_time"]["the quick start"] > 60 and v20["card_time"]["this notebook's run"] > 0
    own = v20["own_data"]["summary"]
    assert v20["own_data"]["names"] == "my_alpaca,my_sharegpt" and own["steps"] > 0 and own["final_loss"] is not None
    held_out = v30["held_out"]
    assert len(held_out["questions"]) == 12
    assert held_out["share_after"] > held_out["share_before"], held_out
    assert len(v30["sampling"]["sampled"]) == 3 and v30["sampling"]["settings"]["temperature"] == 0.95
    wrong = v30["wrong_template"]
    assert "'default'" in wrong["warning"] and wrong["wrong"] != wrong["right"]


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
def test_demo_teaches_with_measured_values(demo):
    from kit.tutorial import quickstart_config

    cfg = quickstart_config("kit/tiny-qwen", identity_name="Nova", identity_author="Acme").cfg
    _check_lessons(demo.values["20_lora_sft"], demo.values["30_chat_inference"], cfg)
    assert demo.values["30_chat_inference"]["held_out"]["name"] == "Nova"
    _check_quiet(demo)


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
    run = run_demo(["identity_name=Orion", "lora_target=q_proj,k_proj,v_proj,o_proj", "cutoff_len=96"],
                   run_dir=tmp_path / "run", lang="zh")
    _keep_executed(run, "zh")
    v20 = run.values["20_lora_sft"]
    assert v20["lora_target"] == "q_proj,k_proj,v_proj,o_proj"
    adapter = json.loads((run.output_dir / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert "Orion" in run.values["30_chat_inference"]["answers_after"]["Who are you?"]
    # cutoff_len 96 cuts the longest (multi-turn) identity examples: a truncation count that can be wrong
    from kit.tutorial import quickstart_config

    cfg = quickstart_config("kit/tiny-qwen", ["cutoff_len=96"], identity_name="Orion", identity_author="the kit team",
                            lora_target="q_proj,k_proj,v_proj,o_proj").cfg
    assert v20["data"]["truncated"] > 0 and v20["data"]["cutoff_len"] == 96
    _check_lessons(v20, run.values["30_chat_inference"], cfg)
    _check_quiet(run)


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
