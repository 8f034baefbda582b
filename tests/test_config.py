import json
from pathlib import Path

import pytest

from kit import config
from kit.config import deepspeed as ds_config
from kit.config import ConfigError

from helpers import quickstart, write_yaml


def test_quickstart_yaml_loads_with_llamafactory_meanings(tmp_path):
    path = write_yaml(tmp_path / "qs.yaml", quickstart(Path("m"), Path("d"), Path("out")))
    cfg = config.load(path)
    assert cfg.finetune.lora_target == "q_proj,v_proj"
    assert cfg.train.gradient_accumulation_steps == 2
    assert cfg.train.learning_rate == pytest.approx(1e-2)
    assert cfg.train.ddp_timeout == 180000000
    assert cfg.dataset_names == ["identity", "chat"]
    assert cfg.lora_alpha == 16  # LLaMA-Factory: 2 x lora_rank when unset
    assert cfg.train.fp16 is True and cfg.train.bf16 is False


def test_defaults_follow_llamafactory():
    cfg = config.from_dict({})
    assert cfg.data.cutoff_len == 2048
    assert cfg.finetune.lora_target == "all"
    assert cfg.finetune.lora_rank == 8 and cfg.finetune.lora_dropout == 0.0
    assert cfg.train.seed == 42
    assert cfg.infer.temperature == 0.95 and cfg.infer.top_p == 0.7 and cfg.infer.top_k == 50


def test_overrides_apply_after_file_with_yaml_types(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"learning_rate": 1e-4, "fp16": True})
    cfg = config.load(path, ["learning_rate=3e-4", "fp16=false", "max_samples=7", "lora_target=q_proj"])
    assert cfg.train.learning_rate == pytest.approx(3e-4)
    assert cfg.train.fp16 is False
    assert cfg.data.max_samples == 7
    assert cfg.finetune.lora_target == "q_proj"


def test_every_problem_reported_at_once_with_key_value_and_hint():
    with pytest.raises(ConfigError) as err:
        config.from_dict({"learning_rate": "fast", "lora_rnak": 8, "cutoff_len": 0, "fp16": "maybe", "template": "qwen"})
    text = str(err.value)
    assert len(err.value.problems) == 4
    assert "learning_rate: 'fast' is not a number" in text
    assert "lora_rnak: unknown key; did you mean lora_rank?" in text
    assert "cutoff_len: 0 must be a positive" in text
    assert "fp16: 'maybe' is not a boolean" in text


def test_known_but_unsupported_key_says_so():
    with pytest.raises(ConfigError, match="quantization_bit: recognised LLaMA-Factory key, but QLoRA quantisation is not supported"):
        config.from_dict({"quantization_bit": 4})


def test_choices_are_enforced():
    with pytest.raises(ConfigError, match="stage: 'dpo' is not allowed; choose one of sft"):
        config.from_dict({"stage": "dpo"})
    with pytest.raises(ConfigError, match="finetuning_type: 'full' is not allowed"):
        config.from_dict({"finetuning_type": "full"})


@pytest.mark.parametrize("val_size", [1, 1.5])
def test_val_size_fraction_or_count(val_size):
    with pytest.raises(ConfigError, match="val_size"):
        config.from_dict({"val_size": val_size})
    assert config.from_dict({"val_size": 20}).data.val_size == 20


