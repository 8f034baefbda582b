"""The chat engine (kit/chat/engine.py) on the tiny model: prompts, adapters, streaming, stop, trimming."""

from __future__ import annotations

import gc
import logging
import threading
import warnings
from pathlib import Path

import pytest
import torch

from kit.chat import ChatError, Engine, GenerationSettings, TemplateMismatchWarning, chat_config
from kit.config import ConfigError
from kit.data import template as template_mod
from kit.model import ModelError

WHO = [{"role": "user", "content": "Who are you?"}]


def _greedy_reply(engine: Engine, ids: list[int], max_new_tokens: int) -> str:
    """What transformers alone generates from ``ids``: the reference for the engine's reply."""
    with torch.no_grad():
        out = engine.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                    do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=engine.stop_ids,
                                    pad_token_id=engine.tokenizer.pad_token_id)
    return engine.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)


def test_generation_defaults_are_llamafactorys(base: Engine) -> None:
    assert GenerationSettings() == GenerationSettings(do_sample=True, temperature=0.95, top_p=0.7, top_k=50,
                                                      max_new_tokens=1024, repetition_penalty=1.0)
    assert base.generation.greedy and base.generation.max_new_tokens == 24
    assert GenerationSettings(temperature=0).greedy


def test_greedy_is_deterministic_and_the_adapter_changes_the_reply(base: Engine, tuned: Engine) -> None:
    first = base.chat(WHO)
    assert first and first == base.chat(WHO)
    assert tuned.chat(WHO) == tuned.chat(WHO)
    assert tuned.chat(WHO) != first


def test_stream_yields_pieces_that_make_the_reply(tuned: Engine) -> None:
    pieces = list(tuned.stream(WHO))
    assert len(pieces) > 1
    assert "".join(pieces) == tuned.chat(WHO)
    assert "<|im_end|>" not in "".join(pieces)  # stop words end the reply and are not shown


