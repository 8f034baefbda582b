"""Issue 20, chat and export: hostile or mistaken inputs end in one clear message, never in lost files or a traceback.

Every test here failed before its fix, except the few marked as guarding behaviour that already
held (replacing an untouched earlier export, an export_dir that is a file): export replaced a
folder a person had added files to, the operating system's refusals surfaced as tracebacks, and
chat inputs crashed the engine or ended the terminal loop in the middle of a conversation.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from kit import cli
from kit.chat import export as export_mod

# ---------------------------------------------------------------- export: never a file it did not write


def _cfg(model: Path, adapter: Path, target: Path):
    return export_mod.config_mod.from_dict({"model_name_or_path": str(model), "adapter_name_or_path": str(adapter),
                                            "template": "qwen", "export_dir": str(target)})


def _cli_export(capsys, model: Path, adapter: Path, target: Path | str, *extra: str) -> tuple[int, str, str]:
    code = cli.main(["export", "--model_name_or_path", str(model), "--adapter_name_or_path", str(adapter),
                     "--template", "qwen", "--export_dir", str(target), *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def earlier_export(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "merged"
    export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, target))
    return target


def test_the_marker_lists_what_the_export_wrote(earlier_export: Path) -> None:
    marker = json.loads((earlier_export / export_mod.EXPORT_MARKER).read_text(encoding="utf-8"))
    on_disk = sorted(p.name for p in earlier_export.iterdir() if p.name != export_mod.EXPORT_MARKER)
    assert marker["files"] == on_disk and "model.safetensors" in on_disk


def test_replacing_refuses_a_folder_a_person_added_files_to(tiny_model_dir: Path, tiny_adapter_dir: Path,
                                                            earlier_export: Path) -> None:
    (earlier_export / "notes.md").write_text("my eval results", encoding="utf-8")
    (earlier_export / "scripts").mkdir()
    (earlier_export / "scripts" / "serve.sh").write_text("vllm serve .", encoding="utf-8")
    before = {p.name: p.stat().st_mtime_ns for p in earlier_export.iterdir()}
    with pytest.raises(export_mod.ExportError) as info:
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert "notes.md" in str(info.value) and "scripts" in str(info.value)
    assert {p.name: p.stat().st_mtime_ns for p in earlier_export.iterdir()} == before  # nothing touched
    assert (earlier_export / "notes.md").read_text(encoding="utf-8") == "my eval results"
    assert sorted(p.name for p in earlier_export.parent.iterdir()) == ["merged"]  # no staging left


def test_replacing_an_untouched_earlier_export_works(tiny_model_dir: Path, tiny_adapter_dir: Path, earlier_export: Path) -> None:
    """Guards what already held: the kit's own export, untouched, is replaced (notebook 30's rerun)."""
    export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert (earlier_export / "model.safetensors").is_file()
    assert sorted(p.name for p in earlier_export.parent.iterdir()) == ["merged"]


def test_an_export_marker_without_a_file_list_is_not_replaced(tiny_model_dir: Path, tiny_adapter_dir: Path,
                                                              earlier_export: Path) -> None:
    # An older kit's marker (or one a person edited): what the export wrote is not known, so nothing is replaced.
    marker = earlier_export / export_mod.EXPORT_MARKER
    marker.write_text(json.dumps({"template": "qwen"}), encoding="utf-8")
    with pytest.raises(export_mod.ExportError, match="does not list the files"):
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    marker.write_text("{not json", encoding="utf-8")
    with pytest.raises(export_mod.ExportError, match="does not list the files"):
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert (earlier_export / "model.safetensors").is_file()


def test_the_cli_takes_replace_earlier_export_and_keeps_its_promise(capsys, tiny_model_dir: Path, tiny_adapter_dir: Path,
                                                                   earlier_export: Path) -> None:
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, earlier_export)
    assert code == 2 and "--replace_earlier_export" in err and "Traceback" not in err  # says how to replace it
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, earlier_export, "--replace_earlier_export")
    assert code == 0, err
    (earlier_export / "eval.json").write_text("{}", encoding="utf-8")
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, earlier_export, "--replace_earlier_export", "true")
    assert code == 2 and "eval.json" in err and "Traceback" not in err
    assert (earlier_export / "eval.json").is_file()


# ---------------------------------------------------------------- export: the operating system's refusals


def _no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that cannot be written is refused before minutes of loading and merging."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before export_dir was checked")

    monkeypatch.setattr(export_mod.model_mod, "load_model", refuse)


def test_an_export_dir_through_a_file(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("a file, not a folder", encoding="utf-8")
    _no_model_load(monkeypatch)
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, tmp_path / "afile" / "out")
    assert code == 2, err
    assert "afile" in err and "is a file" in err and "Traceback" not in err
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_an_export_dir_that_is_a_file(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    """Guards what already held, and now also before the model is loaded."""
    (tmp_path / "model.bin").write_text("mine", encoding="utf-8")
    _no_model_load(monkeypatch)
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, tmp_path / "model.bin")
    assert code == 2 and "is a file" in err and "Traceback" not in err
    assert (tmp_path / "model.bin").read_text(encoding="utf-8") == "mine"


def test_an_export_dir_that_cannot_be_written(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path,
                                              tmp_path: Path, unwritable) -> None:
    locked = unwritable(tmp_path / "locked")
    _no_model_load(monkeypatch)
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, locked / "out")
    assert code == 2 and "locked" in err and "permission" in err.lower() and "Traceback" not in err
    assert list(locked.iterdir()) == []


def test_an_export_dir_that_cannot_be_written_even_as_root(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path,
                                                          tmp_path: Path) -> None:
    """The same refusal where the tests run as root: os.access answers as it would for a person without the right."""
    from kit.chat import export_folder

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(export_folder.os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    _no_model_load(monkeypatch)
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, locked / "out")
    assert code == 2 and "no permission to write in" in err and str(locked) in err and "Traceback" not in err
    assert list(locked.iterdir()) == []


def test_permission_denied_while_saving(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    from transformers import PreTrainedModel

    def denied(self, save_directory, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(Path(save_directory) / "config.json"))

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", denied)
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, tmp_path / "merged")
    assert code == 2 and f"permission denied writing {str(tmp_path)!r}" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_saving(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    from transformers import PreTrainedModel

    def save_then_fill_the_disk(self, save_directory, **kwargs):
        (Path(save_directory) / "model-00001-of-00002.safetensors").write_bytes(b"\0" * 1024)  # half written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(save_directory) / "model-00002-of-00002.safetensors"))

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_then_fill_the_disk)
    target = tmp_path / "out" / "merged"
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, target)
    assert code == 2, err
    assert "Traceback" not in err and str(target) in err
    assert "no space left" in err and "free space" in err.lower()  # what happened and what to do
    assert not target.exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # the staging folder is gone, nothing half-written


def test_disk_full_keeps_an_earlier_export(monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, earlier_export: Path) -> None:
    from transformers import PreTrainedModel

    def disk_full(self, save_directory, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", disk_full)
    before = sorted(p.name for p in earlier_export.iterdir())
    with pytest.raises(export_mod.ExportError, match="space"):
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert sorted(p.name for p in earlier_export.iterdir()) == before
    assert sorted(p.name for p in earlier_export.parent.iterdir()) == ["merged"]


# ---------------------------------------------------------------- adapter folders: a message naming the folder


def _broken_adapter(source: Path, tmp_path: Path, name: str, **files: bytes | str) -> Path:
    out = tmp_path / name
    shutil.copytree(source, out)
    for file_name, content in files.items():
        path = out / file_name.replace("__", ".")
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return out


@pytest.mark.parametrize("name, files, expected", [
    ("not-json", {"adapter_config__json": "{not json"}, "adapter_config.json is not valid JSON"),
    ("not-utf8", {"adapter_config__json": b"\xff\xfe{}"}, "adapter_config.json is not valid JSON"),
    ("a-list", {"adapter_config__json": "[1, 2]"}, "holds a JSON list"),
    ("no-peft-type", {"adapter_config__json": "{}"}, "peft_type None"),
    ("rank-words", {"adapter_config__json": json.dumps({"peft_type": "LORA", "r": "eight"})}, "r 'eight'"),
    ("damaged-weights", {"adapter_model__safetensors": b"garbage" * 10}, "adapter_model.safetensors cannot be read"),
    ("empty-weights", {"adapter_model__safetensors": b""}, "adapter_model.safetensors cannot be read"),
])
def test_a_damaged_adapter_folder_is_one_message(monkeypatch, capsys, tiny_model_dir: Path, lf_adapter_dir: Path,
                                                 tmp_path: Path, name: str, files: dict, expected: str) -> None:
    from kit.chat import Engine
    from kit.model import ModelError

    adapter = _broken_adapter(lf_adapter_dir, tmp_path, name, **files)
    with pytest.raises(ModelError) as info:
        Engine(tiny_model_dir, adapter, do_sample=False)
    assert str(adapter) in str(info.value) and expected in str(info.value)
    # The same through `kit chat` and `kit export`: one line, no traceback.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hi\nexit\n"), encoding="utf-8"))
    assert cli.main(["chat", "--model_name_or_path", str(tiny_model_dir), "--adapter_name_or_path", str(adapter),
                     "--template", "qwen"]) == 2
    code, out, err = _cli_export(capsys, tiny_model_dir, adapter, tmp_path / "merged")
    assert code == 2 and expected in err and "Traceback" not in err
    assert not (tmp_path / "merged").exists()


def test_an_adapter_path_that_is_a_file(tiny_model_dir: Path, lf_adapter_dir: Path) -> None:
    from kit.chat import Engine
    from kit.model import ModelError

    weights = lf_adapter_dir / "adapter_model.safetensors"
    with pytest.raises(ModelError, match="is a file, not a folder") as info:
        Engine(tiny_model_dir, weights)
    assert f"did you mean its folder {str(lf_adapter_dir)!r}" in str(info.value)


def test_config_and_weights_from_different_adapters(tiny_model_dir: Path, lf_adapter_dir: Path, tmp_path: Path) -> None:
    from kit.chat import Engine
    from kit.model import ModelError

    config = json.loads((lf_adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    adapter = _broken_adapter(lf_adapter_dir, tmp_path, "mixed", adapter_config__json=json.dumps({**config, "r": 4}))
    with pytest.raises(ModelError, match="says r 4 but its weights have rank 8"):
        Engine(tiny_model_dir, adapter)


@pytest.fixture(scope="module")
def adapters_for_other_depths(tmp_path_factory) -> dict[int, Path]:
    """LoRA adapters for models like tiny_model_dir (same widths) but with 1 and 3 layers instead of 2."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from helpers import make_tiny_model

    out = {}
    for layers in (1, 3):
        root = tmp_path_factory.mktemp(f"depth{layers}")
        model_dir = make_tiny_model(root / "model", hidden=128, layers=layers)
        torch.manual_seed(0)
        peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32),
                                    LoraConfig(task_type="CAUSAL_LM", r=8, target_modules=["q_proj", "v_proj"],
                                               init_lora_weights=False))
        peft_model.save_pretrained(str(root / "adapter"))
        out[layers] = root / "adapter"
    return out


