"""Tokenizer and model loading: the one tokenizer stage, the meta model, and models that do not fit."""

from __future__ import annotations

import json
import shutil

import pytest

from kit import cli, config, model
from kit.model import ModelError

from helpers import make_dataset_dir, make_tiny_model, quickstart, write_yaml


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_dataset_dir(tmp_path_factory.mktemp("data"))


def _variant(src, dst, **config_changes):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(config_changes)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_tokenizer_stage_resolves_template_and_tokenizer(model_dir):
    cfg = config.from_dict({"model_name_or_path": str(model_dir), "template": "qwen", "default_system": "Be brief."})
    stage = model.tokenizer_stage(cfg)
    assert stage.model_dir == model_dir.resolve() and stage.template.default_system == "Be brief."
    assert stage.tokenizer.eos_token == "<|im_end|>" and stage.tokenizer.padding_side == "right"


def test_meta_model_and_lora_targets(model_dir):
    meta = model.meta_model(model_dir)
    assert next(meta.parameters()).device.type == "meta"
    assert model.lora_targets(meta, "all") == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    with pytest.raises(ModelError, match="wq name"):
        model.lora_targets(meta, "q_proj,wq")


def test_unknown_model_type_is_one_message(tmp_path, model_dir):
    bad = _variant(model_dir, tmp_path / "m", model_type="qwen99")
    with pytest.raises(ModelError, match="config.json this transformers cannot read"):
        model.meta_model(bad)


def test_a_model_that_is_not_a_causal_lm_is_refused(tmp_path):
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 16, "num_layers": 1}))
    with pytest.raises(ModelError, match="t5 model, which is not a causal language model"):
        model.meta_model(tmp_path / "t5")


@pytest.mark.parametrize("change, message", [
    ({"model_type": "qwen99"}, "cannot read"),
    ({"vocab_size": "3000"}, "cannot read"),  # a number written as text
    ({"vocab_size": 2}, "template: 'qwen' needs <|im_end|>"),  # the template's tokens have no embedding row
    ({"vocab_size": 40}, "the tokenizer has"),  # the tokenizer and the weights do not belong together
])
def test_train_refuses_before_writing(tmp_path, model_dir, data_dir, change, message, capsys):
    bad = _variant(model_dir, tmp_path / "m", **change)
    out = tmp_path / "out"
    cfg = write_yaml(tmp_path / "c.yaml", quickstart(bad, data_dir, out, deepspeed=None))
    assert cli.main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_count_parameters_after_lora(model_dir):
    m = model.load_model(model_dir)
    total_before = sum(p.numel() for p in m.parameters())
    m = model.attach_lora(m, ["q_proj", "v_proj"], 8, 16, 0.0)
    trainable, total = model.count_parameters(m)
    assert total > total_before and trainable == total - total_before


def test_a_cached_snapshot_without_weights_is_enough_to_tokenize_only(tmp_path):
    # kit preprocess resolves the model with weights=False: the tokenizer files of a cached hub snapshot
    # are enough, and a model for training is still refused without its weights.
    from kit import hub
    from kit.envvars import EnvSettings

    offline = EnvSettings.from_environ({"HF_HUB_OFFLINE": "1"})
    repo = tmp_path / "models--org--tok"
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (snap / name).write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    assert hub.resolve_model("org/tok", cache_dir=str(tmp_path), env=offline, weights=False) == snap
    with pytest.raises(hub.HubError, match="weight files"):
        hub.resolve_model("org/tok", cache_dir=str(tmp_path), env=offline)
    assert hub.missing_files(snap, weights=False) == []
    (snap / "tokenizer.json").unlink()
    assert hub.missing_files(snap, weights=False) == [
        "tokenizer files (tokenizer.json, or tokenizer.model, or vocab.json + merges.txt)"]
