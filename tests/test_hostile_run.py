"""Trust off the happy path (issue 20, the run): the kit removes only what its own runs wrote, resumes a
stopped run or refuses it cleanly, stops a diverging run, and turns the operating system's refusals into
messages.

Every case goes through ``kit train`` (cli.main) as a person types it: exit status 2, one message, no
traceback, and the files on disk as they were.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from kit import cli
from kit.run import plan as plan_mod

from kit.run import output as output_mod
from helpers import make_dataset_dir, make_tiny_model, quickstart, write_yaml

MANIFEST = "kit_run.json"  # the run manifest's documented name (README)
RUN = dict(deepspeed=None, max_steps=4, save_steps=2, logging_steps=1, val_size=0, eval_strategy="no", plot_loss=False,
           warmup_ratio=0.0)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile-run")
    return make_tiny_model(base / "model"), make_dataset_dir(base / "data")


@pytest.fixture(scope="module")
def finished(dirs, tmp_path_factory):
    """A finished kit run: checkpoint-2, checkpoint-4, the adapter and its logs, and its manifest."""
    model_dir, data_dir = dirs
    out = tmp_path_factory.mktemp("finished") / "out"
    cfg = write_yaml(out.parent / "c.yaml", quickstart(model_dir, data_dir, out, **RUN))
    assert cli.main(["train", str(cfg)]) == 0
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(finished, out, symlinks=True)
    return out


def _train(tmp_path, dirs, out, capsys, **changes):
    """kit train on ``out``; (exit status, stdout + stderr)."""
    model_dir, data_dir = dirs
    cfg = write_yaml(tmp_path / "run.yaml", quickstart(model_dir, data_dir, out, **{**RUN, **changes}))
    capsys.readouterr()
    code = cli.main(["train", str(cfg)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder): what "left as it was" means."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def _refused(code: int, text: str, *needles: str) -> None:
    assert code == 2, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    for needle in needles:
        assert needle in text, (needle, text[-3000:])


# ---------------------------------------------------------------- 1. nothing a person owns is deleted or replaced

@pytest.mark.parametrize("contents", ["readme-and-tokenizer", "runs-folder", "other-tools-checkpoint", "old-kit-run"])
def test_overwrite_never_clears_a_folder_no_kit_run_wrote(tmp_path, dirs, capsys, contents):
    out = tmp_path / "out"
    out.mkdir()
    if contents == "readme-and-tokenizer":  # e.g. a model card and a tokenizer a person keeps there
        (out / "README.md").write_text("# my notes")
        (out / "tokenizer.json").write_text("{}")
    elif contents == "runs-folder":
        (out / "runs").mkdir()
        (out / "runs" / "events.out").write_text("tensorboard of another project")
    elif contents == "other-tools-checkpoint":
        (out / "checkpoint-7").mkdir()
        (out / "checkpoint-7" / "model.safetensors").write_text("another tool's weights")
    else:  # a run of the kit before manifests existed: its training_args.yaml is there
        (out / "training_args.yaml").write_text("lora_rank: 8\n")
        (out / "adapter_model.safetensors").write_text("weights")
    before = _snapshot(out)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=True)
    _refused(code, text, "no kit run (no kit_run.json)", "choose another output_dir")
    assert next(iter(before)).split("/")[0] in text  # names what is there
    if contents == "old-kit-run":
        assert "delete the folder yourself" in text
    assert _snapshot(out) == before


def test_overwrite_removes_exactly_what_the_manifest_lists(finished, tmp_path, dirs, capsys):
    out = _copy(finished, tmp_path)
    listed = json.loads((out / MANIFEST).read_text())["entries"]
    assert set(listed) == {p.name for p in out.iterdir()} - {MANIFEST}  # the run listed everything it wrote
    assert {"checkpoint-2", "checkpoint-4", "adapter_model.safetensors", "training_args.yaml", "trainer_log.jsonl"} <= set(listed)
    (out / "notes.md").write_text("mine")
    (out / "my-plots").mkdir()
    (out / "my-plots" / "a.png").write_text("mine too")
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=True, max_steps=2)
    assert code == 0, text[-3000:]
    assert f"removing the last kit run's {len(listed)} entries" in text and "keeping 2 other file(s): my-plots, notes.md" in text
    assert text.count("removing the last kit run's") == 1, text  # said once, not by the launcher and again by the run
    assert (out / "notes.md").read_text() == "mine" and (out / "my-plots" / "a.png").read_text() == "mine too"
    assert not (out / "checkpoint-4").exists()  # the last run's, not rewritten by this 2-step run
    now = json.loads((out / MANIFEST).read_text())["entries"]
    assert set(now) == {p.name for p in out.iterdir()} - {MANIFEST, "notes.md", "my-plots"}


def test_a_file_a_person_put_inside_a_kit_checkpoint_is_not_deleted(finished, tmp_path, dirs, capsys):
    out = _copy(finished, tmp_path)
    contents = json.loads((out / MANIFEST).read_text())["contents"]
    # Each checkpoint's files were recorded once its save was complete: exactly what is in it.
    assert set(contents) == {"checkpoint-2", "checkpoint-4"}
    assert contents["checkpoint-2"] == output_mod.files_in(out / "checkpoint-2")
    assert "adapter_model.safetensors" in contents["checkpoint-2"]
    (out / "checkpoint-2" / "我的评测.txt").write_text("my evaluation of this checkpoint")
    (out / "checkpoint-4" / "notes").mkdir()
    (out / "checkpoint-4" / "notes" / "a.md").write_text("mine too")
    before = _snapshot(out)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=True, max_steps=2)
    _refused(code, text, "checkpoint-2/我的评测.txt", "checkpoint-4/notes/a.md", "were not written by the kit", "move them out")
    assert _snapshot(out) == before
    # Moved out, the run starts over as before.
    (out / "checkpoint-2" / "我的评测.txt").rename(tmp_path / "我的评测.txt")
    shutil.rmtree(out / "checkpoint-4" / "notes")
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=True, max_steps=2)
    assert code == 0, text[-3000:]


@pytest.mark.parametrize("contents", ['{"checkpoint-2": ["../../victim"]}', '{"checkpoint-2": ["/etc/passwd"]}',
                                      '{"elsewhere": ["a"]}', '["checkpoint-2"]'])
def test_a_manifest_whose_contents_reach_outside_is_refused(tmp_path, dirs, capsys, contents):
    out = tmp_path / "out"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / MANIFEST).write_text('{"kit_run": 1, "entries": ["checkpoint-2"], "contents": %s}' % contents)
    before = _snapshot(out)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=True)
    _refused(code, text, "kit_run.json the kit cannot read")
    assert _snapshot(out) == before


@pytest.mark.parametrize("manifest", ['{"kit_run": 1, "entries": ["../victim"]}', '{"kit_run": 1, "entries": ["/"]}',
                                      "{not json", '{"kit_run": 1, "entries": [3]}'])
def test_a_manifest_that_cannot_be_trusted_is_refused(tmp_path, dirs, capsys, manifest):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "victim").write_text("outside output_dir")
    (out / MANIFEST).write_text(manifest)
    (out / "notes.md").write_text("mine")
    before = _snapshot(tmp_path)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=True)
    _refused(code, text, "kit_run.json the kit cannot read")
    assert _snapshot(tmp_path) == {**before, "run.yaml": (tmp_path / "run.yaml").read_bytes()}


def test_a_manifest_that_is_a_link_is_refused(finished, tmp_path, dirs, capsys):
    out = _copy(finished, tmp_path)
    (tmp_path / "elsewhere.json").write_text('{"kit_run": 1, "entries": ["notes.md"]}')
    (out / MANIFEST).unlink()
    (out / MANIFEST).symlink_to(tmp_path / "elsewhere.json")
    (out / "notes.md").write_text("mine")
    before = _snapshot(out)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=True)
    _refused(code, text, "kit_run.json the kit cannot read (not a plain file)")
    assert _snapshot(out) == before


def test_a_listed_entry_replaced_by_a_link_loses_the_link_only(finished, tmp_path, dirs, capsys):
    out = _copy(finished, tmp_path)
    shutil.rmtree(out / "checkpoint-4")
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "data.txt").write_text("mine")
    (out / "checkpoint-4").symlink_to(tmp_path / "precious")  # the kit's name, now pointing at a person's folder
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=True, max_steps=2)
    assert code == 0, text[-3000:]
    assert not (out / "checkpoint-4").is_symlink() and (tmp_path / "precious" / "data.txt").read_text() == "mine"


def test_someone_elses_checkpoint_in_a_kit_folder_is_refused(finished, tmp_path, dirs, capsys):
    out = _copy(finished, tmp_path)
    (out / "checkpoint-99").mkdir()  # copied in by a person: the Trainer would resume from it or rotate it away
    (out / "checkpoint-99" / "weights.bin").write_text("mine")
    before = _snapshot(out)
    for overwrite in (True, False):
        code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=overwrite)
        _refused(code, text, "holds checkpoint-99, which the kit did not write")
        assert _snapshot(out) == before


def test_another_tools_run_is_resumed_only_when_nothing_would_be_written_over(finished, tmp_path, dirs, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("checkpoint-2", "checkpoint-4"):  # another tool's stopped run: checkpoints and its log
        shutil.copytree(finished / name, out / name)
    (out / "trainer_log.jsonl").write_text('{"current_steps": 4}\n')
    before = _snapshot(out)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False, max_steps=6)
    _refused(code, text, "holds trainer_log.jsonl, which the kit did not write")
    assert _snapshot(out) == before
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False, max_steps=6, save_total_limit=1)
    _refused(code, text, "checkpoint-2", "save_total_limit")  # rotation would delete the other tool's checkpoints
    assert _snapshot(out) == before
    (out / "trainer_log.jsonl").unlink()
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False, max_steps=6)
    assert code == 0, text[-3000:]
    assert "holds another tool's run (no kit_run.json)" in text and "removes none of these" in text
    assert json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())["global_step"] == 6
    listed = set(json.loads((out / MANIFEST).read_text())["entries"])
    assert "checkpoint-6" in listed and not listed & {"checkpoint-2", "checkpoint-4"}  # theirs stay theirs


# ---------------------------------------------------------------- 2. a stopped run is resumed or cleanly refused

def _damage(checkpoint: Path, how: str) -> str:
    """Damage ``checkpoint`` as a kill, a full disk or a careless hand would; the reason the kit should give."""
    if how == "adapter-garbage":
        (checkpoint / "adapter_model.safetensors").write_bytes(b"\x00garbage")
        return "adapter_model.safetensors is unreadable"
    if how == "adapter-truncated":
        data = (checkpoint / "adapter_model.safetensors").read_bytes()
        (checkpoint / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
        return "adapter_model.safetensors is unreadable"
    if how == "state-garbage":
        (checkpoint / "trainer_state.json").write_text("{\"global_step\": 4, ")
        return "trainer_state.json is unreadable"
    if how == "state-not-a-state":
        (checkpoint / "trainer_state.json").write_text("[]")
        return "trainer_state.json holds no global_step"
    if how == "optimizer-missing":
        (checkpoint / "optimizer.pt").unlink()
        return "no optimizer.pt"
    if how == "scheduler-garbage":
        (checkpoint / "scheduler.pt").write_bytes(b"not a torch file")
        return "scheduler.pt is unreadable"
    if how == "rng-truncated":
        data = (checkpoint / "rng_state.pth").read_bytes()
        (checkpoint / "rng_state.pth").write_bytes(data[:100])
        return "rng_state.pth is unreadable"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["adapter-garbage", "adapter-truncated", "state-garbage", "state-not-a-state",
                                 "optimizer-missing", "scheduler-garbage", "rng-truncated"])
def test_a_damaged_newest_checkpoint_is_skipped_for_the_newest_complete_one(finished, tmp_path, dirs, capsys, how):
    out = _copy(finished, tmp_path)
    reason = _damage(out / "checkpoint-4", how)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False)
    assert code == 0, text[-3000:]
    assert f"skipping {out / 'checkpoint-4'}: {reason}" in text
    assert f"resuming from {out / 'checkpoint-2'}" in text
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and output_mod.checkpoint_problems(out / "checkpoint-4", False) == []  # saved again, whole


def test_a_garbled_training_log_does_not_stop_a_resume(finished, tmp_path, dirs, capsys):
    out = _copy(finished, tmp_path)
    log = (out / "trainer_log.jsonl").read_bytes()
    (out / "trainer_log.jsonl").write_bytes(log[:40] + b"\xff\xfe\x00garbage\n" + log)
    (out / "checkpoint-4" / "optimizer.pt").unlink()  # so the resume starts at step 2 and rewrites the log
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False)
    assert code == 0, text[-3000:]
    steps = [json.loads(line)["current_steps"] for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert steps[-1] == 4 and steps == sorted(steps)


def test_no_resumable_checkpoint_is_refused_and_the_finished_run_left_as_it_was(finished, tmp_path, dirs, capsys):
    out = _copy(finished, tmp_path)
    _damage(out / "checkpoint-4", "adapter-garbage")
    _damage(out / "checkpoint-2", "optimizer-missing")
    before = _snapshot(out)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False)
    _refused(code, text, "holds no checkpoint that can be resumed from", "overwrite_output_dir: true",
             "checkpoint-4: adapter_model.safetensors is unreadable", "checkpoint-2: no optimizer.pt")
    assert _snapshot(out) == before  # training_args.yaml included: the failed attempt wrote nothing
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False,
                        resume_from_checkpoint=str(out / "checkpoint-4"))
    _refused(code, text, "cannot be resumed from: adapter_model.safetensors is unreadable")
    assert _snapshot(out) == before


@pytest.mark.parametrize("change, message", [
    ({"lora_rank": 16}, "was trained with r: 8 (adapter_config.json), but this run has lora_rank: 16"),
    ({"lora_alpha": 32}, "was trained with lora_alpha: 16 (adapter_config.json), but this run has lora_alpha: 32"),
    ({"lora_target": "q_proj,k_proj,v_proj"}, "target_modules: q_proj,v_proj (adapter_config.json), but this run has "
                                              "lora_target: k_proj,q_proj,v_proj"),
    ({"model": "other-model"}, "base_model_name_or_path"),
])
def test_a_checkpoint_of_other_adapter_settings_is_refused(finished, tmp_path, dirs, capsys, change, message):
    out = _copy(finished, tmp_path)
    if change.get("model"):  # another base model, in a folder of another name
        change = {"model_name_or_path": str(make_tiny_model(tmp_path / change["model"]))}
    before = _snapshot(out)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False, **change)
    _refused(code, text, f"resume: {out / 'checkpoint-4'} was trained with", message)
    assert _snapshot(out) == before


@pytest.mark.parametrize("targets", [5, [1, "q_proj"], {"q_proj": True}])
def test_a_checkpoint_whose_target_modules_are_not_names_is_refused(finished, tmp_path, dirs, capsys, targets):
    out = _copy(finished, tmp_path)
    config = out / "checkpoint-4" / "adapter_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "target_modules": targets}))
    before = _snapshot(out)
    code, text = _train(tmp_path, dirs, out, capsys, overwrite_output_dir=False)
    _refused(code, text, f"resume: {out / 'checkpoint-4'}'s adapter_config.json is not a LoRA adapter's")
    assert _snapshot(out) == before


@pytest.mark.slow
def test_a_deepspeed_checkpoint_without_its_deepspeed_state_is_skipped(tmp_path, dirs, capsys):
    """Under torchrun + DeepSpeed the optimizer lives in checkpoint-N/global_stepN/; without it DeepSpeed cannot resume."""
    out = tmp_path / "out"
    code, text = _train(tmp_path, dirs, out, capsys, deepspeed="ds_z0_config.json")
    assert code == 0, text[-3000:]
    shutil.rmtree(out / "checkpoint-4" / "global_step4")  # lost with a node's local disk, or deleted by hand
    code, text = _train(tmp_path, dirs, out, capsys, deepspeed="ds_z0_config.json", overwrite_output_dir=False)
    assert code == 0, text[-3000:]
    assert f"skipping {out / 'checkpoint-4'}: no DeepSpeed state" in text and f"resuming from {out / 'checkpoint-2'}" in text
    assert (out / "checkpoint-4" / "global_step4").is_dir()  # saved again by the resumed run


# ---------------------------------------------------------------- 3. a diverging run stops

def test_a_run_whose_loss_becomes_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path, dirs, capsys):
    out = tmp_path / "out"
    # Measured on the tiny model: weight decay of 1e10 at learning_rate 10 blows the LoRA weights up; the
    # loss is nan from step 4, after checkpoint-2 was saved.
    code, text = _train(tmp_path, dirs, out, capsys, learning_rate=10.0, weight_decay=1e10, max_steps=8)
    _refused(code, text, "the loss became nan at step 4", f"the last good checkpoint, {out / 'checkpoint-2'}, is kept",
             "Lower learning_rate (now 10.0)")
    assert not (out / "adapter_model.safetensors").exists() and not (out / "all_results.json").exists()
    assert not (out / "checkpoint-4").exists()  # the save due at the diverged step was cancelled
    assert output_mod.checkpoint_problems(out / "checkpoint-2", False) == []
    assert set(json.loads((out / MANIFEST).read_text())["entries"]) == {p.name for p in out.iterdir()} - {MANIFEST}


# ---------------------------------------------------------------- 4. the operating system's refusals

@pytest.fixture
def no_model_loading(monkeypatch):
    """These refusals come before any model is resolved or loaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before output_dir was checked")

    monkeypatch.setattr(plan_mod.model_mod, "tokenizer_stage", refuse)