@pytest.mark.parametrize("layers, expected", [(1, "it adapts 1 model.layers.*.self_attn.q_proj layers but this model has 2"),
                                              (3, "do not exist in this model (e.g. model.layers.2.")])
def test_an_adapter_for_a_model_of_another_depth_is_refused(tiny_model_dir: Path, adapters_for_other_depths, layers: int,
                                                            expected: str) -> None:
    # peft loads these with a warning at most: the chat would answer with a partly applied adapter.
    from kit.chat import Engine
    from kit.model import ModelError

    with pytest.raises(ModelError, match="trained for another base model") as info:
        Engine(tiny_model_dir, adapters_for_other_depths[layers], do_sample=False)
    assert expected in str(info.value)


@pytest.mark.parametrize("content", [b"- a\n- b\n", b"\xff\xfe\x00 not text", b"template: 5\n"])
def test_an_unreadable_training_args_yaml_only_means_the_template_is_unknown(tiny_model_dir: Path, lf_adapter_dir: Path,
                                                                             tmp_path: Path, content: bytes) -> None:
    from kit.chat import Engine

    adapter = _broken_adapter(lf_adapter_dir, tmp_path, "odd-args", training_args__yaml=content)
    assert Engine(tiny_model_dir, adapter, template="qwen", do_sample=False, max_new_tokens=4).chat(
        [{"role": "user", "content": "hi"}])


