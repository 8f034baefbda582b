"""Train the quick-start config on a tiny model and print JSON: tokens/s, steps/s, peak RSS, wall time.

    python bench/train_throughput.py [--model DIR] [--deepspeed ds_z0_config.json|none] [--max_samples N] [--epochs E]

Defaults: the embedded kit/tiny-qwen, the kit's demo data (identity,alpaca_en_demo), ZeRO-0 under
torchrun, as `kit train` would run it. With --reference it uses LLaMA-Factory's seed_run settings on
shared/reference's tiny-qwen, so the figures compare with its 1473 steps in 77 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "llamafactory"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="kit/tiny-qwen")
    ap.add_argument("--dataset_dir", default=None)
    ap.add_argument("--deepspeed", default="ds_z0_config.json")
    ap.add_argument("--max_samples", type=int, default=200)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--reference", action="store_true", help="LLaMA-Factory's seed_run settings on its tiny-qwen")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cfg = {
            "model_name_or_path": a.model, "stage": "sft", "do_train": True, "finetuning_type": "lora",
            "lora_target": "q_proj,v_proj", "deepspeed": None if a.deepspeed == "none" else a.deepspeed,
            "dataset": "identity,alpaca_en_demo", "template": "qwen", "cutoff_len": 1024, "max_samples": a.max_samples,
            "output_dir": str(out), "logging_steps": 10, "save_steps": 100000, "plot_loss": True,
            "overwrite_output_dir": True, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2,
            "learning_rate": 1.0e-4, "num_train_epochs": a.epochs, "lr_scheduler_type": "cosine", "warmup_ratio": 0.1,
            "fp16": False, "val_size": 0.1, "per_device_eval_batch_size": 1, "eval_strategy": "steps", "eval_steps": 100000,
        }
        if a.dataset_dir:
            cfg["dataset_dir"] = a.dataset_dir
        if a.reference:
            cfg.update(model_name_or_path=str(REFERENCE / "tiny-qwen"), dataset_dir=str(REFERENCE / "data"),
                       max_samples=1000, num_train_epochs=3.0, eval_steps=500, save_steps=500)
        cfg_file = Path(tmp) / "cfg.yaml"
        cfg_file.write_text(yaml.safe_dump(cfg))
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "kit.cli", "train", str(cfg_file)], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(json.dumps({"error": proc.stderr[-2000:]}))
            sys.exit(1)
        results = json.loads((out / "all_results.json").read_text())
        state = json.loads((out / "trainer_state.json").read_text())
        from kit import hub
        from kit.config import load
        from kit.data import build_sft, get_template
        from kit.model import load_tokenizer

        c = load(cfg_file)
        template = get_template("qwen")
        data = build_sft(c, load_tokenizer(hub.resolve_model(c.model.model_name_or_path), template), template)
        tokens = sum(len(r["input_ids"]) for r in data.train) * c.train.num_train_epochs
        runtime = results["train_runtime"]
        print(json.dumps({
            "model": cfg["model_name_or_path"], "deepspeed": cfg["deepspeed"], "train_examples": len(data.train),
            "optimizer_steps": state["global_step"], "train_runtime_s": runtime,
            "steps_per_s": round(state["global_step"] / runtime, 3), "tokens_per_s": round(tokens / runtime, 1),
            "eval_loss": results.get("eval_loss"), "train_loss": results.get("train_loss"),
            "wall_s": round(wall, 1),
            "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        }))


if __name__ == "__main__":
    main()
