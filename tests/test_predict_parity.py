"""kit predict against LLaMA-Factory 0.9.5's own prediction run, committed in tests/fixtures/llamafactory_predict/.

LLaMA-Factory trained the adapter there on the embedded model (kit/tiny_qwen) and predicted with predict.yaml
(greedy, 32 new tokens, cutoff_len 64, batch 4) on the kit's demo data (scripts/llamafactory_predict_reference.sh
regenerates it). The kit runs the same YAML, paths filled in, through ``kit train`` (do_train: false, as
LLaMA-Factory ran it) and ``kit predict``: every line of generated_predictions.jsonl and every score in
predict_results.json must equal LLaMA-Factory's (the runtime figures excepted). Needs only the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit import cli

pytest.importorskip("jieba", reason="the scores need the kit's eval extra (pip install 'kit[eval]')")

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "llamafactory_predict"
RUNTIME_KEYS = {"predict_runtime", "predict_samples_per_second", "predict_steps_per_second", "predict_model_preparation_time"}


def _yaml(out: Path) -> str:
    text = (FIXTURE / "predict.yaml").read_text(encoding="utf-8")
    for key, value in {"@MODEL@": REPO / "kit" / "tiny_qwen", "@ADAPTER@": FIXTURE / "adapter",
                       "@KIT_DATA@": REPO / "kit" / "data" / "demo", "@OUT@": out}.items():
        text = text.replace(key, str(value))
    return text


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _check_same_as_llamafactory(out: Path) -> None:
    ours, theirs = _lines(out / "generated_predictions.jsonl"), _lines(FIXTURE / "generated_predictions.jsonl")
    assert len(ours) == len(theirs) == 18
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert list(a) == ["prompt", "predict", "label"]
        assert a == b, f"line {i} differs"
    assert (out / "generated_predictions.jsonl").read_bytes() == (FIXTURE / "generated_predictions.jsonl").read_bytes()
    ours_r = json.loads((out / "predict_results.json").read_text(encoding="utf-8"))
    theirs_r = json.loads((FIXTURE / "predict_results.json").read_text(encoding="utf-8"))
    assert set(ours_r) == set(theirs_r)
    assert {k: v for k, v in ours_r.items() if k not in RUNTIME_KEYS} == {k: v for k, v in theirs_r.items() if k not in RUNTIME_KEYS}


@pytest.mark.skipif(not (FIXTURE / "predict.yaml").is_file(), reason="the LLaMA-Factory predict reference is not in this checkout")
def test_kit_train_do_predict_equals_llamafactory(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = tmp_path / "predict.yaml"
    cfg.write_text(_yaml(tmp_path / "out"), encoding="utf-8")
    assert cli.main(["train", str(cfg)]) == 0
    _check_same_as_llamafactory(tmp_path / "out")
    said = capsys.readouterr().out
    assert "scored 18 example(s)" in said
    # The multi-turn identity examples and the longest alpaca ones do not fit cutoff_len 64.
    assert "7 example(s) cut by cutoff_len" in said and "identity[0]" in said
    assert str(tmp_path / "out" / "generated_predictions.jsonl") in said


@pytest.mark.skipif(not (FIXTURE / "predict.yaml").is_file(), reason="the LLaMA-Factory predict reference is not in this checkout")
def test_kit_predict_flags_equal_llamafactory(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "flags"
    assert cli.main(["predict", "--model_name_or_path", str(REPO / "kit" / "tiny_qwen"),
                     "--adapter_name_or_path", str(FIXTURE / "adapter"), "--template", "qwen",
                     "--eval_dataset", "identity,alpaca_en_demo,alpaca_zh_demo", "--dataset_dir", str(REPO / "kit" / "data" / "demo"),
                     "--cutoff_len", "64", "--max_samples", "6", "--per_device_eval_batch_size", "4",
                     "--do_sample", "false", "--max_new_tokens", "32", "--output_dir", str(out),
                     "--compare_with", str(FIXTURE / "generated_predictions.jsonl")]) == 0
    _check_same_as_llamafactory(out)
    assert "all 18 prediction(s) equal the compared file" in capsys.readouterr().out