# ---------------------------------------------------------------- the engine: mistakes are ChatErrors, odd text still answers

WHO = [{"role": "user", "content": "Who are you?"}]


@pytest.mark.parametrize("messages, expected", [
    ("Who are you?", "to send one text"),
    (None, "got a NoneType"),
    (["Who are you?"], r"messages\[0\]: expected a message"),
])
def test_messages_of_the_wrong_shape(base, messages, expected: str) -> None:
    from kit.chat import ChatError

    with pytest.raises(ChatError, match=expected):
        base.chat(messages)
    assert base.chat(WHO)  # still usable


def test_a_system_prompt_that_is_not_text(base) -> None:
    from kit.chat import ChatError

    with pytest.raises(ChatError, match="system: expected the system prompt's text"):
        base.chat(WHO, system=5)


def test_lone_surrogates_are_replaced_not_a_crash(base) -> None:
    messages = [{"role": "user", "content": "caf\udce9 and half an emoji \ud83d"}]
    prompt = base.prepare(messages)
    assert "caf\ufffd and half an emoji \ufffd" in base.tokenizer.decode(prompt.ids)
    assert base.chat(messages) == base.chat([{"role": "user", "content": "caf\ufffd and half an emoji \ufffd"}])
    # A pair written as two escapes (as JSON carries it) is the one character it encodes.
    assert "\U0001f600" in base.tokenizer.decode(base.prepare([{"role": "user", "content": "\ud83d\ude00"}]).ids)


