"""The notebook chat panel (kit/chat/widget.py), driven headless, and inside a real kernel via papermill."""

from __future__ import annotations

import time
from pathlib import Path

import ipywidgets as widgets
import pytest

from kit import i18n
from kit.chat import ChatPanel, Engine

WHO = [{"role": "user", "content": "Who are you?"}]


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _shown(root: widgets.Widget) -> list[widgets.Widget]:
    """Every widget inside ``root``, as the front end would draw them."""
    found = [root]
    for child in getattr(root, "children", ()):
        found += _shown(child)
    return found


def test_panel_has_its_controls(tuned: Engine) -> None:
    panel = ChatPanel(tuned)
    shown = _shown(panel.widget)
    for control in (panel.input, panel.send_button, panel.stop_button, panel.clear_button, panel.temperature,
                    panel.max_new_tokens, panel.system, panel.status, panel.sides[0].transcript):
        assert any(control is w for w in shown)
    assert panel.temperature.value == 0.0  # the engine is greedy
    assert panel.max_new_tokens.value == 24
    assert panel.system.value == tuned.template.default_system
    assert panel.stop_button.disabled and not panel.send_button.disabled


def test_send_button_streams_a_reply_into_the_transcript(tuned: Engine) -> None:
    panel = ChatPanel(tuned)
    panel.input.value = "Who are you?"
    panel.send_button.click()
    assert panel.input.value == ""
    assert panel.wait(60)
    expected = tuned.chat(WHO)
    assert panel.history == [*WHO, {"role": "assistant", "content": expected}]
    assert panel.transcript_text == f"User: Who are you?\nAssistant: {expected}"
    assert "Who are you?" in panel.sides[0].transcript.value
    assert panel.status.value.startswith("done") and not panel.send_button.disabled and panel.stop_button.disabled
    # The conversation continues with its history.
    assert panel.send("and then?") and panel.wait(60)
    assert len(panel.history) == 4
    assert panel.history[3]["content"] == tuned.chat([*panel.history[:3]])


def test_empty_input_is_ignored(tuned: Engine) -> None:
    panel = ChatPanel(tuned)
    panel.input.value = "   "
    panel.send_button.click()
    assert panel.history == [] and not panel.busy
    assert "type a message" in panel.status.value


def test_stop_ends_a_reply_midway_and_the_kernel_stays_free(base: Engine) -> None:
    panel = ChatPanel(base)
    panel.max_new_tokens.value = 1000  # the random base model loops: only Stop ends this early
    start = time.perf_counter()
    assert panel.send("Who are you?")
    assert time.perf_counter() - start < 1.0 and panel.busy  # send returned while the reply streams
    assert not panel.send("second")  # one reply at a time
    _wait_for(lambda: len(panel.sides[0].partial or "") > 10)
    panel.stop_button.click()
    assert panel.wait(30)
    reply = panel.history[-1]["content"]
    assert len(reply) > 10 and len(base.tokenizer.encode(reply)) < 1000
    assert "(stopped)" in panel.transcript_text and panel.status.value.startswith("stopped")
    panel.clear_button.click()
    assert panel.history == [] and panel.transcript_text == ""


def test_rapid_send_stop_clear_cycles_leave_the_panel_working(base: Engine) -> None:
    panel = ChatPanel(base)
    panel.max_new_tokens.value = 4
    for i in range(100):
        panel.send(f"question {i}")  # refused (False) while an earlier reply is still ending: fine
        if i % 3 == 0:
            panel.stop()
        # Half the time clear without waiting: the reply still ending must not land in the new history.
        panel.clear(timeout=0 if i % 2 else 30)
        assert panel.history == []
    assert panel.wait(30)
    assert panel.history == [] and not panel.errors
    assert panel.send("Who are you?") and panel.wait(30)
    history = panel.history
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["content"] == base.chat(WHO, system=panel.system.value, max_new_tokens=4)
    assert panel.send("and then?") and panel.wait(30)
    assert [m["role"] for m in panel.history] == ["user", "assistant"] * 2 and not panel.errors


def test_one_engine_cannot_be_compared_with_itself(base: Engine) -> None:
    with pytest.raises(ValueError, match="give a second engine"):
        ChatPanel(base, compare_engine=base)


def test_settings_apply_to_the_next_reply(base: Engine) -> None:
    panel = ChatPanel(base)
    panel.max_new_tokens.value = 3
    panel.system.value = "Be short."
    assert panel.send("Who are you?") and panel.wait(30)
    assert panel.history[-1]["content"] == base.chat(WHO, system="Be short.", max_new_tokens=3)
    panel.temperature.value = 1.0  # sampling now: a reply still comes back
    assert panel.send("again") and panel.wait(30) and not panel.errors


