"""The embedded tiny Qwen (kit.tiny) and the kit's own demo data (kit/data/demo).

Both are built by scripts outside the package (scripts/build_tiny_model.py, scripts/tiny_data.py);
the tests load those scripts as modules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kit import hub, tiny

CJK = re.compile(r"[\u4e00-\u9fff]")
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


build_tiny_model = _script("build_tiny_model")
tiny_data = _script("tiny_data")
DEMO_DIR = build_tiny_model.DEMO_DATA_DIR


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything here is local; a stray download must fail loudly instead of reaching a hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _load(name: str) -> list[dict[str, str]]:
    return json.loads((DEMO_DIR / name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- demo data


def test_committed_demo_data_is_what_the_generator_writes() -> None:
    # The JSON files are committed; this catches a hand edit that the generator would undo.
    for name, text in tiny_data.demo_data_files().items():
        assert (DEMO_DIR / name).read_text(encoding="utf-8") == text, name


def test_dataset_info_registers_the_three_demo_files() -> None:
    info = json.loads((DEMO_DIR / "dataset_info.json").read_text(encoding="utf-8"))
    assert info == {
        # alpaca with its history column named, as LLaMA-Factory's data/README writes it
        "identity": {"file_name": "identity.json",
                     "columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}},
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "alpaca_zh_demo": {"file_name": "alpaca_zh_demo.json"},
    }
    for entry in info.values():
        assert (DEMO_DIR / entry["file_name"]).is_file()


def _answers(record: dict) -> list[str]:
    return [a for _, a in record["history"]] + [record["output"]]


def test_identity_has_placeholders_in_both_languages() -> None:
    records = _load("identity.json")
    # Every example has the same columns (history empty for a question asked alone), whoever reads the file.
    assert all(set(r) == {"instruction", "input", "output", "history"} for r in records)
    questions = records[:len(tiny_data.IDENTITY_EN) + len(tiny_data.IDENTITY_ZH)]  # then the written conversations
    assert len(questions) >= 80
    # Every answer names the assistant, so a LoRA run on this data visibly renames it.
    assert all("{{name}}" in r["output"] for r in questions)
    assert all(any("{{name}}" in a for a in _answers(r)) for r in records)
    assert sum("{{author}}" in r["output"] for r in questions) >= 0.9 * len(questions)
    chinese = [r for r in questions if CJK.search(r["instruction"])]
    english = [r for r in questions if not CJK.search(r["instruction"] + r["output"])]
    assert len(chinese) >= 35 and len(english) >= 35
    instructions = [r["instruction"] for r in questions]
    assert len(set(instructions)) == len(questions)  # no repeated question
    # The first question of each language is asked alone: the preview's example 0 is "Who are you?".
    for first in ("Who are you?", "你是谁？"):
        assert records[instructions.index(first)]["history"] == []
    assert records[0]["instruction"] == "Who are you?"


def test_identity_conversations() -> None:
    from kit.tutorial.helpers import TINY_SCALING

    records = _load("identity.json")
    written = records[-len(tiny_data.IDENTITY_DIALOGUES):]
    conversations = [r for r in records if r["history"]]
    assert all(r["history"] for r in written) and len(conversations) >= 0.4 * len(records)
    # The demo's max_samples keeps every example, conversations included.
    assert len(records) <= TINY_SCALING["max_samples"]
    for r in conversations:
        assert all(isinstance(turn, list) and len(turn) == 2 and all(turn) for turn in r["history"]), r
        turns = [q for q, _ in r["history"]] + [r["instruction"]]
        assert len(set(turns)) == len(turns), r
    # Both languages start a conversation, and conversations switch language on the way.
    firsts = [bool(CJK.search(r["history"][0][0])) for r in conversations]
    assert any(firsts) and not all(firsts)
    switching = [r for r in conversations
                 if len({bool(CJK.search(q)) for q in [q for q, _ in r["history"]] + [r["instruction"]]}) == 2]
    assert len(switching) >= 10
    # A later question about the assistant gets the name again.
    assert sum("{{name}}" in r["output"] for r in conversations) >= 0.8 * len(conversations)
    # A follow-up in a written conversation may answer without introducing itself again.
    assert any("{{name}}" not in a for r in written for a in _answers(r))


def test_kit_reads_identity_history_as_earlier_turns_and_trains_every_answer() -> None:
    # As LLaMA-Factory's alpaca converter: each [question, answer] of history is a user and an
    # assistant turn before the instruction; the supervised encoding (mask_history off) labels every answer.
    from transformers import AutoTokenizer

    from kit.data import IGNORE_INDEX, encode_example, get_template, load_examples

    examples, report = load_examples(["identity"], DEMO_DIR, fills={"name": "Nova", "author": "Acme"})
    assert report.per_dataset["identity"] == {"read": len(_load("identity.json")), "malformed": 0}
    record = _load("identity.json")[-1]
    last = examples[-1]
    fill = lambda text: text.replace("{{name}}", "Nova").replace("{{author}}", "Acme")  # noqa: E731
    expected = [m for q, a in record["history"] for m in ({"role": "user", "content": fill(q)},
                                                            {"role": "assistant", "content": fill(a)})]
    assert last.prompt == expected + [{"role": "user", "content": record["instruction"]}]
    assert last.response == [{"role": "assistant", "content": fill(record["output"])}]
    tokenizer = AutoTokenizer.from_pretrained(tiny.path())
    encoded = encode_example(get_template("qwen"), tokenizer, last, cutoff_len=1024)
    trained = tokenizer.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX])
    assert trained == "".join(f"{fill(a)}<|im_end|>\n" for a in _answers(record))


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
    first = build_tiny_model.build(tmp_path / "a", seed=0, steps=2)
    second = build_tiny_model.build(tmp_path / "b", seed=0, steps=2)
    other_seed = build_tiny_model.build(tmp_path / "c", seed=1, steps=1)
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json", "README.md"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "model.safetensors").read_bytes() != (other_seed / "model.safetensors").read_bytes()


def test_committed_tokenizer_matches_the_committed_data(tmp_path: Path) -> None:
    # If the demo data changes, the committed model must be rebuilt (scripts/build_tiny_model.py --out ...).
    tokenizer = build_tiny_model.train_tokenizer(build_tiny_model.tokenizer_texts())
    build_tiny_model._save_tokenizer(tokenizer, tmp_path)
    assert (tmp_path / "tokenizer.json").read_bytes() == (tiny.path() / "tokenizer.json").read_bytes()
    stats = json.loads((tiny.path() / "build_stats.json").read_text(encoding="utf-8"))
    corpus = hashlib.sha256("".join(build_tiny_model.pretraining_texts()).encode("utf-8")).hexdigest()
    assert stats["corpus_sha256"] == corpus


def test_committed_readme_is_what_the_build_writes() -> None:
    # The README is generated from build_stats.json and the file sizes; regenerating it from the
    # committed stats catches a hand edit and a generator changed without a rebuild.
    stats = json.loads((tiny.path() / "build_stats.json").read_text(encoding="utf-8"))
    files_bytes = sum(p.stat().st_size for p in tiny.path().iterdir() if p.is_file() and p.name != "README.md")
    readme = (tiny.path() / "README.md").read_text(encoding="utf-8")
    assert readme == build_tiny_model._readme(stats, files_bytes)
    assert f"python scripts/build_tiny_model.py --out kit/tiny_qwen --seed {stats['seed']} --steps {stats['steps']}" in readme


def test_the_runtime_names_the_built_model() -> None:
    assert tiny.TINY_NAME == build_tiny_model.TINY_NAME
    assert hub.resolve_model(tiny.TINY_NAME) == tiny.path()
    assert (tiny.path() / "config.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("KIT_TEST_TINY_REBUILD"),
                    reason="the full 1200-step rebuild takes 8-14 minutes on one core; set KIT_TEST_TINY_REBUILD=1")
def test_full_rebuild_reproduces_the_committed_files(tmp_path: Path) -> None:
    # As a command, the way the README says: the script pins the CPU kernels before torch is imported.
    stats = json.loads((tiny.path() / "build_stats.json").read_text(encoding="utf-8"))
    out = tmp_path / "tiny_qwen"
    subprocess.run([sys.executable, str(SCRIPTS / "build_tiny_model.py"), "--out", str(out),
                    "--seed", str(stats["seed"]), "--steps", str(stats["steps"])], check=True, timeout=3600)
    committed = sorted(p.name for p in tiny.path().iterdir() if p.is_file())
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == committed
    for name in committed:
        assert (out / name).read_bytes() == (tiny.path() / name).read_bytes(), name


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


def test_tokens_the_corpus_never_holds_have_the_length_of_trained_ones(committed: tuple) -> None:
    # Otherwise pre-training leaves them pushed away from every hidden state and a LoRA cannot teach
    # a name spelt with them (the README's example: " No" of "Nova").
    tokenizer, model = committed
    sequences = [tokenizer.encode(t, add_special_tokens=False) for t in build_tiny_model.pretraining_texts()]
    unused = build_tiny_model.unused_token_ids(sequences, len(tokenizer))
    stats = json.loads((tiny.path() / "build_stats.json").read_text(encoding="utf-8"))
    assert len(unused) == stats["tokens_not_in_corpus"] > 0
    assert tokenizer.encode(" Nova", add_special_tokens=False)[0] in unused
    lengths = model.get_input_embeddings().weight.detach().norm(dim=1)
    used = [i for i in range(len(tokenizer)) if i not in set(unused)]
    median = lengths[used].median().item()
    assert lengths[0].item() == 0.0  # the padding row, zero from the start
    assert all(abs(lengths[i].item() - median) < 1e-4 for i in unused if i != 0)


def test_chat_template_renders_the_qwen_format(committed: tuple) -> None:
    tokenizer, _ = committed
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Who are you?"}],
                                         tokenize=False, add_generation_prompt=True)
    assert text == build_tiny_model.render_chatml("Who are you?", "", "")[: -len("<|im_end|>\n")]


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
