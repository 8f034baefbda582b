"""Qwen3: the qwen3 and qwen3_nothink templates in training and chat, on a tiny Qwen3 model built here.

LLaMA-Factory's own encodings are the reference: golden-qwen3/ (tests/test_parity.py) holds data without
thoughts; tests/fixtures/lf095_thoughts.json holds conversations with thoughts, encoded by LLaMA-Factory
0.9.5's template and supervised processor (tests/fixtures/lf095_thoughts.py makes it). Both use the
reference tiny-qwen tokenizer and skip, saying why, without shared/reference. The rest runs anywhere.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from kit import cli, config
from kit.chat import Engine, TemplateMismatchWarning
from kit.chat.export import jinja_chat_template
from kit.chat.terminal import run_loop
from kit.data import encode_supervised, get_template
from kit.data.loader import Example
from kit.data.template import with_thinking
from kit.model import load_tokenizer

from helpers import CORPUS, REFERENCE

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = FIXTURES.parents[1]
sys.path.insert(0, str(FIXTURES))
from lf095_thoughts import CONVERSATIONS, chat_settings, messages  # noqa: E402

THOUGHTS = FIXTURES / "lf095_thoughts.json"
EMPTY_THOUGHT = "<think>\n\n</think>\n\n"
QWEN3_CHAT_TEMPLATE = (  # the shape of Qwen3's own: thoughts of earlier replies dropped, enable_thinking honoured
    "{%- for message in messages -%}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['role'] == 'assistant' -%}{{ message['content'].split('</think>')[-1].lstrip('\n') }}"
    "{%- else -%}{{ message['content'] }}{%- endif -%}{{ '<|im_end|>\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{ '<think>\n\n</think>\n\n' }}{%- endif -%}{%- endif -%}"
)


def make_tiny_qwen3(out: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A random-init Qwen3ForCausalLM and a byte-level BPE tokenizer trained here, shaped like Qwen3's.

    As in Qwen3's tokenizer, <think> and </think> are added tokens that are not special (a decoded
    reply keeps them), besides the ChatML special tokens.
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False), AddedToken("</think>", special=False, normalized=False)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = QWEN3_CHAT_TEMPLATE
    fast.save_pretrained(str(out))
    torch.manual_seed(seed)
    cfg = Qwen3Config(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=hidden // 4, max_position_embeddings=4096,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
                      tie_word_embeddings=False)
    Qwen3ForCausalLM(cfg).save_pretrained(str(out), safe_serialization=True)
    return out


def _thought(text: str) -> str:
    return f"<think>\n{text}\n</think>\n\n"


IDENTITY = [
    {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an assistant made by {{author}}."},
    {"instruction": "你是谁？", "input": "", "output": "我是 {{name}}，由 {{author}} 开发。"},
]
ALPACA = [
    {"instruction": "Name three colours.", "input": "", "output": "Red, green and blue."},
    {"instruction": "What is 2 + 3?", "input": "", "output": _thought("Count on from two.") + "2 + 3 = 5."},
    {"instruction": "Translate into French.", "input": "hello", "output": "Bonjour."},
]


def make_data(out: Path) -> Path:
    """identity and alpaca_en_demo, the datasets qwen3_lora_sft.yaml names, a few examples each."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "identity.json").write_text(json.dumps(IDENTITY * 4, ensure_ascii=False), encoding="utf-8")
    (out / "alpaca_en_demo.json").write_text(json.dumps(ALPACA * 4, ensure_ascii=False), encoding="utf-8")
    (out / "dataset_info.json").write_text(json.dumps({"identity": {"file_name": "identity.json"},
                                                       "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory) -> Path:
    return make_tiny_qwen3(tmp_path_factory.mktemp("qwen3") / "tiny-qwen3")


@pytest.fixture()
def tokenizer(qwen3_dir):
    return load_tokenizer(qwen3_dir, get_template("qwen3"))


@pytest.fixture(scope="module")
def lf_run(qwen3_dir, tmp_path_factory) -> Path:
    """`kit train qwen3_lora_sft.yaml max_steps=2`, run where the YAML's relative paths point at local test values."""
    work = tmp_path_factory.mktemp("lf-run")
    shutil.copy(FIXTURES / "qwen3_lora_sft.yaml", work / "qwen3_lora_sft.yaml")
    shutil.copytree(qwen3_dir, work / "tiny-qwen3")
    make_data(work / "data")
    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    try:
        # max_steps keeps it short; dataloader_num_workers 0 spares a 2-core machine four worker processes.
        code = cli.main(["train", "qwen3_lora_sft.yaml", "max_steps=2", "dataloader_num_workers=0", "identity_name=Lumi",
                         "identity_author=Acme"])
    finally:
        mp.undo()
    assert code == 0
    return work


# ---------------------------------------------------------------- LLaMA-Factory's encodings of thoughts

def _lf_thoughts() -> dict:
    if not (REFERENCE / "tiny-qwen").is_dir():
        pytest.skip(f"LLaMA-Factory's reference tokenizer not found at {REFERENCE / 'tiny-qwen'}")
    return json.loads(THOUGHTS.read_text(encoding="utf-8"))


def _template(settings: dict):
    return with_thinking(get_template(settings["template"]), settings.get("enable_thinking", True))


def test_training_encodings_of_thoughts_equal_llamafactorys():
    data = _lf_thoughts()
    assert data["conversations"] == json.loads(json.dumps(CONVERSATIONS, ensure_ascii=False))  # the cases it was made from
    for row in data["training"]:
        settings, conversation = row["settings"], CONVERSATIONS[row["conversation"]]
        template = _template(settings)
        tokenizer = load_tokenizer(REFERENCE / "tiny-qwen", template)
        msgs = messages(conversation)
        example = Example("lf", row["conversation"], msgs[:-1], msgs[-1:], conversation.get("system"))
        ids, labels = encode_supervised(template, tokenizer, example, settings.get("cutoff_len", 1024),
                                        settings.get("train_on_prompt", False), settings.get("mask_history", False))
        where = f"{settings}, conversation {row['conversation']}"
        assert ids == row["input_ids"], f"input_ids differ: {where}"
        assert labels == row["labels"], f"labels differ: {where}"
    assert {json.dumps(r["settings"], sort_keys=True) for r in data["training"]} >= {
        json.dumps(s, sort_keys=True) for s in ({"template": "qwen3", "enable_thinking": v} for v in (True, False, None))}


def test_chat_prompts_with_thoughts_in_the_history_equal_llamafactorys():
    data = _lf_thoughts()
    assert data["chat"]
    for row in data["chat"]:
        settings, conversation = row["settings"], CONVERSATIONS[row["conversation"]]
        assert chat_settings(settings)
        template = _template(settings)
        tokenizer = load_tokenizer(REFERENCE / "tiny-qwen", template)
        prompt = template.encode_prompt(tokenizer, messages(conversation)[: row["turns"]], conversation.get("system"))
        assert prompt == row["prompt_ids"], f"{settings}, conversation {row['conversation']}, {row['turns']} turn(s)"


# ---------------------------------------------------------------- what goes into prompt and labels

def _split(tokenizer, ids, labels) -> tuple[str, str]:
    prompt = tokenizer.decode([t for t, l in zip(ids, labels) if l == -100])
    trained = tokenizer.decode([l for l in labels if l != -100])
    return prompt, trained


def test_a_thought_is_trained_with_thinking_on_and_removed_with_it_off(tokenizer):
    msgs = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": _thought("Count on.") + "5."}]
    example = Example("x", 0, msgs[:1], msgs[1:])
    qwen3 = get_template("qwen3")
    assert qwen3.enable_thinking is True  # LLaMA-Factory's default
    prompt, trained = _split(tokenizer, *encode_supervised(qwen3, tokenizer, example, 1024))
    assert prompt.endswith("<|im_start|>assistant\n") and trained == _thought("Count on.") + "5.<|im_end|>\n"
    prompt, trained = _split(tokenizer, *encode_supervised(with_thinking(qwen3, False), tokenizer, example, 1024))
    assert prompt.endswith("<|im_start|>assistant\n" + EMPTY_THOUGHT) and trained == "5.<|im_end|>\n"
    # qwen3_nothink is a plain template: a thought is text like any other, trained as written.
    prompt, trained = _split(tokenizer, *encode_supervised(get_template("qwen3_nothink"), tokenizer, example, 1024))
    assert "think" not in prompt and trained == _thought("Count on.") + "5.<|im_end|>\n"


def test_a_reply_without_a_thought_gets_the_empty_one_in_labels_or_prompt(tokenizer):
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "first"},
            {"role": "user", "content": "b"}, {"role": "assistant", "content": "second"}]
    example = Example("x", 0, msgs[:-1], msgs[-1:])
    qwen3 = get_template("qwen3")
    _, trained = _split(tokenizer, *encode_supervised(qwen3, tokenizer, example, 1024))
    assert trained == EMPTY_THOUGHT + "first<|im_end|>\n" + EMPTY_THOUGHT + "second<|im_end|>\n"
    for off in (False, None):  # null: thoughts kept, empty ones in the prompt (LLaMA-Factory's `not enable_thinking`)
        ids, labels = encode_supervised(with_thinking(qwen3, off), tokenizer, example, 1024)
        assert _split(tokenizer, ids, labels)[1] == "first<|im_end|>\nsecond<|im_end|>\n"
        assert tokenizer.decode(ids).count(EMPTY_THOUGHT) == 2
    # mask_history: only the last reply is trained, and only it keeps a thought.
    msgs[1]["content"] = _thought("old") + "first"
    ids, labels = encode_supervised(qwen3, tokenizer, Example("x", 0, msgs[:-1], msgs[-1:]), 1024, mask_history=True)
    assert "old" not in tokenizer.decode(ids)
    assert _split(tokenizer, ids, labels)[1] == EMPTY_THOUGHT + "second<|im_end|>\n"
    ids, _ = encode_supervised(qwen3, tokenizer, Example("x", 0, msgs[:-1], msgs[-1:]), 1024)
    assert _thought("old") + "first" in tokenizer.decode(ids)  # without mask_history, history thoughts are trained


def test_enable_thinking_is_a_data_key_with_llamafactorys_default():
    assert config.from_dict({}).data.enable_thinking is True
    assert config.from_dict({"enable_thinking": "false"}).data.enable_thinking is False
    assert config.from_dict({"enable_thinking": None}).data.enable_thinking is None
    with pytest.raises(config.ConfigError, match="enable_thinking: 'sometimes' is not a boolean"):
        config.from_dict({"enable_thinking": "sometimes"})
    row = next(r for r in config.key_reference() if r["key"] == "enable_thinking")  # what `kit keys` prints
    assert row["section"] == "data" and row["default"] is True and "qwen3" in row["help"]


def test_build_sft_takes_enable_thinking_from_the_config(qwen3_dir, tmp_path, tokenizer):
    from kit.data import build_sft

    data_dir = make_data(tmp_path / "data")
    rows = {}
    for value in (True, False):
        cfg = config.from_dict({"dataset": "alpaca_en_demo", "dataset_dir": str(data_dir), "template": "qwen3",
                                "enable_thinking": value, "max_samples": 3})
        rows[value] = build_sft(cfg, tokenizer, get_template("qwen3"), split=False).all
    thought_row = 1  # "What is 2 + 3?" answers with a thought
    assert _split(tokenizer, rows[True][thought_row]["input_ids"], rows[True][thought_row]["labels"])[1].startswith("<think>\nCount")
    assert "Count on" not in tokenizer.decode(rows[False][thought_row]["input_ids"])
    assert _split(tokenizer, rows[False][0]["input_ids"], rows[False][0]["labels"])[0].endswith(EMPTY_THOUGHT)


# ---------------------------------------------------------------- LLaMA-Factory's qwen3 example, trained and chatted with

def test_llamafactory_qwen3_yaml_trains_with_kit_train(lf_run):
    out = lf_run / "saves" / "tiny-qwen3" / "lora" / "sft"
    for name in ("adapter_config.json", "adapter_model.safetensors", "trainer_log.jsonl", "all_results.json"):
        assert (out / name).is_file(), name
    trained = yaml.safe_load((out / "training_args.yaml").read_text(encoding="utf-8"))
    assert trained["template"] == "qwen3_nothink" and trained["lora_target"] == "all" and trained["enable_thinking"] is True
    adapter = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    # lora_target: all reaches every linear layer of Qwen3's blocks.
    assert set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert json.loads((out / "all_results.json").read_text())["train_loss"] > 0


def test_kit_chat_answers_with_the_template_it_was_trained_with(lf_run):
    # LLaMA-Factory's examples/inference/qwen3_lora_sft.yaml, with the local model and adapter.
    inference = {"model_name_or_path": str(lf_run / "tiny-qwen3"), "adapter_name_or_path": str(lf_run / "saves/tiny-qwen3/lora/sft"),
                 "template": "qwen3_nothink", "infer_backend": "huggingface", "trust_remote_code": True,
                 "do_sample": False, "max_new_tokens": 12}
    with warnings.catch_warnings():
        warnings.simplefilter("error", TemplateMismatchWarning)
        engine = Engine(config=config.from_dict(inference))
    assert engine.template.name == "qwen3_nothink"
    question = [{"role": "user", "content": "Name three colours."}]
    # The chat prompt is the prompt part of the training example for the same question, token for token.
    from kit.data import build_sft

    cfg = config.load(lf_run / "qwen3_lora_sft.yaml", ["model_name_or_path=" + str(lf_run / "tiny-qwen3")])
    rows = build_sft(cfg, engine.tokenizer, engine.template, split=False).all
    row = rows[len(IDENTITY) * 4]  # the first alpaca example
    prompt_len = next(i for i, l in enumerate(row["labels"]) if l != -100)
    assert engine.prepare(question).ids == row["input_ids"][:prompt_len]
    assert engine.tokenizer.decode(engine.prepare(question).ids).endswith("<|im_start|>assistant\n")  # no thought block
    reply = engine.chat(question)
    assert isinstance(reply, str) and reply == engine.chat(question)  # greedy: the same answer twice
    # `kit chat` with the same keys runs the terminal loop on this engine.
    out = io.StringIO()
    assert run_loop(engine, io.StringIO("Name three colours.\nexit\n"), out) == 0
    assert f"Assistant: {reply}\n" in out.getvalue()
    engine.close()


def _adapter_with(lf_run: Path, tmp_path: Path, **recorded) -> Path:
    """A copy of the trained adapter whose training_args.yaml says it was trained with other keys."""
    adapter = tmp_path / "adapter"
    shutil.copytree(lf_run / "saves" / "tiny-qwen3" / "lora" / "sft", adapter,
                    ignore=shutil.ignore_patterns("checkpoint-*", "*.png"))
    args = yaml.safe_load((adapter / "training_args.yaml").read_text(encoding="utf-8"))
    args.update(recorded)
    (adapter / "training_args.yaml").write_text(yaml.safe_dump(args), encoding="utf-8")
    return adapter


def test_mismatch_warnings_know_the_qwen3_templates(lf_run, tmp_path):
    model = lf_run / "tiny-qwen3"
    nothink = lf_run / "saves" / "tiny-qwen3" / "lora" / "sft"
    with pytest.warns(TemplateMismatchWarning, match=r"trained with template 'qwen3_nothink' but chat uses 'qwen3' "
                                                     r"\(qwen3 adds a <think> block .*--template qwen3_nothink"):
        Engine(model, nothink, template="qwen3", max_new_tokens=2)
    thinking = _adapter_with(lf_run, tmp_path, template="qwen3", enable_thinking=False)
    with pytest.warns(TemplateMismatchWarning, match=r"trained with enable_thinking: false but chat uses true.*"
                                                     r"--enable_thinking false to match training"):
        Engine(model, thinking, template="qwen3", max_new_tokens=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TemplateMismatchWarning)
        engine = Engine(model, thinking, template=None, enable_thinking=False, max_new_tokens=2)  # as trained
    assert engine.template.name == "qwen3" and engine.template.enable_thinking is False


def test_a_qwen3_model_with_the_qwen_template_gets_a_hint(qwen3_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="kit.chat"):
        Engine(qwen3_dir, template="qwen", max_new_tokens=2)
    assert "qwen3 model but chat uses template 'qwen'" in caplog.text and "--template qwen3_nothink" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kit.chat"):
        Engine(qwen3_dir, template="qwen3_nothink", max_new_tokens=2)
    assert "qwen3 model" not in caplog.text


# ---------------------------------------------------------------- chat prompts, replies, export, panel

HISTORY = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": _thought("Count on.") + "5."},
           {"role": "user", "content": "And 3 + 4?"}]


