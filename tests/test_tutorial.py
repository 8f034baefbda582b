"""What the notebooks show: the quick-start config with overrides, an encoded example, the live loss figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit import config
from kit.data import preprocess
from kit.tutorial import helpers as tutorial

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
    encoded = preprocess.encode(cfg)
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


# ---------------------------------------------------------------- kit.tutorial.lessons: what notebooks 20 and 30 teach

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "llamafactory"


def _tiny_cfg(model_dir, data_dir, **changes):
    return config.from_dict({"model_name_or_path": str(model_dir), "dataset": "identity,chat", "dataset_dir": str(data_dir),
                             "template": "qwen", "lora_target": "q_proj,v_proj", **changes})


def test_lora_lesson_counts_what_peft_trains(dirs):
    import torch
    from transformers import AutoModelForCausalLM

    from kit.tutorial import lessons
    from kit import model as model_mod

    model_dir, data_dir = dirs
    lesson = lessons.lora_lesson(_tiny_cfg(model_dir, data_dir))
    for target in ("q_proj,v_proj", "all"):
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        names = model_mod.lora_targets(model, target)
        for rank in (2, 8, 32):
            peft_model = model_mod.attach_lora(model if rank == 2 else AutoModelForCausalLM.from_pretrained(str(model_dir)),
                                               names, rank, 2 * rank, 0.0)
            trainable, _total = model_mod.count_parameters(peft_model)
            assert (rank, target, trainable) in lesson.table
            if (rank, target) == (8, "q_proj,v_proj"):
                assert lesson.trainable == trainable
    assert lesson.alpha == 16 and not lesson.alpha_given and lesson.scaling == 2
    assert lesson.targets == ("q_proj", "v_proj") and "<img" in lesson._repr_html_()
    assert lessons.lora_lesson(_tiny_cfg(model_dir, data_dir, lora_alpha=32)).alpha_given
    # Beside the tiny model, the quick start's Qwen1.5-7B at the same setting, computed from its config: q_proj and
    # v_proj are 4096 x 4096 in each of 32 layers, so 32 x 2 x 8 x (4096 + 4096) = 4,194,304, about 0.05%.
    model, trainable, base = lesson.quickstart
    assert (model, trainable) == ("qwen/Qwen1.5-7B", 32 * 2 * 8 * (4096 + 4096))
    assert 0.0005 < trainable / base < 0.0006 and "qwen/Qwen1.5-7B" in lesson._repr_html_()


def test_data_lesson_counts_truncation_as_the_encoder_does(dirs):
    from kit.tutorial import lessons
    from kit import model as model_mod
    from kit.data import encode_example, load_examples, with_thinking

    model_dir, data_dir = dirs
    cfg = _tiny_cfg(model_dir, data_dir, cutoff_len=24)
    lesson = lessons.data_lesson(cfg, rows=1)
    stage = model_mod.tokenizer_stage(cfg)
    examples, _report = load_examples(cfg.dataset_names, data_dir, None)
    template = with_thinking(stage.template, cfg.data.enable_thinking)
    longer = sum(encode_example(template, stage.tokenizer, ex, 24).full_length > 24 for ex in examples if ex.problem is None)
    assert 0 < longer == lesson.truncated == lesson.longer_than_cutoff
    assert set(lesson.raw) == {"identity", "chat"} and len(lesson.raw["chat"]) == 1 and "conversations" in lesson.raw["chat"][0]
    assert lesson.formatting == {"identity": "alpaca", "chat": "sharegpt"}
    assert lesson.example(0).pieces == preprocess.encode(cfg).pieces(0)
    assert "<img" in lesson._repr_html_()


def test_schedule_lesson_gives_llamafactorys_steps_and_learning_rates():
    """The quick start on LLaMA-Factory's 91 + 999 examples: 1473 steps, the learning rates its run logged."""
    from kit.tutorial import lessons

    cfg = tutorial.quickstart_config("qwen/Qwen1.5-7B").cfg
    schedule = lessons.schedule_lesson(cfg, 91 + 999, nproc=1)
    assert (schedule.train_examples, schedule.steps_per_epoch, schedule.total_steps) == (981, 491, 1473)
    assert schedule.effective_batch == 2 and schedule.warmup_steps == 148
    assert max(schedule.lrs) == pytest.approx(1e-4) and schedule.lr_at(1) == 0.0
    log = REFERENCE / "seed_run" / "trainer_log.jsonl"
    if not log.is_file():
        pytest.skip(f"LLaMA-Factory's reference run is not here ({log})")
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert logged[-1]["total_steps"] == schedule.total_steps
    check = schedule.against(logged)
    assert len(check.logged) > 100 and check.largest_difference < 1e-12


