"""The same YAML through the kit and LLaMA-Factory 0.9.5, alternating A B A B; print JSON with the ratios.

    python bench/vs_llamafactory.py [--pairs 3] [--lf DIR/venv] [--max_samples 300] [--epochs 1] [--deepspeed ds_z0_config.json]

The YAML is the Ascend quick start's (qwen1_5_lora_sft_ds.yaml) on shared/reference's tiny-qwen and
data, one process, as measured in the issue: `kit train` against `llamafactory-cli train` with
FORCE_TORCHRUN=1 NPROC_PER_NODE=1 (LLaMA-Factory's venv bin first on PATH, for its torchrun). Each
tool runs with its own defaults (thread settings included): that is what a person gets.

Per run: optimizer steps/s of the training loop (train_steps_per_second from all_results.json),
whole-command wall and CPU time (the process tree's), peak memory of the tree (proportional set
size, so pages forked workers share count once; sampled every 50 ms), and the final train_loss / eval_loss, which must agree. Ratios are kit / LLaMA-Factory
per pair and their median (single runs on 2 cores vary by 30%, so pairs, not single figures).

LLaMA-Factory is looked for in ~/.cache/kit-reference/llamafactory/venv; build it with
``bash ../shared/tools/llamafactory_venv.sh`` (about 5 minutes), or pass --lf.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "llamafactory"
DEFAULT_LF = Path.home() / ".cache" / "kit-reference" / "llamafactory" / "venv"


def config(out: Path, a: argparse.Namespace) -> dict:
    cfg = yaml.safe_load((ROOT / "kit" / "examples" / "qwen1_5_lora_sft_ds.yaml").read_text(encoding="utf-8"))
    cfg.update(model_name_or_path=str(REFERENCE / "tiny-qwen"), dataset_dir=str(REFERENCE / "data"), output_dir=str(out),
               max_samples=a.max_samples, num_train_epochs=a.epochs, fp16=False, save_steps=100000, eval_steps=100000,
               deepspeed=str(REFERENCE / "deepspeed" / a.deepspeed) if (REFERENCE / "deepspeed" / a.deepspeed).is_file() else a.deepspeed)
    return cfg


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Wall, CPU (user+system of the whole tree) and peak memory (PSS summed over the tree) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak, cpu_seen = 0, {}
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        rss = 0
        for p in tree:
            try:
                with p.oneshot():
                    # PSS: pages shared by forked workers (LLaMA-Factory's preprocessing) are counted once, not per process
                    try:
                        rss += p.memory_full_info().pss
                    except (psutil.AccessDenied, AttributeError):
                        rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu_seen[p.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
        peak = max(peak, rss)
        time.sleep(0.05)
    err = proc.stderr.read()
    wall = time.perf_counter() - start
    return {"returncode": proc.returncode, "wall_s": round(wall, 2), "cpu_s": round(sum(cpu_seen.values()), 2),
            "peak_rss_mib": round(peak / 2**20, 1), "stderr_tail": err[-1500:] if proc.returncode else ""}


def results(out: Path) -> dict:
    r = json.loads((out / "all_results.json").read_text())
    return {"steps_per_s": r["train_steps_per_second"], "train_loss": r["train_loss"], "eval_loss": r.get("eval_loss")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--lf", type=Path, default=DEFAULT_LF, help="LLaMA-Factory's venv folder")
    ap.add_argument("--max_samples", type=int, default=300)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--deepspeed", default="ds_z0_config.json")
    a = ap.parse_args()
    lf_cli = a.lf / "bin" / "llamafactory-cli"
    if not lf_cli.exists():
        print(f"LLaMA-Factory not found at {a.lf}; build it with: bash ../shared/tools/llamafactory_venv.sh "
              "(or pass --lf DIR/venv)", file=sys.stderr)
        return 2
    if not (REFERENCE / "tiny-qwen").is_dir():
        print(f"the reference model is missing ({REFERENCE / 'tiny-qwen'})", file=sys.stderr)
        return 2
    kit_cli = Path(sys.executable).with_name("kit")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs-lf-") as tmp:
        base = Path(tmp)
        for pair in range(a.pairs):
            row = {}
            for tool in ("kit", "llamafactory"):
                out = base / f"{tool}-{pair}"
                cfg_file = base / f"{tool}-{pair}.yaml"
                cfg_file.write_text(yaml.safe_dump(config(out, a), sort_keys=False), encoding="utf-8")
                if tool == "kit":
                    cmd, env = [str(kit_cli), "train", str(cfg_file)], dict(os.environ)
                else:
                    cmd = [str(lf_cli), "train", str(cfg_file)]
                    env = {**os.environ, "FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1",
                           "PATH": f"{a.lf / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
                measured = run(cmd, env, base)
                if measured["returncode"] == 0:
                    measured.update(results(out))
                row[tool] = measured
            rows.append(row)
    ok = [r for r in rows if r["kit"]["returncode"] == 0 and r["llamafactory"]["returncode"] == 0]
    ratios = {
        "loop_steps_per_s": [r["kit"]["steps_per_s"] / r["llamafactory"]["steps_per_s"] for r in ok],
        "wall": [r["kit"]["wall_s"] / r["llamafactory"]["wall_s"] for r in ok],
        "cpu": [r["kit"]["cpu_s"] / r["llamafactory"]["cpu_s"] for r in ok],
        "peak_rss": [r["kit"]["peak_rss_mib"] / r["llamafactory"]["peak_rss_mib"] for r in ok],
    }
    losses_agree = all(abs(r["kit"]["train_loss"] - r["llamafactory"]["train_loss"]) <= 1e-6
                       and abs((r["kit"]["eval_loss"] or 0) - (r["llamafactory"]["eval_loss"] or 0)) <= 1e-6 for r in ok)
    print(json.dumps({
        "settings": {"max_samples": a.max_samples, "epochs": a.epochs, "deepspeed": a.deepspeed, "pairs": a.pairs,
                     "cpu_count": os.cpu_count()},
        "runs": rows,
        "ratios_kit_over_llamafactory": {k: [round(x, 3) for x in v] for k, v in ratios.items()},
        "median": {k: round(statistics.median(v), 3) if v else None for k, v in ratios.items()},
        "losses_agree_to_1e-6": losses_agree,
    }, indent=1))
    return 0 if ok and losses_agree else 1


if __name__ == "__main__":
    sys.exit(main())
