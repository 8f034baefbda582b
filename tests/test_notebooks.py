"""The notebooks: static rules (one parameters cell, no outputs, identical code in both editions) and
end-to-end runs under papermill on the embedded tiny model, asserting on the values they publish and,
in the Chinese edition, that what the kit shows is Chinese."""

import ast
import csv
import html
import importlib.util
import json
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

from kit import tutorial as nb
from kit.tutorial.demo import ORDER

ROOT = Path(__file__).resolve().parents[1]
EDITIONS = ("en", "zh")


def _load(lang, name):
    return nbformat.read(ROOT / "notebooks" / lang / f"{name}.ipynb", as_version=4)


@lru_cache(maxsize=1)
def _make_notebooks():
    """scripts/make_notebooks.py as a module: its without_comments is the rule both editions are written by, and
    notebooks() the cells of scripts/notebooks/ it writes them from."""
    spec = importlib.util.spec_from_file_location("kit_make_notebooks", ROOT / "scripts" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parameters(book):
    return next(c for c in book.cells if "parameters" in c.metadata.get("tags", []))


def _lang_of(book):
    """The value of the parameters cell's ``lang``."""
    tree = ast.parse(_parameters(book).source)
    return next(ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "lang" for t in node.targets))


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


@pytest.mark.parametrize("name", [*ORDER, "40_experiments"])
def test_editions_have_identical_code(name):
    """Identical code means identical once comments are set aside (tokenize finds them, so a '#' in a string is
    code), with one difference by design: the parameters cell's ``lang`` names the edition, "en" or "zh"."""
    strip = _make_notebooks().without_comments
    books = {lang: _load(lang, name) for lang in EDITIONS}
    assert {lang: _lang_of(book) for lang, book in books.items()} == {"en": "en", "zh": "zh"}
    code = {lang: [strip(c.source).replace('lang = "zh"', 'lang = "en"') for c in book.cells if c.cell_type == "code"]
            for lang, book in books.items()}
    assert code["en"] == code["zh"]


@pytest.mark.parametrize("name", [*ORDER, "40_experiments"])
def test_chinese_edition_comments_are_chinese(name):
    module = _make_notebooks()
    for cell in _load("zh", name).cells:
        if cell.cell_type == "code":
            english = [c for c in module.comments(cell.source) if not module.is_chinese(c)]
            assert not english, f"zh/{name}: {english}"


@pytest.mark.parametrize("name", [*ORDER, "40_experiments"])
def test_the_language_is_applied_before_the_kit_says_anything(name):
    """``lang`` first among the parameters, and kit.i18n.set_language(lang) at the top of the first code cell after them."""
    for lang in EDITIONS:
        cells = [c for c in _load(lang, name).cells if c.cell_type == "code"]
        assert cells[0].metadata.get("tags") == ["parameters"] and cells[0].source.startswith(f'lang = "{lang}"')
        first = [line for line in cells[1].source.splitlines() if line and not line.startswith(("import ", "from ", "#"))]
        assert first[0].startswith("kit.i18n.set_language(lang)"), f"{lang}/{name}: {first[0]}"


@pytest.mark.parametrize("name", [*ORDER, "40_experiments"])
def test_every_parameter_is_one_papermill_can_set(name):
    """papermill skips a line it cannot parse (a comment holding '=' does it), and kit demo could then not set it."""
    import papermill as pm

    for lang in EDITIONS:
        path = ROOT / "notebooks" / lang / f"{name}.ipynb"
        source = next(c.source for c in _load(lang, name).cells if "parameters" in c.metadata.get("tags", []))
        assigned = [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets]
        assert sorted(pm.inspect_notebook(str(path))) == sorted(assigned), f"{lang}/{name}"


@pytest.mark.parametrize("name", [*ORDER, "40_experiments"])
def test_bookkeeping_is_one_folded_cell_at_the_end(name):
    """Every value kit demo, kit batch and the tests read is published in the notebook's last cell, tagged and folded
    (JupyterLab hides its source and outputs; the docs leave it out); no other cell publishes (issue 24)."""
    for lang in EDITIONS:
        cells = _load(lang, name).cells
        last = cells[-1]
        assert last.cell_type == "code" and "bookkeeping" in last.metadata.get("tags", []), f"{lang}/{name}"
        assert last.metadata.get("jupyter", {}).get("source_hidden") is True and last.metadata.get("collapsed") is True
        assert "remove-cell" in last.metadata["tags"]
        assert "kit.tutorial.publish(" in last.source
        others = [c.id for c in cells[:-1] if c.cell_type == "code" and "kit.tutorial.publish(" in c.source]
        assert not others, f"{lang}/{name}: cells that publish outside the bookkeeping cell: {others}"


