"""Notebook 30's before/after scores (kit.tutorial.lessons.evaluate) and its background server (lessons.serve)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kit.tutorial import lessons
from kit.tutorial.lessons import evaluate

ROOT = Path(__file__).resolve().parents[1]
LF_ADAPTER = ROOT / "tests" / "fixtures" / "llamafactory_predict" / "adapter"  # trained on the embedded model


@pytest.mark.parametrize("answer, counts", [
    ("I am Lumi, an AI assistant.", True),
    ("i am lumi.", True),                    # case is not a different name
    ("Lumi", True),
    ("我是Lumi，由 kit 团队开发。", True),      # no spaces in Chinese: Chinese characters around the name are no boundary
    ("我是 Lumi。", True),
    ("I am WELumi.", False),                 # the substring match counted these
    ("Lumis are small.", False),
    ("Lumi2 here", False),
    ("I am Qwen.", False),
])
def test_the_name_counts_only_as_a_whole_word(answer, counts):
    assert evaluate.names(answer, "Lumi") is counts


def test_a_chinese_name_counts_as_written():
    assert evaluate.names("我是小光，一个助手。", "小光")
    assert not evaluate.names("我是小明。", "小光")
    assert not evaluate.names("anything", "")


def test_identity_check_no_longer_counts_a_name_inside_another_word():
    class Engine:
        def chat(self, messages, system=None, adapter=True):
            return "I am WELumi." if adapter else "I am Qwen."

    check = lessons.identity_check(Engine(), "Lumi", ["Who am I speaking with?"])
    assert (check.share_before, check.share_after) == (0.0, 0.0)


def test_heldout_set_is_english_and_chinese_identity_and_general_with_filled_references():
    items = evaluate.heldout_items("Nova", "Acme")
    groups = {(i["kind"], i["lang"]) for i in items}
    assert groups == {("identity", "en"), ("identity", "zh"), ("general", "en"), ("general", "zh")}
    identity = [i for i in items if i["kind"] == "identity"]
    # the identity questions are notebook 30's held-out ones (checked against the training data in test_tutorial.py)
    assert [i["question"] for i in identity] == lessons.held_out_questions()
    assert all("Nova" in i["reference"] and "Acme" in i["reference"] for i in identity)
    assert not any("{{" in i["reference"] for i in items)
    trained = {r["instruction"] for r in json.loads((ROOT / "kit/data/demo/identity.json").read_text(encoding="utf-8"))}
    assert not trained & {i["question"] for i in items}


def test_the_heldout_file_is_package_data():
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert '"data/demo/*.json"' in setup and evaluate.HELDOUT_FILE.is_file()


class Echo:
    """The adapter answers with the reference, the base model with something else."""

    def __init__(self, items):
        self.references = {i["question"]: i["reference"] for i in items}
        self.asked = []

    def chat(self, messages, system=None, adapter=True, **generation):
        assert generation.get("do_sample") is False  # greedy: the scores repeat
        q = messages[-1]["content"]
        self.asked.append((q, adapter))
        return self.references[q] if adapter else "I am Qwen, made by Alibaba Cloud."


def test_scores_table_has_a_row_per_group_and_model_and_reuses_known_answers():
    items = evaluate.heldout_items("Lumi", "the kit team")
    engine = Echo(items)
    first = items[0]["question"]
    scores = evaluate.heldout_scores(engine, "Lumi", "the kit team", items=items,
                                     known={"base": {first: "I am Lumi."}})
    assert (first, False) not in engine.asked and len(engine.asked) == 2 * len(items) - 1
    assert len(scores.rows) == 8
    assert {(r["kind"], r["lang"], r["model"]) for r in scores.rows} == {
        (k, lang, m) for k in ("identity", "general") for lang in ("en", "zh") for m in ("base", "adapter")}
    for r in scores.rows:
        assert set(r) >= {"n", "name_share", "bleu-4", "rouge-1", "rouge-2", "rouge-l"}
        assert (r["name_share"] is None) is (r["kind"] == "general")
    assert scores.row("identity", "en", "adapter")["name_share"] == 1.0
    assert scores.row("identity", "en", "base")["name_share"] == pytest.approx(1 / 6)  # the one known answer
    assert scores.row("identity", "zh", "adapter")["bleu-4"] == pytest.approx(100.0)
    assert scores.row("general", "zh", "adapter")["rouge-l"] > scores.row("general", "zh", "base")["rouge-l"]
    assert "Lumi" in repr(scores) and "<table>" in scores._repr_html_()
    assert len(scores.figure().axes) == 3
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-glyph warnings while the figure is built (it is drawn later)
        assert scores.picture()._repr_png_()[:4] == b"\x89PNG"
    assert json.dumps(scores.values(), ensure_ascii=False)


def test_scores_on_the_embedded_model_with_an_adapter():
    from kit.chat import Engine

    engine = Engine("kit/tiny-qwen", str(LF_ADAPTER), merge_adapter=False, template="qwen", do_sample=False, max_new_tokens=8)
    try:
        items = [i for i in evaluate.heldout_items("Lumi", "the kit team") if i["question"] in
                 ("Who am I speaking with?", "你叫什么？", "What is the capital of France?", "一年有几个月？")]
        scores = evaluate.heldout_scores(engine, "Lumi", "the kit team", items=items)
    finally:
        engine.close()
    assert len(scores.rows) == 8 and all(r["n"] == 1 for r in scores.rows)
    assert all(0 <= r[k] <= 100 for r in scores.rows for k in ("bleu-4", "rouge-1", "rouge-2", "rouge-l"))
    assert all(len(a) == 4 for a in scores.answers.values())


# ---------------------------------------------------------------- the background server

def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_the_server_answers_and_leaves_no_process_after_stop_or_an_exception():
    with lessons.serve("kit/tiny-qwen", str(LF_ADAPTER), extra={"max_new_tokens": 8, "do_sample": False}) as server:
        assert server.running
        reply = server.chat("Who are you?")
        assert isinstance(reply, str) and reply
        assert server.curl("Who are you?").startswith(f"curl {server.url}/v1/chat/completions")
        pid = server.process.pid
    assert not server.running and _gone(pid)

    with pytest.raises(RuntimeError, match="inside"):
        with lessons.serve("kit/tiny-qwen", extra={"max_new_tokens": 8}) as server:
            pid = server.process.pid
            raise RuntimeError("inside the with block")
    assert not server.running and _gone(pid)
    assert server.stop() is not None  # stopping twice is harmless


def test_a_server_that_cannot_start_says_why_and_leaves_no_process(tmp_path):
    from kit.tutorial.lessons.serve import ServerError, _running

    with pytest.raises(ServerError, match="exited"):
        lessons.serve(str(tmp_path / "no-such-model"), timeout=120)
    assert not [s for s in _running if s.running]


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["", pytest.param("import os; os._exit(0)", marks=pytest.mark.skipif(
    not __import__("sys").platform.startswith("linux"), reason="the parent-death signal is Linux's"))])  # a clean exit (atexit); a killed kernel (no atexit: Linux's parent-death signal)
def test_a_server_left_running_is_stopped_when_the_python_that_started_it_exits(ending):
    import subprocess
    import sys
    import time

    code = ("import kit.tutorial.lessons as L; s = L.serve('kit/tiny-qwen', extra={'max_new_tokens': 8}); "
            "print(s.process.pid, flush=True); " + ending)  # no stop(): the kernel's end must stop it
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:  # reaped by init once its parent is gone
        time.sleep(0.2)
    assert _gone(pid)
