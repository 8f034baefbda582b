"""``kit api`` (kit/chat/api.py, kit/chat/api_app.py): an OpenAI-compatible server, tested over real HTTP on loopback.

The server runs as ``python -m kit.chat.api`` in a subprocess on a free port, as ``kit api`` runs it;
httpx and the ``openai`` client talk to it. Its greedy replies are compared with the chat Engine's
(an Engine over the same tiny model and adapter, greedy, 24 new tokens).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

for _module in ("fastapi", "uvicorn", "httpx", "openai"):
    pytest.importorskip(_module, reason="the api extra is not installed: pip install -e '.[api,dev]'")

import httpx
import openai

from kit import i18n
from kit.chat import api
from kit.chat.api import ApiError, ApiSettings, api_main
from kit.chat.api_app import StopCutter, create_app
from kit.ports import free_port

REPO = Path(__file__).resolve().parents[1]
KEY = "test-key"
NAME = "tiny-lumi"
WHO = [{"role": "user", "content": "Who are you?"}]
ERROR_KEYS = {"message", "type", "param", "code"}


# ---------------------------------------------------------------- a server in a subprocess

class Server:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path):
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def client(self, key: str | None = KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60,
                            headers={"Authorization": f"Bearer {key}"} if key is not None else {})


def start_server(tmp: Path, model: Path, adapter: Path | None = None, **env: str) -> Server:
    port = free_port()
    log = tmp / f"server-{port}.log"
    args = ["--model_name_or_path", str(model), "--template", "qwen", "--finetuning_type", "lora"]
    if adapter is not None:
        args += ["--adapter_name_or_path", str(adapter)]
    environ = {**os.environ, "API_PORT": str(port), "PYTHONUNBUFFERED": "1", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kit.chat.api", *args], cwd=REPO, env=environ,
                                stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, port, log)
    deadline = time.monotonic() + 120
    headers = {"Authorization": f"Bearer {env['API_KEY']}"} if env.get("API_KEY") else {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"kit api exited with {proc.returncode} before serving:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/v1/models", headers=headers, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise AssertionError(f"kit api did not answer within 120 s:\n{server.log_text()}")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait(10)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, lf_adapter_dir: Path):
    """The chat Engine the server's replies must equal: the same model and adapter, greedy, 24 new tokens.

    The adapter is conftest's LLaMA-Factory-layout one (random LoRA weights): unlike the identity-trained
    adapter, which answers every prompt with its name, it gives each prompt its own reply.
    """
    from kit.chat import Engine

    with Engine(tiny_model_dir, lf_adapter_dir, do_sample=False, max_new_tokens=24) as greedy:
        yield greedy


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, lf_adapter_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """kit api over the tiny model and its adapter, with an API key and a model name."""
    running = start_server(tmp_path_factory.mktemp("api"), tiny_model_dir, lf_adapter_dir,
                           API_KEY=KEY, API_MODEL_NAME=NAME)
    yield running
    stop_server(running)


def content_deltas(lines: Iterator[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """(the content pieces, every event) of a server-sent-event stream; checks it ends with [DONE]."""
    data = [line[len("data: "):] for line in lines if line.startswith("data: ")]
    assert data and data[-1] == "[DONE]", data[-3:]
    events = [json.loads(d) for d in data[:-1]]
    pieces = [c["delta"]["content"] for e in events for c in e["choices"] if c["delta"].get("content")]
    return pieces, events


# ---------------------------------------------------------------- replies equal the engine's, token for token

def test_plain_and_streamed_replies_equal_the_engines_greedy_reply(server: Server, engine) -> None:
    expected_pieces = list(engine.stream(WHO))
    expected = "".join(expected_pieces)
    assert expected, "the adapter should say something"
    with server.client() as client:
        for greedy in ({"temperature": 0}, {"do_sample": False}):
            body = client.post("/v1/chat/completions", json={"model": NAME, "messages": WHO, "max_tokens": 24, **greedy})
            assert body.status_code == 200, body.text
            reply = body.json()
            assert reply["object"] == "chat.completion" and reply["id"].startswith("chatcmpl-")
            assert reply["model"] == NAME and isinstance(reply["created"], int)
            choice = reply["choices"][0]
            assert choice["index"] == 0 and choice["message"] == {"role": "assistant", "content": expected}
            assert choice["finish_reason"] in ("stop", "length")
            usage = reply["usage"]
            assert usage["prompt_tokens"] == len(engine.prepare(WHO).ids)
            assert 0 < usage["completion_tokens"] <= 24
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

        with client.stream("POST", "/v1/chat/completions", json={
                "model": NAME, "messages": WHO, "max_tokens": 24, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            pieces, events = content_deltas(response.iter_lines())
    assert pieces == expected_pieces  # the engine's pieces, one event each
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events)
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0


def test_the_openai_client_gets_the_same_replies(server: Server, engine) -> None:
    expected = engine.chat(WHO)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in client.models.list().data] == [NAME]
    reply = client.chat.completions.create(model=NAME, messages=WHO, temperature=0, max_tokens=24)
    assert reply.choices[0].message.content == expected
    stream = client.chat.completions.create(model=NAME, messages=WHO, temperature=0, max_tokens=24, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == expected

    system = [{"role": "system", "content": "You are Lumi."}, *WHO]
    assert client.chat.completions.create(model=NAME, messages=system, temperature=0,
                                          max_tokens=24).choices[0].message.content == engine.chat(system)


def test_a_stop_string_ends_the_reply_before_it(server: Server, engine) -> None:
    expected = engine.chat(WHO)
    stop = expected[3:6]
    with server.client() as client:
        reply = client.post("/v1/chat/completions", json={"messages": WHO, "max_tokens": 24, "temperature": 0,
                                                          "stop": stop}).json()
        with client.stream("POST", "/v1/chat/completions", json={"messages": WHO, "max_tokens": 24, "temperature": 0,
                                                                 "stop": [stop], "stream": True}) as response:
            pieces, events = content_deltas(response.iter_lines())
    assert reply["choices"][0]["message"]["content"] == expected[:expected.index(stop)]
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert "".join(pieces) == expected[:expected.index(stop)]
    assert reply["model"] == NAME  # no model in the request: the served name


def test_stop_cutter_holds_back_a_possible_stop_string() -> None:
    cutter = StopCutter(["END", "\n\n"])
    assert cutter.feed("hello E") == ("hello ", False)
    assert cutter.feed("N") == ("", False)
    assert cutter.feed("ding") == ("ENding", False)
    assert cutter.feed(" then\n") == (" then", False)
    assert cutter.feed("\nmore") == ("", True)
    assert StopCutter(["x"]).feed("abc") == ("abc", False)
    tail = StopCutter(["END"])
    assert tail.feed("and E") == ("and ", False) and tail.flush() == "E"


# ---------------------------------------------------------------- errors: OpenAI's body

@pytest.mark.parametrize("body, param, says", [
    ({"model": NAME, "messages": []}, "messages", "messages: empty"),
    ({"model": NAME, "messages": [{"role": "assistant", "content": "hi"}]}, "messages.0.role", "expected 'user'"),
    ({"model": NAME, "messages": [{"role": "system", "content": "s"}, {"role": "bot", "content": "hi"}]},
     "messages.1.role", "messages[1]: role 'bot'"),
    ({"model": NAME, "messages": WHO + [{"role": "assistant", "content": "hi"}]}, "messages", "the last message"),
    ({"model": NAME, "messages": WHO, "temperature": -1}, "temperature", "temperature: -1.0 must be >= 0"),
    ({"model": NAME, "messages": WHO, "max_tokens": 0}, "max_tokens", "max_tokens: 0 must be positive"),
    ({"model": NAME, "messages": WHO, "top_p": "lots"}, "top_p", "top_p"),
    ({"model": NAME}, "messages", "messages: Field required"),
    ({"model": NAME, "messages": WHO, "n": 2, "stream": True}, "n", "only one reply can be streamed"),
    ({"model": NAME, "messages": WHO, "n": 129}, "n", "n: 129 is more than 128 replies"),
    ({"model": NAME, "messages": WHO, "n": 0}, "n", "n: 0 must be at least 1"),
    ({"model": NAME, "messages": WHO, "tools": [{"type": "function"}]}, "tools", "not supported"),
    ({"model": NAME, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages.0.content", "only text content"),
])
def test_a_bad_request_gets_a_400_with_openais_error_body(server: Server, body: dict, param: str, says: str) -> None:
    with server.client() as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert says in error["message"]


def test_a_wrong_key_gets_401_and_the_openai_client_reports_the_errors(server: Server) -> None:
    with server.client(key="wrong") as client:
        for response in (client.get("/v1/models"), client.post("/v1/chat/completions", json={"messages": WHO})):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_api_key"
            assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/v1/models").status_code == 401  # no key at all
    with server.client() as client:
        assert client.post("/v1/chat/completions", content=b"{not json",
                           headers={"content-type": "application/json"}).json()["error"]["message"].startswith(
            "the request body is not valid JSON")
        missing = client.get("/v1/nothing")
        assert missing.status_code == 404 and set(missing.json()["error"]) == ERROR_KEYS

    with pytest.raises(openai.AuthenticationError) as raised:
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
    assert "Incorrect API key" in raised.value.message
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=NAME, messages=[])
    assert "messages: empty" in raised.value.message and raised.value.param == "messages"


# ---------------------------------------------------------------- one reply at a time

def test_concurrent_requests_each_get_their_own_whole_reply(server: Server, engine) -> None:
    prompts = [[{"role": "user", "content": text}] for text in ("Who are you?", "hi", "Tell me about the fox.",
                                                                 "What is your name?")]
    expected = [engine.chat(p, max_new_tokens=48) for p in prompts]
    assert len(set(expected)) == len(prompts), "the prompts should give different replies"
    results: dict[int, str] = {}
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(prompts))

    def ask(i: int) -> None:
        try:
            with server.client() as client:
                barrier.wait()
                body = {"messages": prompts[i], "max_tokens": 48, "temperature": 0}
                if i % 2:  # half streamed, half plain
                    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
                        results[i] = "".join(content_deltas(response.iter_lines())[0])
                else:
                    results[i] = client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    assert [results.get(i) for i in range(len(prompts))] == expected


def test_a_client_that_goes_away_frees_the_engine(server: Server, engine) -> None:
    with server.client() as client:
        with client.stream("POST", "/v1/chat/completions", json={"messages": WHO, "max_tokens": 1500, "temperature": 0,
                                                                 "stream": True}) as response:
            next(response.iter_lines())  # the first event, then hang up
        reply = client.post("/v1/chat/completions", json={"messages": WHO, "max_tokens": 24, "temperature": 0},
                            timeout=30)
    assert reply.json()["choices"][0]["message"]["content"] == engine.chat(WHO)


# ---------------------------------------------------------------- stopping, starting

def test_sigterm_stops_the_server_with_status_0(tiny_model_dir: Path, tmp_path: Path) -> None:
    running = start_server(tmp_path, tiny_model_dir)
    try:
        with running.client(key=None) as client:
            with client.stream("POST", "/v1/chat/completions", json={"messages": WHO, "max_tokens": 1500,
                                                                     "stream": True}) as response:
                next(response.iter_lines())  # a reply is being generated
                started = time.monotonic()
                running.proc.send_signal(signal.SIGTERM)
                assert running.proc.wait(timeout=api.SHUTDOWN_GRACE_S + 10) == 0, running.log_text()
        assert time.monotonic() - started < api.SHUTDOWN_GRACE_S + 5
        assert "stopped by SIGTERM" in running.log_text()
        with socket.socket() as probe:  # the port is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", running.port))
    finally:
        stop_server(running)


def test_a_port_in_use_is_refused_before_the_model_loads(monkeypatch, tiny_model_dir: Path) -> None:
    import kit.chat.engine

    monkeypatch.setattr(kit.chat.engine, "Engine", lambda **kw: pytest.fail("the model was loaded"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("API_PORT", str(port))
        with pytest.raises(ApiError) as raised:
            api_main(["--model_name_or_path", str(tiny_model_dir), "--template", "qwen"])
    message = str(raised.value)
    assert f"port {port} is already in use on 127.0.0.1" in message and "API_PORT=" in message


def test_settings_follow_llamafactorys_variables_with_a_loopback_default() -> None:
    assert ApiSettings.from_environ({}) == ApiSettings("127.0.0.1", 8000, None, "gpt-3.5-turbo", "")
    assert ApiSettings.from_environ({"API_HOST": "0.0.0.0", "API_PORT": "9000", "API_KEY": "k", "API_MODEL_NAME": "m",
                                     "FASTAPI_ROOT_PATH": "/llm"}) == ApiSettings("0.0.0.0", 9000, "k", "m", "/llm")
    for bad in ("eighty", "70000", "-1"):
        with pytest.raises(ApiError, match=f"API_PORT='{bad}' is not a port"):
            ApiSettings.from_environ({"API_PORT": bad})


def test_without_the_extra_it_names_the_pip_command(monkeypatch) -> None:
    real = api.importlib.util.find_spec
    monkeypatch.setattr(api.importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(ApiError) as raised:
        api_main(["--model_name_or_path", "whatever"])
    assert "needs uvicorn" in str(raised.value) and "pip install 'fastapi>=0.110' 'uvicorn>=0.29'" in str(raised.value)
    try:
        i18n.set_language("zh")
        with pytest.raises(ApiError) as raised:
            api_main(["--model_name_or_path", "whatever"])
    finally:
        i18n.set_language("en")
    assert "uvicorn" in str(raised.value) and "安装" in str(raised.value)


def test_the_app_object_serves_in_process(engine) -> None:
    """create_app over an engine, without uvicorn (FastAPI's TestClient): the default name, no key needed."""
    from fastapi.testclient import TestClient

    with TestClient(create_app(engine, ApiSettings())) as client:
        assert client.get("/v1/models").json()["data"][0]["id"] == "gpt-3.5-turbo"
        reply = client.post("/v1/chat/completions", json={"messages": WHO, "max_tokens": 24, "temperature": 0}).json()
        assert reply["choices"][0]["message"]["content"] == engine.chat(WHO)
        assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 400


def test_pydantic_and_json_errors_reach_a_chinese_reader_in_chinese(engine) -> None:
    """pydantic's and json's own English would reach the client's error; kit/library_text.py words them."""
    from fastapi.testclient import TestClient

    def error(client, **body) -> str:
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, response.text
        return response.json()["error"]["message"]

    i18n.set_language("zh")
    try:
        with TestClient(create_app(engine, ApiSettings())) as client:
            assert error(client, model="x") == "messages：缺少必填字段"
            assert error(client, messages=WHO, n="two") == "n：输入应为有效的整数，无法把字符串解析为整数"
            assert error(client, messages=WHO, stream="maybe") == "stream：输入应为有效的布尔值，无法理解该输入"
            assert error(client, messages="hi") == "messages：输入应为有效的列表"
            assert error(client, messages=["hi"]) == "messages.0：输入应为有效的字典（JSON 对象），或可从中取出字段的对象"
            bad = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
            assert "此处应为用双引号括起的属性名" in bad.json()["error"]["message"], bad.text
            i18n.set_language("en")
            assert error(client, model="x") == "messages: Field required"  # pydantic's own English
    finally:
        i18n.set_language("en")


def test_help_is_the_shared_parsers_and_needs_no_extra(monkeypatch, capsys) -> None:
    monkeypatch.setattr(api.importlib.util, "find_spec", lambda name, *a: None)  # -h answers even without FastAPI
    with pytest.raises(SystemExit) as exited:
        api_main(["-h"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and out.startswith("usage: kit api [-h] [CONFIG.yaml]")
    assert "API_PORT" in out and "API_KEY" in out and "127.0.0.1" in out


@pytest.mark.parametrize("problem, param, says", [
    ("max_new_tokens: -1 must be positive", "max_tokens", "max_tokens: -1 must be positive"),
    ("max_new_tokens\uff1a-1 \u5fc5\u987b\u4e3a\u6b63\u6570", "max_tokens", "max_tokens\uff1a-1"),  # the Chinese catalog's colon
    ("top_p\uff1a5.0 \u5fc5\u987b\u4ecb\u4e8e 0 \u548c 1 \u4e4b\u95f4", "top_p", "top_p\uff1a5.0"),
])
def test_a_refused_setting_names_openais_field_in_either_language(problem: str, param: str, says: str) -> None:
    from kit.chat.api_app import _refused
    from kit.config import ConfigError

    error = _refused(ConfigError([problem]))
    assert (error.param, error.message.startswith(says)) == (param, True), (error.param, error.message)