def test_settings_given_as_text_are_read_as_the_config_reads_them(base) -> None:
    assert base.chat(WHO, max_new_tokens="4") == base.chat(WHO, max_new_tokens=4)


def test_a_tiny_temperature_samples_instead_of_failing(base) -> None:
    # transformers divides the scores by it: 1e-300 gave inf/nan and "probability tensor contains inf" at the first reply.
    assert base.chat(WHO, do_sample=True, temperature=1e-300, max_new_tokens=4)


def test_a_repetition_penalty_that_would_fail_at_the_first_reply_fails_at_load(tiny_model_dir: Path, base) -> None:
    from kit.chat import ChatError, Engine

    with pytest.raises(ChatError, match="repetition_penalty: 1e-300 is too small"):
        Engine(tiny_model_dir, repetition_penalty=1e-300)
    with pytest.raises(ChatError, match="repetition_penalty"):
        base.chat(WHO, repetition_penalty=1e-300)
    assert base.chat(WHO)


def test_a_system_prompt_longer_than_the_context_is_refused_not_cut(tiny_model_dir: Path, base) -> None:
    from kit.chat import ChatError, Engine

    # Cutting the prompt's front would silently drop the system prompt and the template's first tokens.
    with pytest.raises(ChatError, match="shorten the system prompt"):
        base.chat(WHO, system="be brief " * 2000)
    assert base.chat(WHO)
    with pytest.raises(ChatError, match="raise cutoff_len"):
        Engine(tiny_model_dir, cutoff_len=8)  # no room for any message at all: refused at load


def test_a_reply_that_fails_is_a_chat_error_and_the_engine_goes_on(base, monkeypatch) -> None:
    from kit.chat import ChatError

    def broken_generate(*args, **kwargs):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")

    with monkeypatch.context() as patch:
        patch.setattr(base.model, "generate", broken_generate)
        with pytest.raises(ChatError, match="the reply failed: RuntimeError: probability tensor"):
            base.chat(WHO)
    assert base.chat(WHO)


