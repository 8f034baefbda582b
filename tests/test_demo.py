"""kit demo's own logic (the notebook runs are in test_notebooks.py): headlines, parameters, where notebooks come from."""

from __future__ import annotations

from kit.tutorial import demo


def test_headline_without_a_logged_loss_says_so():
    line = demo._headline("20_lora_sft", {"first_loss": None, "final_loss": None, "eval_loss": 2.5, "train_seconds": 3})
    assert "no loss logged" in line and "eval_loss 2.5" in line
    assert demo._headline("20_lora_sft", {"first_loss": 3.0, "final_loss": 1.25}).startswith("loss 3.000 -> 1.250")


def test_notebooks_are_found_for_both_editions():
    for lang in ("en", "zh"):
        folder = demo.notebook_dir() / lang
        assert all((folder / f"{name}.ipynb").is_file() for name in demo.ORDER)


def test_kit_demo_lang_runs_that_edition(monkeypatch, capsys):
    """kit --lang zh demo (or kit demo --lang zh) runs the Chinese notebooks and speaks Chinese."""
    from kit import cli, i18n

    seen = {}

    def run_demo(overrides, run_dir, lang, log=print):
        seen["lang"] = lang
        return "run"

    monkeypatch.setattr(demo, "run_demo", run_demo)
    monkeypatch.setattr(demo, "summary", lambda run: demo._("The quick start ran end to end. Where everything is:"))
    try:
        assert cli.main(["demo", "--lang", "zh"]) == 0
    finally:
        i18n.set_language(None)
    assert seen["lang"] == "zh" and "快速开始已完整运行" in capsys.readouterr().out


def test_demo_refuses_a_language_it_has_no_edition_of(tmp_path):
    import pytest

    from kit.i18n import LanguageError

    with pytest.raises(LanguageError, match="'fr' is not a language the kit speaks"):
        demo.run_demo(["lang=fr"], run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_summary_lines_up_in_both_languages(tmp_path):
    from kit import i18n

    run = demo.DemoRun(tmp_path, tmp_path / "out", notebooks={"00": tmp_path / "zh" / "00.ipynb"},
                       values={"30_chat_inference": {"export_dir": str(tmp_path / "merged")}})
    english = demo.summary(run).splitlines()
    assert english[2].startswith("  adapter           ") and english[3].startswith("  training log      ")
    try:
        i18n.set_language("zh")
        chinese = demo.summary(run).splitlines()
    finally:
        i18n.set_language(None)
    starts = {demo._width(line.split("/", 1)[0]) for line in chinese[2:8]}
    assert len(starts) == 1 and chinese[1] == "快速开始已完整运行。各项输出的位置："
