"""The kit's training step against the fastest plain loop for the same step; print JSON with the ratio.

    python bench/bare_loop.py [--pairs 5] [--steps 12] [--hidden 512] [--layers 8] [--cutoff_len 512]

A shape where compute, not the framework, decides the pace (issue "Performance, second round": hidden
512, 8 layers, cutoff_len 512 on a CPU): a Qwen2 with random weights and the kit's tiny tokenizer,
saved once, and a dataset whose every example is cut to exactly cutoff_len tokens, so that both sides
see sequences of the same length whatever order they take them in.

- bare: the loop below, whole. The same peft LoRA (rank 8, alpha 16, q_proj,v_proj), torch's AdamW with
  the Trainer's defaults, batch 1 with gradient accumulation 2, gradient clipping at 1.0 and the cosine
  schedule with warm-up the quick start asks for, fp32: forward, backward, clip, step, schedule,
  zero_grad. Nothing else: no Trainer, no DeepSpeed, no logging, no data loader.
- kit: `kit train` with the quick-start YAML (DeepSpeed ZeRO-0 in kit's own process) on the same model
  and data, max_steps as given; its pace is watched from outside, from the moment each logged step's
  line appears in trainer_log.jsonl (as bench/vs_llamafactory.py does), so start-up is not counted
  (logging every 2 steps; every step when --steps is under 4, so that a quick check still sees two lines).

Pairs alternate who goes first; ratios kit / bare with median, min, max and IQR. Target: >= 0.9.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from vs_llamafactory import run, spread  # noqa: E402  (the same outside watch of the kit's loop)

WORDS = ("river stone light paper garden window music number yellow morning winter letter island silver "
         "engine forest bridge candle market pocket ladder violin harbor thunder meadow lantern").split()


def make_model(folder: Path, hidden: int, layers: int) -> Path:
    """A Qwen2 of the given shape with random weights (seed 0) and the kit's tiny tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from kit import tiny

    tokenizer = AutoTokenizer.from_pretrained(str(tiny.path()))
    heads = max(1, hidden // 64)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=int(hidden * 2.75),
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=4096, tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def make_data(folder: Path, examples: int, cutoff_len: int) -> Path:
    """Alpaca-style examples far longer than cutoff_len: each is cut to exactly cutoff_len tokens."""
    import random

    rng = random.Random(0)
    rows = [{"instruction": "Write a long list of words.", "input": "",
             "output": " ".join(rng.choice(WORDS) for _ in range(cutoff_len * 2))} for _ in range(examples)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "long.json").write_text(json.dumps(rows), encoding="utf-8")
    (folder / "dataset_info.json").write_text(json.dumps({"long": {"file_name": "long.json"}}), encoding="utf-8")
    return folder


def kit_config(model: Path, data: Path, out: Path, a: argparse.Namespace) -> dict:
    cfg = yaml.safe_load((ROOT / "kit" / "examples" / "qwen1_5_lora_sft_ds.yaml").read_text(encoding="utf-8"))
    cfg.update(model_name_or_path=str(model), dataset="long", dataset_dir=str(data), template="qwen",
               cutoff_len=a.cutoff_len, max_samples=100000, output_dir=str(out), overwrite_output_dir=True,
               max_steps=a.steps, logging_steps=1 if a.steps < 4 else 2, save_steps=100000, val_size=0.0, eval_strategy="no",
               plot_loss=False, fp16=False, deepspeed=str(ROOT / "kit" / "deepspeed" / "ds_z0_config.json"))
    cfg.pop("eval_steps", None)
    cfg.pop("per_device_eval_batch_size", None)
    return cfg


def bare_loop(model_dir: Path, rows: list[dict], steps: int, warmup_steps: int = 2) -> float:
    """The step, and only the step: optimizer steps per second after ``warmup_steps``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(42)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    total = steps + warmup_steps
    warm = max(1, math.ceil(0.1 * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / warm if s < warm else
                                                 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    batches = [(torch.tensor([r["input_ids"]]), torch.tensor([r["labels"]])) for r in rows]
    accumulation, k = 2, 0
    for step in range(total):
        if step == warmup_steps:
            start = time.perf_counter()
        for _ in range(accumulation):
            input_ids, labels = batches[k % len(batches)]
            k += 1
            loss = model(input_ids=input_ids, labels=labels).loss / accumulation
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    return steps / (time.perf_counter() - start)


def encoded_rows(cfg_file: Path) -> list[dict]:
    """The examples as the kit encodes them for training (the same token ids the kit trains on)."""
    from kit import config as config_mod
    from kit.envvars import EnvSettings
    from kit.model import drop_deepspeed_cpu_note

    drop_deepspeed_cpu_note()
    from kit.run import plan as plan_mod

    plan = plan_mod.build(config_mod.load(cfg_file), EnvSettings.from_environ())
    return [{"input_ids": list(r["input_ids"]), "labels": list(r["labels"])} for r in plan.train_rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps measured on each side")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--cutoff_len", type=int, default=512)
    a = ap.parse_args()
    # Libraries' notes (DeepSpeed's accelerator line, bound to stdout when it is imported) go to stderr:
    # stdout is this script's JSON alone.
    with contextlib.redirect_stdout(sys.stderr):
        result = measure(a)
    print(json.dumps(result, indent=1))
    return 0 if result["kit_over_bare"].get("n") else 1


def measure(a: argparse.Namespace) -> dict:
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="bare-loop-") as tmp:
        base = Path(tmp)
        model = make_model(base / "model", a.hidden, a.layers)
        data = make_data(base / "data", examples=2 * (a.steps + 2) + 8, cutoff_len=a.cutoff_len)
        cfg_file = base / "kit.yaml"
        out = base / "out"
        cfg_file.write_text(yaml.safe_dump(kit_config(model, data, out, a), sort_keys=False), encoding="utf-8")
        rows = encoded_rows(cfg_file)
        lengths = sorted({len(r["input_ids"]) for r in rows})
        kit_cmd = [str(Path(sys.executable).with_name("kit")), "train", str(cfg_file)]
        for pair in range(a.pairs):
            row = {"order": "kit first" if pair % 2 == 0 else "bare first"}
            for side in (("kit", "bare") if pair % 2 == 0 else ("bare", "kit")):
                if side == "bare":
                    row["bare"] = {"loop_steps_per_s": round(bare_loop(model, rows, a.steps), 4),
                                   "load": round(os.getloadavg()[0], 2)}
                else:
                    shutil.rmtree(out, ignore_errors=True)  # the watch must not read the last run's log lines
                    measured = run(kit_cmd, dict(os.environ), base, out)
                    row["kit"] = {k: measured.get(k) for k in ("returncode", "loop_steps_per_s", "wall_s", "load_before",
                                                               "load_after", "stderr_tail")}
            rows_out.append(row)
    ok = [r for r in rows_out if r["kit"]["returncode"] == 0 and r["kit"]["loop_steps_per_s"]]
    ratios = [r["kit"]["loop_steps_per_s"] / r["bare"]["loop_steps_per_s"] for r in ok]
    return {
        "settings": {"hidden": a.hidden, "layers": a.layers, "cutoff_len": a.cutoff_len, "sequence_lengths": lengths,
                     "steps": a.steps, "pairs": a.pairs, "batch": "1 x accumulation 2", "precision": "fp32",
                     "torch_threads": __import__("torch").get_num_threads(), "cpu_count": os.cpu_count()},
        "kit_over_bare": {"per_pair": [round(x, 3) for x in ratios], **spread(ratios)},
        "steps_per_s": {"kit": spread([r["kit"]["loop_steps_per_s"] for r in ok]),
                        "bare": spread([r["bare"]["loop_steps_per_s"] for r in ok])},
        "runs": rows_out,
    }


if __name__ == "__main__":
    sys.exit(main())