def test_a_long_chat_answers_as_fast_as_a_new_one(base, monkeypatch) -> None:
    """A history far beyond the context: the newest turns that fit, found in a few encodings, not one per dropped pair
    (which made each reply of a 1600-turn chat take 112 s here)."""
    messages = []
    for i in range(1000):
        messages += [{"role": "user", "content": f"question {i} about the quick brown fox"},
                     {"role": "assistant", "content": f"answer {i} about the lazy dog"}]
    messages.append({"role": "user", "content": "the last question"})
    template_class = type(base.template)
    real = template_class.encode_prompt
    calls = []

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(template_class, "encode_prompt", counting)
    prompt = base.prepare(messages)
    assert len(calls) <= 30
    monkeypatch.setattr(template_class, "encode_prompt", real)
    limit = base.context_len - min(base.generation.max_new_tokens, base.context_len // 2)
    system = base.template.default_system
    kept = messages[2 * prompt.dropped_turns:]
    assert prompt.ids == base.template.encode_prompt(base.tokenizer, kept, system) and len(prompt.ids) <= limit
    # The same turns as dropping the oldest pair at a time: one more pair would not have fitted.
    assert len(base.template.encode_prompt(base.tokenizer, messages[2 * prompt.dropped_turns - 2:], system)) > limit


def test_edge_settings_and_the_model_s_own_context(base, tiny_model_dir: Path, tmp_path: Path) -> None:
    """Guards what already held: LLaMA-Factory's temperature 0 means greedy even with do_sample; top_k 0 and top_p 1
    switch those filters off; max_new_tokens beyond the context is capped; a model whose max_position_embeddings is
    below cutoff_len gets prompts cut to its own context."""
    from kit.chat import Engine

    greedy = base.chat(WHO, do_sample=False)
    assert base.chat(WHO, do_sample=True, temperature=0) == greedy
    assert base.chat(WHO, do_sample=True, top_k=0, top_p=1.0, max_new_tokens=4)
    prompt = base.prepare(WHO, max_new_tokens=10**6)
    assert len(prompt.ids) + prompt.max_new_tokens <= base.context_len
    short = tmp_path / "short-context"
    shutil.copytree(tiny_model_dir, short)
    config = json.loads((short / "config.json").read_text(encoding="utf-8"))
    (short / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 64}), encoding="utf-8")
    engine = Engine(short, do_sample=False, max_new_tokens=8)
    assert engine.context_len == 64
    prompt = engine.prepare([{"role": "user", "content": "word " * 500}])
    assert prompt.truncated and len(prompt.ids) + prompt.max_new_tokens <= 64
    assert engine.chat([{"role": "user", "content": "word " * 500}]) is not None


def test_a_closed_pipe_ends_kit_chat_quietly() -> None:
    from kit.chat.terminal import run_loop

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            if "Assistant: " in text or "piece" in text:
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(text)

    with pytest.raises(BrokenPipeError):  # kit.cli turns it into status 0, as for `kit ... | head`
        run_loop(_ScriptedEngine("piece"), io.StringIO("hi\n"), ClosedPipe())


# ---------------------------------------------------------------- `kit chat`: nothing ends the chat in the middle