def test_side_by_side_base_and_fine_tuned(tuned: Engine, base: Engine) -> None:
    panel = ChatPanel(tuned, compare_engine=base)
    assert panel.send("Who are you?") and panel.wait(60)
    assert panel.history[-1]["content"] == tuned.chat(WHO)
    assert panel.compare_history[-1]["content"] == base.chat(WHO)
    assert panel.history[-1] != panel.compare_history[-1]
    text = panel.transcript_text
    assert text.index("[fine-tuned]") < text.index("[base]")


def test_errors_show_in_the_panel(base: Engine) -> None:
    panel = ChatPanel(base)
    panel.max_new_tokens.value = 1
    panel.sides[0].history.append({"role": "user", "content": "an unanswered turn breaks alternation"})
    assert panel.send("hi") and panel.wait(30)
    assert panel.errors and "error: ChatError" in panel.transcript_text


@pytest.fixture
def chinese():
    """Chinese as the current language for one test (a notebook's ``lang = "zh"``), English again after it."""
    i18n.set_language("zh")
    yield
    i18n.set_language(None)


def test_panel_built_in_chinese_stays_chinese(tuned: Engine, chinese) -> None:
    panel = ChatPanel(tuned)
    i18n.set_language(None)  # later changes do not reach a panel already built (its threads set texts later)
    assert (panel.send_button.description, panel.stop_button.description, panel.clear_button.description) == (
        "发送", "停止", "清空")
    assert (panel.system.description, panel.temperature.description, panel.max_new_tokens.description) == (
        "系统提示词", "温度", "最大 token 数")
    assert panel.status.value == "就绪" and panel.input.placeholder == "输入消息，然后点击“发送”"
    assert not panel.send("   ") and panel.status.value == "请先输入消息"
    assert panel.send("Who are you?") and panel.wait(60)
    assert panel.status.value.startswith("完成（微调后 ") and panel.status.value.endswith(" 秒）")
    assert panel.transcript_text == f"用户：Who are you?\n助手：{tuned.chat(WHO)}"
    assert "<b>用户：</b>" in panel.sides[0].transcript.value
    panel.clear_button.click()
    assert panel.status.value == "历史已清空"


def test_panel_lang_argument_and_chinese_columns(tuned: Engine, base: Engine) -> None:
    panel = ChatPanel(tuned, compare_engine=base, lang="zh")  # the current language is English
    assert panel.lang == "zh" and [s.label for s in panel.sides] == ["微调后", "基座模型"]
    titles = [w.value for w in _shown(panel.widget) if isinstance(w, widgets.HTML) and w.value.startswith("<b>")]
    assert titles == ["<b>微调后</b>", "<b>基座模型</b>"]
    assert ChatPanel(tuned, lang="en").send_button.description == "Send"
    assert ChatPanel(tuned).send_button.description == "Send"
    with pytest.raises(i18n.LanguageError, match="'fr'"):
        ChatPanel(tuned, lang="fr")


def test_errors_and_stop_show_in_chinese(base: Engine, chinese) -> None:
    panel = ChatPanel(base)
    panel.max_new_tokens.value = 1
    panel.sides[0].history.append({"role": "user", "content": "an unanswered turn breaks alternation"})
    assert panel.send("hi") and panel.wait(30)
    # The note is the panel's; the ChatError's own text is in the language current when it was raised.
    assert "错误：ChatError：messages[1]：角色是 'user'，应为 'assistant'" in panel.transcript_text
    panel.clear()
    panel.max_new_tokens.value = 1000
    assert panel.send("Who are you?")
    assert not panel.send("again") and panel.status.value == "仍在回答：请等待，或点击“停止”"
    _wait_for(lambda: len(panel.sides[0].partial or "") > 0)
    panel.stop()
    assert panel.wait(30)
    assert "（已停止）" in panel.transcript_text and panel.status.value.startswith("已停止（基座模型 ")


@pytest.mark.notebook
def test_panel_in_a_notebook_under_papermill(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    import nbformat
    import papermill

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("model_dir = ''\nadapter_dir = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("from kit.chat import ChatPanel, Engine\n"
                                  "engine = Engine(model_dir, adapter_dir, do_sample=False, max_new_tokens=16)\n"
                                  "panel = ChatPanel(engine)\npanel"),
        nbformat.v4.new_code_cell("panel.input.value = 'Who are you?'\npanel.send_button.click()\n"
                                  "assert panel.wait(60)\nprint(panel.transcript_text)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source, executed = tmp_path / "chat.ipynb", tmp_path / "chat.out.ipynb"
    nbformat.write(nb, source)
    papermill.execute_notebook(str(source), str(executed), parameters={"model_dir": str(tiny_model_dir), "adapter_dir": str(tiny_adapter_dir)},
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    result = nbformat.read(executed, as_version=4)
    outputs = [o for cell in result.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    expected = Engine(tiny_model_dir, tiny_adapter_dir, do_sample=False, max_new_tokens=16).chat(WHO)
    assert f"User: Who are you?\nAssistant: {expected}" in printed
    # papermill keeps the widget state, so the saved notebook shows the panel.
    assert "application/vnd.jupyter.widget-state+json" in result.metadata.get("widgets", {})
