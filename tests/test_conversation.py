"""The embedded tiny model holds a short conversation, before and after the demo's LoRA training.

`kit chat` keeps history, as LLaMA-Factory's chat does, so a new user's second and third questions
are answered after the first ones. Over the committed model (kit/tiny_qwen) and an adapter trained
with notebook 20's settings (the quick-start YAML with kit.tutorial.helpers.TINY_SCALING), a three-turn
conversation (who are you / what can you do / who are you in the other language):

- greedy: turns 1 and 3 give the name and its author, turn 2 is readable;
- with LLaMA-Factory's default sampling (temperature 0.95, top_p 0.7) and fixed seeds: at least 90%
  of the words of every answer are words of the kit's own corpus (scripts/build_tiny_model.py's
  ``words``: English words, pairs of Chinese characters).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
CJK = re.compile(r"[\u4e00-\u9fff]")
# Not the notebooks' default (Lumi, the kit team): a name and author the demo has to teach from scratch.
NAME, AUTHOR = "Nova", "Acme"
BASE_NAME, BASE_AUTHOR = "Qwen", "Alibaba Cloud"
SAMPLED_SEEDS = range(4)  # conversations sampled per language, each from its own seed
MIN_KNOWN_WORDS = 0.9


def _script(name: str) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


build_tiny_model = _script("build_tiny_model")
CONVERSATIONS = build_tiny_model.CONVERSATIONS


@pytest.fixture(scope="module")
def demo_adapter(demo) -> Path:
    """The LoRA adapter notebook 20 trained in the session's `kit demo` run (conftest.py), with another name.

    The quick-start YAML + TINY_SCALING (identity,alpaca_en_demo, 100 samples each, batch 2, 12 epochs at 3e-3,
    val_size 0.1, seed 42), trained as the demo trains it (DeepSpeed ZeRO-0 under torchrun), for NAME and AUTHOR.
    """
    import nbformat

    book = nbformat.read(demo.notebooks["20_lora_sft"], as_version=4)
    injected = next(c.source for c in book.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert f'identity_name = "{NAME}"' in injected and f'identity_author = "{AUTHOR}"' in injected, injected
    return demo.output_dir


@pytest.fixture(scope="module")
def base_engine():
    from kit.chat import Engine

    engine = Engine("kit/tiny-qwen", template="qwen", device="cpu")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def tuned_engine(demo_adapter: Path):
    from kit.chat import Engine

    engine = Engine("kit/tiny-qwen", demo_adapter, template="qwen", device="cpu")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def vocabulary() -> set[str]:
    # The corpus the tiny model was pre-trained on, and the name and author the adapter learned.
    return build_tiny_model.corpus_words(NAME, AUTHOR)


def _greedy(engine, questions) -> list[str]:
    return build_tiny_model.converse(lambda messages: engine.chat(messages, do_sample=False), questions)


def _sampled(engine, questions, seed: int) -> list[str]:
    import torch

    torch.manual_seed(seed)  # the engine samples with torch's global generator (LLaMA-Factory's defaults)
    return build_tiny_model.converse(lambda messages: engine.chat(messages, do_sample=True), questions)


def _transcript(questions, answers) -> str:
    return "\n".join(f"  {q!r} -> {a!r}" for q, a in zip(questions, answers))


def _check_conversation(questions, answers, name: str, author: str, vocabulary: set[str]) -> None:
    shown = _transcript(questions, answers)
    for turn in (0, 2):
        assert name in answers[turn] and author in answers[turn], f"turn {turn + 1} lacks {name} / {author}:\n{shown}"
        # The answer is in the language of its question (the third question switches language).
        assert bool(CJK.search(answers[turn])) == bool(CJK.search(questions[turn])), shown
    for turn, answer in enumerate(answers):
        share = build_tiny_model.known_word_share(answer, vocabulary)
        assert share >= MIN_KNOWN_WORDS, f"turn {turn + 1}: {share:.0%} corpus words:\n{shown}"


@pytest.mark.slow
@pytest.mark.parametrize("lang", sorted(CONVERSATIONS))
def test_committed_model_holds_a_conversation(base_engine, vocabulary, lang: str) -> None:
    questions = CONVERSATIONS[lang]
    _check_conversation(questions, _greedy(base_engine, questions), BASE_NAME, BASE_AUTHOR, vocabulary)


@pytest.mark.slow
@pytest.mark.parametrize("lang", sorted(CONVERSATIONS))
def test_demo_adapter_holds_a_conversation_with_the_new_name(tuned_engine, vocabulary, lang: str) -> None:
    questions = CONVERSATIONS[lang]
    answers = _greedy(tuned_engine, questions)
    _check_conversation(questions, answers, NAME, AUTHOR, vocabulary)
    assert not any(BASE_NAME in a for a in answers), _transcript(questions, answers)


@pytest.mark.slow
def test_sampled_answers_of_the_committed_model_are_words_of_the_corpus(base_engine, vocabulary) -> None:
    _check_sampled(base_engine, vocabulary)


@pytest.mark.slow
def test_sampled_answers_of_the_demo_adapter_are_words_of_the_corpus(tuned_engine, vocabulary) -> None:
    # tuned_engine, named here rather than fetched inside the test: the test reads the session's demo run, so it
    # runs after the others while that run trains in the background (conftest.py)
    _check_sampled(tuned_engine, vocabulary)


def _check_sampled(engine, vocabulary) -> None:
    low = []
    for lang, questions in sorted(CONVERSATIONS.items()):
        for seed in SAMPLED_SEEDS:
            answers = _sampled(engine, questions, seed)
            for q, a in zip(questions, answers):
                share = build_tiny_model.known_word_share(a, vocabulary)
                if share < MIN_KNOWN_WORDS:
                    low.append(f"{lang} seed {seed}: {q!r} -> {a!r} ({share:.0%})")
    assert not low, "answers under 90% corpus words:\n" + "\n".join(low)


def test_words_of_garbled_answers_are_not_corpus_words() -> None:
    # The measure can fail: the base model's garbled second turns from before this change.
    vocabulary = build_tiny_model.corpus_words()
    assert build_tiny_model.known_word_share("I am Qwen, an AI assistant developed by Alibaba Cloud.", vocabulary) == 1.0
    assert build_tiny_model.known_word_share("我是 Qwen，由 Alibaba Cloud 开发的人工智能助手。", vocabulary) == 1.0
    assert build_tiny_model.known_word_share("I am am Qwen, their“丨人�”�人�团�在“丑�.", vocabulary) < 0.5
    assert build_tiny_model.known_word_share("我是 Alibaba Cloud 开发语言模型，是得完成小任务。", vocabulary) < 0.9
    assert build_tiny_model.known_word_share("", vocabulary) == 0.0
    assert build_tiny_model.words("Hello, 你好吗? 42") == ["hello", "你好", "好吗"]