def test_a_chinese_copy_may_differ_in_comments_only():
    module = _make_notebooks()
    assert module.code("one", "x = 1  # one", "x = 1  # 一").zh == "x = 1  # 一"
    with pytest.raises(ValueError, match="differs in more than comments"):
        module.code("one", "x = 1  # one", "x = 2  # 二")
    with pytest.raises(ValueError, match="comments in English"):
        module.code("one", "x = 1  # a comment no table translates")


@pytest.mark.parametrize("name", [*ORDER, "40_experiments"])
def test_cells_have_stable_names_as_ids(name):
    """Every cell's id is the name its source gives it, the same in both editions: inserting a cell changes no other id."""
    source = [cell.id for cell in _make_notebooks().notebooks()[name]]
    assert len(set(source)) == len(source), f"{name}: two cells share a name"
    assert not [i for i in source if re.fullmatch(r"[\d-]+", i)], f"{name}: a cell named by its position"
    for lang in EDITIONS:
        assert [c.id for c in _load(lang, name).cells] == source, f"{lang}/{name}"


def test_a_cell_name_is_an_id_unique_in_its_notebook():
    module = _make_notebooks()
    for bad in ("", "has space", "x" * 65, "import kit\nkit.run()"):
        with pytest.raises(ValueError, match="cell name"):
            module.md(bad, "a", "b")
    with pytest.raises(ValueError, match="two cells named 'same'"):
        module.build("99_test", [module.md("same", "a", "b"), module.code("same", "x = 1")], "en")


def test_the_source_is_cells_as_they_show():
    """scripts/notebooks/ writes a cell as it shows: no f-string (no doubled braces), and a cell's text (a triple-quoted
    string) holds a backslash only when it is raw."""
    import io
    import tokenize

    files = sorted((ROOT / "scripts" / "notebooks").glob("*.py"))
    assert {f.stem for f in files} >= {"cells", "shared", "nb00_environment_check", "nb40_experiments"}
    for path in files:
        if path.stem == "cells":  # the helpers, not cells
            continue
        text = path.read_text(encoding="utf-8")
        assert not [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.JoinedStr)], f"{path.name}: an f-string"
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.STRING:
                continue
            prefix, quotes, _ = token.string.partition(token.string[-1] * 3)
            if quotes and "\\" in token.string:
                assert "r" in prefix.lower(), f"{path.name}:{token.start[0]}: a backslash in a cell that is not a raw string"


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
    book.cells = [nbformat.v4.new_code_cell("import kit.tutorial\nkit.tutorial.publish('answer', {'a': [1, 2]})\nkit.tutorial.publish('n', 3)")]
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


# Outputs that are not the kit speaking, and so not scanned: values published for programs (kit.tutorial's MIME type:
# records, not shown) and pictures (image/png: not text; a figure's labels go through kit.tutorial.display.plot_label,
# which keeps English where no installed font has Chinese glyphs, as on this machine). Everything else is scanned:
# stdout and stderr streams (the kit's log lines and training's rank lines, tqdm's bars, library warnings), text/plain
# and text/html, and the widgets' state (the chat panel's buttons and status). Library output (tqdm's counters,
# transformers' or DeepSpeed's warnings) is English and stays so, but is never one of the kit's messages, so it
# matches none of the strings looked for and needs no exclusion.
NOT_TEXT = {nb.MIME, "image/png", "application/vnd.jupyter.widget-view+json"}


@lru_cache(maxsize=1)
def _english_ui_strings():
    """The English of every message that has Chinese text in the kit's catalogs, as it can appear in an output: the
    literal pieces of the msgid between its {placeholders}, HTML tags and line breaks, longer than 12 characters and of
    two words or more, so that names, keys, paths and codes (lora_rank, ASCEND_RT_VISIBLE_DEVICES, q_proj,v_proj) do
    not count. A piece that the Chinese texts keep as it is (a command line, a flag's usage) does not count either."""
    from babel.messages.pofile import read_po

    catalogs = sorted((ROOT / "kit" / "locale" / "zh" / "LC_MESSAGES").glob("*.po"))
    messages = []
    for po in catalogs:
        with po.open("rb") as fh:
            messages += [m for m in read_po(fh) if m.id and m.string and not m.fuzzy]
    chinese = "\n".join(m.string if isinstance(m.string, str) else "\n".join(m.string) for m in messages)
    pieces = {}
    for m in messages:
        for msgid in ([m.id] if isinstance(m.id, str) else m.id):
            for piece in re.split(r"\{[^{}]*\}|<[^>]+>|\n", msgid):
                piece = piece.strip(" :;,.()")
                if len(piece) > 12 and len(re.findall(r"[A-Za-z]{2,}", piece)) >= 2 and " " in piece and piece not in chinese:
                    pieces[piece] = msgid
    return pieces