def test_prompt_is_the_training_templates_encoding(tuned: Engine) -> None:
    qwen = template_mod.get("qwen")
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]
    assert tuned.prepare(messages).ids == qwen.encode_prompt(tuned.tokenizer, messages, qwen.default_system)
    assert tuned.prepare(messages, system="Be short.").ids == qwen.encode_prompt(tuned.tokenizer, messages, "Be short.")
    # An OpenAI-style leading system message means the same as the system argument.
    assert tuned.prepare([{"role": "system", "content": "Be short."}, *messages]).ids == tuned.prepare(messages, "Be short.").ids
    assert tuned.stop_ids == [tuned.tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_unmerged_adapter_gives_the_same_reply_as_merged(tiny_model_dir: Path, tiny_adapter_dir: Path, tuned: Engine) -> None:
    from peft import PeftModel

    unmerged = Engine(tiny_model_dir, tiny_adapter_dir, do_sample=False, max_new_tokens=24, merge_adapter=False)
    assert isinstance(unmerged.model, PeftModel)
    assert not isinstance(tuned.model, PeftModel)  # merged at load
    assert unmerged.chat(WHO) == tuned.chat(WHO)


def test_several_adapters_are_merged_in_order(tiny_model_dir: Path, tiny_adapter_dir: Path, lf_adapter_dir: Path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    engine = Engine(tiny_model_dir, f"{lf_adapter_dir},{tiny_adapter_dir}", do_sample=False, max_new_tokens=8)
    base_model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    name = "model.layers.0.self_attn.q_proj"
    expected = dict(base_model.named_modules())[name].weight.detach().clone()
    for adapter, scale in ((lf_adapter_dir, 16 / 8), (tiny_adapter_dir, 16 / 8)):
        weights = load_file(str(adapter / "adapter_model.safetensors"))
        a = weights[f"base_model.model.{name}.lora_A.weight"]
        b = weights[f"base_model.model.{name}.lora_B.weight"]
        expected += scale * (b @ a)
    merged = dict(engine.model.named_modules())[name].weight
    assert torch.allclose(merged, expected, atol=1e-5)
    assert engine.chat(WHO)


def test_llamafactory_layout_adapter_loads(tiny_model_dir: Path, lf_adapter_dir: Path, base: Engine) -> None:
    assert not (lf_adapter_dir / "training_args.yaml").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TemplateMismatchWarning)  # nothing recorded: nothing to warn about
        engine = Engine(tiny_model_dir, lf_adapter_dir, do_sample=False, max_new_tokens=24)
    reply = engine.chat(WHO)
    assert reply == engine.chat(WHO)
    assert reply != base.chat(WHO)


def test_template_other_than_trained_warns(tiny_model_dir: Path, tiny_adapter_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kit.chat"), pytest.warns(TemplateMismatchWarning, match="trained with template 'qwen'"):
        engine = Engine(tiny_model_dir, tiny_adapter_dir, template="default", max_new_tokens=4)
    assert engine.template.name == "default"
    assert "--template qwen" in caplog.text


def test_missing_template_is_taken_from_the_adapter(tiny_model_dir: Path, tiny_adapter_dir: Path) -> None:
    assert Engine(tiny_model_dir, tiny_adapter_dir, template=None, max_new_tokens=4).template.name == "qwen"
    with pytest.raises(template_mod.TemplateError, match="template: missing"):
        Engine(tiny_model_dir, None, template=None)


def test_stop_from_another_thread_ends_the_reply(base: Engine) -> None:
    # The random base model loops without an end-of-turn token, so only stop() can end this early.
    full = base.chat(WHO, max_new_tokens=1000)
    pieces: list[str] = []
    for piece in base.stream(WHO, max_new_tokens=1000):
        pieces.append(piece)
        if len(pieces) == 3:
            threading.Thread(target=base.stop).start()
    assert 3 <= len(pieces) < 50
    assert len("".join(pieces)) < len(full)
    assert base.chat(WHO)  # the engine answers again afterwards


@pytest.mark.parametrize("abandon", ["close", "drop", "break"])
def test_an_abandoned_stream_stops_and_frees_the_engine(base: Engine, abandon: str) -> None:
    expected = base.chat(WHO)
    if abandon == "break":
        for taken, _ in enumerate(base.stream(WHO, max_new_tokens=1000), start=1):
            if taken == 2:
                break  # the loop's stream is dropped here
    else:
        stream = base.stream(WHO, max_new_tokens=1000)
        assert next(stream) and next(stream)
        if abandon == "close":
            stream.close()
            assert list(stream) == []  # a closed stream ends, as a closed generator does
        else:
            del stream
            gc.collect()
    assert base.chat(WHO) == expected  # waits for the abandoned reply to end, then answers afresh
    assert not base.busy


def test_a_second_request_while_a_reply_streams_is_refused_until_stop(base: Engine) -> None:
    full = base.chat(WHO, max_new_tokens=1000)
    first = base.stream(WHO, max_new_tokens=1000)
    first_pieces = [next(first)]
    assert base.busy
    with pytest.raises(ChatError, match="a reply is still being generated; call stop\\(\\) or finish reading it"):
        base.stream(WHO)
    errors: list[BaseException] = []

    def from_another_thread() -> None:
        try:
            base.chat(WHO)
        except ChatError as exc:
            errors.append(exc)

    worker = threading.Thread(target=from_another_thread)
    worker.start()
    worker.join(30)
    assert len(errors) == 1 and "still being generated" in str(errors[0])
    base.stop()  # ends the first reply; its reader sees the end
    first_pieces += list(first)
    assert len("".join(first_pieces)) < len(full)
    assert base.chat(WHO) == base.chat(WHO)


def test_stop_frees_the_engine_even_when_the_reader_never_reads_again(base: Engine) -> None:
    expected = base.chat(WHO)
    stalled = base.stream(WHO, max_new_tokens=1000)
    assert next(stalled)
    base.stop()  # `stalled` is still referenced and never read again
    assert base.chat(WHO) == expected
    stalled.close()


def test_engine_from_a_loaded_config_is_the_same_engine(tiny_model_dir: Path, base: Engine) -> None:
    cfg = chat_config(tiny_model_dir, do_sample=False, max_new_tokens=24)
    engine = Engine(config=cfg)
    assert engine.cfg is cfg and engine.template.name == "qwen" and engine.generation == base.generation
    assert engine.chat(WHO) == base.chat(WHO)
    with pytest.raises(ChatError, match="not both"):
        Engine(tiny_model_dir, config=cfg)


def test_long_history_drops_oldest_turns(tiny_model_dir: Path) -> None:
    engine = Engine(tiny_model_dir, cutoff_len=128, do_sample=False, max_new_tokens=16)
    messages = []
    for i in range(12):
        messages += [{"role": "user", "content": f"question number {i} about the quick brown fox"},
                     {"role": "assistant", "content": f"answer number {i} about the lazy dog"}]
    messages.append({"role": "user", "content": "the last question"})
    prompt = engine.prepare(messages)
    assert prompt.dropped_turns > 0 and not prompt.truncated
    assert len(prompt.ids) + prompt.max_new_tokens <= 128
    kept = messages[2 * prompt.dropped_turns:]
    assert prompt.ids == engine.template.encode_prompt(engine.tokenizer, kept, engine.template.default_system)
    # The reply is generated from the trimmed prompt, within the room left for it.
    assert engine.chat(messages) == _greedy_reply(engine, prompt.ids, prompt.max_new_tokens)


def test_a_single_message_longer_than_the_context_is_cut_not_a_crash(tiny_model_dir: Path) -> None:
    engine = Engine(tiny_model_dir, cutoff_len=64, do_sample=False, max_new_tokens=8)
    prompt = engine.prepare([{"role": "user", "content": "word " * 500}])
    assert prompt.truncated and len(prompt.ids) + prompt.max_new_tokens <= 64
    assert prompt.ids[-3:] == engine.tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)[-3:]
    assert engine.chat([{"role": "user", "content": "word " * 500}]) == _greedy_reply(engine, prompt.ids, prompt.max_new_tokens)


def test_bad_messages_and_settings_are_clear_errors(base: Engine) -> None:
    with pytest.raises(ChatError, match="empty"):
        base.chat([])
    with pytest.raises(ChatError, match="last message must be the user's"):
        base.chat([*WHO, {"role": "assistant", "content": "x"}])
    with pytest.raises(ChatError, match="expected 'user'"):
        base.chat([{"role": "assistant", "content": "x"}])
    with pytest.raises(ChatError, match="unknown generation setting"):
        base.chat(WHO, temprature=0.5)
    with pytest.raises(ConfigError, match="top_p"):
        base.chat(WHO, top_p=2.0)


def test_bad_engine_arguments_are_kit_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="infer_backend"):
        Engine(tiny_model_dir, infer_backend="tensorrt")
    with pytest.raises(ConfigError, match="finetuning_type"):
        Engine(tiny_model_dir, tmp_path, finetuning_type="full")
    with pytest.raises(ModelError, match="does not exist"):
        Engine(tiny_model_dir, tmp_path / "nope")
    with pytest.raises(ModelError, match="not a LoRA adapter"):
        Engine(tiny_model_dir, tmp_path)
