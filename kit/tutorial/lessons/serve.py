"""Notebook 30: ``kit api`` in the background, for as long as a ``with`` block (or the kernel) lasts.

``serve(model, adapter)`` starts ``python -m kit.chat.api`` (what ``kit api`` runs) as a subprocess on a free
loopback port, waits until ``/v1/models`` answers, and returns an ``ApiServer`` whose ``stop()`` ends it: SIGTERM
(kit api stops cleanly on it), then SIGKILL after a grace period. Leaving the ``with`` block, an exception or an
interrupted cell inside it, and the kernel's exit (atexit) all stop it, so no server outlives the notebook; on Linux
a kernel killed outside Python's control (no atexit) still takes the server with it (the parent-death signal).
"""

from __future__ import annotations

import atexit
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any, Mapping

from kit.errors import KitError
from kit.i18n import _
from kit.processes import die_with_parent

HOST = "127.0.0.1"
MODEL_NAME = "kit"  # API_MODEL_NAME: what /v1/models lists and a request's "model" names

_running: "weakref.WeakSet[ApiServer]" = weakref.WeakSet()


class ServerError(KitError):
    """kit api did not start, or did not answer in time."""


class ApiServer:
    """A running ``kit api`` subprocess: its URL, its log, and ``stop()``; a context manager that stops it."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path, model_name: str = MODEL_NAME,
                 api_key: str | None = None):
        self.process = process
        self.port = port
        self.log_path = log_path
        self.model_name = model_name
        self.api_key = api_key
        self._lock = threading.Lock()
        _running.add(self)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the ``openai`` client takes as ``base_url``."""
        return self.url + "/v1"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log(self, last: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-last:]
        except OSError:
            return ""

    def curl(self, question: str, stream: bool = False) -> str:
        """The same request as a ``curl`` command for a terminal."""
        body = self.request(question)
        if stream:
            body["stream"] = True
        auth = f" -H {shlex.quote('Authorization: Bearer ' + self.api_key)}" if self.api_key else ""
        return (f"curl{' -N' if stream else ''} {self.url}/v1/chat/completions -H 'Content-Type: application/json'{auth} "
                f"-d {shlex.quote(json.dumps(body, ensure_ascii=False))}")

    def request(self, question: str) -> dict[str, Any]:
        """The chat completion request's body (greedy: temperature 0), as the openai client and curl send it."""
        return {"model": self.model_name, "messages": [{"role": "user", "content": question}], "temperature": 0}

    def chat(self, question: str) -> str:
        """One reply through plain HTTP (urllib), for where the ``openai`` package is not installed."""
        request = urllib.request.Request(self.url + "/v1/chat/completions", data=json.dumps(self.request(question)).encode(),
                                         headers={"Content-Type": "application/json"})
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())["choices"][0]["message"]["content"]

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status (None if it was never reaped)."""
        with self._lock:
            if self.process.poll() is None:
                try:
                    self.process.send_signal(signal.SIGTERM)
                    self.process.wait(grace)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(grace)
                except ProcessLookupError:
                    pass
            _running.discard(self)
            return self.process.returncode

    def __enter__(self) -> "ApiServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = _("running") if self.running else _("stopped")
        return _("kit api at {url} ({state}, pid {pid}, log {log})").format(url=self.base_url, state=state,
                                                                           pid=self.process.pid, log=self.log_path)


def openai_missing() -> str:
    return _("The openai package is not installed in this environment (pip install openai, or the kit's notebooks extra); "
             "the same request is sent with Python's urllib instead, without streaming.")


def _stop_all() -> None:
    for server in list(_running):
        server.stop(grace=5.0)


atexit.register(_stop_all)


def _answers(url: str, api_key: str | None) -> bool:
    request = urllib.request.Request(url + "/v1/models")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def command(model_name_or_path: str, adapter_name_or_path: str | None = None, template: str = "qwen",
            extra: Mapping[str, Any] | None = None) -> list[str]:
    """The ``kit api`` command line (as ``python -m kit.chat.api``, the kernel's Python, not a ``kit`` from PATH)."""
    args = [sys.executable, "-m", "kit.chat.api", "--model_name_or_path", str(model_name_or_path), "--template", template]
    if adapter_name_or_path:
        args += ["--adapter_name_or_path", str(adapter_name_or_path), "--finetuning_type", "lora"]
    for key, value in (extra or {}).items():
        args += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return args


def serve(model_name_or_path: str, adapter_name_or_path: str | None = None, template: str = "qwen",
          extra: Mapping[str, Any] | None = None, port: int | None = None, api_key: str | None = None,
          model_name: str = MODEL_NAME, timeout: float = 600.0) -> ApiServer:
    """Start ``kit api`` on loopback (a free port unless ``port``) and return once ``/v1/models`` answers.

    ``extra``: further config keys (``{"max_new_tokens": 64}``). Raises ServerError with the end of the server's log
    when it exits or does not answer within ``timeout`` seconds; the process is stopped either way.
    """
    from kit.ports import free_port

    port = port or free_port()
    env = {**os.environ, "API_HOST": HOST, "API_PORT": str(port), "API_MODEL_NAME": model_name}
    env.pop("API_KEY", None)
    if api_key:
        env["API_KEY"] = api_key
    log_path = Path(tempfile.mkstemp(prefix="kit-api-", suffix=".log")[1])
    with open(log_path, "wb") as log:
        # A session of its own: the kernel's Ctrl+C (SIGINT to the kernel) is not sent to the server as well;
        # the server is stopped by stop(), which the interrupted with-block or atexit calls.
        process = subprocess.Popen(command(model_name_or_path, adapter_name_or_path, template, extra), env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=die_with_parent(signal.SIGTERM))
    server = ApiServer(process, port, log_path, model_name, api_key)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(server.url, api_key):
            if process.poll() is not None:
                raise ServerError(_("kit api exited with status {status} before it answered; the end of its log "
                                    "({log}):\n{tail}").format(status=process.returncode, log=log_path, tail=server.log()))
            if time.monotonic() > deadline:
                raise ServerError(_("kit api did not answer at {url} within {seconds:.0f} s; the end of its log "
                                    "({log}):\n{tail}").format(url=server.url, seconds=timeout, log=log_path, tail=server.log()))
            time.sleep(0.25)
    except BaseException:  # KeyboardInterrupt too: an interrupted start leaves no server behind
        server.stop()
        raise
    return server