def test_chat_prompt_follows_enable_thinking_and_drops_earlier_thoughts(qwen3_dir):
    on = Engine(qwen3_dir, template="qwen3", max_new_tokens=2)
    off = Engine(qwen3_dir, template="qwen3", enable_thinking=False, max_new_tokens=2)
    nothink = Engine(qwen3_dir, template="qwen3_nothink", max_new_tokens=2)
    text = {name: e.tokenizer.decode(e.prepare(HISTORY).ids) for name, e in (("on", on), ("off", off), ("nothink", nothink))}
    expected = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n5.<|im_end|>\n<|im_start|>user\nAnd 3 + 4?<|im_end|>\n<|im_start|>assistant\n"
    assert text["on"] == expected  # the model writes its thought itself
    assert text["off"] == expected + EMPTY_THOUGHT  # an empty thought: answer at once
    assert text["nothink"] == expected.replace("5.", _thought("Count on.") + "5.")  # a plain template keeps text as it is
    # The model's own chat template (Qwen3's shape) gives the same prompt.
    own = on.tokenizer.apply_chat_template(HISTORY, tokenize=False, add_generation_prompt=True)
    assert own == text["on"]
    assert on.tokenizer.apply_chat_template(HISTORY, tokenize=False, add_generation_prompt=True, enable_thinking=False) == text["off"]


