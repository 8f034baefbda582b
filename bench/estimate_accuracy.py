"""How close is ``kit.estimate`` to the memory a real LoRA run uses? Prints JSON.

Each case trains a random-init Qwen2ForCausalLM with peft LoRA (r=8 on q_proj,v_proj) for a few
AdamW steps on the CPU in fp32, in a child process of its own so the runs do not share an
allocator. The child reports its peak resident memory (``ru_maxrss``) minus its resident memory
just before the model is built; the parent computes ``kit.estimate.estimate`` for the same settings
and prints estimate, measurement and the gap (estimate - measured, in % of measured).

    .venv/bin/python bench/estimate_accuracy.py            # all cases
    .venv/bin/python bench/estimate_accuracy.py --case tiny
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = Path("/work/shared/reference/llamafactory/tiny-qwen/config.json")
if not TINY_CONFIG.exists():
    TINY_CONFIG = ROOT.parent / "shared" / "reference" / "llamafactory" / "tiny-qwen" / "config.json"

# (b): tens of millions of parameters, GQA like the real Qwen2 models.
LARGER_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 512, "intermediate_size": 1408,
    "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 32000,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "hidden_act": "silu",
    "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 0,
}
CASES = {
    # name: (config, batch, seq)
    "tiny": ("tiny", 2, 512),
    "larger": ("larger", 2, 512),
}
TARGETS = ["q_proj", "v_proj"]
RANK = 8
STEPS = 2


# (a) the reference tiny-qwen's shape, used when ../shared/reference is not there.
TINY_FALLBACK = {
    "model_type": "qwen2", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 3000, "tie_word_embeddings": False, "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 0,
}


def load_config(which: str) -> dict:
    if which == "tiny":
        return json.loads(TINY_CONFIG.read_text()) if TINY_CONFIG.exists() else dict(TINY_FALLBACK)
    return dict(LARGER_CONFIG)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def child(which: str, batch: int, seq: int, checkpointing: bool) -> dict:
    """One measured run (in its own process)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    raw = load_config(which)
    config = Qwen2Config(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version", "dtype")})
    config._attn_implementation = "sdpa"
    input_ids = torch.randint(3, raw["vocab_size"], (batch, seq))
    attention_mask = torch.ones_like(input_ids)
    if batch > 1:
        attention_mask[1:, -8:] = 0  # a padded second example, as a collator makes: forces the padding mask
    labels = input_ids.masked_fill(attention_mask == 0, -100)

    baseline_rss = _rss()
    baseline_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model = Qwen2ForCausalLM(config).float()
    model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=2 * RANK, lora_dropout=0.0, target_modules=TARGETS))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    after_model = _rss()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    start = time.perf_counter()
    losses = []
    for _ in range(STEPS):
        # Keep only the loss, as transformers.Trainer does: the logits are freed before backward.
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        losses.append(float(loss))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "measured_bytes": peak - baseline_rss,
        "weights_measured_bytes": after_model - baseline_rss,
        "baseline_rss": baseline_rss, "baseline_maxrss": baseline_max, "peak_maxrss": peak,
        "params": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "losses": losses, "seconds": round(seconds, 2),
    }


def measure(which: str, batch: int, seq: int, checkpointing: bool, live: bool) -> dict:
    """Run one child. ``live``: a fixed glibc mmap threshold, so freed tensors go back to the kernel
    at once and the peak RSS is the peak of live tensors (what a device's caching allocator reuses)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if live:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    proc = subprocess.run([sys.executable, __file__, "--child", which, str(batch), str(seq), str(int(checkpointing))],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_case(name: str, checkpointing: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    from kit.estimate import estimate

    which, batch, seq = CASES[name]
    try:
        m = measure(which, batch, seq, checkpointing, live=False)
        live = measure(which, batch, seq, checkpointing, live=True)
    except RuntimeError as exc:
        return {"case": name, "gradient_checkpointing": checkpointing, "error": str(exc)}
    est = estimate(load_config(which), lora_rank=RANK, lora_target=TARGETS, dtype="fp32", cutoff_len=seq, batch_size=batch,
                   zero_stage=None, num_devices=1, gradient_checkpointing=checkpointing, device="cpu", suggest=False)
    items = {it.name: it.bytes for it in est.items}
    weights_est = items["base weights"] + items["LoRA weights"]
    mib = 1 << 20
    return {
        "case": name, "gradient_checkpointing": checkpointing, "batch": batch, "seq": seq,
        "params_exact_match": est.total_params == m["params"] and est.trainable_params == m["trainable"],
        "params": m["params"], "trainable": m["trainable"],
        "estimate_mib": round(est.per_device_bytes / mib, 1),
        "estimate_without_overhead_mib": round((est.per_device_bytes - items["framework overhead"]) / mib, 1),
        "measured_mib": round(m["measured_bytes"] / mib, 1),
        "gap_pct": round(100 * (est.per_device_bytes - m["measured_bytes"]) / m["measured_bytes"], 1),
        "measured_live_mib": round(live["measured_bytes"] / mib, 1),
        "gap_live_without_overhead_pct": round(100 * (est.per_device_bytes - items["framework overhead"] - live["measured_bytes"]) / live["measured_bytes"], 1),
        "weights_estimate_mib": round(weights_est / mib, 1), "weights_measured_mib": round(m["weights_measured_bytes"] / mib, 1),
        "activations_estimate_mib": round(items["activations"] / mib, 1),
        "estimate_items_mib": {k: round(v / mib, 2) for k, v in items.items()},
        "steps": STEPS, "seconds": m["seconds"], "loss_first_last": [round(m["losses"][0], 3), round(m["losses"][-1], 3)],
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        which, batch, seq, ckpt = argv[1], int(argv[2]), int(argv[3]), argv[4] == "1"
        print(json.dumps(child(which, batch, seq, ckpt)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="run only these cases")
    args = parser.parse_args(argv)
    results = [run_case(name, ckpt) for name in (args.case or list(CASES)) for ckpt in (False, True)]
    print(json.dumps({"benchmark": "estimate_accuracy", "device": "cpu", "dtype": "fp32", "lora": {"r": RANK, "targets": TARGETS},
                      "measure": "peak ru_maxrss - RSS before the model is built; measured_live: the same with MALLOC_MMAP_THRESHOLD_=65536",
                      "gap": "(estimate - measured) / measured; gap_live_without_overhead compares the estimate less its overhead row with measured_live",
                      "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
