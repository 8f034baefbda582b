"""Run `kit demo` and print JSON: wall time of each stage (notebook) and the peak RSS.

    python bench/demo.py [key=value ...]

Peak RSS is the largest resident set of any one process the demo started (the notebook kernels and
the torchrun workers are children of this process), plus this process's own.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time

from kit.demo import run_demo


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = run_demo(sys.argv[1:], run_dir=tmp, log=lambda line: print(line, file=sys.stderr))
        total = time.perf_counter() - start
    print(json.dumps({
        "stages_s": run.seconds,
        "train_s": run.values["20_lora_sft"].get("train_seconds"),
        "total_s": round(total, 1),
        "peak_rss_mb": {
            "this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        },
        "name_learned": run.values["30_chat_inference"].get("name_learned"),
    }))


if __name__ == "__main__":
    main()