def test_output_dir_through_a_file(tmp_path, dirs, capsys, no_model_loading):
    (tmp_path / "notes.txt").write_text("a file")
    code, text = _train(tmp_path, dirs, tmp_path / "notes.txt" / "out", capsys)
    _refused(code, text, f"cannot be created: {str(tmp_path / 'notes.txt')!r} is a file, not a folder")
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_output_dir_that_is_a_file_or_a_broken_link(tmp_path, dirs, capsys, no_model_loading):
    (tmp_path / "out.txt").write_text("a file")
    code, text = _train(tmp_path, dirs, tmp_path / "out.txt", capsys)
    _refused(code, text, f"output_dir: {str(tmp_path / 'out.txt')!r} is a file, not a folder")
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    code, text = _train(tmp_path, dirs, tmp_path / "link", capsys)
    _refused(code, text, "is a link to", "which does not exist")
    assert not (tmp_path / "gone").exists()


def test_output_dir_under_a_read_only_folder(tmp_path, dirs, capsys, no_model_loading, unwritable):
    locked = unwritable(tmp_path / "locked")
    code, text = _train(tmp_path, dirs, locked / "out", capsys)
    _refused(code, text, f"you may not write in {str(locked)!r}")
    assert list(locked.iterdir()) == []
    out = unwritable(tmp_path / "open" / "out")  # the folder itself exists and is read-only
    code, text = _train(tmp_path, dirs, out, capsys)
    _refused(code, text, "cannot be written by you")
    assert list(out.iterdir()) == []