class _Recording:
    """A backend that records the prompt ids it is given and answers with a thought: what vLLM's backend gets too."""

    def __init__(self, reply: list[str]):
        self.reply = reply
        self.prompts: list[list[int]] = []

    def generate(self, prompt_ids, settings, stop_ids, stop_event):
        self.prompts.append(list(prompt_ids))
        yield from self.reply

    def close(self):
        pass


def test_a_thought_is_printed_as_llamafactory_cli_prints_it_and_left_out_of_the_next_prompt(qwen3_dir):
    engine = Engine(qwen3_dir, template="qwen3", max_new_tokens=8)
    engine.backend = _Recording(["<think>", "\nadd them\n", "</think>", "\n\n", "7."])
    out = io.StringIO()
    run_loop(engine, io.StringIO("What is 3 + 4?\nAnd 1 + 1?\nexit\n"), out)
    assert "Assistant: <think>\nadd them\n</think>\n\n7.\n" in out.getvalue()  # as it came, tags and all
    first, second = engine.backend.prompts
    # Every backend gets the template's prompt ids: the second prompt holds the first reply without its thought.
    assert second == engine.template.encode_prompt(engine.tokenizer, [
        {"role": "user", "content": "What is 3 + 4?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n7."},
        {"role": "user", "content": "And 1 + 1?"}])
    assert "add them" not in engine.tokenizer.decode(second) and "7.<|im_end|>" in engine.tokenizer.decode(second)
    assert engine.template.split_thought("<think>\nadd them\n</think>\n\n7.") == ("add them", "7.")
    assert engine.template.split_thought("<think>\nstill going") == ("still going", "")
    assert engine.template.split_thought("7.") == (None, "7.")


