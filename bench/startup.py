"""Start-up costs of this checkout against an earlier commit, in alternating pairs; JSON.

    python bench/startup.py --before REV [--pairs 7] [--part doctor chat]

The earlier commit is checked out into a temporary git worktree and both are run with the same Python and libraries
(this checkout's environment), the kit found through PYTHONPATH from a neutral working directory, so only the kit's
own code differs:

- doctor: a new process that imports kit.doctor and runs doctor() (every check; notebooks 00 and 10, `kit demo`
  and `kit doctor` run it), timed from outside;
- chat: `python -m kit.cli chat` on the embedded tiny model with the predict reference's adapter, greedy, from the
  command to the "User: " prompt (bench/vs_llamafactory_chat.py's chat_once); its answer must be the same.

Each pair runs both, alternating which goes first; per part, each side's median (min-max, IQR) and the ratio
now / before per pair, with the pairs far from the others listed apart (bench/vs_llamafactory.py's rule).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from vs_llamafactory import outliers, spread  # noqa: E402
from vs_llamafactory_chat import PREDICT_FIXTURE, chat_once  # noqa: E402

DOCTOR = "import kit.doctor; kit.doctor.doctor(device='auto')"


def doctor_once(env: dict[str, str], cwd: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", DOCTOR], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    return {"returncode": proc.returncode, "wall_s": round(time.perf_counter() - start, 3), "tail": proc.stderr[-1000:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the earlier revision (a commit, tag or branch)")
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--part", nargs="+", choices=("doctor", "chat"), default=["doctor", "chat"])
    a = ap.parse_args()
    chat_flags = ["--model_name_or_path", str(ROOT / "kit" / "tiny_qwen"), "--adapter_name_or_path",
                  str(PREDICT_FIXTURE / "adapter"), "--template", "qwen", "--finetuning_type", "lora", "--do_sample", "false"]
    out: dict = {"settings": {"before": a.before, "now": "working tree", "pairs": a.pairs, "cpu_count": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="kit-startup-") as tmp:
        before, cwd = Path(tmp) / "before", Path(tmp) / "cwd"
        cwd.mkdir()
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), a.before], cwd=ROOT, check=True)
        try:
            trees = {"now": ROOT, "before": before}
            envs = {side: {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "KIT_LANG": "en"}
                    for side, tree in trees.items()}
            for part in a.part:
                rows = []
                for pair in range(a.pairs):
                    order = ("before", "now") if pair % 2 == 0 else ("now", "before")
                    row = {"order": f"{order[0]} first"}
                    for side in order:
                        if part == "doctor":
                            row[side] = doctor_once(envs[side], cwd)
                        else:
                            row[side] = chat_once([sys.executable, "-m", "kit.cli", "chat", *chat_flags], envs[side], cwd=cwd)
                    rows.append(row)
                    print(json.dumps({"part": part, "pair": pair, **row}), file=sys.stderr, flush=True)
                key = "wall_s" if part == "doctor" else "load_s"
                ok = [r for r in rows if r["now"]["returncode"] == 0 and r["before"]["returncode"] == 0
                      and r["now"][key] and r["before"][key]]
                ratios = [r["now"][key] / r["before"][key] for r in ok]
                far = outliers(ratios)
                result = {"measure": key, "now_over_before": {"per_pair": [round(x, 3) for x in ratios], **spread(ratios),
                                                              "far_pairs": far},
                          "now": spread([r["now"][key] for r in ok]), "before": spread([r["before"][key] for r in ok]),
                          "ok": len(ok) == len(rows)}
                if part == "chat":
                    result["same_answer"] = all(r["now"]["answer"] == r["before"]["answer"] for r in ok)
                out[part] = result
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
    print(json.dumps(out, indent=1))
    return 0 if all(out[part]["ok"] for part in a.part) else 1


if __name__ == "__main__":
    sys.exit(main())
