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
