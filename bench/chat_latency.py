"""Chat latency: load time, time to first token and tokens/s, for the base model and base + adapter
(merged at load, and unmerged), printed as JSON.

    python bench/chat_latency.py [--model DIR] [--adapter DIR] [--runs 5] [--max-new-tokens 64]
                                 [--backend huggingface|vllm]

The model is the embedded tiny model (kit/tiny-qwen) when it is built, else LLaMA-Factory's
reference tiny-qwen under ../shared/reference. Without --adapter, a LoRA adapter on every linear
layer (rank 8, random weights: the cost of LoRA does not depend on what it learnt) is made with peft.
Tokens are counted by re-tokenising each reply (close to, not exactly, the generated count).
Numbers, not asserts: compare runs on one machine. On a small CPU set OMP_NUM_THREADS=1 for steady
numbers (two threads on two cores fight and vary several-fold).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE_TINY = REPO.parent / "shared" / "reference" / "llamafactory" / "tiny-qwen"
PROMPTS = [
    [{"role": "user", "content": "Who are you?"}],
    [{"role": "user", "content": "Give three tips for staying healthy."}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help you today?"},
     {"role": "user", "content": "Tell me about LoRA fine-tuning."}],
]


def default_model() -> Path:
    from kit import hub
    from kit.errors import KitError

    try:
        embedded = hub.resolve_model("kit/tiny-qwen")
        if (embedded / "config.json").is_file():
            return embedded
    except KitError:
        pass
    if (REFERENCE_TINY / "config.json").is_file():
        return REFERENCE_TINY
    sys.exit("no model: the embedded kit/tiny-qwen is not built and the reference tiny-qwen is absent; pass --model DIR")


def make_adapter(model_dir: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from kit import model as model_mod

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    lora = LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, target_modules=model_mod.linear_module_names(model),
                      init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(str(out))
    return out


def measure(label: str, model_dir: Path, adapter: Path | None, merge: bool, backend: str, runs: int,
            max_new_tokens: int) -> dict:
    from kit.chat import Engine

    start = time.perf_counter()
    engine = Engine(model_dir, adapter, infer_backend=backend, merge_adapter=merge, do_sample=False,
                    max_new_tokens=max_new_tokens)
    load_s = time.perf_counter() - start
    engine.chat(PROMPTS[0])  # warm-up: first-call allocations are not chat latency
    first_token_s, tokens_per_s, reply_tokens = [], [], []
    for _ in range(runs):
        for messages in PROMPTS:
            start = time.perf_counter()
            first = None
            pieces = []
            for piece in engine.stream(messages):
                if first is None:
                    first = time.perf_counter() - start
                pieces.append(piece)
            total = time.perf_counter() - start
            n = len(engine.tokenizer.encode("".join(pieces), add_special_tokens=False))
            if first is not None:
                first_token_s.append(first)
            if n > 1 and total > (first or 0):
                # Decoding speed after the first token (the prompt's prefill is in time to first token).
                tokens_per_s.append((n - 1) / (total - first))
            reply_tokens.append(n)
    engine.close()
    return {
        "case": label, "backend": backend, "load_s": round(load_s, 3),
        "first_token_ms_median": round(1000 * statistics.median(first_token_s), 2) if first_token_s else None,
        "tokens_per_s_median": round(statistics.median(tokens_per_s), 1) if tokens_per_s else None,
        "reply_tokens_mean": round(statistics.mean(reply_tokens), 1), "requests": len(reply_tokens),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model folder (default: kit/tiny-qwen, else the reference tiny-qwen)")
    parser.add_argument("--adapter", type=Path, help="LoRA adapter folder (default: a random rank-8 adapter on all linear layers)")
    parser.add_argument("--runs", type=int, default=5, help="passes over the prompts")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--backend", default="huggingface", choices=["huggingface", "vllm"])
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.basicConfig(level=logging.WARNING)
    import torch

    model_dir = args.model or default_model()
    with tempfile.TemporaryDirectory() as tmp:
        adapter = args.adapter or make_adapter(model_dir, Path(tmp) / "adapter")
        if args.backend == "huggingface":
            cases = [("base", None, True), ("adapter_merged", adapter, True), ("adapter_unmerged", adapter, False)]
        else:  # vLLM never merges: it applies the LoRA per request
            cases = [("base", None, True), ("adapter_per_request", adapter, True)]
        results = [measure(label, model_dir, a, merge, args.backend, args.runs, args.max_new_tokens)
                   for label, a, merge in cases]
    print(json.dumps({
        "model": str(model_dir), "adapter": str(args.adapter) if args.adapter else "random rank-8 LoRA, all linear layers",
        "max_new_tokens": args.max_new_tokens, "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu", "results": results,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