def test_a_full_disk_while_training_is_a_message(tmp_path, dirs, capsys, monkeypatch):
    import errno

    from transformers import Trainer

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "checkpoint-2" / "optimizer.pt"))

    monkeypatch.setattr(Trainer, "_save_checkpoint", full)
    code, text = _train(tmp_path, dirs, tmp_path / "out", capsys)
    _refused(code, text, "the operating system refused a write while training: [Errno 28] No space left on device",
             "resumes from the newest complete checkpoint")


def test_a_full_temporary_folder_before_torchrun_is_a_message(tmp_path, dirs, capsys, monkeypatch, restore_environ):
    import errno

    def full(self, folder):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "data" / "input_ids.npy"))

    monkeypatch.setattr(plan_mod.RunPlan, "save", full)
    monkeypatch.setenv("FORCE_TORCHRUN", "1")
    out = tmp_path / "out"
    code, text = _train(tmp_path, dirs, out, capsys)
    _refused(code, text, "could not write the plan for the training processes into the temporary folder", "TMPDIR")
    assert not out.exists()  # refused before output_dir was prepared


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_master_port_already_taken_is_named(tmp_path, dirs, capsys, monkeypatch, taken_port, restore_environ):
    monkeypatch.setenv("MASTER_PORT", str(taken_port))
    monkeypatch.setenv("FORCE_TORCHRUN", "1")
    out = tmp_path / "out"
    code, text = _train(tmp_path, dirs, out, capsys)
    _refused(code, text, f"MASTER_PORT={taken_port} is already in use")
    assert not out.exists()


def test_a_master_port_taken_in_process_with_deepspeed(tmp_path, dirs, monkeypatch, taken_port, restore_environ):
    """run_sft from Python with DeepSpeed and no launcher: the person's MASTER_PORT is checked before DeepSpeed starts."""
    from kit import config
    from kit.errors import KitError
    from kit.run.recipe import run_sft

    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MASTER_PORT", str(taken_port))
    model_dir, data_dir = dirs
    cfg = config.from_dict(quickstart(model_dir, data_dir, tmp_path / "out", **{**RUN, "deepspeed": "ds_z0_config.json"}))
    with pytest.raises(KitError, match=f"MASTER_PORT={taken_port} is already in use"):
        run_sft(cfg)


def test_no_master_port_given_means_torchrun_picks_one(monkeypatch):
    from kit import config
    from kit.run import launch
    from kit.device import DeviceInfo
    from kit.envvars import EnvSettings

    cpu = DeviceInfo("cpu", 1, "gloo", True, False, "cpu", "no NPU", None)
    plan = launch.plan_launch(config.from_dict({"deepspeed": "ds_z0_config.json"}), EnvSettings.from_environ({}), cpu)
    assert "--standalone" in launch.torchrun_command(plan, ["--plan", "x"])  # nothing to collide with
