"""kit.evaluate: LLaMA-Factory's scores, the prediction set's encoding, kit predict and do_predict in kit train.

Equality with LLaMA-Factory's own run is tests/test_predict_parity.py; here the parts, the refusals and
the messages.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kit import cli, config
from kit.config import ConfigError
from kit.data.loader import Example
from kit.data.template import get as get_template
from kit.data.unsupervised import build_unsupervised, encode_unsupervised
from kit.evaluate import metric, predict

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "kit" / "tiny_qwen"
DEMO = REPO / "kit" / "data" / "demo"
needs_eval = pytest.mark.skipif(any(m not in sys.modules and __import__("importlib").util.find_spec(m) is None
                                    for m in ("jieba", "nltk", "rouge_chinese")),
                                reason="needs the kit's eval extra (pip install 'kit[eval]')")


# ---------------------------------------------------------------- scores

@needs_eval
def test_identical_texts_score_100_and_empty_scores_0():
    assert metric.score_one("the cat sat on the mat", "the cat sat on the mat") == {
        "rouge-1": 100.0, "rouge-2": 100.0, "rouge-l": 100.0, "bleu-4": 100.0}
    # LLaMA-Factory: an empty (or blank) prediction gets ROUGE 0 without calling rouge; BLEU is still computed.
    assert metric.score_one("", "abc") == {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0, "bleu-4": 0.0}
    assert metric.score_one("   ", "abc")["rouge-l"] == 0.0


@needs_eval
def test_chinese_is_split_by_jieba_and_bleu_counts_characters():
    # jieba: 我 / 是 / 一个 / 助手 against 我 / 是 / 助手 -> rouge-1 F = 2*(3/4)(3/3)/(3/4+1) = 0.857142...
    scores = metric.score_one("我是一个助手", "我是助手")
    assert scores == {"rouge-1": 85.7143, "rouge-2": 40.0, "rouge-l": 85.7143, "bleu-4": 22.9575}
    partial = metric.score_one("the cat sat", "the cat sat on the mat")
    assert partial == {"rouge-1": 75.0, "rouge-2": 57.1429, "rouge-l": 66.6667, "bleu-4": 36.7879}


@needs_eval
def test_the_mean_is_over_examples_of_rounded_scores():
    assert metric.score(["a b", "x"], ["a b", "y"]) == {"bleu-4": 42.0448, "rouge-1": 50.0, "rouge-2": 50.0, "rouge-l": 50.0}


def test_a_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)  # import jieba raises ImportError
    with pytest.raises(metric.MetricsMissingError) as err:
        metric.require_metrics()
    assert "jieba" in str(err.value) and 'pip install "kit[eval]"' in str(err.value)


def test_a_missing_extra_is_one_line_from_kit_predict(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "rouge_chinese", None)
    code = cli.main(["predict", "--model_name_or_path", str(TINY), "--template", "qwen", "--eval_dataset", "identity",
                     "--dataset_dir", str(DEMO), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "rouge-chinese" in err and "kit[eval]" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before the model was loaded or anything written


# ---------------------------------------------------------------- the prediction set

@pytest.fixture(scope="module")
def qwen_tokenizer():
    from kit.model import load_tokenizer

    template = get_template("qwen")
    return template, load_tokenizer(TINY, template)


def test_prompt_ends_where_the_reply_starts_and_the_label_is_the_reply(qwen_tokenizer):
    template, tok = qwen_tokenizer
    ex = Example("d", 0, [{"role": "user", "content": "Hi"}], [{"role": "assistant", "content": "Hello there"}])
    ids, labels, full = encode_unsupervised(template, tok, ex, 1024)
    assert tok.decode(ids).endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tok.decode(labels, skip_special_tokens=True) == "Hello there\n"
    assert full == len(ids) + len(labels)


def test_a_long_example_is_cut_as_llamafactory_cuts_it(qwen_tokenizer):
    template, tok = qwen_tokenizer
    long_prompt = Example("d", 3, [{"role": "user", "content": "word " * 200}], [{"role": "assistant", "content": "ok"}])
    short = Example("d", 4, [{"role": "user", "content": "Hi"}], [{"role": "assistant", "content": "ok"}])
    bad = Example("d", 5, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                  [{"role": "assistant", "content": "c"}])
    rows, dropped = build_unsupervised([long_prompt, short, bad], tok, template, 32)
    assert [(r.index, r.cut) for r in rows] == [(3, True), (4, False)]
    # The reply is short, so it is kept whole and the prompt loses its end (infer_seqlen).
    assert len(rows[0].input_ids) + len(rows[0].labels) == 32
    assert tok.decode(rows[0].labels, skip_special_tokens=True) == "ok\n"
    assert dropped == ["d[5]: prompt/response turns do not alternate"]
    assert predict.PredictionSet(rows).cut == ["d[3]"]


def test_eos_ids_are_eos_and_the_extra_special_tokens(qwen_tokenizer):
    template, tok = qwen_tokenizer
    ids = predict.eos_token_ids(tok, template)
    assert ids[0] == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.convert_tokens_to_ids("<|im_start|>") in ids and len(ids) == len(set(ids))


# ---------------------------------------------------------------- refusals (as LLaMA-Factory refuses them)

@pytest.mark.parametrize("keys, says", [
    ({"do_predict": True, "eval_dataset": "identity"}, "needs predict_with_generate: true"),
    ({"do_predict": True, "predict_with_generate": True}, "set eval_dataset"),
    ({"do_predict": True, "predict_with_generate": True, "eval_dataset": "identity", "val_size": 0.1}, "both are set"),
    ({"do_predict": True, "predict_with_generate": True, "val_size": 0.1, "deepspeed": "ds_z3_config.json"}, "ZeRO-3"),
])
def test_what_llamafactory_refuses_is_refused(keys, says):
    with pytest.raises(ConfigError) as err:
        config.from_dict(keys)
    assert says in str(err.value)


def test_refusals_are_in_chinese_too():
    from kit import i18n

    before = i18n.language()
    try:
        i18n.set_language("zh")
        with pytest.raises(ConfigError) as err:
            config.from_dict({"do_predict": True, "eval_dataset": "identity"})
        assert "需要 predict_with_generate" in str(err.value)
    finally:
        i18n.set_language(before)


def test_zero2_and_the_pair_are_accepted():
    cfg = config.from_dict({"do_predict": True, "predict_with_generate": True, "val_size": 0.1, "deepspeed": "ds_z2_config.json"})
    assert cfg.train.do_predict and cfg.train.predict_with_generate


@needs_eval
def test_a_persons_prediction_file_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "generated_predictions.jsonl").write_text("my notes\n", encoding="utf-8")
    code = cli.main(["predict", "--model_name_or_path", str(TINY), "--template", "qwen", "--eval_dataset", "identity",
                     "--dataset_dir", str(DEMO), "--output_dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "generated_predictions.jsonl" in err and "Traceback" not in err
    assert (out / "generated_predictions.jsonl").read_text(encoding="utf-8") == "my notes\n"


def test_a_run_manifest_the_kit_cannot_read_is_refused_not_written_over(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "kit_run.json").write_text('{"my": "own notes"}', encoding="utf-8")
    code = cli.main(["predict", "--model_name_or_path", str(TINY), "--template", "qwen", "--eval_dataset", "identity",
                     "--dataset_dir", str(DEMO), "--output_dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "kit_run.json the kit cannot read" in err and "Traceback" not in err, err
    assert (out / "kit_run.json").read_text(encoding="utf-8") == '{"my": "own notes"}'


# ---------------------------------------------------------------- the commands on the embedded model

@needs_eval
def test_kit_predict_on_the_embedded_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "pred"
    args = ["predict", "--model_name_or_path", "kit/tiny-qwen", "--template", "qwen", "--eval_dataset", "identity,alpaca_zh_demo",
            "--dataset_dir", str(DEMO), "--max_samples", "3", "--cutoff_len", "48", "--do_sample", "false",
            "--max_new_tokens", "6", "--per_device_eval_batch_size", "2", "--output_dir", str(out)]
    assert cli.main(args) == 0
    said = capsys.readouterr().out
    lines = [json.loads(x) for x in (out / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 6 and all(list(x) == ["prompt", "predict", "label"] for x in lines)
    results = json.loads((out / "predict_results.json").read_text(encoding="utf-8"))
    assert {"predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l", "predict_runtime",
            "predict_samples_per_second", "predict_steps_per_second"} <= set(results)
    assert "scored 6 example(s)" in said and "tokens/s" in said and str(out / "predict_results.json") in said
    manifest = json.loads((out / "kit_run.json").read_text(encoding="utf-8"))
    assert {"generated_predictions.jsonl", "predict_results.json"} <= set(manifest["entries"])
    # Greedy: the same again (the kit's own files are replaced), and the comparison says so.
    first = (out / "generated_predictions.jsonl").read_bytes()
    assert cli.main(args + ["--compare_with", str(tmp_path / "copy.jsonl")]) == 2  # a missing file: one message, before generating
    assert "compare_with: cannot read" in capsys.readouterr().err
    (tmp_path / "copy.jsonl").write_bytes(first)
    assert cli.main(args + ["--compare_with", str(tmp_path / "copy.jsonl")]) == 0
    assert "all 6 prediction(s) equal the compared file" in capsys.readouterr().out
    assert (out / "generated_predictions.jsonl").read_bytes() == first


@needs_eval
def test_kit_train_with_do_predict_predicts_after_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    yaml = tmp_path / "t.yaml"
    yaml.write_text(f"""model_name_or_path: kit/tiny-qwen
