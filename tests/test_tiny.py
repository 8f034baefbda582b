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
        "identity": {"file_name": "identity.json"},
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "alpaca_zh_demo": {"file_name": "alpaca_zh_demo.json"},
    }
    for entry in info.values():
        assert (DEMO_DIR / entry["file_name"]).is_file()


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
    first = build_tiny_model.build(tmp_path / "a", seed=0, steps=2)
    second = build_tiny_model.build(tmp_path / "b", seed=0, steps=2)
    other_seed = build_tiny_model.build(tmp_path / "c", seed=1, steps=1)
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json", "README.md"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "model.safetensors").read_bytes() != (other_seed / "model.safetensors").read_bytes()


def test_committed_tokenizer_matches_the_committed_data(tmp_path: Path) -> None:
    # If the demo data changes, the committed model must be rebuilt (scripts/build_tiny_model.py --out ...).
    tokenizer = build_tiny_model.train_tokenizer(build_tiny_model.pretraining_texts())
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
