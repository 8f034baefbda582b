"""Run `kit demo` and print JSON: wall time of each stage (notebook), the peak RSS, and how the
trained adapter holds a conversation.

    python bench/demo.py [key=value ...]

Peak RSS is the largest resident set of any one process the demo started (the notebook kernels and
the torchrun workers are children of this process), plus this process's own.

The conversation figures come after the demo, from its adapter on the model it trained: the three-turn
conversations of scripts/build_tiny_model.py (who are you / what can you do / who are you in the
other language), history kept, once greedy and SEEDS times with LLaMA-Factory's default sampling
(temperature 0.95, top_p 0.7). For each answer, the share of its words that are words of the kit's
own corpus (English words, pairs of Chinese characters; the name and author taught count as known);
`known_words` gives the lowest and the mean share over the sampled answers, and how many answers
stay under 90%.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from kit.tutorial.demo import ORDER, notebook_dir, notebook_parameters, run_demo

SEEDS = 8  # sampled conversations per language
MIN_KNOWN_WORDS = 0.9


def _build_script() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "scripts" / "build_tiny_model.py"
    spec = importlib.util.spec_from_file_location("build_tiny_model", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_tiny_model"] = module
    spec.loader.exec_module(module)
    return module


def _taught(overrides: list[str], key: str) -> str:
    """The value of a notebook-20 parameter in this demo: the override given, else the notebook's default."""
    for item in overrides:
        if item.startswith(f"{key}="):
            return item.split("=", 1)[1]
    params = notebook_parameters(notebook_dir() / "en" / f"{ORDER[2]}.ipynb")
    value = ast.literal_eval(params[key]["default"])
    if value is None and key == "identity_author":  # None: the notebook's own default, in its language
        from kit.tutorial.helpers import default_identity_author

        return default_identity_author()
    return value


def conversation_figures(model: str, adapter: Path, name: str, author: str, seeds: int = SEEDS) -> dict[str, Any]:
    import torch

    from kit.chat import Engine

    build = _build_script()
    vocabulary = build.corpus_words(name, author)
    engine = Engine(model, str(adapter), template="qwen", device="cpu")  # LLaMA-Factory's decoding defaults
    try:
        greedy = {lang: build.converse(lambda m: engine.chat(m, do_sample=False), questions)
                  for lang, questions in build.CONVERSATIONS.items()}
        shares: list[float] = []
        lowest: tuple[float, str, str] | None = None
        for lang, questions in build.CONVERSATIONS.items():
            for seed in range(seeds):
                torch.manual_seed(seed)
                answers = build.converse(lambda m: engine.chat(m, do_sample=True), questions)
                for q, a in zip(questions, answers):
                    share = build.known_word_share(a, vocabulary)
                    shares.append(share)
                    if lowest is None or share < lowest[0]:
                        lowest = (share, q, a)
    finally:
        engine.close()
    return {
        "greedy": {lang: [[q, a] for q, a in zip(build.CONVERSATIONS[lang], answers)] for lang, answers in greedy.items()},
        "name_in_turns_1_and_3": all(name in answers[0] and name in answers[2] for answers in greedy.values()),
        "known_words": {
            "sampled_answers": len(shares),
            "min": round(min(shares), 3),
            "mean": round(sum(shares) / len(shares), 3),
            f"under_{MIN_KNOWN_WORDS:.0%}": sum(s < MIN_KNOWN_WORDS for s in shares),
            "lowest_answer": {"question": lowest[1], "answer": lowest[2]} if lowest else None,
        },
    }


def main() -> None:
    overrides = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = run_demo(overrides, run_dir=tmp, log=lambda line: print(line, file=sys.stderr))
        total = time.perf_counter() - start
        peak = {
            "this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        }
        conversation = conversation_figures(_taught(overrides, "model_name_or_path"), run.output_dir,
                                            _taught(overrides, "identity_name"), _taught(overrides, "identity_author"))
    print(json.dumps({
        "stages_s": run.seconds,
        "train_s": run.values["20_lora_sft"].get("train_seconds"),
        "total_s": round(total, 1),
        "peak_rss_mb": peak,  # of the demo itself, before the conversation figures load a model here
        "name_learned": run.values["30_chat_inference"].get("name_learned"),
        "conversation": conversation,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