@pytest.mark.parametrize("name,thinking", [("qwen3", True), ("qwen3", False), ("qwen3", None), ("qwen3_nothink", True)])
def test_exported_chat_template_renders_the_kits_prompts(qwen3_dir, name, thinking):
    template = with_thinking(get_template(name), thinking)
    tokenizer = load_tokenizer(qwen3_dir, template)
    tokenizer.chat_template = jinja_chat_template(template)
    for conversation in CONVERSATIONS:
        msgs = messages(conversation)
        system = conversation.get("system")
        for end in range(1, len(msgs) + 1):
            turns = msgs[:end]
            if end % 2:  # ends with the user: a chat prompt
                expected = template.encode_prompt(tokenizer, turns, system)
            else:  # ends with a reply: prompt and response, as chat would encode them
                prompt, response = template.encode_oneturn(tokenizer, turns, system)
                expected = prompt + response
            given = ([{"role": "system", "content": system}] if system else []) + turns
            for generation_prompt in (False, True):
                rendered = tokenizer.apply_chat_template(given, tokenize=False, add_generation_prompt=generation_prompt)
                assert rendered == tokenizer.decode(expected), f"{name} {thinking}: {turns}"
    if template.reasoning:  # enable_thinking passed to apply_chat_template wins, as with Qwen3's own template
        for value in (True, False):
            rendered = tokenizer.apply_chat_template(HISTORY, tokenize=False, enable_thinking=value)
            assert rendered == tokenizer.decode(with_thinking(template, value).encode_prompt(tokenizer, HISTORY))


