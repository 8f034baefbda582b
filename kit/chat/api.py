"""``kit api``: an OpenAI-compatible HTTP server for the model and its adapter, as ``llamafactory-cli api``.

    API_PORT=8000 API_KEY=secret kit api [CONFIG.yaml] --model_name_or_path M --adapter_name_or_path A \
        --template qwen --finetuning_type lora [--infer_backend vllm] [--key value ...]

The flags and the YAML file are ``kit chat``'s (the config keys, checked the same way); the server is
set by LLaMA-Factory's environment variables:

    API_HOST         address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
    API_PORT         port (default 8000; 0 picks a free one and says which)
    API_KEY          when set, every request needs ``Authorization: Bearer <API_KEY>``; otherwise 401
    API_MODEL_NAME   the model's id in /v1/models (default gpt-3.5-turbo, as LLaMA-Factory's)
    FASTAPI_ROOT_PATH  the path prefix when served behind a proxy (as LLaMA-Factory's)

``GET /v1/models`` and ``POST /v1/chat/completions`` (plain, or streamed as server-sent events ending
in ``data: [DONE]``) take LLaMA-Factory's request fields (kit/chat/api_app.py). Replies come from one
chat Engine: the template applied as in ``kit chat``, the huggingface or vLLM backend, one copy of the
model. Requests are answered one at a time, in the order they arrive; the others wait their turn.

Two deliberate differences from LLaMA-Factory 0.9.5:

- it listens on 127.0.0.1 (this machine only) unless API_HOST says otherwise; LLaMA-Factory binds
  0.0.0.0, which serves the model, without a key by default, to every machine that can reach this one;
- errors are answered with OpenAI's error body, ``{"error": {"message", "type", "param", "code"}}``, which the
  ``openai`` client shows as the error's message; LLaMA-Factory answers FastAPI's ``{"detail": ...}``.

It also sends no CORS headers (LLaMA-Factory allows every origin), so a web page in a browser cannot
call the model on this machine behind the person's back.

The port is taken before the model is loaded, so a port in use is one message naming it and a free
one, at once. SIGTERM or Ctrl+C stops the server: a reply being generated gets a few seconds to finish
(then it is cut), waiting requests are refused with 503, the model is freed and the exit status is 0.
The web framework (FastAPI and uvicorn) is the ``api`` extra; without it ``kit api`` says what to install.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from kit.errors import KitError
from kit.i18n import N_, _

logger = logging.getLogger("kit.chat")

DEFAULT_HOST = "127.0.0.1"  # LLaMA-Factory: 0.0.0.0 (see the module docstring)
DEFAULT_PORT = 8000
DEFAULT_MODEL_NAME = "gpt-3.5-turbo"  # LLaMA-Factory's default API_MODEL_NAME
# How long a reply being generated may go on after SIGTERM / Ctrl+C before it is cut.
SHUTDOWN_GRACE_S = 5
# The api extra: module -> requirement (pyproject.toml's [project.optional-dependencies] api).
REQUIREMENTS = {"fastapi": "fastapi>=0.110", "uvicorn": "uvicorn>=0.29"}

DESCRIPTION = N_("""An OpenAI-compatible HTTP server for a model and its LoRA adapter, as llamafactory-cli api:

  API_PORT=8000 kit api --model_name_or_path qwen/Qwen1.5-7B --adapter_name_or_path saves/Qwen1.5-7B/lora/sft \\
          --template qwen --finetuning_type lora

The flags are kit chat's (any config key as --key value; infer_backend vllm uses vLLM). It answers
GET /v1/models and POST /v1/chat/completions (streamed with "stream": true), one request at a time.

Environment variables (LLaMA-Factory's):
  API_HOST        address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every interface)
  API_PORT        port (default 8000)
  API_KEY         require "Authorization: Bearer <API_KEY>" (401 without it)
  API_MODEL_NAME  the model's id in /v1/models (default gpt-3.5-turbo)

Unlike LLaMA-Factory it listens on 127.0.0.1 by default and answers errors with OpenAI's error body.
SIGTERM or Ctrl+C stops it.
""")


class ApiError(KitError):
    """``kit api`` cannot start: the api extra is missing, a bad API_* variable, the port is taken."""


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class ApiSettings:
    """The server's settings, from LLaMA-Factory's variables (``from_environ``) or given directly."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    model_name: str = DEFAULT_MODEL_NAME
    root_path: str = ""

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> "ApiSettings":
        import os

        env = os.environ if env is None else env
        raw_port = (env.get("API_PORT") or "").strip()
        port = DEFAULT_PORT
        if raw_port:
            try:
                port = int(raw_port)
            except ValueError:
                port = -1
            if not 0 <= port <= 65535:
                raise ApiError(_("API_PORT={value} is not a port; give a whole number from 1 to 65535 (0 picks a free "
                                 "one), or unset it for {default}").format(value=repr(raw_port), default=DEFAULT_PORT))
        return cls(host=(env.get("API_HOST") or "").strip() or DEFAULT_HOST, port=port,
                   api_key=env.get("API_KEY") or None,
                   model_name=(env.get("API_MODEL_NAME") or "").strip() or DEFAULT_MODEL_NAME,
                   root_path=env.get("FASTAPI_ROOT_PATH") or "")


