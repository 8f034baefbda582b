"""kit demo's own logic (the notebook runs are in test_notebooks.py): headlines, parameters, where notebooks come from."""

from __future__ import annotations

from kit import demo


def test_headline_without_a_logged_loss_says_so():
    line = demo._headline("20_lora_sft", {"first_loss": None, "final_loss": None, "eval_loss": 2.5, "train_seconds": 3})
    assert "no loss logged" in line and "eval_loss 2.5" in line
    assert demo._headline("20_lora_sft", {"first_loss": 3.0, "final_loss": 1.25}).startswith("loss 3.000 -> 1.250")


def test_notebooks_are_found_for_both_editions():
    for lang in ("en", "zh"):
        folder = demo.notebook_dir() / lang
        assert all((folder / f"{name}.ipynb").is_file() for name in demo.ORDER)
