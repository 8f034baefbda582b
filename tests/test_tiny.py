"""The embedded tiny Qwen (kit.tiny) and the kit's own demo data (kit/data/demo)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from kit import tiny

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything here is local; a stray download must fail loudly instead of reaching a hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _load(name: str) -> list[dict[str, str]]:
    return json.loads((tiny.demo_data_dir() / name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- demo data


def test_committed_demo_data_is_what_the_generator_writes() -> None:
    # The JSON files are committed; this catches a hand edit that the generator would undo.
    for name, text in tiny.demo_data_files().items():
        assert (tiny.demo_data_dir() / name).read_text(encoding="utf-8") == text, name


def test_dataset_info_registers_the_three_demo_files() -> None:
    info = json.loads((tiny.demo_data_dir() / "dataset_info.json").read_text(encoding="utf-8"))
    assert info == {
        "identity": {"file_name": "identity.json"},
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "alpaca_zh_demo": {"file_name": "alpaca_zh_demo.json"},
    }
    for entry in info.values():
        assert (tiny.demo_data_dir() / entry["file_name"]).is_file()


def test_identity_has_placeholders_in_both_languages() -> None:
    records = _load("identity.json")
    assert len(records) >= 80
    assert all(set(r) == {"instruction", "input", "output"} for r in records)
    # Every answer names the assistant, so a LoRA run on this data visibly renames it.
    assert all("{{name}}" in r["output"] for r in records)
    assert sum("{{author}}" in r["output"] for r in records) >= 0.9 * len(records)
    chinese = [r for r in records if CJK.search(r["instruction"])]
    english = [r for r in records if not CJK.search(r["instruction"] + r["output"])]
    assert len(chinese) >= 35 and len(english) >= 35
    instructions = {r["instruction"] for r in records}
    assert {"Who are you?", "你是谁？"} <= instructions
    assert len(instructions) == len(records)  # no repeated question


@pytest.mark.parametrize("name, chinese", [("alpaca_en_demo.json", False), ("alpaca_zh_demo.json", True)])
def test_alpaca_demo_files(name: str, chinese: bool) -> None:
    records = _load(name)
    assert len(records) >= 300
    for r in records:
        assert set(r) == {"instruction", "input", "output"}
        assert r["instruction"].strip() and r["output"].strip()
        assert "{{" not in r["instruction"] + r["output"]
    assert any(r["input"] for r in records)  # the instruction + input form is exercised
    assert len({(r["instruction"], r["input"]) for r in records}) == len(records)
    with_cjk = sum(bool(CJK.search(r["instruction"])) for r in records)
    if chinese:
        assert with_cjk >= 0.9 * len(records)
    else:
        assert with_cjk == 0


def test_generated_answers_are_correct_arithmetic() -> None:
    # The templated tasks are computed; spot-check the computation against the text.
    for r in _load("alpaca_en_demo.json"):
        if m := re.fullmatch(r"What is (\d+) \+ (\d+)\?", r["instruction"]):
            assert r["output"] == f"{m[1]} + {m[2]} = {int(m[1]) + int(m[2])}."
        if r["instruction"] == "Sort the following numbers in ascending order.":
            numbers = [int(x) for x in r["input"].split(", ")]
            assert r["output"] == ", ".join(map(str, sorted(numbers)))


# ---------------------------------------------------------------- building


def test_build_is_deterministic(tmp_path: Path) -> None:
    # A few steps are enough: any non-determinism in init, batching or the optimizer shows at once.
    first = tiny.build(tmp_path / "a", seed=0, steps=2)
    second = tiny.build(tmp_path / "b", seed=0, steps=2)
    other_seed = tiny.build(tmp_path / "c", seed=1, steps=1)
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json", "README.md"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "model.safetensors").read_bytes() != (other_seed / "model.safetensors").read_bytes()


def test_committed_tokenizer_matches_the_committed_data(tmp_path: Path) -> None:
    # If the demo data changes, the committed model must be rebuilt (python -m kit.tiny --out ...).
    tokenizer = tiny.train_tokenizer(tiny.pretraining_texts())
    tiny._save_tokenizer(tokenizer, tmp_path)
    assert (tmp_path / "tokenizer.json").read_bytes() == (tiny.path() / "tokenizer.json").read_bytes()
    stats = json.loads((tiny.path() / "build_stats.json").read_text(encoding="utf-8"))
    corpus = hashlib.sha256("".join(tiny.pretraining_texts()).encode("utf-8")).hexdigest()
    assert stats["corpus_sha256"] == corpus


# ---------------------------------------------------------------- the committed model


@pytest.fixture(scope="module")
def committed() -> tuple[object, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny.path())
    model = AutoModelForCausalLM.from_pretrained(tiny.path())
    model.eval()
    return tokenizer, model


def test_committed_files_are_small() -> None:
    files = [p for p in tiny.path().iterdir() if p.is_file()]
    names = {p.name for p in files}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja", "README.md"} <= names
    assert sum(p.stat().st_size for p in files) < 20 * 1024 * 1024


def test_committed_tokenizer_is_qwen_style(committed: tuple) -> None:
    tokenizer, _ = committed
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == 2
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id == 0
    assert tokenizer.bos_token is None
    ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n", add_special_tokens=False)
    assert ids[0] == 1 and ids.count(2) == 1 and ids.index(2) == len(ids) - 2
    assert tokenizer.decode(ids) == "<|im_start|>user\nhi<|im_end|>\n"
    # Byte-level: any text round-trips, Chinese included, even characters the corpus lacks.
    for text in ("你是谁？", "Ünïcödé ✓ 鼹鼠", "  two  spaces\tand tab"):
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    # Frequent Chinese words are whole tokens, not bytes.
    assert len(tokenizer.encode("你是谁？", add_special_tokens=False)) <= 4


def test_chat_template_renders_the_qwen_format(committed: tuple) -> None:
    tokenizer, _ = committed
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Who are you?"}],
                                         tokenize=False, add_generation_prompt=True)
    assert text == tiny.render_chatml("Who are you?", "", "")[: -len("<|im_end|>\n")]


def test_committed_model_answers_in_text(committed: tuple) -> None:
    import torch

    tokenizer, model = committed
    config = model.config
    assert (config.model_type, config.vocab_size) == ("qwen2", len(tokenizer))
    assert next(model.parameters()).dtype == torch.float32
    answers = {}
    for question in ("Who are you?", "你是谁？"):
        inputs = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=48, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1]:].tolist()
        assert new and (new[-1] == tokenizer.eos_token_id or len(new) == 48)
        answers[question] = tokenizer.decode(new, skip_special_tokens=True).strip()
    assert answers["Who are you?"] and answers["你是谁？"]
    # The base model introduces itself as Qwen, so renaming by LoRA is visible.
    assert "Qwen" in answers["Who are you?"] and "Qwen" in answers["你是谁？"]
    assert CJK.search(answers["你是谁？"])
