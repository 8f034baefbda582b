"""Kill a run with SIGKILL at a random step, run the same command again, compare with an uninterrupted run.

    python bench/kill_resume.py [--trials 10] [--steps 40] [--save_steps 4] [--seed 0]

Prints JSON: the uninterrupted eval_loss, then per trial the kill step, the checkpoint it resumed
from, the final eval_loss and its difference. ``kit train`` resumes on its own from the newest
complete checkpoint when output_dir holds one (as LLaMA-Factory does), so the second command is
the first one unchanged. The tests do 2 trials (tests/test_processes.py); this does as many as asked.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def config(out: Path, steps: int, save_steps: int) -> dict:
    return {"model_name_or_path": "kit/tiny-qwen", "stage": "sft", "do_train": True, "finetuning_type": "lora",
            "lora_target": "q_proj,v_proj", "dataset": "identity,alpaca_en_demo", "template": "qwen", "cutoff_len": 256,
            "max_samples": 40, "output_dir": str(out), "logging_steps": 1, "save_steps": save_steps, "max_steps": steps,
            "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2, "learning_rate": 1e-3,
            "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "val_size": 0.1, "eval_strategy": "steps",
            "eval_steps": 100000, "per_device_eval_batch_size": 1}


def start(cfg_file: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KIT_LANG": "en"}  # the log lines read below are the English ones
    return subprocess.Popen([sys.executable, "-m", "kit.cli", "train", str(cfg_file)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def logged_step(out: Path) -> int:
    step = 0
    path = out / "trainer_log.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            step = json.loads(line)["current_steps"]
        except (ValueError, KeyError):
            break
    return step


def eval_loss(out: Path) -> float:
    return json.loads((out / "all_results.json").read_text())["eval_loss"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--save_steps", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ref_out = base / "reference"
        (base / "ref.yaml").write_text(yaml.safe_dump(config(ref_out, a.steps, a.save_steps)))
        assert start(base / "ref.yaml").wait() == 0
        expected = eval_loss(ref_out)
        trials = []
        for t in range(a.trials):
            out = base / f"trial{t}"
            cfg_file = base / f"t{t}.yaml"
            cfg_file.write_text(yaml.safe_dump(config(out, a.steps, a.save_steps)))
            kill_at = rng.randint(a.save_steps + 1, a.steps - 1)
            proc = start(cfg_file)
            while logged_step(out) < kill_at and proc.poll() is None:
                time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            again = start(cfg_file)
            _, err = again.communicate()
            resumed = re.search(r"resuming from (\S+?):", err)
            loss = eval_loss(out) if again.returncode == 0 else None
            trials.append({"kill_step": kill_at, "resumed_from": Path(resumed.group(1)).name if resumed else None,
                           "exit_code": again.returncode, "eval_loss": loss,
                           "abs_diff": abs(loss - expected) if loss is not None else None})
        same = sum(1 for t in trials if t["abs_diff"] is not None and t["abs_diff"] <= 1e-6)
        print(json.dumps({"uninterrupted_eval_loss": expected, "trials": trials, "same_to_1e-6": f"{same}/{len(trials)}"}, indent=1))


if __name__ == "__main__":
    main()
