"""`kit chat` against `llamafactory-cli chat` on the same model and adapter, in alternating pairs; JSON.

    python bench/vs_llamafactory_chat.py --adapter DIR [--model DIR] [--pairs 5] [--lf DIR/venv]

Both are started as a person starts them (the same flags: model, adapter, template qwen, finetuning_type
lora, greedy decoding), with the question on standard input. Measured from outside, per run:

- load_s: from the command to the "User: " prompt, the moment a person can type (imports, model and
  adapter loaded);
- first_token_s: from sending the question to the first character of the answer after "Assistant: ";
- answer_s and the answer itself (both are greedy: the answers must be the same text).

The model is the kit's embedded tiny model (kit/tiny_qwen) unless --model is given; the adapter one that
`kit demo` (notebook 20) trained, e.g. runs/demo-*/output. LLaMA-Factory is looked for in
~/.cache/kit-reference/llamafactory/venv (bash ../shared/tools/llamafactory_venv.sh builds it).
Targets (issue "Performance, second round"): load <= 0.5x LLaMA-Factory's, first token no later.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from vs_llamafactory import DEFAULT_LF, spread  # noqa: E402

QUESTION = "Who are you?"


def chat_once(cmd: list[str], env: dict[str, str], timeout: float = 300.0) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, bufsize=0)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    text, marks = b"", {}
    try:
        while time.perf_counter() - start < timeout:
            if not sel.select(timeout=0.5):
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            text += chunk
            now = time.perf_counter()
            if "load" not in marks and b"User: " in text:
                marks["load"] = now
                asked = len(text)
                proc.stdin.write((QUESTION + "\n").encode())
                proc.stdin.flush()
            elif "load" in marks and "first" not in marks:
                after = text[asked:]
                if b"Assistant: " in after and len(after) > after.index(b"Assistant: ") + len(b"Assistant: "):
                    marks["first"] = now
            if "first" in marks and "answer" not in marks and text[asked:].count(b"User: ") >= 1:
                marks["answer"] = now
                proc.stdin.write(b"exit\n")
                proc.stdin.flush()
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reply = text[asked:].decode("utf-8", "replace") if "load" in marks else ""
    answer = reply.split("Assistant: ", 1)[-1].split("User: ", 1)[0].strip() if "Assistant: " in reply else ""
    return {"returncode": proc.returncode, "load_s": round(marks["load"] - start, 3) if "load" in marks else None,
            "first_token_s": round(marks["first"] - marks["load"], 3) if "first" in marks else None,
            "answer_s": round(marks["answer"] - marks["load"], 3) if "answer" in marks else None,
            "answer": answer, "tail": "" if "answer" in marks else text[-1500:].decode("utf-8", "replace")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", type=Path, required=True, help="a LoRA adapter folder (e.g. runs/demo-*/output)")
    ap.add_argument("--model", type=Path, default=ROOT / "kit" / "tiny_qwen")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--lf", type=Path, default=DEFAULT_LF, help="LLaMA-Factory's venv folder")
    a = ap.parse_args()
    lf_cli = a.lf / "bin" / "llamafactory-cli"
    if not lf_cli.exists():
        print(f"LLaMA-Factory not found at {a.lf}; build it with: bash ../shared/tools/llamafactory_venv.sh", file=sys.stderr)
        return 2
    flags = ["--model_name_or_path", str(a.model.resolve()), "--adapter_name_or_path", str(a.adapter.resolve()),
             "--template", "qwen", "--finetuning_type", "lora", "--do_sample", "false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    commands = {"kit": ([str(Path(sys.executable).with_name("kit")), "chat", *flags], env),
                "llamafactory": ([str(lf_cli), "chat", *flags],
                                 {**env, "PATH": f"{a.lf / 'bin'}{os.pathsep}{env.get('PATH', '')}"})}
    rows = []
    for pair in range(a.pairs):
        order = ("kit", "llamafactory") if pair % 2 == 0 else ("llamafactory", "kit")
        row = {"order": f"{order[0]} first"}
        for tool in order:
            row[tool] = chat_once(*commands[tool])
        rows.append(row)
    ok = [r for r in rows if r["kit"]["answer_s"] and r["llamafactory"]["answer_s"]]
    out = {"settings": {"model": str(a.model), "adapter": str(a.adapter), "pairs": a.pairs, "question": QUESTION,
                        "cpu_count": os.cpu_count()}}
    for measure in ("load_s", "first_token_s", "answer_s"):
        ratios = [r["kit"][measure] / r["llamafactory"][measure] for r in ok if r["llamafactory"][measure]]
        out[measure] = {"kit_over_llamafactory": {"per_pair": [round(x, 3) for x in ratios], **spread(ratios)},
                        "kit": spread([r["kit"][measure] for r in ok]),
                        "llamafactory": spread([r["llamafactory"][measure] for r in ok])}
    answers = {(r["kit"]["answer"], r["llamafactory"]["answer"]) for r in ok}
    out["same_answer"] = all(k == lf for k, lf in answers)
    out["answers"] = sorted({x for pair in answers for x in pair})
    out["runs"] = rows
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
