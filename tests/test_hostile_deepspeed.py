"""DeepSpeed files that DeepSpeed or transformers would refuse inside each rank, refused once, before launch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kit import config
from kit.config import deepspeed as ds_config
from kit.config import ConfigError


def ds_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ds.json"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("text, message", [
    ('{"zero_optimization": {"stage": 0}, "zero_optimization": {"stage": 3}}', "'zero_optimization' appears twice"),
    ('{"zero_optimization": "x"}', "zero_optimization in .* is 'x'; it must be an object"),
    ('{"zero_optimization": 3}', "zero_optimization in .* is 3"),
    ('{"zero_optimization": {"stage": true}}', "stage in .* is True; use 0, 1, 2 or 3"),
    ('{"zero_optimization": {"stage": "2"}}', "stage in .* is '2'"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ("[1]", "must hold a JSON object"),
])
def test_bad_deepspeed_files_are_one_message(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        ds_config.read_deepspeed_config(ds_file(tmp_path, text))


def test_deepspeed_itself_refuses_a_repeated_key(tmp_path):
    """The rule above is DeepSpeed's: its config reader refuses duplicate keys, but only inside the ranks."""
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.config_utils import dict_raise_error_on_duplicate_keys

    with pytest.raises(ValueError):
        json.loads('{"a": 1, "a": 2}', object_pairs_hook=dict_raise_error_on_duplicate_keys)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_or_a_folder_is_named_for_what_it_is(tmp_path):
    for value in ("/dev/zero", str(tmp_path)):
        with pytest.raises(ConfigError, match="not a regular file"):
            ds_config.read_deepspeed_config(ds_config.find_deepspeed_config(value))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "ds.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        ds_config.read_deepspeed_config(fifo)


def test_fixed_values_that_differ_from_the_run_are_named_with_both_keys():
    cfg = config.load(None, ["per_device_train_batch_size=1", "gradient_accumulation_steps=8", "max_grad_norm=1.0", "bf16=true"])
    data = {"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": "auto", "gradient_clipping": 0.5,
            "train_batch_size": 16, "bf16": {"enabled": False}, "fp16": {"enabled": "auto"}}
    problems = ds_config.mismatches(data, cfg, world_size=1)
    text = "\n".join(problems)
    assert len(problems) == 4, text
    assert "train_micro_batch_size_per_gpu is 4" in text and "1 from per_device_train_batch_size" in text
    assert "gradient_clipping is 0.5" in text and "train_batch_size is 16" in text and "bf16.enabled is False" in text
    assert ds_config.mismatches(data, cfg) == [p for p in problems if "train_batch_size is" not in p]


def test_the_kits_own_configs_match_any_run():
    cfg = config.load(None, ["per_device_train_batch_size=3", "gradient_accumulation_steps=5", "fp16=true"])
    for path in sorted(ds_config.DEEPSPEED_DIR.glob("*.json")):
        assert ds_config.mismatches(ds_config.read_deepspeed_config(path), cfg, world_size=8) == [], path


def test_transformers_refuses_the_mismatch_the_kit_names(tmp_path):
    """What the kit checks is what transformers would refuse later, in every rank."""
    pytest.importorskip("deepspeed")
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=1, use_cpu=True, report_to=[])
    hf = HfTrainerDeepSpeedConfig({"train_micro_batch_size_per_gpu": 4})
    with pytest.raises(ValueError, match="train_micro_batch_size_per_gpu"):
        hf.trainer_config_process(args)
        hf.trainer_config_finalize(args, None, 0)