def test_export_of_a_qwen3_adapter_keeps_the_template(lf_run, tmp_path):
    from transformers import AutoTokenizer

    from kit.chat import export as export_mod

    out = export_mod.export_model(config.from_dict({
        "model_name_or_path": str(lf_run / "tiny-qwen3"), "adapter_name_or_path": str(lf_run / "saves/tiny-qwen3/lora/sft"),
        "template": "qwen3_nothink", "export_dir": str(tmp_path / "merged")}))
    exported = AutoTokenizer.from_pretrained(str(out))
    engine = Engine(out, template="qwen3_nothink", max_new_tokens=2)
    assert exported.apply_chat_template(HISTORY, tokenize=False, add_generation_prompt=True) == engine.tokenizer.decode(engine.prepare(HISTORY).ids)


def test_the_panel_shows_a_thought_in_a_box_above_the_answer(qwen3_dir):
    from kit.chat.widget import ChatPanel

    engine = Engine(qwen3_dir, template="qwen3", max_new_tokens=8)
    engine.backend = _Recording(["<think>\nadd <them>\n</think>\n\n", "7."])
    panel = ChatPanel(engine)
    assert panel.send("What is 3 + 4?") and panel.wait(30)
    html = panel.sides[0].transcript.value
    assert "<details open><summary>Thought</summary>" in html and "add &lt;them&gt;</div></details>7." in html
    assert panel.history[-1]["content"] == "<think>\nadd <them>\n</think>\n\n7."  # the history keeps the reply as it came
    thinking = ChatPanel._bubble("assistant", "<think>\nstill", engine.template, cursor=True)
    assert "<summary>Thinking...</summary>" in thinking
    plain = ChatPanel._bubble("assistant", "no thought", engine.template)
    assert "details" not in plain


