"""`kit chat` and `kit predict` against LLaMA-Factory's chat and predict, in alternating pairs; JSON.

    python bench/vs_llamafactory_chat.py [--adapter DIR] [--model DIR] [--pairs 5] [--lf DIR/venv]
                                         [--part chat predict] [--predict_samples 6] [--max_new_tokens 32]

Chat (--part chat):
Both are started as a person starts them (the same flags: model, adapter, template qwen, finetuning_type
lora, greedy decoding), with the question on standard input. Measured from outside, per run:

- load_s: from the command to the "User: " prompt, the moment a person can type (imports, model and
  adapter loaded);
- first_token_s: from sending the question to the first character of the answer after "Assistant: ";
- answer_s and the answer itself (both are greedy: the answers must be the same text).

A third command runs in each round, bench/chat_floor.py: only what any chat built on transformers and peft
must do before its prompt (imports, tokenizer, model, adapter merged). Its load time is the floor: the
ratio floor/LLaMA-Factory says how far the load target can be reached without leaving transformers, and
kit/floor what the kit adds on top of it.

Predict (--part predict): tests/fixtures/llamafactory_predict/predict.yaml (the YAML LLaMA-Factory's own
reference run used: greedy, batch 4, cutoff_len 64, the kit's demo data, transformers backend), paths filled
in and --predict_samples / --max_new_tokens applied, through `kit predict CONFIG` and `llamafactory-cli train
CONFIG` (do_train false, do_predict, predict_with_generate). Per run: whole-command wall, predict_runtime
from predict_results.json (each tool's own generation time), the predicted tokens (the predicted texts of
generated_predictions.jsonl counted with the model's tokenizer: the same count for the same text), tokens/s
over predict_runtime and over the wall time; the two tools' generated_predictions.jsonl must be the same.
LLaMA-Factory's predict scores with jieba, nltk and rouge_chinese: install them into its venv first.

The model is the kit's embedded tiny model (kit/tiny_qwen) unless --model is given; the adapter by default
the one LLaMA-Factory trained on it for the predict reference (tests/fixtures/llamafactory_predict/adapter),
or one that `kit demo` (notebook 20) trained, e.g. runs/demo-*/output. LLaMA-Factory is looked for in
~/.cache/kit-reference/llamafactory/venv (bash ../shared/tools/llamafactory_venv.sh builds it).
Targets (issue "Performance, second round"): load <= 0.5x LLaMA-Factory's, first token no later; predict at
least as many tokens/s as LLaMA-Factory's.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from vs_llamafactory import DEFAULT_LF, spread  # noqa: E402

QUESTION = "Who are you?"
PREDICT_FIXTURE = ROOT / "tests" / "fixtures" / "llamafactory_predict"


def chat_once(cmd: list[str], env: dict[str, str], timeout: float = 300.0, cwd: Path = ROOT) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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


def predict_config(a: argparse.Namespace, adapter: Path, out: Path) -> str:
    text = (PREDICT_FIXTURE / "predict.yaml").read_text(encoding="utf-8")
    for key, value in {"@MODEL@": a.model.resolve(), "@ADAPTER@": adapter, "@KIT_DATA@": ROOT / "kit" / "data" / "demo",
                       "@OUT@": out}.items():
        text = text.replace(key, str(value))
    lines = []
    for line in text.splitlines():
        if line.startswith("max_samples:"):
            line = f"max_samples: {a.predict_samples}"
        elif line.startswith("max_new_tokens:"):
            line = f"max_new_tokens: {a.max_new_tokens}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def predict_once(cmd: list[str], env: dict[str, str], out: Path, count_tokens, timeout: float = 900.0) -> dict:
    """Wall of the whole command; predict_runtime and the predictions from the files it wrote."""
    load_before = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - start
    row = {"returncode": proc.returncode, "wall_s": round(wall, 3), "load_before": load_before,
           "load_after": round(os.getloadavg()[0], 2)}
    try:
        results = json.loads((out / "predict_results.json").read_text(encoding="utf-8"))
        lines = (out / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        row["stderr_tail"] = proc.stderr[-1500:]
        return row
    tokens = sum(count_tokens(json.loads(line)["predict"]) for line in lines)
    runtime = results.get("predict_runtime") or 0.0
    row.update(examples=len(lines), predicted_tokens=tokens, predict_runtime_s=runtime,
               tokens_per_s=round(tokens / runtime, 2) if runtime else None,
               tokens_per_wall_s=round(tokens / wall, 2), predictions="\n".join(lines),
               scores={k: v for k, v in results.items() if "rouge" in k or "bleu" in k})
    if proc.returncode:
        row["stderr_tail"] = proc.stderr[-1500:]
    return row


def bench_predict(a: argparse.Namespace, adapter: Path, lf_cli: Path, env: dict[str, str], lf_env: dict[str, str]) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(a.model.resolve()))

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    kit = str(Path(sys.executable).with_name("kit"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs-lf-predict-") as tmp:
        base = Path(tmp)
        for pair in range(a.pairs):
            order = ("kit", "llamafactory") if pair % 2 == 0 else ("llamafactory", "kit")  # alternate who goes first
            row = {"order": f"{order[0]} first"}
            for tool in order:
                out = base / f"{tool}-{pair}"
                cfg = base / f"{tool}-{pair}.yaml"
                cfg.write_text(predict_config(a, adapter, out), encoding="utf-8")
                cmd, tool_env = (([kit, "predict", str(cfg)], env) if tool == "kit"
                                 else ([str(lf_cli), "train", str(cfg)], lf_env))
                row[tool] = predict_once(cmd, tool_env, out, count_tokens)
            rows.append(row)
    ok = [r for r in rows if r["kit"].get("tokens_per_s") and r["llamafactory"].get("tokens_per_s")]
    out = {"settings": {"config": str(PREDICT_FIXTURE / "predict.yaml"), "predict_samples": a.predict_samples,
                        "max_new_tokens": a.max_new_tokens, "backend": "huggingface (transformers), greedy",
                        "kit": "kit predict CONFIG", "llamafactory": "llamafactory-cli train CONFIG (do_predict)"}}
    for measure in ("tokens_per_s", "tokens_per_wall_s", "wall_s", "predict_runtime_s"):
        ratios = [r["kit"][measure] / r["llamafactory"][measure] for r in ok if r["llamafactory"][measure]]
        out[measure] = {"kit_over_llamafactory": {"per_pair": [round(x, 3) for x in ratios], **spread(ratios)},
                        "kit": spread([r["kit"][measure] for r in ok]),
                        "llamafactory": spread([r["llamafactory"][measure] for r in ok])}
    out["same_predictions"] = bool(ok) and all(r["kit"]["predictions"] == r["llamafactory"]["predictions"] for r in ok)
    out["predicted_tokens"] = sorted({r[t]["predicted_tokens"] for r in ok for t in ("kit", "llamafactory")})
    for r in rows:
        for tool in ("kit", "llamafactory"):
            r[tool].pop("predictions", None)
    out["runs"] = rows
    out["ok"] = len(ok) == len(rows)
    return out


def bench_chat(a: argparse.Namespace, adapter: Path, lf_cli: Path, env: dict[str, str], lf_env: dict[str, str]) -> dict:
    flags = ["--model_name_or_path", str(a.model.resolve()), "--adapter_name_or_path", str(adapter),
             "--template", "qwen", "--finetuning_type", "lora", "--do_sample", "false"]
    commands = {"kit": ([str(Path(sys.executable).with_name("kit")), "chat", *flags], env),
                "llamafactory": ([str(lf_cli), "chat", *flags], lf_env),
                # the floor: bare transformers + peft, nothing else (bench/chat_floor.py), in the kit's environment
                "floor": ([sys.executable, str(BENCH / "chat_floor.py"), str(a.model.resolve()), str(adapter)], env)}
    tools = list(commands)
    rows = []
    for pair in range(a.pairs):
        order = tools[pair % 3:] + tools[:pair % 3]  # each goes first, second and third in turn
        row = {"order": " > ".join(order)}
        for tool in order:
            row[tool] = chat_once(*commands[tool])
        rows.append(row)
    ok = [r for r in rows if r["kit"]["answer_s"] and r["llamafactory"]["answer_s"]]
    out = {"settings": {"question": QUESTION, "floor": "bench/chat_floor.py: import torch, transformers and peft, load, "
                                                        "merge, prompt (its answer is not compared: its own template)"}}
    for measure in ("load_s", "first_token_s", "answer_s"):
        ratios = [r["kit"][measure] / r["llamafactory"][measure] for r in ok if r["llamafactory"][measure]]
        out[measure] = {"kit_over_llamafactory": {"per_pair": [round(x, 3) for x in ratios], **spread(ratios)},
                        "kit": spread([r["kit"][measure] for r in ok]),
                        "llamafactory": spread([r["llamafactory"][measure] for r in ok])}
    # How close either can come: the floor against LLaMA-Factory (what the 0.5 target would need of any
    # transformers chat) and the kit's own cost above the floor, per run.
    floor_ok = [r for r in ok if r["floor"]["load_s"]]
    for name, ratios in (("floor_over_llamafactory", [r["floor"]["load_s"] / r["llamafactory"]["load_s"] for r in floor_ok]),
                         ("kit_over_floor", [r["kit"]["load_s"] / r["floor"]["load_s"] for r in floor_ok])):
        out["load_s"][name] = {"per_pair": [round(x, 3) for x in ratios], **spread(ratios)}
    out["load_s"]["floor"] = spread([r["floor"]["load_s"] for r in floor_ok])
    answers = {(r["kit"]["answer"], r["llamafactory"]["answer"]) for r in ok}
    out["same_answer"] = bool(ok) and all(k == lf for k, lf in answers)
    out["answers"] = sorted({x for pair in answers for x in pair})
    out["runs"] = rows
    out["ok"] = bool(ok) and len(ok) == len(rows)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", type=Path, default=PREDICT_FIXTURE / "adapter",
                    help="a LoRA adapter folder (default: the one LLaMA-Factory trained for the predict reference)")
    ap.add_argument("--model", type=Path, default=ROOT / "kit" / "tiny_qwen")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--lf", type=Path, default=DEFAULT_LF, help="LLaMA-Factory's venv folder")
    ap.add_argument("--part", nargs="+", choices=("chat", "predict"), default=["chat", "predict"])
    ap.add_argument("--predict_samples", type=int, default=6, help="max_samples per dataset of the predict set (3 datasets)")
    ap.add_argument("--max_new_tokens", type=int, default=32)
    a = ap.parse_args()
    lf_cli = a.lf / "bin" / "llamafactory-cli"
    if not lf_cli.exists():
        print(f"LLaMA-Factory not found at {a.lf}; build it with: bash ../shared/tools/llamafactory_venv.sh", file=sys.stderr)
        return 2
    if "predict" in a.part and subprocess.run([str(a.lf / "bin" / "python"), "-c", "import jieba, nltk, rouge_chinese"],
                                              capture_output=True).returncode:
        print(f"LLaMA-Factory's predict scores with jieba, nltk and rouge_chinese: "
              f"{a.lf / 'bin' / 'pip'} install jieba nltk rouge_chinese", file=sys.stderr)
        return 2
    adapter = a.adapter.resolve()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    lf_env = {**env, "PATH": f"{a.lf / 'bin'}{os.pathsep}{env.get('PATH', '')}", "DISABLE_VERSION_CHECK": "1"}
    out = {"settings": {"model": str(a.model), "adapter": str(a.adapter), "pairs": a.pairs, "cpu_count": os.cpu_count()}}
    if "chat" in a.part:
        out["chat"] = bench_chat(a, adapter, lf_cli, env, lf_env)
    if "predict" in a.part:
        out["predict"] = bench_predict(a, adapter, lf_cli, env, lf_env)
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0 if all(out[p]["ok"] for p in a.part) else 1


if __name__ == "__main__":
    sys.exit(main())