def test_eval_strategy_needs_held_out_data():
    with pytest.raises(ConfigError, match="eval_strategy: 'steps' needs held-out data"):
        config.from_dict({"eval_strategy": "steps"})


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name_or_path: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        config.load(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        config.load(lst)


def test_bad_override_form():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        config.load(None, ["learning_rate"])


def test_deepspeed_lookup_order(tmp_path, monkeypatch):
    # The quick start's path inside a LLaMA-Factory checkout resolves to the kit's own copy.
    found = ds_config.find_deepspeed_config("examples/deepspeed/ds_z0_config.json", tmp_path, cwd=tmp_path)
    assert found == (ds_config.DEEPSPEED_DIR / "ds_z0_config.json").resolve()
    # ... and says so, naming both (the run logs this line): a mistyped path is not replaced without a word.
    note = ds_config.fallback_note("/home/me/ds_z2_config.json", ds_config.find_deepspeed_config("/home/me/ds_z2_config.json"))
    assert note.startswith("deepspeed: '/home/me/ds_z2_config.json' is not there; using the kit's own ds_z2_config.json (")
    assert ds_config.fallback_note(str(found), found) is None  # the kit's file named by its own path: nothing to say
    # A file next to the YAML wins over the kit's copy.
    (tmp_path / "examples" / "deepspeed").mkdir(parents=True)
    mine = tmp_path / "examples" / "deepspeed" / "ds_z0_config.json"
    mine.write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    assert ds_config.find_deepspeed_config("examples/deepspeed/ds_z0_config.json", tmp_path, cwd=Path("/")) == mine.resolve()
    assert ds_config.fallback_note("examples/deepspeed/ds_z0_config.json", mine.resolve()) is None
    with pytest.raises(ConfigError, match="not found"):
        ds_config.find_deepspeed_config("ds_z9_config.json", tmp_path, cwd=tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ds_config.read_deepspeed_config(broken)


def test_shipped_deepspeed_configs_are_valid_and_spelt_right():
    for stage in (0, 2, 3):
        data = ds_config.read_deepspeed_config(ds_config.DEEPSPEED_DIR / f"ds_z{stage}_config.json")
        assert data["zero_optimization"]["stage"] == stage
        if stage < 3:  # DeepSpeed rejects the misspelt round_robin_gradient
            assert data["zero_optimization"]["round_robin_gradients"] is True


def test_require_names_missing_keys():
    with pytest.raises(ConfigError) as err:
        config.require(config.from_dict({}), "train")
    text = str(err.value)
    for key in ("model_name_or_path", "dataset", "template", "output_dir"):
        assert f"{key}: missing" in text


def test_config_round_trips_through_yaml(tmp_path):
    cfg = config.from_dict(quickstart(Path("m"), Path("d"), Path("out")))
    path = tmp_path / "r.yaml"
    path.write_text(cfg.to_yaml())
    assert config.load(path).to_dict() == cfg.to_dict()


def test_key_reference_covers_every_key():
    rows = {r["key"]: r for r in config.key_reference()}
    assert set(rows) == set(config.KEYS)
    assert all(r["help"] for r in rows.values())
    assert rows["lr_scheduler_type"]["choices"][:2] == ["linear", "cosine"]


def test_shipped_quickstart_yaml_is_the_docs_config():
    cfg = config.load(config.QUICKSTART_YAML)
    assert cfg.model.model_name_or_path == "qwen/Qwen1.5-7B"
    assert cfg.train.deepspeed == "examples/deepspeed/ds_z0_config.json"
    assert cfg.train.fp16 is True and cfg.data.val_size == 0.1 and cfg.train.eval_steps == 500
    ds_config.find_deepspeed_config(cfg.train.deepspeed, cfg.config_dir)


def test_older_spelling_evaluation_strategy_accepted():
    assert config.from_dict({"evaluation_strategy": "steps", "val_size": 0.1}).train.eval_strategy == "steps"


@pytest.mark.parametrize("key, value, message", [
    ("top_k", -5, "top_k: -5 must be >= 0"),
    ("repetition_penalty", 0, "repetition_penalty: 0.0 must be positive"),
    ("ddp_timeout", -1, "ddp_timeout: -1 must be a positive number of seconds"),
    ("dataloader_num_workers", -2, "dataloader_num_workers: -2 must be >= 0"),
    ("vllm_gpu_util", 5, "vllm_gpu_util: 5.0 must be a fraction"),
    ("export_size", -1, "export_size: -1 must be a positive integer"),
    ("max_steps", 0, "max_steps: 0 must be positive, or -1"),
    ("save_total_limit", 0, "save_total_limit: 0 must be positive"),
])
def test_numbers_out_of_range_are_refused(key, value, message):
    with pytest.raises(config.ConfigError) as err:
        config.from_dict({key: value})
    assert message in str(err.value)


def test_problems_and_key_help_in_chinese(tmp_path, capsys):
    """With Chinese chosen, a bad config's message and `kit keys` are Chinese; keys, values and hints stay as written."""
    from kit import cli, i18n

    try:
        i18n.set_language("zh")
        path = write_yaml(tmp_path / "bad.yaml", {"learnig_rate": 1e-4, "lora_rank": 0, "flash_attn": "fa2"})
        with pytest.raises(ConfigError) as err:
            config.load(path)
        text = str(err.value)
        assert text.startswith(f"{path} 中的配置有 3 个问题：")
        assert "learnig_rate：未知的配置键；你是不是想写 learning_rate？" in text
        assert "lora_rank：0 必须是正整数（例如 8）" in text
        assert "flash_attn：这是 LLaMA-Factory 的配置键，但 kit 暂不支持 选择注意力算子" in text
        assert "problem(s)" not in text and "unknown key" not in text
        rows = {r["key"]: r for r in config.key_reference()}
        assert rows["cutoff_len"]["help"] == "一条编码后样本的最大 token 数。"

        assert cli.main(["--lang", "zh", "keys"]) == 0
        out = capsys.readouterr().out
        assert "cutoff_len" in out and "一条编码后样本的最大 token 数。" in out
        assert "Maximum tokens of one encoded example." not in out
    finally:
        i18n.set_language(None)
    assert config.key_reference()[0]["help"].startswith("Local directory")  # English again


def test_llamafactory_export_keys_are_taken_at_the_kits_setting_and_refused_at_another():
    ok = config.load(None, ["export_device=cpu", "export_legacy_format=False", "export_dir=/tmp/x"])
    assert ok.infer.export_dir == "/tmp/x"
    config.load(None, ["export_device=auto"])
    with pytest.raises(ConfigError) as exc:
        config.load(None, ["export_device=cuda", "export_legacy_format=true", "export_quantization_bit=4"])
    text = str(exc.value)
    assert "export_device: 'cuda' is not supported (kit export merges on the CPU); remove it or set it to cpu / auto" in text
    assert "export_legacy_format: True is not supported (kit export writes safetensors only)" in text
    assert "export_quantization_bit: recognised LLaMA-Factory key, but quantised export is not supported" in text