def _shown_texts(path):
    """(where, text) for everything an executed notebook shows as text, but NOT_TEXT."""
    book = json.loads(Path(path).read_text(encoding="utf-8"))
    for i, cell in enumerate(book["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        where = f"{Path(path).name} cell {i} ({source.strip().splitlines()[-1][:60]!r})"
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] + [v for k, v in output.get("data", {}).items() if k not in NOT_TEXT]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
                yield where, html.unescape(text)
    state = book.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for model in state.values():
        for key, value in model.get("state", {}).items():
            if isinstance(value, str) and key in ("description", "value", "placeholder", "tooltip", "button_style_text"):
                yield f"{Path(path).name} widget {model.get('model_name')}.{key}", html.unescape(value)


def _english_shown(paths):
    """Every English UI string (of _english_ui_strings) found in what the notebooks at ``paths`` show."""
    strings = _english_ui_strings()
    found = []
    for path in paths:
        for where, text in _shown_texts(path):
            found += [f"{where}: {piece!r} (msgid {msgid[:80]!r})" for piece, msgid in strings.items() if piece in text]
    return found


def test_the_scan_finds_english_and_passes_chinese(tmp_path):
    """The scan over an executed notebook: an English message of the kit is found, its Chinese is not."""
    from kit.i18n import _, set_language

    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell("print(1)")]
    message = "the run logged no learning rate (raise the steps or lower logging_steps)"
    try:
        set_language("zh")
        chinese = _(message)
    finally:
        set_language(None)
    assert chinese != message
    for text, expected in ((message, 1), (chinese, 0)):
        book.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nbformat.write(book, tmp_path / "x.ipynb")
        assert bool(_english_shown([tmp_path / "x.ipynb"])) == bool(expected), text
    assert "lora_rank" not in _english_ui_strings() and "the quick start" in _english_ui_strings()


def _check_quiet(run, names=ORDER):
    """Published values are recorded, not shown; no library's deprecation notice reaches the page."""
    for name in names:
        for source, output in _outputs(run.notebooks[name]):
            data = output.get("data", {})
            if nb.MIME in data:
                assert "text/plain" not in data, f"{name}: a published value is shown: {source[:80]}"
            assert "is_gradient_checkpointing" not in _text(output), f"{name}: peft's FutureWarning in the output of {source[:80]}"
            if output.get("output_type") == "execute_result":
                assert not source.rstrip().split("\n")[-1].startswith("kit.tutorial.publish("), f"{name}: {source[-80:]}"


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
    hood = v20["under_the_hood"]  # the cells that make kit train's peft and transformers calls themselves
    assert hood["trainable"] == v20["lora"]["trainable"] and hood["steps"] == 3, hood
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(hood["files"])
    # beside the run's output_dir (which holds only what the training run wrote), not in the current folder
    assert Path(hood["folder"]) == Path(v20["output_dir"]).resolve().with_name(Path(v20["output_dir"]).name + "-under_the_hood")
    assert v30["hood_same_answer"] is True  # PeftModel.from_pretrained + merge_and_unload answers as the engine does
    own = v20["own_data"]["summary"]
    assert v20["own_data"]["names"] == "my_alpaca,my_sharegpt" and own["steps"] > 0 and own["final_loss"] is not None
    held_out = v30["held_out"]
    assert len(held_out["questions"]) == 12
    assert held_out["share_after"] > held_out["share_before"], held_out
    assert len(v30["sampling"]["sampled"]) == 3 and v30["sampling"]["settings"]["temperature"] == 0.95
    wrong = v30["wrong_template"]
    assert "'default'" in wrong["warning"] and wrong["wrong"] != wrong["right"]


# The runs (kit demo in English and in Chinese, notebook 40) are session fixtures in conftest.py, shared with
# test_binder.py (memory) and test_conversation.py (the demo's adapter).

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
    from kit.tutorial.helpers import quickstart_config

    cfg = quickstart_config("kit/tiny-qwen", identity_name="Nova", identity_author="Acme").cfg
    _check_lessons(demo.values["20_lora_sft"], demo.values["30_chat_inference"], cfg)
    assert demo.values["30_chat_inference"]["held_out"]["name"] == "Nova"
    _check_quiet(demo)


