"""A fresh machine's first `bash dev.sh demo`: the set-up (venv, installs) and, with --demo, the demo after it.

    python bench/cold_setup.py [--before REV] [--after REV] [--pairs 5] [--demo]

Each round creates a new virtual environment with the dev.sh of one revision (`git show REV:dev.sh`, run
from this checkout, so only dev.sh differs between the two) and times `dev.sh demo --help` (everything the
demo installs, then the kit's first command); with --demo it times `dev.sh demo` itself instead, the
whole cold start a newcomer meets (the demo's run folder beside the new venv; the set-up is the wall time less the
notebooks' own). The two revisions alternate who goes first; pip's own cache stays
warm for both (the wheels are on local disk here either way), so the figures compare what dev.sh does
with them. Per run: wall time, and the first import of the training stack from the new environment (what
the demo's first process pays: byte-compiled files or none). JSON: each run, and the medians with their
spread; after/before ratios per pair. --after defaults to the working tree's dev.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from vs_llamafactory import spread  # noqa: E402

FIRST_IMPORT = "import kit.run.recipe, transformers.modeling_utils, peft"


def dev_sh(rev: str | None) -> str:
    if rev is None:
        return (ROOT / "dev.sh").read_text(encoding="utf-8")
    return subprocess.run(["git", "show", f"{rev}:dev.sh"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def notebook_seconds(run_dir: Path) -> list[float]:
    """Each executed notebook's own wall time (papermill's), in the demo's order."""
    return [round(json.loads(nb.read_text(encoding="utf-8"))["metadata"]["papermill"]["duration"], 1)
            for nb in sorted(run_dir.glob("*/*.ipynb"))]


def one_run(script: str, venv: Path, demo: bool) -> dict:
    shutil.rmtree(venv, ignore_errors=True)
    run_dir = venv.with_name(venv.name + "-run")  # the demo's folder: beside the venv, not in the checkout's runs/
    shutil.rmtree(run_dir, ignore_errors=True)
    copy = ROOT / f".dev-bench-{os.getpid()}.sh"  # dev.sh works from its own folder: the copy lives in the checkout
    copy.write_text(script, encoding="utf-8")
    try:
        env = {**os.environ, "KIT_VENV": str(venv)}
        start = time.perf_counter()
        proc = subprocess.run(["bash", str(copy), "demo", *(["--run_dir", str(run_dir)] if demo else ["--help"])], cwd=ROOT,
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    finally:
        copy.unlink(missing_ok=True)
    row = {"returncode": proc.returncode, "wall_s": round(wall, 2)}
    if proc.returncode:
        row["stderr_tail"] = proc.stderr[-2000:]
        return row
    if demo:  # the set-up is what the notebooks did not take (a slower machine shows in both)
        row["notebooks_s"] = notebook_seconds(run_dir)
        row["setup_s"] = round(wall - sum(row["notebooks_s"]), 2)
    start = time.perf_counter()
    subprocess.run([str(venv / "bin" / "python"), "-c", FIRST_IMPORT], cwd=ROOT, check=True)
    row["first_import_s"] = round(time.perf_counter() - start, 2)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default="HEAD", help="revision whose dev.sh is 'before' (default HEAD)")
    ap.add_argument("--after", default=None, help="revision whose dev.sh is 'after' (default: the working tree's)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--demo", action="store_true", help="time the whole `dev.sh demo`, not only its set-up")
    a = ap.parse_args()
    scripts = {"before": dev_sh(a.before), "after": dev_sh(a.after)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="cold-setup-") as tmp:
        for pair in range(a.pairs):
            order = ("before", "after") if pair % 2 == 0 else ("after", "before")
            row = {"order": f"{order[0]} first"}
            for which in order:
                row[which] = one_run(scripts[which], Path(tmp) / which, a.demo)
                print(json.dumps({"pair": pair, which: row[which]}), file=sys.stderr, flush=True)
            rows.append(row)
    ok = [r for r in rows if not r["before"]["returncode"] and not r["after"]["returncode"]]
    out = {"settings": {"before": a.before, "after": a.after or "working tree", "pairs": a.pairs,
                        "timed": "bash dev.sh demo" if a.demo else "bash dev.sh demo --help (the set-up)",
                        "cpu_count": os.cpu_count(), "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE")}}
    for measure in ("wall_s", "setup_s", "first_import_s"):
        if not all(measure in r["before"] and measure in r["after"] for r in ok):
            continue
        ratios = [r["after"][measure] / r["before"][measure] for r in ok]
        out[measure] = {"after_over_before": {"per_pair": [round(x, 3) for x in ratios], **spread(ratios)},
                        "before": spread([r["before"][measure] for r in ok]),
                        "after": spread([r["after"][measure] for r in ok])}
    out["runs"] = rows
    out["ok"] = len(ok) == len(rows)
    print(json.dumps(out, indent=1))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
