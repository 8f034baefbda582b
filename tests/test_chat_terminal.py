"""``kit chat`` (kit/chat/terminal.py) through kit.cli.main: the loop, flags, and each bad input."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import yaml

from kit import cli, i18n
from kit.chat import ChatError, Engine
from kit.chat.terminal import WELCOME, LineReader, load_config, run_loop
from kit.config.command_line import split_config_args as parse_args

WHO = [{"role": "user", "content": "Who are you?"}]


def _chat(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: bytes, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code = cli.main(["chat", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _flags(model: Path, adapter: Path | None = None, *extra: str) -> list[str]:
    flags = ["--model_name_or_path", str(model), "--template", "qwen", "--finetuning_type", "lora",
             "--do_sample", "false", "--max_new_tokens", "16"]
    if adapter is not None:
        flags += ["--adapter_name_or_path", str(adapter)]
    return flags + list(extra)


def _replies(out: str) -> list[str]:
    return [line.split("Assistant: ", 1)[1] for line in out.splitlines() if "Assistant: " in line]


# ---------------------------------------------------------------- the loop

def test_piped_chat_with_the_adapter_answers_like_the_engine(monkeypatch, capsys, tiny_model_dir: Path, tiny_adapter_dir: Path) -> None:
    code, out, err = _chat(monkeypatch, capsys, b"Who are you?\nexit\n", *_flags(tiny_model_dir, tiny_adapter_dir))
    assert code == 0, err
    assert out.startswith(WELCOME)
    assert "`clear`" in WELCOME and "`exit`" in WELCOME
    assert "User: " in out
    expected = Engine(tiny_model_dir, tiny_adapter_dir, do_sample=False, max_new_tokens=16).chat(WHO)
    assert _replies(out) == [expected.split("\n")[0]]
    assert expected.replace("\n", "") in out.replace("\n", "")


def test_clear_empties_the_history(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    code, out, _ = _chat(monkeypatch, capsys, b"Hello there\nWho are you?\nclear\nWho are you?\nexit\n", *_flags(tiny_model_dir))
    assert code == 0
    assert "History has been removed." in out
    after_clear = out.split("History has been removed.")[1]
    before_clear = out.split("History has been removed.")[0]
    # Greedy, so the answer after `clear` is the first-turn answer, not the second-turn one.
    fresh = Engine(tiny_model_dir, do_sample=False, max_new_tokens=16).chat(WHO)
    assert fresh.replace("\n", "") in after_clear.replace("\n", "")
    assert len(_replies(before_clear)) == 2


def test_end_of_input_and_empty_lines(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    # Empty input is ignored (prompt again); the end of the pipe leaves with status 0.
    code, out, _ = _chat(monkeypatch, capsys, b"\n   \n\nWho are you?\n", *_flags(tiny_model_dir))
    assert code == 0
    assert out.count("Assistant: ") == 1
    assert out.count("User: ") == 5  # three empty lines re-prompt, one question, then end of input


def test_non_utf8_input_is_replaced_and_reported(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    code, out, err = _chat(monkeypatch, capsys, b"caf\xe9 \xff\xfe?\nexit\n", *_flags(tiny_model_dir))
    assert code == 0, err
    assert "not valid UTF-8" in out and "LANG=C.UTF-8" in out
    assert out.count("Assistant: ") == 1
    assert "Traceback" not in out + err


class _FakeEngine:
    def __init__(self) -> None:
        self.stopped = 0

    def stream(self, messages):
        yield "piece"
        raise KeyboardInterrupt  # Ctrl+C while the reply streams

    def stop(self) -> None:
        self.stopped += 1


class _InterruptingStdin(io.StringIO):
    def readline(self, *args) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_at_the_prompt_leaves_and_during_a_reply_stops_only_the_reply() -> None:
    out = io.StringIO()
    assert run_loop(_FakeEngine(), _InterruptingStdin(), out) == 0  # at the prompt
    engine, out = _FakeEngine(), io.StringIO()
    assert run_loop(engine, io.StringIO("hi\nmore\n"), out) == 0  # during each reply; then the end of input
    assert engine.stopped == 2 and out.getvalue().count("Assistant: piece") == 2


def test_line_reader_on_text_streams() -> None:
    reader = LineReader(io.StringIO("one\r\ntwo\n"), io.StringIO())
    assert [reader.read("> "), reader.read("> "), reader.read("> ")] == ["one", "two", None]


# ---------------------------------------------------------------- Chinese

@pytest.fixture
def chinese():
    """Chinese as the current language for one test (``kit --lang zh``, LANG=zh_CN.UTF-8), English again after it."""
    i18n.set_language("zh")
    yield
    i18n.set_language(None)


class _EchoEngine:
    def stream(self, messages):
        yield f"{len(messages)} message(s)"

    def stop(self) -> None:
        pass


def test_chinese_welcome_prompts_and_synonyms(chinese) -> None:
    out = io.StringIO()
    assert run_loop(_EchoEngine(), io.StringIO("你好\n清空\n你是谁？\n退出\nnever read\n"), out) == 0
    text = out.getvalue()
    assert text.startswith("欢迎使用命令行对话：输入 `clear`（或“清空”）清除历史，输入 `exit`（或“退出”）退出程序。\n")
    assert "\n用户：" in text and "助手：1 message(s)" in text and "历史记录已清空。" in text
    assert text.count("助手：1 message(s)") == 2  # the history was cleared between the two questions
    # `clear` and `exit` are LLaMA-Factory's words in every language.
    out = io.StringIO()
    assert run_loop(_EchoEngine(), io.StringIO("a\nclear\nb\nexit\nnever read\n"), out) == 0
    assert out.getvalue().count("助手：1 message(s)") == 2 and "never" not in out.getvalue()


def test_chinese_errors(chinese, base: Engine, monkeypatch, capsys, tiny_model_dir: Path) -> None:
    with pytest.raises(ChatError, match="messages：为空；请至少给出一条 .* 消息"):
        base.chat([])
    with pytest.raises(ChatError, match="messages：最后一条消息必须是用户的"):
        base.chat([*WHO, {"role": "assistant", "content": "I am."}])
    code, out, err = _chat(monkeypatch, capsys, b"", "notes.txt", "--model_name_or_path", str(tiny_model_dir))
    assert code == 2 and "kit chat：'notes.txt' 既不是参数也不是配置文件" in err and "Traceback" not in err
    code, out, _ = _chat(monkeypatch, capsys, b"", "--help")
    assert code == 0 and out.startswith("用法：kit chat") and "--adapter_name_or_path" in out


def test_chinese_from_the_command_line(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    try:
        code, out, err = _chat(monkeypatch, capsys, b"caf\xe9\n", "--lang", "zh", *_flags(tiny_model_dir))
    finally:
        i18n.set_language(None)
    assert code == 0, err
    assert out.startswith("欢迎使用命令行对话") and "[输入不是有效的 UTF-8" in out and "LANG=C.UTF-8" in out


# ---------------------------------------------------------------- flags and YAML

def test_flags_are_llamafactory_style() -> None:
    assert parse_args(["--template", "qwen", "--do_sample=false", "--merge_adapter", "--top_k", "5"]) == (
        None, ["template=qwen", "do_sample=false", "merge_adapter=true", "top_k=5"])
    assert parse_args(["cfg.yaml", "--template", "qwen", "top_p=0.5"]) == ("cfg.yaml", ["template=qwen", "top_p=0.5"])


def test_yaml_file_with_flags_overriding(tmp_path: Path, tiny_model_dir: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text(yaml.safe_dump({"model_name_or_path": str(tiny_model_dir), "template": "qwen",
                                    "do_sample": True, "temperature": 0.3}), encoding="utf-8")
    cfg = load_config([str(path), "--do_sample", "false", "--max_new_tokens", "7"])
    assert (cfg.infer.do_sample, cfg.infer.temperature, cfg.infer.max_new_tokens) == (False, 0.3, 7)


def test_help(capsys) -> None:
    assert cli.main(["chat", "--help"]) == 0
    assert "--adapter_name_or_path" in capsys.readouterr().out


# ---------------------------------------------------------------- bad input: KitError, exit 2, no traceback

def _fails(monkeypatch, capsys, args: list[str], *expected: str) -> None:
    code, out, err = _chat(monkeypatch, capsys, b"Who are you?\nexit\n", *args)
    assert code == 2, out + err
    for text in expected:
        assert text in err
    assert "Traceback" not in err and WELCOME not in out


def test_missing_adapter(monkeypatch, capsys, tiny_model_dir: Path, tmp_path: Path) -> None:
    _fails(monkeypatch, capsys, _flags(tiny_model_dir, tmp_path / "nowhere"), "does not exist", "output_dir of a LoRA training run")


def test_folder_that_is_not_an_adapter(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    _fails(monkeypatch, capsys, _flags(tiny_model_dir, tiny_model_dir), "is not a LoRA adapter", "adapter_config.json")


def test_adapter_for_another_base_model(monkeypatch, capsys, tiny_model_dir: Path, tmp_path_factory) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from conftest import build_tiny_qwen
    from transformers import AutoModelForCausalLM

    other = build_tiny_qwen(tmp_path_factory.mktemp("other") / "model", hidden_size=32)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(other), dtype=torch.float32),
                                LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"]))
    adapter = other.parent / "adapter"
    peft_model.save_pretrained(str(adapter))
    _fails(monkeypatch, capsys, _flags(tiny_model_dir, adapter), "trained for another base model", "shapes do not match")


def test_unknown_template(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    args = _flags(tiny_model_dir) + ["--template", "qwn"]
    _fails(monkeypatch, capsys, args, "template: 'qwn' is not known", "did you mean qwen?")


def test_finetuning_type_other_than_lora_with_an_adapter(monkeypatch, capsys, tiny_model_dir: Path, tiny_adapter_dir: Path) -> None:
    args = _flags(tiny_model_dir, tiny_adapter_dir) + ["--finetuning_type", "full"]
    _fails(monkeypatch, capsys, args, "finetuning_type: 'full' is not allowed; choose one of lora")


def test_misspelt_flag(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    _fails(monkeypatch, capsys, _flags(tiny_model_dir) + ["--temprature", "0.5"], "temprature: unknown key; did you mean temperature?")


def test_missing_model(monkeypatch, capsys) -> None:
    _fails(monkeypatch, capsys, ["--template", "qwen"], "model_name_or_path: missing")


def test_device_that_is_not_there(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _fails(monkeypatch, capsys, _flags(tiny_model_dir) + ["--device", "cuda"], "cuda was asked for", "device: auto")