class _ScriptedEngine:
    """Replies from a script: a text, or an exception raised after the reply's first piece."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.stopped = 0
        self.seen: list[list[dict[str, str]]] = []

    def stream(self, messages):
        self.seen.append([dict(m) for m in messages])
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            yield "partial"
            raise reply
        yield reply

    def stop(self) -> None:
        self.stopped += 1


def test_ctrl_c_during_a_reply_stops_it_and_the_chat_goes_on() -> None:
    from kit.chat.terminal import run_loop

    engine, out = _ScriptedEngine(KeyboardInterrupt(), "second answer"), io.StringIO()
    assert run_loop(engine, io.StringIO("first\nsecond\n"), out) == 0
    assert engine.stopped == 1 and "reply stopped" in out.getvalue() and "second answer" in out.getvalue()
    # What was shown of the stopped reply stays in the history, as in the notebook panel.
    assert engine.seen[1] == [{"role": "user", "content": "first"}, {"role": "assistant", "content": "partial"},
                              {"role": "user", "content": "second"}]


@pytest.mark.parametrize("failure", [RuntimeError("CUDA error: device-side assert"), ValueError("odd")])
def test_a_failed_reply_is_a_message_and_the_chat_goes_on(failure: Exception) -> None:
    from kit.chat.terminal import run_loop

    engine, out = _ScriptedEngine(failure, "second answer"), io.StringIO()
    assert run_loop(engine, io.StringIO("first\nsecond\n"), out) == 0
    assert f"error: the reply failed: {type(failure).__name__}" in out.getvalue() and "second answer" in out.getvalue()
    assert engine.seen[1] == [{"role": "user", "content": "second"}]  # the failed turn is not in the history


def test_a_kit_error_during_a_reply_keeps_the_chat(monkeypatch, capsys, tiny_model_dir: Path) -> None:
    # A reply the engine refuses (here: a system prompt with no room left) is one line; the next question is answered.
    from kit.chat import ChatError, Engine

    real = Engine.stream
    calls = []

    def refuse_first(self, messages, *args, **kwargs):
        calls.append(len(messages))
        if len(calls) == 1:
            raise ChatError("no room for this one")
        return real(self, messages, *args, **kwargs)

    monkeypatch.setattr(Engine, "stream", refuse_first)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"first\nsecond\nexit\n"), encoding="utf-8"))
    code = cli.main(["chat", "--model_name_or_path", str(tiny_model_dir), "--template", "qwen", "--do_sample", "false",
                     "--max_new_tokens", "4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "error: no room for this one" in out and out.count("Assistant: ") == 2
    assert calls == [1, 1]  # the refused question left no trace in the history


def test_lone_surrogates_on_a_text_stdin() -> None:
    from kit.chat.terminal import run_loop

    engine, out = _ScriptedEngine("ok"), io.StringIO()
    assert run_loop(engine, io.StringIO("half an emoji \ud83d\n"), out) == 0
    assert engine.seen == [[{"role": "user", "content": "half an emoji \ufffd"}]]
    assert "not valid Unicode" in out.getvalue()


def test_a_terminal_that_cannot_show_the_reply() -> None:
    # LANG=C or a latin-1 console: a reply in Chinese is shown with ? rather than ending the chat.
    from kit.chat.terminal import run_loop

    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    assert run_loop(_ScriptedEngine("你好", "again"), io.StringIO("hi\nhi\n"), out) == 0
    assert b"Assistant: ??" in raw.getvalue() and b"again" in raw.getvalue()


_ENDLESS_CHAT = """
import sys, time
from kit.chat import engine

def endless(self, prompt_ids, settings, stop_ids, stop_event, use_adapter=True):
    while not stop_event.is_set():
        time.sleep(0.01)
        yield "word "