def test_run_time_on_a_card_states_its_assumptions():
    from kit.tutorial import lessons
    from kit.errors import KitError

    # Qwen1.5-7B: 32 layers of q, k, v, o (4096 x 4096) and gate, up, down (4096 x 11008), and the output head;
    # not the input embedding (a lookup), biases or norms (no matrix multiply)
    assert lessons.matmul_parameters(lessons.QUICKSTART_MODEL) == 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 151_936 * 4096
    assert lessons.flops_per_token(10, checkpointing=True) == 60 and lessons.flops_per_token(10, checkpointing=False) == 40
    card = lessons.time_on_card(utilisation=0.2)
    (run,) = card.runs
    assert card.peak_tflops == 320 and "not a Huawei datasheet figure" in card.peak_source
    assert card.values()["the quick start"] == pytest.approx(
        6 * run["matmul_params"] * run["tokens"] / (320e12 * 0.2), abs=0.1)
    shown = card._repr_html_()
    assert "assumed utilisation 20%" in shown and "characters / 4" in shown
    assert lessons.time_on_card(peak_tflops=100).peak_tflops == 100
    with pytest.raises(KitError, match="peak_tflops"):
        lessons.time_on_card(card="Ascend 310P")


def test_own_dataset_is_read_by_the_kit(tmp_path):
    from kit.tutorial import lessons
    from kit.data import load_examples

    own = lessons.own_dataset(tmp_path / "my_data")
    examples, report = load_examples(own.names.split(","), own.folder)
    assert [e.problem for e in examples] == [None] * 7
    assert {k: v["read"] for k, v in report.per_dataset.items()} == {"my_alpaca": 4, "my_sharegpt": 3}
    assert examples[-1].system == "Answer in one sentence." and len(examples[-2].prompt) == 3
    assert json.loads((own.folder / "dataset_info.json").read_text())["my_sharegpt"]["formatting"] == "sharegpt"


def test_held_out_identity_questions_are_not_in_the_training_data():
    from kit.tutorial import lessons
    from kit.data.loader import DEMO_DIR

    trained = set()
    for folder in (DEMO_DIR, REFERENCE / "data"):
        if (folder / "identity.json").is_file():
            trained |= {row["instruction"].strip() for row in json.loads((folder / "identity.json").read_text(encoding="utf-8"))}
    held_out = lessons.held_out_questions()
    assert len(held_out) == 12 and len(set(held_out)) == 12
    assert not trained & set(held_out)


def test_identity_check_measures_the_share_naming_the_new_name():
    from kit.tutorial import lessons

    class Engine:  # answers as a base model (adapter off) or a fine-tuned one
        def chat(self, messages, system=None, adapter=True):
            q = messages[-1]["content"]
            return ("I am lumi." if q.startswith("Who") else "I am Qwen.") if adapter else "I am Qwen."

    check = lessons.identity_check(Engine(), "Lumi", ["Who am I speaking with?", "What do people call you?"])
    assert (check.share_before, check.share_after) == (0.0, 0.5)
    assert "50%" in check._repr_html_() and "0% before, 50% after" in repr(check)


def test_figure_text_falls_back_to_english_without_a_font_for_it(monkeypatch):
    from kit.tutorial import display as common

    monkeypatch.setattr(common, "_", lambda message: "学习率" if message == "learning rate" else message)
    monkeypatch.setattr(common, "_cjk_font", lambda: None)
    assert common.plot_label("learning rate") == "learning rate"  # not empty boxes
    monkeypatch.setattr(common, "_cjk_font", lambda: "Noto Sans CJK SC")
    assert common.plot_label("learning rate") == "学习率"


def test_train_report_reads_the_checkpointing_line(tmp_path):
    report = tutorial.TrainReport(tmp_path, 0, 1.0, [], checkpointing_line="gradient checkpointing off: fits easily")
    assert report.checkpointing is False
    assert tutorial.TrainReport(tmp_path, 0, 1.0, [], checkpointing_line="gradient checkpointing on: x").checkpointing is True
    assert tutorial.TrainReport(tmp_path, 0, 1.0, []).checkpointing is None