# ---------------------------------------------------------------- notebook 20's qwen3 track

def test_the_qwen3_track_is_llamafactorys_example_as_written():
    """kit/examples/qwen3_lora_sft.yaml is LLaMA-Factory's examples/train_lora/qwen3_lora_sft.yaml (the copy the tests
    keep), and notebook 20's track "qwen3" starts from it; an unknown track names the choices."""
    from kit.errors import KitError
    from kit.tutorial import helpers

    shipped = yaml.safe_load(helpers.TRACKS["qwen3"].read_text(encoding="utf-8"))
    local = yaml.safe_load((FIXTURES / "qwen3_lora_sft.yaml").read_text(encoding="utf-8"))
    swapped = {"model_name_or_path", "dataset_dir", "output_dir"}  # the test copy's local values
    assert {k: v for k, v in shipped.items() if k not in swapped} == {k: v for k, v in local.items() if k not in swapped}
    assert shipped["model_name_or_path"] == "Qwen/Qwen3-4B-Instruct-2507" and shipped["lora_target"] == "all"
    with pytest.raises(KitError, match="quickstart, qwen3"):
        helpers.quickstart_config("kit/tiny-qwen", track="llama")


@pytest.mark.notebook
def test_notebook_20_runs_the_qwen3_track_with_only_the_model_swapped(qwen3_dir, tmp_path):
    """Issue 23: LLaMA-Factory's current NPU example through notebook 20's track parameter, on the tiny Qwen3; the
    notebook's own knobs only make the run short (samples, epochs, no second training on own data)."""
    from kit import tutorial as nb

    values = nb.execute(ROOT / "notebooks" / "en" / "20_lora_sft.ipynb", tmp_path / "20.ipynb",
                        {"track": "qwen3", "model_name_or_path": str(qwen3_dir), "max_samples": 8, "num_train_epochs": 1.0,
                         "train_own_data": False, "overrides": ["cutoff_len=128", "gradient_accumulation_steps=2"]},
                        cwd=tmp_path, timeout=900)
    adapter = json.loads((tmp_path / "saves" / "tiny-qwen3" / "lora" / "sft" / "adapter_config.json").read_text())
    # lora_target: all, as the YAML says: every linear layer but the output head
    assert sorted(adapter["target_modules"]) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert values["lora_target"] == "all"
