"""What the notebooks show: the quick-start config with overrides, an encoded example, the live loss figure."""

from __future__ import annotations

import json

import pytest

from kit import config, preview, tutorial

from helpers import make_dataset_dir, make_tiny_model


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("tutorial")
    return make_tiny_model(base / "model"), make_dataset_dir(base / "data")


def test_quickstart_config_swaps_model_and_scales_tiny():
    qs = tutorial.quickstart_config("kit/tiny-qwen", extra=["learning_rate=0.01"], output_dir="saves/x")
    assert qs.overrides["model_name_or_path"] == "kit/tiny-qwen" and qs.overrides["learning_rate"] == 0.01
    assert qs.cfg.train.num_train_epochs == tutorial.TINY_SCALING["num_train_epochs"]
    assert qs.cfg.data.template == "qwen" and qs.cfg.finetune.lora_target == "q_proj,v_proj"  # the YAML's own values
    assert "output_dir=saves/x" in qs.as_cli() and "learning_rate=0.01" in repr(qs)
    big = tutorial.quickstart_config("qwen/Qwen1.5-7B")
    assert big.overrides == {"model_name_or_path": "qwen/Qwen1.5-7B"} and big.cfg.train.learning_rate == 1e-4


def test_preview_is_what_preprocess_encodes(dirs):
    model_dir, data_dir = dirs
    cfg = config.from_dict({"model_name_or_path": str(model_dir), "dataset": "identity", "dataset_dir": str(data_dir),
                            "template": "qwen", "identity_name": "Nova", "identity_author": "Acme"})
    shown = tutorial.preview_example(cfg, 0)
    encoded = preview.encode(cfg)
    assert shown.pieces == encoded.pieces(0) and (shown.n_tokens, shown.n_trained) == encoded.counts(0)
    trained = "".join(text for text, is_trained in shown.pieces if is_trained)
    assert trained.startswith("I am Nova, an assistant made by Acme.")
    assert "background:#d8f5d0" in shown._repr_html_() and "[[I am Nova" in repr(shown)


def test_loss_figure_leaves_the_plotting_backend_alone():
    import matplotlib

    before = matplotlib.get_backend()
    log = [{"current_steps": i, "total_steps": 4, "loss": 3.0 - i * 0.5} for i in range(1, 5)] + \
          [{"current_steps": 4, "total_steps": 4, "eval_loss": 1.2}]
    fig = tutorial._loss_figure(log, "run")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["loss", "loss (smoothed)", "eval_loss"]
    assert list(ax.lines[0].get_ydata()) == [2.5, 2.0, 1.5, 1.0]
    assert matplotlib.get_backend() == before


def test_read_log_stops_at_a_line_being_written(tmp_path):
    (tmp_path / "trainer_log.jsonl").write_text(json.dumps({"current_steps": 1, "loss": 2.0}) + "\n{\"current_st")
    assert tutorial.read_log(tmp_path) == [{"current_steps": 1, "loss": 2.0}]
    assert tutorial.read_log(tmp_path / "missing") == []