engine.HuggingfaceBackend.generate = endless
from kit import cli
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_ctrl_c_on_a_real_terminal(tiny_model_dir: Path) -> None:
    """`kit chat` on a pseudo-terminal: Ctrl+C (the terminal's SIGINT) mid-reply stops the reply, the chat goes on;
    bytes that are not UTF-8 are reported; Ctrl+C at the prompt leaves with status 0. The engine, its reply thread
    and stop are the real ones; only the model's generate is replaced by one that writes until it is stopped."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: kit chat, whose model writes until it is stopped (any real model may end its reply first)
        os.environ.update(HF_HUB_OFFLINE="1", KIT_LANG="en", OMP_NUM_THREADS="1")
        # A person's shell starts kit chat with SIGINT at its default. Tests started as a background job of a
        # non-interactive shell (`.ci/run &`) inherit it ignored, and Python keeps an ignored SIGINT ignored,
        # so without this the terminal's Ctrl+C would never reach the chat.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(sys.executable, [sys.executable, "-c", _ENDLESS_CHAT, "chat", "--model_name_or_path", str(tiny_model_dir),
                                  "--template", "qwen", "--do_sample", "false"])
    seen = b""

    def wait_for(token: bytes, after: int = 0, seconds: float = 120) -> int:
        nonlocal seen
        end = time.monotonic() + seconds
        while seen.find(token, after) < 0:
            assert time.monotonic() < end, f"waited for {token!r}; got {seen[-2000:]!r}"
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 65536)
                except OSError:  # the child has gone
                    break
        assert seen.find(token, after) >= 0, f"kit chat ended before {token!r}: {seen[-2000:]!r}"
        return seen.find(token, after)

    try:
        wait_for(b"User: ")
        os.write(fd, b"tell me a long story\r")
        start = wait_for(b"Assistant: ")
        wait_for(b"word word", start)  # some of the reply is on the screen
        os.write(fd, b"\x03")
        stopped = wait_for(b"reply stopped")
        prompt = wait_for(b"User: ", stopped)
        os.write(fd, b"caf\xe9\r")
        wait_for(b"not valid UTF-8", prompt)
        wait_for(b"Assistant: ", prompt)
        os.write(fd, b"\x03")  # stops the second reply
        prompt = wait_for(b"User: ", wait_for(b"reply stopped", prompt))
        time.sleep(0.2)
        os.write(fd, b"\x03")  # at the prompt: leave
        end = time.monotonic() + 60
        while not (done := os.waitpid(pid, os.WNOHANG))[0]:
            assert time.monotonic() < end, "kit chat did not leave on Ctrl+C at the prompt"
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    pass
        assert os.waitstatus_to_exitcode(done[1]) == 0, seen[-2000:]
        assert b"Traceback" not in seen
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


# ---------------------------------------------------------------- the notebook panel


def test_the_panel_cleans_text_from_the_browser(base) -> None:
    from kit.chat import ChatPanel

    panel = ChatPanel(base)
    panel.system.value = "Be brief \ud83d"
    assert panel.send("caf\udce9 \ud83d")
    assert panel.wait(60)
    assert not panel.errors
    assert panel.history[0]["content"] == "caf\ufffd \ufffd"
    panel.widget.children[0].children[0].children[1].value.encode("utf-8")  # the transcript the browser gets


@pytest.mark.parametrize("entry", ["../../victim.txt", "/VICTIM", "a/../../victim.txt", "..\\victim.txt"])
def test_a_marker_listing_paths_outside_the_export_replaces_nothing(tiny_model_dir: Path, tiny_adapter_dir: Path,
                                                                    earlier_export: Path, entry: str) -> None:
    victim = earlier_export.parent / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    marker = earlier_export / export_mod.EXPORT_MARKER
    data = json.loads(marker.read_text(encoding="utf-8"))
    data["files"].append(entry.replace("/VICTIM", str(victim)))
    marker.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(export_mod.ExportError, match="does not list the files"):
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert victim.read_text(encoding="utf-8") == "precious" and (earlier_export / "model.safetensors").is_file()


def test_sigterm_while_exporting_leaves_no_staging_folder(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path,
                                                          monkeypatch) -> None:
    """A closed terminal (SIGHUP) or a kill (SIGTERM) mid-save cleans up as Ctrl+C does."""
    from kit.run.launch import Terminated

    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        pytest.skip("SIGTERM is not at its default in this process: the kit leaves such a setting alone")
    real = export_mod.write_marker

    def killed_while_saving(staging, info):
        real(staging, info)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(export_mod, "write_marker", killed_while_saving)
    with pytest.raises(Terminated):
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, tmp_path / "merged"))
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler was the export's only while it ran


def test_an_export_folder_has_the_usual_permissions(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, tmp_path / "merged"))
    finally:
        os.umask(old)
    assert (tmp_path / "merged").stat().st_mode & 0o777 == 0o755  # not mkdtemp's private 0700: a server may read it


def test_lora_weights_of_two_ranks_name_the_mismatch_not_a_header(tiny_model_dir: Path, lf_adapter_dir: Path,
                                                                  tmp_path: Path) -> None:
    """lora_B cut to rank 4 while lora_A and adapter_config.json say 8: the message shows the size mismatch itself."""
    from safetensors.torch import load_file, save_file

    from kit.chat import Engine
    from kit.model import ModelError

    adapter = tmp_path / "adapter"
    shutil.copytree(lf_adapter_dir, adapter)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    weights = {k: (v[:, :4].contiguous() if "lora_B" in k else v) for k, v in weights.items()}
    save_file(weights, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(ModelError) as info:
        Engine(tiny_model_dir, adapter, do_sample=False)
    text = str(info.value)
    assert "size mismatch for" in text and "lora_B" in text and "Error(s) in loading" not in text, text
