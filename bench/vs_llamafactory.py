"""The same YAML through the kit and LLaMA-Factory 0.9.5, in alternating pairs; print JSON with the ratios.

    python bench/vs_llamafactory.py [--pairs 5] [--kit_mode kit|kit-torchrun|torchrun] [--lf DIR/venv]
                                    [--max_samples 300] [--epochs 1] [--deepspeed ds_z0_config.json]

The YAML is the Ascend quick start's (qwen1_5_lora_sft_ds.yaml) on shared/reference's tiny-qwen and
data, one process: the kit as --kit_mode says (`kit train`, the same under FORCE_TORCHRUN=1, or the
quick start's `torchrun ... -m kit.train`) against `llamafactory-cli train` with FORCE_TORCHRUN=1
NPROC_PER_NODE=1 (LLaMA-Factory's venv bin first on PATH, for its torchrun). Each tool runs with its own
defaults (thread settings included): that is what a person gets.

Per run: the training loop's optimizer steps/s (watched from outside: when each logged step's line
appears in trainer_log.jsonl; also, as *_log, from the log's own elapsed_time, whole seconds),
train_steps_per_second from all_results.json (which also counts
DeepSpeed's start and the last evaluation), the time from the command to the first training step,
whole-command wall and CPU time (the process tree's), peak memory of the tree (proportional set size,
so pages forked workers share count once; sampled once a second), and the final train_loss / eval_loss,
which must agree. A shared 2-core machine makes single runs vary by 30%: the pairs alternate who goes
first, each ratio is given with its median, min, max and interquartile range, and a pair far from the
others is left out of them and listed with the load and CPU use of its runs, to be explained.

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


def _seconds(text: str) -> float:
    return sum(float(x) * m for x, m in zip(reversed(text.split(":")), (1, 60, 3600)))


def run(cmd: list[str], env: dict[str, str], cwd: Path, out: Path) -> dict:
    """Wall, CPU (user+system of the whole tree) and peak memory (PSS summed over the tree) of one command,
    and the training loop's pace as seen from outside: the moment each logged step's line appears in
    out/trainer_log.jsonl (polled every 20 ms; both tools write a line as they log). The log's own
    elapsed_time is rounded to whole seconds, too coarse for a loop of a few seconds."""
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak, cpu_seen, seen_steps, size = 0, {}, [], 0
    log = out / "trainer_log.jsonl"
    next_tree, next_memory = 0.0, 0.0
    while proc.poll() is None:
        now = time.perf_counter()
        if now >= next_tree:
            # CPU times every 0.25 s (cheap: /proc/PID/stat); PSS once a second, because reading
            # /proc/PID/smaps costs tens of milliseconds per process: every 50 ms it took half a core
            # and slowed a three-process LLaMA-Factory tree (launcher, torchrun, rank) twice as much
            # as the kit's one process
            next_tree = now + 0.25
            sample_memory = now >= next_memory
            if sample_memory:
                next_memory = now + 1.0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss = 0
            for p in tree:
                try:
                    with p.oneshot():
                        if sample_memory:
                            # PSS: pages shared by forked workers (LLaMA-Factory's preprocessing) are counted once
                            try:
                                rss += p.memory_full_info().pss
                            except (psutil.AccessDenied, AttributeError):
                                rss += p.memory_info().rss
                        t = p.cpu_times()
                        cpu_seen[p.pid] = t.user + t.system + t.children_user + t.children_system
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, rss)
        try:
            if log.is_file() and log.stat().st_size != size:
                text = log.read_text(encoding="utf-8")
                size = len(text.encode("utf-8"))
                lines = [json.loads(line) for line in text.splitlines() if line.endswith("}") and '"loss"' in line]
                for row in lines[len(seen_steps):]:
                    seen_steps.append((time.perf_counter() - start, row["current_steps"], _seconds(row["elapsed_time"])))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    err = proc.stderr.read()
    wall = time.perf_counter() - start
    measured = {"returncode": proc.returncode, "wall_s": round(wall, 2), "cpu_s": round(sum(cpu_seen.values()), 2),
                "peak_rss_mib": round(peak / 2**20, 1), "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2), "stderr_tail": err[-1500:] if proc.returncode else ""}
    if len(seen_steps) >= 2:
        (t0, s0, _), (t1, s1, _) = seen_steps[0], seen_steps[-1]
        pace = (s1 - s0) / (t1 - t0) if t1 > t0 else None
        measured["loop_steps_per_s"] = round(pace, 3) if pace else None
        # the first logged line is written at step s0: the loop started s0 steps' worth of time before it
        measured["to_first_step_s"] = round(t0 - s0 / pace, 2) if pace else None
        # the same two figures from the log's own clock (elapsed_time: whole seconds since the Trainer's
        # on_train_begin, so +-1 s): steps over the elapsed_time difference, and wall at the first line
        # minus its elapsed_time
        (_, _, e0), (_, _, e1) = seen_steps[0], seen_steps[-1]
        measured["loop_steps_per_s_log"] = round((s1 - s0) / (e1 - e0), 3) if e1 > e0 else None
        measured["to_first_step_s_log"] = round(t0 - e0, 2)
    return measured


def results(out: Path) -> dict:
    r = json.loads((out / "all_results.json").read_text())
    return {"train_steps_per_s": r["train_steps_per_second"], "train_loss": r["train_loss"], "eval_loss": r.get("eval_loss")}


def spread(values: list[float]) -> dict:
    """Median, min, max and interquartile range: what a reader needs to judge a ratio on a shared machine."""
    if not values:
        return {}
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) >= 2 else [values[0]] * 3
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3),
            "iqr": round(q[2] - q[0], 3), "n": len(values)}


def outliers(values: list[float]) -> list[int]:
    """Pairs whose ratio is far from the others: beyond 3 IQR of the median (at least 25% of it), or 3x off."""
    if len(values) < 4:
        return []
    med = statistics.median(values)
    q = statistics.quantiles(values, n=4, method="inclusive")
    band = max(3 * (q[2] - q[0]), 0.25 * abs(med))
    return [i for i, v in enumerate(values) if abs(v - med) > band or not med / 3 <= v <= med * 3]


KIT_MODES = {
    "kit": "kit train CONFIG (one DeepSpeed process in kit's own process, as llamafactory-cli does without FORCE_TORCHRUN)",
    "kit-torchrun": "FORCE_TORCHRUN=1 kit train CONFIG (torchrun starts the one rank)",
    "torchrun": "torchrun --nproc_per_node 1 ... -m kit.train CONFIG (the quick start's own command)",
}


def kit_command(mode: str, cfg_file: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if mode == "kit":
        return [str(Path(sys.executable).with_name("kit")), "train", str(cfg_file)], env
    if mode == "kit-torchrun":
        return [str(Path(sys.executable).with_name("kit")), "train", str(cfg_file)], {**env, "FORCE_TORCHRUN": "1"}
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--standalone", "-m", "kit.train",
            str(cfg_file)], env


MEASURES = {  # name -> (field of a run, True when higher is better)
    "loop_steps_per_s": ("loop_steps_per_s", True),
    "train_steps_per_s": ("train_steps_per_s", True),
    "wall": ("wall_s", False),
    "to_first_step": ("to_first_step_s", False),
    "loop_steps_per_s_log": ("loop_steps_per_s_log", True),
    "to_first_step_log": ("to_first_step_s_log", False),
    "cpu": ("cpu_s", False),
    "peak_memory": ("peak_rss_mib", False),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--kit_mode", choices=sorted(KIT_MODES), default="kit")
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
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs-lf-") as tmp:
        base = Path(tmp)
        for pair in range(a.pairs):
            row = {"order": "kit first" if pair % 2 == 0 else "llamafactory first"}
            for tool in (("kit", "llamafactory") if pair % 2 == 0 else ("llamafactory", "kit")):  # alternate who goes first
                out = base / f"{tool}-{pair}"
                cfg_file = base / f"{tool}-{pair}.yaml"
                cfg_file.write_text(yaml.safe_dump(config(out, a), sort_keys=False), encoding="utf-8")
                if tool == "kit":
                    cmd, env = kit_command(a.kit_mode, cfg_file)
                else:
                    cmd = [str(lf_cli), "train", str(cfg_file)]
                    env = {**os.environ, "FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1",
                           "PATH": f"{a.lf / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
                measured = run(cmd, env, base, out)
                if measured["returncode"] == 0:
                    measured.update(results(out))
                row[tool] = measured
            rows.append(row)
    ok = [r for r in rows if r["kit"]["returncode"] == 0 and r["llamafactory"]["returncode"] == 0]
    ratios, raw, flagged = {}, {}, {}
    for name, (field, _higher) in MEASURES.items():
        pairs = [(i, r) for i, r in enumerate(ok) if r["kit"].get(field) and r["llamafactory"].get(field)]
        values = [r["kit"][field] / r["llamafactory"][field] for _, r in pairs]
        bad = outliers(values)
        flagged[name] = [{"pair": pairs[i][0], "ratio": round(values[i], 3), "order": pairs[i][1]["order"],
                          "why": _why(pairs[i][1], field)} for i in bad]
        kept = [v for i, v in enumerate(values) if i not in bad]
        ratios[name] = {"per_pair": [round(v, 3) for v in values], **spread(kept)}
        raw[name] = {tool: spread([r[tool][field] for i, (_, r) in enumerate(pairs) if i not in bad])
                     for tool in ("kit", "llamafactory")}
    losses_agree = all(abs(r["kit"]["train_loss"] - r["llamafactory"]["train_loss"]) <= 1e-6
                       and abs((r["kit"]["eval_loss"] or 0) - (r["llamafactory"]["eval_loss"] or 0)) <= 1e-6 for r in ok)
    print(json.dumps({
        "settings": {"max_samples": a.max_samples, "epochs": a.epochs, "deepspeed": a.deepspeed, "pairs": a.pairs,
                     "kit": KIT_MODES[a.kit_mode], "llamafactory": "FORCE_TORCHRUN=1 NPROC_PER_NODE=1 llamafactory-cli train CONFIG",
                     "cpu_count": os.cpu_count()},
        "ratios_kit_over_llamafactory": ratios,
        "values": raw,
        "outliers_left_out": {k: v for k, v in flagged.items() if v},
        "losses": {"agree_to_1e-6": losses_agree, "train_loss": sorted({r["kit"]["train_loss"] for r in ok}),
                   "eval_loss": sorted({r["kit"]["eval_loss"] for r in ok if r["kit"]["eval_loss"] is not None})},
        "runs": rows,
    }, indent=1))
    return 0 if ok and losses_agree else 1


def _why(row: dict, field: str) -> str:
    """What the machine was doing: a pair measured while something else ran is an outlier to explain."""
    parts = []
    for tool in ("kit", "llamafactory"):
        m = row[tool]
        busy = m["cpu_s"] / m["wall_s"] if m["wall_s"] else 0
        parts.append(f"{tool}: {field}={m.get(field)}, load {m['load_before']}->{m['load_after']}, "
                     f"CPU/wall {busy:.2f}")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