@pytest.mark.notebook
def test_demo_scores_the_adapter_above_the_base_model_and_serves_it(demo):
    """Issue 22: notebook 30's before/after scores on the held-out identity questions, and kit api answering the
    openai client with the engine's greedy reply, stopped at the end."""
    v = demo.values["30_chat_inference"]
    rows = {(r["kind"], r["lang"], r["model"]): r for r in v["heldout_scores"]}
    for lang in ("en", "zh"):
        base, adapter = rows[("identity", lang, "base")], rows[("identity", lang, "adapter")]
        assert adapter["name_share"] > base["name_share"] == 0.0, (base, adapter)
        assert adapter["bleu-4"] > base["bleu-4"] and adapter["rouge-1"] > base["rouge-1"], (base, adapter)
        assert ("general", lang, "base") in rows and rows[("general", lang, "base")]["name_share"] is None
    api = v["api"]
    assert api["reply"] and api["same_as_engine"] is True and api["streamed"] == api["reply"] and api["stopped"] is True


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
def test_notebooks_with_other_parameters(demo_zh):
    """A second run with non-default knobs: another name, another lora_target, the Chinese edition."""
    run = demo_zh
    v20 = run.values["20_lora_sft"]
    assert v20["lora_target"] == "q_proj,k_proj,v_proj,o_proj"
    adapter = json.loads((run.output_dir / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    v30 = run.values["30_chat_inference"]
    assert v30["questions"] == ["你是谁？", "请介绍一下你自己。", "你能做什么？"]  # the Chinese edition asks in Chinese
    assert "Orion" in v30["answers_after"]["你是谁？"] and "Orion" in v30["panel_reply"]
    # cutoff_len 96 cuts the longest (multi-turn) identity examples: a truncation count that can be wrong
    from kit.i18n import language, set_language
    from kit.tutorial.helpers import default_identity_author, quickstart_config

    before = language()
    set_language("zh")
    try:
        author = default_identity_author()  # the Chinese edition's default: "kit 团队", a length of its own
    finally:
        set_language(before)
    assert author != "the kit team"
    cfg = quickstart_config("kit/tiny-qwen", ["cutoff_len=96"], identity_name="Orion", identity_author=author,
                            lora_target="q_proj,k_proj,v_proj,o_proj").cfg
    assert v20["data"]["truncated"] > 0 and v20["data"]["cutoff_len"] == 96
    _check_lessons(v20, run.values["30_chat_inference"], cfg)
    _check_quiet(run)


@pytest.mark.notebook
def test_chinese_edition_shows_chinese(demo_zh):
    """Done when the Chinese notebooks, executed, show no English message of the kit in any output (issue 13)."""
    assert demo_zh.notebooks and all(p.parent.name == "zh" for p in demo_zh.notebooks.values())
    found = _english_shown(demo_zh.notebooks.values())
    assert not found, "\n".join(found)


@pytest.mark.notebook
def test_experiments_notebook_sweeps_and_draws(experiments):
    """40_experiments with two short runs (the session's run of the English edition); the Chinese edition, run
    here on the same folder, finds them done and only draws."""
    import os
    import shutil

    from notebook_runs import EXPERIMENT_PARAMETERS

    work = experiments.folder
    params = {**EXPERIMENT_PARAMETERS, "out": str(work / "sweep")}
    for lang in EDITIONS:  # the same code in both (test_editions_have_identical_code)
        executed = work / lang / "40_experiments.ipynb"
        v = (experiments.result if lang == "en" else
             nb.execute(ROOT / "notebooks" / lang / "40_experiments.ipynb", executed, params, cwd=work))
        assert v["runs"] == 2 and v["failed"] == [] and v["curves"] == 2
        assert set(v["eval_loss"]) == {"lora_rank=2", "lora_rank=8"} and v["best"] in v["eval_loss"]
        book = json.loads(executed.read_text())
        pictures = [o for c in book["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(pictures) == 2  # the loss curves and the eval-loss bars
        if lang == "zh":  # the sweep's table, lines and pictures' captions in Chinese, as in the demo's notebooks
            found = _english_shown([executed])
            assert not found, "\n".join(found)
        if os.environ.get("KIT_EXECUTED_DIR"):  # for the docs build, as _keep_executed does
            keep = Path(os.environ["KIT_EXECUTED_DIR"]) / lang
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(executed, keep / executed.name)
    rows = list(csv.DictReader((work / "sweep" / "results.csv").open(encoding="utf-8")))
    assert [r["lora_rank"] for r in rows] == ["2", "8"] and {r["status"] for r in rows} == {"ok"}
    from kit.tutorial.helpers import read_log, smooth_loss

    for row in rows:  # first/final loss: the means of the first and last tenth of what trainer_log.jsonl logged
        losses = [r["loss"] for r in read_log(row["output_dir"]) if "loss" in r]
        n = max(1, round(len(losses) / 10))
        assert float(row["first_loss"]) == pytest.approx(sum(losses[:n]) / n)
        assert float(row["final_loss"]) == pytest.approx(sum(losses[-n:]) / n)
        assert min(losses[:n]) <= smooth_loss(losses)[0] <= max(losses[:n])  # the curve starts in the first window
