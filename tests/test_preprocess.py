import json

from kit import cli

from helpers import make_dataset_dir, make_tiny_model, write_yaml


def test_preprocess_writes_every_example_and_previews(tmp_path, capsys):
    model = make_tiny_model(tmp_path / "m")
    data = make_dataset_dir(tmp_path / "d")
    cfg = write_yaml(tmp_path / "c.yaml", {"model_name_or_path": str(model), "dataset": "identity,chat",
                                           "dataset_dir": str(data), "template": "qwen", "val_size": 0.5})
    out = tmp_path / "enc.jsonl"
    assert cli.main(["preprocess", str(cfg), "cutoff_len=32", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 24 + 8  # every valid example, before any split
    assert set(rows[0]) == {"input_ids", "labels"} and max(len(r["input_ids"]) for r in rows) == 32
    capsys.readouterr()
    assert cli.main(["preprocess", str(cfg), "identity_name=Nova", "--preview", "1"]) == 0
    shown = capsys.readouterr().out
    assert "<|im_start|>user\nWho are you?" in shown
    assert "[[I am Nova" in shown and "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n[[" in shown


def test_preprocess_needs_only_the_tokenizer_and_training_still_the_weights(tmp_path, capsys):
    import pytest

    from kit import config
    from kit.envvars import EnvSettings
    from kit.hub import HubError
    from kit.run.plan import build

    model = make_tiny_model(tmp_path / "m")
    for weights in model.glob("*.safetensors"):
        weights.unlink()  # config.json and the tokenizer files stay: all that tokenizing needs
    data = make_dataset_dir(tmp_path / "d")
    settings = {"model_name_or_path": str(model), "dataset": "identity,chat", "dataset_dir": str(data), "template": "qwen"}
    cfg = write_yaml(tmp_path / "c.yaml", settings)
    out = tmp_path / "enc.jsonl"
    assert cli.main(["preprocess", str(cfg), "--output", str(out)]) == 0, capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 24 + 8
    # training loads the model: its checks still ask for the weights, before any data is encoded
    train_cfg = config.from_dict({**settings, "stage": "sft", "do_train": True, "output_dir": str(tmp_path / "out")})
    with pytest.raises(HubError, match=r"is not a complete model: it has no weight files"):
        build(train_cfg, EnvSettings.from_environ({}), check_only=True)
    # a folder without a tokenizer is still refused, naming what tokenizing needs
    (model / "tokenizer.json").unlink()
    assert cli.main(["preprocess", str(cfg)]) == 2
    assert "tokenizing needs config.json and the tokenizer files" in capsys.readouterr().err


def test_preprocess_output_never_replaces_a_file_and_names_what_is_in_the_way(tmp_path, capsys):
    model = make_tiny_model(tmp_path / "m")
    data = make_dataset_dir(tmp_path / "d")
    cfg = write_yaml(tmp_path / "c.yaml", {"model_name_or_path": str(model), "dataset": "identity",
                                           "dataset_dir": str(data), "template": "qwen"})
    own = data / "identity.json"  # the very dataset being encoded, named as the output by mistake
    before = own.read_bytes()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [(own, "already exists"), (tmp_path / "adir", "is a folder"), (tmp_path / "afile" / "x.jsonl", "is a file")]
    for path, says in cases:
        capsys.readouterr()
        assert cli.main(["preprocess", str(cfg), "--output", str(path)]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
    assert own.read_bytes() == before and list((tmp_path / "adir").iterdir()) == []
    # A new file is written whole, and nothing else is left beside it (no temporary file).
    out = tmp_path / "new" / "enc.jsonl"
    assert cli.main(["preprocess", str(cfg), "--output", str(out)]) == 0
    assert [p.name for p in out.parent.iterdir()] == ["enc.jsonl"] and out.read_text().count("\n") == 24
    assert cli.main(["preprocess", str(cfg), "--output", str(out)]) == 2  # the second time too: a file is there


def test_the_preview_speaks_the_chosen_language(tmp_path, capsys):
    model = make_tiny_model(tmp_path / "m")
    cfg = write_yaml(tmp_path / "c.yaml", {"model_name_or_path": str(model), "dataset": "identity",
                                           "dataset_dir": str(make_dataset_dir(tmp_path / "d")), "template": "qwen"})
    from kit import i18n

    try:
        assert cli.main(["--lang", "zh", "preprocess", str(cfg), "--preview", "1"]) == 0
    finally:
        i18n.set_language(None)
    shown = capsys.readouterr().out
    assert "=== 样本 0（identity[0]）" in shown and "参与训练" in shown and "example 0" not in shown


def test_the_summary_counts_as_training_splits_and_adds_up_a_dataset_named_twice(tmp_path, capsys):
    model = make_tiny_model(tmp_path / "m")
    cfg = write_yaml(tmp_path / "c.yaml", {"model_name_or_path": str(model), "dataset": "identity",
                                           "dataset_dir": str(make_dataset_dir(tmp_path / "d")), "template": "qwen"})
    assert cli.main(["preprocess", str(cfg), "val_size=0.25", "--preview", "0"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (stats["examples"], stats["train"], stats["eval"]) == (24, 18, 6)  # kit train's split of the same 24
    assert cli.main(["preprocess", str(cfg), "dataset=identity,identity", "--preview", "0"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["examples"] == 48 and stats["per_dataset"]["identity"]["read"] == 48
