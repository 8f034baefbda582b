"""The plan: built once, handed down; the output_dir rules (resume, overwrite, places never written into)."""

from __future__ import annotations

import json

import pytest

from kit import cli, config
from kit.run import launch
from kit.run import plan as plan_mod
from kit.run import output as output_mod
from kit.config import ConfigError
from kit.data import encoded
from kit.envvars import EnvSettings

from helpers import make_dataset_dir, make_tiny_model, quickstart, write_yaml


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_dataset_dir(tmp_path_factory.mktemp("data"))


def _cfg(model_dir, data_dir, out, **kw):
    return config.from_dict(quickstart(model_dir, data_dir, out, deepspeed=None, **kw))


# ---------------------------------------------------------------- output_dir

def _checkpoint(folder, step):
    """A complete checkpoint-N as the Trainer writes one (without DeepSpeed), small."""
    import torch
    from safetensors.torch import save_file

    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (path / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]}))
    save_file({"lora_A": torch.zeros(2, 2)}, str(path / "adapter_model.safetensors"))
    for name in ("optimizer.pt", "scheduler.pt"):
        torch.save({}, path / name)
    return path


def _kit_run(out, *names):
    out.mkdir(parents=True, exist_ok=True)
    output_mod.Manifest(out, names).write()


def test_overwrite_removes_exactly_what_the_manifest_lists(tmp_path, model_dir, data_dir):
    out = tmp_path / "out"
    _checkpoint(out, 5)
    for name in ("all_results.json", "trainer_log.jsonl", "adapter_model.safetensors", "training_args.yaml"):
        (out / name).write_text("old")
    _kit_run(out, "checkpoint-5", "all_results.json", "trainer_log.jsonl", "adapter_model.safetensors", "training_args.yaml",
             "eval_results.json")  # listed, but no longer there: nothing to remove
    (out / "notes.md").write_text("mine")
    (out / "my-folder").mkdir()
    decision = output_mod.decide_output(_cfg(model_dir, data_dir, out, overwrite_output_dir=True))
    assert decision.resume_from is None and set(decision.keep) == {"notes.md", "my-folder"}
    assert "removing the last kit run's 5 entries" in decision.message and "notes.md" in decision.message
    plan = plan_mod.RunPlan(_cfg(model_dir, data_dir, out), EnvSettings.from_environ({}), model_dir, None, [], None, None, decision)
    output_mod.prepare_output(plan.cfg, plan.output)
    assert sorted(p.name for p in out.iterdir()) == ["kit_run.json", "my-folder", "notes.md"]
    assert json.loads((out / "kit_run.json").read_text())["entries"] == []  # this run's list starts empty


def test_checkpoints_without_overwrite_resume_as_llamafactory_does(tmp_path, model_dir, data_dir):
    out = tmp_path / "out"
    for step in (4, 8):
        _checkpoint(out, step)
    (out / "checkpoint-12").mkdir()  # cut short while saving: no trainer_state.json
    _kit_run(out, "checkpoint-4", "checkpoint-8", "checkpoint-12")
    decision = output_mod.decide_output(_cfg(model_dir, data_dir, out, overwrite_output_dir=False))
    assert decision.resume_from == str(out / "checkpoint-8")
    assert "resuming from" in decision.message and "overwrite_output_dir: true to start over" in decision.message
    assert f"skipping {out / 'checkpoint-12'}: no trainer_state.json (cut short while saving)" in decision.message


def test_files_without_checkpoint_are_refused(tmp_path, model_dir, data_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    with pytest.raises(ConfigError, match="holds precious.txt and no kit run"):
        output_mod.decide_output(_cfg(model_dir, data_dir, out, overwrite_output_dir=False))
    _kit_run(out)  # a kit run that left no checkpoint
    with pytest.raises(ConfigError, match="exists and is not empty"):
        output_mod.decide_output(_cfg(model_dir, data_dir, out, overwrite_output_dir=False))


@pytest.mark.parametrize("where", ["model", "data", "cwd", "home", "above-model"])
def test_output_dir_never_a_model_dataset_working_or_home_folder(tmp_path, model_dir, data_dir, where, monkeypatch, capsys):
    (tmp_path / "work").mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = {"model": model_dir, "data": data_dir, "cwd": tmp_path / "work", "home": tmp_path / "home",
           "above-model": model_dir.parent}[where]
    before = sorted(p.name for p in out.iterdir())
    cfg_file = write_yaml(tmp_path / "c.yaml", quickstart(model_dir, data_dir, out, deepspeed=None, overwrite_output_dir=True))
    assert cli.main(["train", str(cfg_file)]) == 2
    err = capsys.readouterr().err
    assert "output_dir:" in err and "Give a folder of its own" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == before


def test_tilde_paths_are_expanded_once_at_load(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    cfg = config.from_dict({"output_dir": "~/saves/x", "export_dir": "~/merged", "adapter_name_or_path": "~/a,org/hub-id",
                            "model_name_or_path": "./models/m", "resume_from_checkpoint": "true"})
    assert cfg.train.output_dir == str(tmp_path / "home" / "saves" / "x")
    assert cfg.infer.export_dir == str(tmp_path / "home" / "merged")
    assert cfg.adapter_paths == [str(tmp_path / "home" / "a"), "org/hub-id"]  # a hub id stays an id
    assert cfg.model.model_name_or_path == str(tmp_path / "models" / "m")
    assert cfg.train.resume_from_checkpoint == "true"
    assert config.from_dict({"model_name_or_path": "kit/tiny-qwen"}).model.model_name_or_path == "kit/tiny-qwen"


# ---------------------------------------------------------------- one plan, handed down

def test_saved_plan_gives_ranks_the_same_rows(tmp_path, model_dir, data_dir):
    cfg = _cfg(model_dir, data_dir, tmp_path / "out", val_size=0.25)
    plan = plan_mod.build(cfg, EnvSettings.from_environ({}))
    plan.save(tmp_path / "launch")
    loaded = plan_mod.RunPlan.load(tmp_path / "launch", EnvSettings.from_environ({}))
    assert list(loaded.train_rows) == plan.train_rows and list(loaded.eval_rows) == plan.eval_rows
    assert loaded.cfg == plan.cfg and loaded.lora_targets == plan.lora_targets and loaded.model_dir == plan.model_dir
    assert len(plan.eval_rows) > 0


def test_encoded_rows_round_trip(tmp_path):
    rows = [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4], "labels": [4]}, {"input_ids": [5, 6], "labels": [-100, 6]}]
    encoded.save(tmp_path, rows, [2, 0], [1])
    train, evals = encoded.load(tmp_path)
    assert [r["input_ids"] for r in train] == [[5, 6], [1, 2, 3]] and train[1]["attention_mask"] == [1, 1, 1]
    assert [r["labels"] for r in evals] == [[4]] and len(evals) == 1