dataset: identity
dataset_dir: {DEMO}
template: qwen
cutoff_len: 96
max_samples: 12
output_dir: {out}
per_device_train_batch_size: 4
num_train_epochs: 1
learning_rate: 1.0e-3
save_strategy: "no"
val_size: 3
do_predict: true
predict_with_generate: true
do_sample: false
max_new_tokens: 4
""", encoding="utf-8")
    assert cli.main(["train", str(yaml)]) == 0
    lines = (out / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3  # the val_size split
    combined = json.loads((out / "all_results.json").read_text(encoding="utf-8"))
    assert "train_loss" in combined and "predict_bleu-4" in combined  # merged, as save_metrics does
    assert {"generated_predictions.jsonl", "predict_results.json"} <= set(json.loads((out / "kit_run.json").read_text())["entries"])


@needs_eval
def test_kit_predict_takes_dataset_as_vllm_infer_does(tmp_path, capsys, monkeypatch):
    """scripts/vllm_infer.py --dataset D predicts on all of D; so does kit predict --dataset D."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "ds"
    assert cli.main(["predict", "--model_name_or_path", "kit/tiny-qwen", "--template", "qwen", "--dataset", "identity",
                     "--dataset_dir", str(DEMO), "--max_samples", "2", "--do_sample", "false", "--max_new_tokens", "2",
                     "--output_dir", str(out)]) == 0
    assert len((out / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()) == 2


VLLM_PYTHON = __import__("os").environ.get("KIT_VLLM_PYTHON")


@pytest.fixture(scope="module")
def vllm_predict_run(notebook_runs) -> dict:
    """kit predict on the predict reference through transformers, then through vLLM with --compare_with (the vLLM
    environment's python): made once in the background (tests/notebook_runs.py), since vLLM takes half a minute."""
    return notebook_runs.get("vllm_predict").result


@pytest.mark.vllm
@pytest.mark.skipif(not VLLM_PYTHON, reason="KIT_VLLM_PYTHON is not set: create the vLLM environment with "
                    "`bash scripts/vllm_env.sh` (and pip install jieba nltk rouge-chinese in it), then set "
                    "KIT_VLLM_PYTHON=.venv-vllm/bin/python to run this")
@needs_eval
def test_kit_predict_with_vllm_reports_how_many_differ_from_huggingface(vllm_predict_run):
    """The vLLM path (scripts/vllm_infer.py's): the same files, and how many greedy texts differ from transformers'."""
    run = vllm_predict_run
    assert run["hf_code"] == 0 and run["returncode"] == 0, run.get("stderr")
    assert "of 18 prediction(s) differ" in run["stdout"] or "all 18 prediction(s) equal" in run["stdout"]
    vllm_lines = (Path(run["vllm"]) / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    hf_lines = (Path(run["hf"]) / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(vllm_lines) == len(hf_lines) == 18
    assert [json.loads(a)["prompt"] for a in vllm_lines] == [json.loads(b)["prompt"] for b in hf_lines]


def test_a_misspelt_prediction_dataset_is_named_before_the_model_loads(tmp_path, capsys):
    # The model is never reached (its folder does not exist): the dataset is checked first.
    code = cli.main(["predict", "--model_name_or_path", str(tmp_path / "no-model"), "--template", "qwen",
                     "--eval_dataset", "identty", "--dataset_dir", str(DEMO), "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "'identty' is not in" in err and "did you mean identity" in err and "no-model" not in err, err