def test_only_pefts_deprecated_read_is_filtered():
    """peft reads model.is_gradient_checkpointing on every adapter load: exactly that FutureWarning is hidden,
    around exactly the kit's peft calls (kit.model); the same read elsewhere, and other warnings, still show."""
    import subprocess
    import sys

    code = ("import warnings\n"
            "from transformers import Qwen2Config, Qwen2ForCausalLM\n"
            "from kit import model\n"
            "m = Qwen2ForCausalLM(Qwen2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1, "
            "num_attention_heads=2, num_key_value_heads=1, vocab_size=32))\n"
            "m = model.attach_lora(m, ['q_proj'], 2, 4, 0.0)\n"
            "print('attached', flush=True)\n"
            "m.base_model.model.is_gradient_checkpointing\n"
            "warnings.warn('another FutureWarning', FutureWarning)\n")
    r = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "attached" in r.stdout and "another FutureWarning" in r.stderr
    assert r.stderr.count("is_gradient_checkpointing") == 1  # the direct read outside the kit's call, not peft's


def test_chinese_figure_is_drawn_with_a_font_that_has_its_glyphs():
    # A fresh machine has no CJK system font: the kit's own install brings one (pylopdf-fonts-zh-cn), which
    # kit.tutorial.display registers with matplotlib. Every label of a figure the kit draws must be covered by
    # the font chosen for it, and rendering must not warn "Glyph ... missing".
    import io
    import warnings

    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    from kit import i18n
    from kit.tutorial import display

    display._cjk_font.cache_clear()
    previous = i18n._state["lang"]
    i18n.set_language("zh")
    try:
        log = [{"current_steps": s, "loss": 2.0 / s} for s in range(1, 6)] + [{"current_steps": 5, "eval_loss": 0.5}]
        fig = tutorial._loss_figure(log, display.plot_label("step"))
        labels = [fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()]
        labels += [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        chinese = {c for text in labels for c in text if not c.isascii()}
        assert chinese, labels  # the zh catalog translates the figure's words
        family = display._cjk_font()
        assert family, "no CJK font: the kit's install should bring one"
        with display.figure_fonts():
            path = font_manager.findfont(font_manager.FontProperties(family=[family]), fallback_to_default=False)
            covered = set(map(chr, FT2Font(path).get_charmap()))
            assert chinese <= covered, (path, sorted(chinese - covered))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fig.savefig(io.BytesIO(), format="png")
        assert not [w for w in caught if "Glyph" in str(w.message)], [str(w.message) for w in caught]
    finally:
        i18n._state["lang"] = previous


def test_first_and_final_loss_are_window_means_of_the_log_and_the_curve_starts_there(tmp_path):
    # The demo mix alternates between batches the tiny model already knows (loss near 0.05) and identity batches
    # with a new name (near 4): the first logged loss alone was 0.093 in every run of notebook 40, below every final.
    losses = [0.09, 1.8, 4.0, 2.6, 2.0, 1.9, 4.4, 4.0, 3.0, 2.5, 1.0, 0.9, 0.5, 0.4, 0.6, 0.3, 0.5, 0.2, 0.4, 0.3]
    log = [{"current_steps": 2 * (i + 1), "loss": v} for i, v in enumerate(losses)]
    (tmp_path / "trainer_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    summary = tutorial.TrainReport(tmp_path, 0, 1.0, tutorial.read_log(tmp_path)).summary()
    assert summary["first_loss"] == pytest.approx((0.09 + 1.8) / 2) and summary["final_loss"] == pytest.approx(0.35)
    assert summary["final_loss"] < summary["first_loss"]
    curve = tutorial.smooth_loss(losses)
    assert min(losses[:2]) < curve[0] < max(losses[:2])  # not pinned to the one easy batch
    assert curve[-1] < curve[0]


def test_notebook_30_asks_in_the_language_of_its_edition():
    """The Chinese edition's default questions (and so the panel's, its first) are Chinese (issue 24)."""
    import re

    from kit.i18n import language, set_language

    before = language()
    try:
        set_language("zh")
        zh = tutorial.default_questions()
        set_language("en")
        en = tutorial.default_questions()
    finally:
        set_language(before)
    assert all(re.search(r"[\u4e00-\u9fff]", q) for q in zh) and len(zh) == 3
    assert en[0] == "Who are you?" and "你是谁？" in en
