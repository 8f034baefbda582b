"""Training in-process on a tiny model, its outputs, and every bad input refused before anything is written."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kit import cli
from kit.run import plan as plan_mod
from kit.run import output as output_mod
from kit.run.recipe import run_sft

from helpers import make_dataset_dir, make_tiny_model, quickstart, write_yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_dataset_dir(tmp_path_factory.mktemp("data"))


def _no_deepspeed(model_dir, data_dir, out, **kw):
    return quickstart(model_dir, data_dir, out, deepspeed=None, **kw)


def test_run_sft_in_process_writes_llamafactory_outputs_and_loss_falls(tmp_path, model_dir, data_dir):
    out = tmp_path / "out"
    cfg_file = write_yaml(tmp_path / "qs.yaml", _no_deepspeed(model_dir, data_dir, out, save_steps=10, eval_steps=10))
    metrics = run_sft(cfg_file)
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json", "trainer_log.jsonl",
                 "trainer_state.json", "all_results.json", "train_results.json", "eval_results.json",
                 "training_loss.png", "training_eval_loss.png", "training_args.yaml"):
        assert (out / name).is_file(), name
    assert (out / "checkpoint-10").is_dir()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16 and adapter["peft_type"] == "LORA"
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert set(train_rows[0]) == {"current_steps", "total_steps", "loss", "lr", "epoch", "percentage", "elapsed_time", "remaining_time"}
    assert any("eval_loss" in r for r in rows)
    assert rows[-1]["current_steps"] == rows[-1]["total_steps"] and rows[-1]["percentage"] == 100
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]  # it learned something
    results = json.loads((out / "all_results.json").read_text())
    assert {"train_loss", "eval_loss", "epoch", "train_runtime"} <= set(results)
    assert 50 < results["train_peak_memory_mib"] < 8192  # this process's resident peak on a CPU, in MiB
    assert metrics["eval_loss"] == pytest.approx(results["eval_loss"])
    resolved = yaml.safe_load((out / "training_args.yaml").read_text())
    assert resolved["template"] == "qwen" and resolved["lora_target"] == "q_proj,v_proj"


def test_fp16_on_cpu_falls_back_to_fp32_with_warning(tmp_path, model_dir, data_dir, caplog):
    cfg = _no_deepspeed(model_dir, data_dir, tmp_path / "o", max_steps=1, val_size=0, eval_strategy="no", plot_loss=False)
    import logging

    with caplog.at_level(logging.WARNING, logger="kit.train"):
        run_sft(write_yaml(tmp_path / "c.yaml", cfg))
    assert "fp16 was asked for but cpu cannot train in fp16" in caplog.text


def _bad(tmp_path, model_dir, data_dir):
    """(name, change to the quick start or a callable making the case, expected message)"""
    return [
        ("unknown key", {"lora_rnak": 8}, "lora_rnak: unknown key; did you mean lora_rank?"),
        ("wrong type", {"learning_rate": "fast"}, "learning_rate: 'fast' is not a number"),
        ("unknown template", {"template": "qwen3x"}, "template: 'qwen3x' is not known"),
        ("unknown dataset", {"dataset": "identity,nope"}, "dataset: 'nope' is not in"),
        ("cutoff_len", {"cutoff_len": 0}, "cutoff_len: 0 must be a positive"),
        ("val_size", {"val_size": 1.0}, "val_size: 1.0 must be a fraction below 1"),
        ("val_size leaves nothing", {"val_size": 500}, "leaves no training data"),
        ("lora_target", {"lora_target": "q_proj,wq"}, "lora_target: wq name(s) no linear module"),
        ("deepspeed missing", {"deepspeed": "ds_z9.json"}, "deepspeed: 'ds_z9.json' not found"),
        ("model missing", {"model_name_or_path": str(tmp_path / "no-model")}, "does not exist"),
        ("dataset_dir missing", {"dataset_dir": str(tmp_path / "no-data")}, "is not a directory"),
    ]


def test_bad_input_is_refused_before_anything_is_written(tmp_path, model_dir, data_dir, capsys):
    for name, change, message in _bad(tmp_path, model_dir, data_dir):
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        cfg = write_yaml(tmp_path / "bad.yaml", quickstart(model_dir, data_dir, out, **change))
        code = cli.main(["train", str(cfg)])
        err = capsys.readouterr().err
        assert code == 2, name
        assert message in err, (name, err)
        assert "Traceback" not in err
        assert not out.exists(), name


def test_bad_files_are_refused(tmp_path, model_dir, data_dir, capsys):
    assert cli.main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "x.yaml").write_text("a: [b\n")
    assert cli.main(["train", str(tmp_path / "x.yaml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    bad_ds = tmp_path / "bad_ds.json"
    bad_ds.write_text("{nope")
    out = tmp_path / "o"
    cfg = write_yaml(tmp_path / "c.yaml", quickstart(model_dir, data_dir, out, deepspeed=str(bad_ds)))
    assert cli.main(["train", str(cfg)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err and not out.exists()
    broken = make_dataset_dir(tmp_path / "broken")
    (broken / "identity.json").write_text(json.dumps([{"instruction": "only a question"}]))
    cfg = write_yaml(tmp_path / "c2.yaml", quickstart(model_dir, broken, out, dataset="identity"))
    assert cli.main(["train", str(cfg)]) == 2
    # No example has the answer column: named as LLaMA-Factory names it, with the columns the file has.
    err = capsys.readouterr().err
    assert "column 'output'" in err and "its columns: instruction" in err and not out.exists()


def test_non_empty_output_dir_refused_and_kept(tmp_path, model_dir, data_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    cfg = write_yaml(tmp_path / "c.yaml", quickstart(model_dir, data_dir, out, overwrite_output_dir=False))
    assert cli.main(["train", str(cfg)]) == 2
    assert "holds precious.txt and no kit run" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


@pytest.mark.slow
def test_resume_after_interrupted_run(tmp_path, model_dir, data_dir):
    out = tmp_path / "out"
    cfg = _no_deepspeed(model_dir, data_dir, out, max_steps=60, save_steps=5, logging_steps=1, val_size=0,
                        eval_strategy="no", plot_loss=False)
    cfg_file = write_yaml(tmp_path / "c.yaml", cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kit.cli", "train", str(cfg_file)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not (out / "checkpoint-10" / "trainer_state.json").is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the run dies mid-way, as on a lost node
    proc.wait()
    assert (out / "checkpoint-10").is_dir() and not (out / "adapter_model.safetensors").exists()
    (out / "checkpoint-999").mkdir()  # a checkpoint cut short while saving is not resumed from
    manifest = output_mod.Manifest.read(out)
    manifest.add("checkpoint-999")  # the run lists a checkpoint folder before the Trainer writes it
    run_sft(write_yaml(tmp_path / "r.yaml", {**cfg, "overwrite_output_dir": False, "resume_from_checkpoint": True}))
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 60
    steps = [json.loads(line)["current_steps"] for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    last_checkpoint = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if int(p.name.split("-")[1]) < 60)
    assert (out / "adapter_model.safetensors").is_file()
    assert steps[-1] == 60 and last_checkpoint >= 10


def test_gradient_checkpointing_off_when_it_fits_with_the_same_losses(tmp_path, model_dir, data_dir, caplog):
    """Left out, the kit skips recomputation when activations fit; forced on (LLaMA-Factory's way) the losses are the same."""
    import logging

    results = {}
    for setting in (None, False):
        out = tmp_path / f"gc-{setting}"
        change = {} if setting is None else {"disable_gradient_checkpointing": setting}
        cfg = _no_deepspeed(model_dir, data_dir, out, max_steps=6, save_steps=100, eval_steps=100, plot_loss=False, **change)
        with caplog.at_level(logging.INFO, logger="kit.train"):
            results[setting] = run_sft(write_yaml(tmp_path / f"gc-{setting}.yaml", cfg))
    assert "gradient checkpointing off: without it this run needs about" in caplog.text
    assert "gradient checkpointing on: disable_gradient_checkpointing: false" in caplog.text
    assert results[None]["train_loss"] == results[False]["train_loss"]
    assert results[None]["eval_loss"] == results[False]["eval_loss"]
