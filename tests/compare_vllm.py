"""Run in the vLLM environment (tests/test_vllm.py reads what it writes; tests/notebook_runs.py runs it): the kit's vLLM
backend against its huggingface backend on one model and adapter, and kit api's app around the vLLM engine over
loopback HTTP.

    $KIT_VLLM_PYTHON compare_vllm.py MODEL_DIR ADAPTER_DIR RESULT.json

The __main__ guard matters: vLLM spawns its engine processes, which re-import this file.
"""

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