def require_extra() -> None:
    """Refuse, naming the pip command, when FastAPI or uvicorn is not installed."""
    missing = [name for name in REQUIREMENTS if importlib.util.find_spec(name) is None]
    if missing:
        requirements = " ".join(f"'{REQUIREMENTS[name]}'" for name in REQUIREMENTS)
        raise ApiError(_("kit api needs {missing}, not installed in this environment; install the kit's api extra: "
                         "{python} -m pip install {requirements} (in a checkout of the kit: pip install -e '.[api]')").format(
            missing=" and ".join(missing), python=sys.executable, requirements=requirements))


# ---------------------------------------------------------------- the port

def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, held until the server listens on it (nothing can take it meanwhile).

    A port in use, or one this user may not open, is an ApiError naming it and a free port, before the
    model is loaded. The socket is bound but not listening, so a client that connects while the model
    loads is refused at once rather than left waiting.
    """
    from kit.ports import free_port, in_use

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ApiError(_("API_HOST={host} is not an address this machine can listen on ({error}); use 127.0.0.1 (this "
                         "machine only) or 0.0.0.0 (every interface)").format(host=host, error=exc)) from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn and other servers do: a port a stopped server left in TIME_WAIT can be reused at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if in_use(exc):
            raise ApiError(_("port {port} is already in use on {host} (another server listens on it); choose a free one "
                             "with API_PORT, e.g. API_PORT={free}").format(port=port, host=host, free=free_port())) from None
        raise ApiError(_("cannot listen on {host}:{port} ({error}); choose another with API_HOST and API_PORT, e.g. "
                         "API_PORT={free} (ports under 1024 need root)").format(
            host=host, port=port, error=exc.strerror or exc, free=free_port())) from None
    return sock


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "::" else host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


# ---------------------------------------------------------------- stopping

class Stopped(Exception):
    """SIGTERM or SIGINT arrived (raised by the handler ``stop_signals`` installs)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise Stopped while the model loads, and after the server has stopped.

    uvicorn handles both signals while it serves (it stops gracefully) and afterwards sends the signal it
    got to the handler that was there before it: this one, so ``api_main`` ends with status 0 rather
    than being killed by its own SIGTERM.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------- serving

def serve(engine: Any, settings: ApiSettings, sock: socket.socket) -> None:
    """Serve ``engine`` on the bound ``sock`` until SIGTERM or SIGINT (uvicorn's graceful shutdown)."""
    import uvicorn

    from kit.chat.api_app import create_app
    from kit.library_text import translate_uvicorn

    app = create_app(engine, settings)
    config = uvicorn.Config(app, log_level="info", lifespan="on", timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    translate_uvicorn()  # after Config, which sets up uvicorn's logging: its start and stop lines in the person's language
    replies = app.state.replies

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            replies.refuse_new()  # requests still waiting for the engine get 503 instead of a reply
            super().handle_exit(sig, frame)

    host, port = sock.getsockname()[:2]
    logger.info(_("kit api: serving {model} as {name!r} at {url}/v1 (API docs at {url}/docs); SIGTERM or Ctrl+C "
                  "stops it").format(model=_described(engine), name=settings.model_name,
                                     url=_url(settings.host, port) + settings.root_path))
    if not settings.api_key and settings.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(_("API_HOST={host} without API_KEY: anyone who can reach this machine on port {port} can use the "
                         "model; set API_KEY to require a key").format(host=host, port=port))
    Server(config).run(sockets=[sock])


def _described(engine: Any) -> str:
    adapters = getattr(engine, "adapter_dirs", None) or []
    return str(getattr(engine, "model_dir", "?")) + "".join(f" + {a}" for a in adapters)


def api_main(argv: list[str]) -> int:
    """Entry point of ``kit api`` (kit.cli routes here); returns the exit status (0 after SIGTERM / Ctrl+C)."""
    from kit.config.command_line import ConfigCommandParser

    parser = ConfigCommandParser("kit api", _(DESCRIPTION), config_required=False, overrides_metavar="--key value")
    ns = parser.parse_args(argv)
    require_extra()
    from kit.chat.terminal import load_config

    settings = ApiSettings.from_environ()
    cfg = load_config(parser.config_args(ns), "kit api")  # the config's mistakes before the port or the model
    with stop_signals():
        try:
            sock = listen_socket(settings.host, settings.port)
            try:
                from kit.chat.engine import Engine

                engine = Engine(config=cfg)
                try:
                    serve(engine, settings, sock)
                finally:
                    engine.close()
            finally:
                sock.close()
        except Stopped as stop:
            logger.info(_("kit api: stopped by {signal}").format(signal=signal.Signals(stop.signum).name))
    return 0


def main() -> int:
    """``python -m kit.chat.api ...``: ``kit api`` without kit.cli (its messages and exit statuses)."""
    logging.basicConfig(level=logging.INFO, format="[kit %(levelname)s] %(message)s")
    try:
        return api_main(sys.argv[1:])
    except KitError as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
