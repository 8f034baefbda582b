"""Execute every notebook of both editions (English, Chinese) and print JSON with each one's time and the total.

    python bench/notebooks.py [key=value ...]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from kit.tutorial.demo import run_demo


def main() -> None:
    result: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    for lang in ("en", "zh"):
        with tempfile.TemporaryDirectory() as tmp:
            run = run_demo(sys.argv[1:], run_dir=tmp, lang=lang, log=lambda line: print(line, file=sys.stderr))
            result[lang] = run.seconds
    print(json.dumps({"notebooks_s": result, "per_edition_s": {k: round(sum(v.values()), 1) for k, v in result.items()},
                      "total_s": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