def test_kit_train_encodes_the_data_once(tmp_path, model_dir, data_dir, monkeypatch):
    calls = []
    real = plan_mod.build_sft

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_mod, "build_sft", counting)
    monkeypatch.setattr("kit.data.build_sft", counting)
    monkeypatch.setattr("kit.data.sft.build_sft", counting)
    cfg = _cfg(model_dir, data_dir, tmp_path / "out", max_steps=2, eval_steps=1, save_steps=100)
    assert launch.launch_sft(cfg, env=EnvSettings.from_environ({})) == 0
    assert len(calls) == 1
    assert json.loads((tmp_path / "out" / "all_results.json").read_text())["eval_loss"] > 0
    # The final weights are evaluated once (the Trainer's evaluation at the last step), as LLaMA-Factory's log shows:
    # one eval row at step 2, and eval_results.json holds that evaluation's loss.
    rows = [json.loads(line) for line in (tmp_path / "out" / "trainer_log.jsonl").read_text().splitlines()]
    last_evals = [r for r in rows if "eval_loss" in r and r["current_steps"] == 2]
    assert len(last_evals) == 1, rows
    assert json.loads((tmp_path / "out" / "eval_results.json").read_text())["eval_loss"] == last_evals[0]["eval_loss"]


def test_final_evaluation_is_the_trainers_last_step_one_or_none():
    from types import SimpleNamespace

    from kit.run.recipe import final_evaluation

    row = {"eval_loss": 1.5, "eval_runtime": 0.1, "epoch": 1.0, "step": 4}
    assert final_evaluation(SimpleNamespace(global_step=4, log_history=[{"loss": 2.0, "step": 4}, row])) == \
        {"eval_loss": 1.5, "eval_runtime": 0.1, "epoch": 1.0}
    # the newest evaluation is of earlier weights (eval_strategy steps, stopped between): evaluate again
    assert final_evaluation(SimpleNamespace(global_step=6, log_history=[row, {"loss": 2.0, "step": 6}])) is None
    assert final_evaluation(SimpleNamespace(global_step=4, log_history=[{"loss": 2.0, "step": 4}])) is None


def test_overwriting_leaves_no_stale_results(tmp_path, model_dir, data_dir):
    out = tmp_path / "out"
    env = EnvSettings.from_environ({})
    launch.launch_sft(_cfg(model_dir, data_dir, out, max_steps=4, save_steps=2, eval_steps=2), env=env)
    assert "eval_loss" in json.loads((out / "all_results.json").read_text())
    launch.launch_sft(_cfg(model_dir, data_dir, out, max_steps=2, save_steps=100, val_size=0, eval_strategy="no"), env=env)
    results = json.loads((out / "all_results.json").read_text())
    assert "eval_loss" not in results  # the first run's eval_loss does not survive into the second's results
    assert not (out / "checkpoint-4").exists()  # nor its checkpoints, which a resume could have picked up


def test_the_flop_count_counts_the_parameters_once_and_gives_the_trainers_figure(tmp_path):
    """total_flos as transformers' Trainer counts it (6 x tokens x non-embedding parameters), the count taken once."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForCausalLM, Trainer

    from kit.run import recipe

    model = AutoModelForCausalLM.from_pretrained(str(make_tiny_model(tmp_path / "m")))
    calls = []
    counted = model.num_parameters

    def counting(**kwargs):
        calls.append(kwargs)
        return counted(**kwargs)

    model.num_parameters = counting
    kit_trainer = SimpleNamespace(model=model, _flos_parameters=None)
    inputs = {"input_ids": torch.ones(1, 37, dtype=torch.long)}
    ours = [recipe._trainer_class().floating_point_ops(kit_trainer, inputs) for _ in range(3)]
    assert len(calls) == 1
    assert ours == [Trainer.floating_point_ops(SimpleNamespace(model=model), inputs)] * 3 and ours[0] > 0
