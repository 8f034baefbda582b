"""One route for a value: a notebook parameter, a kit demo override and a kit batch value reach the config the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit import config
from kit.config import ConfigError
from kit.tutorial import demo, helpers, parameters, sweep
from kit.tutorial.values import notebook_dir

NB20 = notebook_dir() / "en" / "20_lora_sft.ipynb"


def test_strings_and_mappings_give_the_same_overrides():
    as_text = config.overrides_dict(["lora_rank=8", "learning_rate=1.0e-4", "lora_target=q_proj,v_proj", "val_size=0.1"])
    assert as_text == {"lora_rank": 8, "learning_rate": 1e-4, "lora_target": "q_proj,v_proj", "val_size": 0.1}
    assert config.overrides_dict(as_text) == as_text
    # YAML 1.1 reads 1e-4 as text, as in a config file; the key's type makes it a number when validated
    assert config.from_dict(config.overrides_dict(["learning_rate=1e-4"])).train.learning_rate == 1e-4
    assert config.overrides_dict("lora_rank=4") == {"lora_rank": 4}
    assert config.overrides_dict(None) == {} and config.overrides_dict([]) == {}
    with pytest.raises(ConfigError, match="not of the form key=value"):
        config.overrides_dict(["lora_rank=8", "oops"])


def test_a_notebook_takes_either_form_and_builds_the_same_config():
    a = helpers.quickstart_config("kit/tiny-qwen", extra=["lora_rank=4", "learning_rate=2e-4"]).cfg
    b = helpers.quickstart_config("kit/tiny-qwen", extra={"lora_rank": 4, "learning_rate": 2e-4}).cfg
    assert a == b and a.finetune.lora_rank == 4


def test_route_splits_parameters_and_config_keys_and_names_the_rest():
    params, cfg, unknown = parameters.route({"seed": 7, "lora_rank": 2, "overrides": ["cutoff_len=64"], "nonsense": 1},
                                            {"seed"}, overrides=["lora_alpha=4"])
    assert params == {"seed": 7}
    assert cfg == {"lora_alpha": 4, "lora_rank": 2, "cutoff_len": 64}
    assert unknown == ["nonsense"]


def test_demo_and_batch_route_a_config_key_the_same_way(tmp_path):
    demo_params, _ = demo.plan_parameters(["lora_rank=2", "cutoff_len=64"], tmp_path / "demo")
    plan = sweep.make_plan(NB20, {"lora_rank": ["2"], "cutoff_len": ["64"]}, tmp_path / "sweep")
    batch_params = sweep.papermill_parameters(plan, plan.runs[0], None)
    assert demo_params["20_lora_sft"]["overrides"] == batch_params["overrides"] == {"lora_rank": 2, "cutoff_len": 64}


def test_demo_and_batch_runs_write_in_their_own_folder_by_one_rule(tmp_path):
    demo_params, output_dir = demo.plan_parameters([], tmp_path / "demo")
    assert output_dir == Path(parameters.run_outputs(tmp_path / "demo")["output_dir"])
    assert demo_params["30_chat_inference"]["export_dir"] == parameters.run_outputs(tmp_path / "demo")["export_dir"]
    plan = sweep.make_plan(NB20, {"seed": ["1"]}, tmp_path / "sweep")
    given = sweep.papermill_parameters(plan, plan.runs[0], None)
    assert given["output_dir"] == parameters.run_outputs(tmp_path / "sweep" / plan.runs[0].run_id)["output_dir"]
