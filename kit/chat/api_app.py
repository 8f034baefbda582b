"""The web app of ``kit api``: OpenAI's chat completions over one chat Engine, with FastAPI.

    create_app(engine, ApiSettings(...))   the FastAPI app (kit/chat/api.py serves it with uvicorn)

Requests take LLaMA-Factory 0.9.5's fields (its ``ChatCompletionRequest``): ``model``, ``messages``
(``system`` first, then ``user``/``assistant`` turns ending with ``user``; content as text or as text
parts), ``do_sample``, ``temperature`` (0 is greedy), ``top_p``, ``max_tokens``, ``n``, ``stop`` and
``stream``; also OpenAI's ``max_completion_tokens`` and ``stream_options.include_usage``, and
``top_k`` and ``repetition_penalty`` as vLLM takes them. Other OpenAI fields (``presence_penalty``,
``seed``, ``user``, ...) are ignored, as LLaMA-Factory ignores them. Settings not given are the
server's (its config's do_sample, temperature, ...). Tool calls and images are refused (400): the
kit's templates are text-only.

Responses follow OpenAI's schema (``id``, ``object``, ``created``, ``model``, ``choices`` with
``index``, ``message`` or ``delta`` and ``finish_reason``, ``usage``); ``model`` repeats the request's,
as LLaMA-Factory's does. ``usage`` counts the prompt as the template encoded it and the reply by
encoding its text again (at most ``max_tokens``); ``finish_reason`` is ``length`` when that count
reaches ``max_tokens``, else ``stop``.
``stop`` strings end the reply where they first appear and are left out of it.

Errors are OpenAI's error body, ``{"error": {"message", "type", "param", "code"}}``: 400
``invalid_request_error`` for a request the engine cannot answer (with ``param`` naming the field), 401
``invalid_api_key``, 404 and 405 for other paths and methods, 503 while the server shuts down, 500
``server_error`` when generation itself fails. A streamed reply that fails after it began ends with
one ``data: {"error": ...}`` event.

One reply at a time: a request holds the engine from its first token to its last (an asyncio lock,
first come first served), so concurrent requests queue and replies never mix. Each reply is generated
off the event loop, by the engine's own thread, and read by a daemon thread of this module; a client
that goes away stops its reply at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Union

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit.chat.messages import check_turns, split_system
from kit.config import ConfigError
from kit.errors import KitError
from kit.i18n import _
from kit.library_text import json_reason, pydantic_problem

logger = logging.getLogger("kit.chat")


# ---------------------------------------------------------------- the request (LLaMA-Factory's fields)

class ContentPart(BaseModel):
    type: str
    text: Union[str, None] = None
    image_url: Any = None


class RequestMessage(BaseModel):
    role: str  # checked by the engine's rules, for its messages (check_turns)
    content: Union[str, list[ContentPart], None] = None
    tool_calls: Union[list[Any], None] = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model: Union[str, None] = None
    messages: list[RequestMessage]
    tools: Union[list[Any], None] = None
    do_sample: Union[bool, None] = None
    temperature: Union[float, None] = None
    top_p: Union[float, None] = None
    top_k: Union[int, None] = None
    repetition_penalty: Union[float, None] = None
    n: int = 1
    max_tokens: Union[int, None] = None
    max_completion_tokens: Union[int, None] = None
    stop: Union[str, list[str], None] = None
    stream: bool = False
    stream_options: Union[StreamOptions, None] = None


# The engine's setting for each request field (the request's name is the one an error names).
SETTING_FIELDS = {"do_sample": "do_sample", "temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
                  "repetition_penalty": "repetition_penalty", "max_new_tokens": "max_tokens"}


# ---------------------------------------------------------------- errors (OpenAI's body)

class ApiRequestError(Exception):
    """Answered as OpenAI's error body with this status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def _shutting_down() -> ApiRequestError:
    return ApiRequestError(503, _("the server is shutting down; this request was not answered"),
                           code="server_shutting_down", kind="server_error")


def _failed(exc: BaseException) -> ApiRequestError:
    message = str(exc) if isinstance(exc, KitError) else _("the reply failed: {kind}: {error}").format(
        kind=type(exc).__name__, error=(str(exc).splitlines() or [""])[0])
    return ApiRequestError(500, message, kind="server_error")


def _refused(exc: KitError) -> ApiRequestError:
    """A request the engine refused (bad messages, a setting out of range), as a 400 naming the field."""
    param = "messages"
    message = str(exc)
    if isinstance(exc, ConfigError):
        message = "; ".join(exc.problems)
        # Each problem starts "key: ..." ("key：..." with the full-width colon of the Chinese catalog).
        first = exc.problems[0].replace("\uff1a", ":") if exc.problems else ""
        key = first.partition(":")[0].strip()
        param = SETTING_FIELDS.get(key, key or None)
        for setting, name in SETTING_FIELDS.items():
            if setting != name:
                for colon in (":", "\uff1a"):
                    message = message.replace(f"{setting}{colon}", f"{name}{colon}")
    return ApiRequestError(400, message, param=param)


# ---------------------------------------------------------------- one request, checked

@dataclass
class Call:
    """A request as the engine takes it."""

    messages: list[dict[str, str]]
    system: str | None
    generation: dict[str, Any]
    max_new_tokens: int
    stops: list[str]
    n: int
    stream: bool
    include_usage: bool
    model: str


def _text(message: RequestMessage, index: int) -> Any:
    if message.tool_calls:
        raise ApiRequestError(400, _("messages[{index}]: tool calls are not supported by kit api (the kit's templates "
                                     "are text-only)").format(index=index), param=f"messages.{index}.tool_calls")
    if not isinstance(message.content, list):
        return message.content
    texts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise ApiRequestError(400, _("messages[{index}]: only text content is supported (the kit's templates are "
                                         "text-only), got a {kind!r} part").format(index=index, kind=part.type),
                                  param=f"messages.{index}.content")
        texts.append(part.text)
    return "\n".join(texts)  # as vLLM joins text parts


# At most this many replies per request (OpenAI's API: n <= 128).
MAX_N = 128


def check_request(request: ChatCompletionRequest, engine: Any, model_name: str) -> Call:
    """The request as a Call, or an ApiRequestError (400) saying what is wrong with it."""
    if request.tools:
        raise ApiRequestError(400, _("tools: tool calling is not supported by kit api (the kit's templates are "
                                     "text-only)"), param="tools")
    if request.n < 1:
        raise ApiRequestError(400, _("n: {value} must be at least 1").format(value=request.n), param="n")
    if request.n > MAX_N:
        # The replies are generated one after another while every other request waits: an unbounded n would hold
        # the server for as long as a client likes. OpenAI's API has the same bound.
        raise ApiRequestError(400, _("n: {value} is more than {limit} replies in one request (OpenAI's limit too); "
                                     "ask for fewer, or send several requests").format(value=request.n, limit=MAX_N),
                              param="n")
    if request.n > 1 and request.stream:
        raise ApiRequestError(400, _("n: only one reply can be streamed (n=1); ask for several without stream"),
                              param="n")
    raw = [{"role": m.role, "content": _text(m, i)} for i, m in enumerate(request.messages)]
    first = 1 if raw and raw[0]["role"] == "system" else 0
    for i in range(first, len(raw)):  # the engine's rule, said with the request's own index
        expected = "user" if (i - first) % 2 == 0 else "assistant"
        if raw[i]["role"] != expected:
            raise ApiRequestError(400, _("messages[{index}]: role {role!r}, expected {expected!r}; after an optional "
                                         "system message, messages alternate user, assistant, ..., and end with a user "
                                         "message").format(index=i, role=raw[i]["role"], expected=expected),
                                  param=f"messages.{i}.role")
    try:
        system, turns = split_system(raw, None)
        turns = check_turns(turns)
    except KitError as exc:
        raise _refused(exc) from None
    generation = {name: getattr(request, name) for name in SETTING_FIELDS.values() if name != "max_tokens"}
    generation["max_new_tokens"] = request.max_tokens if request.max_tokens is not None else request.max_completion_tokens
    generation = {name: value for name, value in generation.items() if value is not None}
    try:
        settings = engine.generation.updated(**generation) if generation else engine.generation
    except KitError as exc:
        raise _refused(exc) from None
    stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    return Call(messages=[dict(t) for t in turns], system=system, generation=generation,
                max_new_tokens=settings.max_new_tokens, stops=[s for s in stops if s], n=request.n,
                stream=request.stream, include_usage=bool(request.stream_options and request.stream_options.include_usage),
                model=request.model or model_name)


# ---------------------------------------------------------------- stop strings

class StopCutter:
    """Ends a reply before the first stop string; holds back text that may be the start of one."""

    def __init__(self, stops: list[str]):
        self.stops = stops
        self.held = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """(text that can be sent now, whether a stop string was reached)."""
        text = self.held + piece
        found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if found:
            self.held = ""
            return text[:min(found)], True
        keep = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(text)), keep, -1):
                if text.endswith(stop[:k]):
                    keep = k
                    break
        self.held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep], False

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held


# ---------------------------------------------------------------- replies, one at a time

@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def body(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


@dataclass
class _Turn:
    """What the reading thread and the request share: the engine's stream, and whether the request went away."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stream: Any = None
    cancelled: bool = False

    def attach(self, stream: Any) -> bool:
        with self.lock:
            if self.cancelled:
                stream.close()
                return False
            self.stream = stream
            return True

    def cancel(self) -> None:
        """Stop the reply at its next token (the client went away, or the server stops)."""
        with self.lock:
            self.cancelled = True
            if self.stream is not None:
                self.stream.close()


class Replies:
    """The engine's replies, one request at a time, read off the event loop."""

    def __init__(self, engine: Any):
        self.engine = engine
        self._lock: asyncio.Lock | None = None  # made on the server's loop, at the first request
        self.refusing = False

    def refuse_new(self) -> None:
        """From now on requests still waiting for the engine are answered 503 (the server is stopping)."""
        self.refusing = True

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the engine: requests wait here, first come first served, while another reply is generated."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.refusing:
                raise _shutting_down()
            yield

    async def reply(self, call: Call) -> AsyncIterator[tuple[str, Any]]:
        """One reply's events, inside ``turn()``: ("piece", text) ..., then ("end", (finish_reason, Usage)).

        A request the engine refuses raises ApiRequestError 400; a reply that fails raises a 500 one.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        turn = _Turn()

        def emit(event: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the loop has closed (the server stopped): nobody reads this reply any more
                turn.cancel()

        reader = threading.Thread(target=self._read, args=(call, turn, emit), name="kit-api-reply", daemon=True)
        reader.start()
        try:
            while True:
                kind, value = await events.get()
                if kind == "refused":
                    raise _refused(value) if isinstance(value, KitError) else _failed(value)
                if kind == "failed":
                    raise _failed(value)
                yield kind, value
                if kind == "end":
                    return
        finally:
            turn.cancel()  # a no-op after the end; otherwise the request went away: stop generating

    def _read(self, call: Call, turn: _Turn, emit: Callable[[tuple[str, Any]], None]) -> None:
        """The reading thread: starts the engine's stream, cuts it at a stop string, counts the tokens."""
        engine = self.engine
        try:
            prompt = engine.prepare(call.messages, call.system, call.max_new_tokens)
            stream = engine.stream(call.messages, call.system, **call.generation)
        except BaseException as exc:
            emit(("refused", exc))
            return
        if not turn.attach(stream):
            return
        cutter = StopCutter(call.stops)
        parts: list[str] = []
        stopped = False
        try:
            for piece in stream:
                text, stopped = cutter.feed(piece)
                if text:
                    parts.append(text)
                    emit(("piece", text))
                if stopped or turn.cancelled:
                    stream.close()
                    break
            else:
                text = cutter.flush()
                if text:
                    parts.append(text)
                    emit(("piece", text))
            if turn.cancelled:  # the client went away, or the shutdown's grace ran out: nobody waits for the end
                return
            # The engine hands over text, not tokens: the reply is counted by encoding its text again (a text
            # that does not round-trip, e.g. a cut multi-byte character, counts differently), at most max_tokens.
            encoded = len(engine.tokenizer.encode("".join(parts), add_special_tokens=False)) if parts else 0
            completion = min(encoded, prompt.max_new_tokens)
            finish = "length" if not stopped and completion >= prompt.max_new_tokens else "stop"
            emit(("end", (finish, Usage(len(prompt.ids), completion))))
        except BaseException as exc:
            emit(("failed", exc))
        finally:
            stream.close()


# ---------------------------------------------------------------- the app

def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _sse(data: Any) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(engine: Any, settings: Any) -> FastAPI:
    """The FastAPI app answering for ``engine``; ``app.state.replies`` serves its requests one at a time.

    ``settings`` is a ``kit.chat.api.ApiSettings`` (api.py imports this module, not the reverse). The
    caller owns the engine (the app never closes it).
    """
    app = FastAPI(title="kit api", root_path=settings.root_path)
    replies = app.state.replies = Replies(engine)
    api_key = settings.api_key

    @app.exception_handler(ApiRequestError)
    async def api_error(request: Request, exc: ApiRequestError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc.errors()).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = _("no such path: {path}; kit api answers GET /v1/models and POST /v1/chat/completions").format(
                path=request.url.path)
        elif exc.status_code == 405:
            message = _("{method} is not allowed on {path}").format(method=request.method, path=request.url.path)
        else:
            message = str(exc.detail)
        return ApiRequestError(exc.status_code, message, code=None).response()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("kit api: %s %s failed", request.method, request.url.path)
        return _failed(exc).response()

    async def check_key(request: Request) -> None:
        # A dependency, as LLaMA-Factory's: it runs before the body is checked, so a wrong key is a 401 first.
        if not api_key:
            return
        scheme, _sep, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise ApiRequestError(401, _("Incorrect API key provided; send it as 'Authorization: Bearer <API_KEY>' with "
                                         "the key the server was started with"), code="invalid_api_key")

    @app.get("/v1/models", dependencies=[Depends(check_key)])
    async def list_models() -> dict[str, Any]:
        card = {"id": settings.model_name, "object": "model", "created": int(time.time()), "owned_by": "owner"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", dependencies=[Depends(check_key)])
    async def chat_completions(request: ChatCompletionRequest) -> Any:
        call = check_request(request, engine, settings.model_name)
        if call.stream:
            return StreamingResponse(_stream(replies, call), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await _complete(replies, call)

    return app


def _validation_error(errors: Any) -> ApiRequestError:
    """FastAPI's validation errors as one 400: the first problem, with the field it is in as ``param``."""
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ())]
    if first.get("type") == "json_invalid":
        return ApiRequestError(400, _("the request body is not valid JSON ({error})").format(
            error=json_reason(str(first.get("ctx", {}).get("error", first.get("msg", ""))))))
    where = loc[1:] if loc[:1] == ["body"] else loc
    param = ".".join(where) or None
    if param:
        message = _("{param}: {problem}").format(param=param, problem=pydantic_problem(first))
    else:  # the body as a whole: not an object, or not sent as JSON
        message = _("the request body must be a JSON object such as {example}, sent with Content-Type: application/json "
                    "({error})").format(example='{"model": "...", "messages": [{"role": "user", "content": "..."}]}',
                                        error=pydantic_problem(first))
    if len(errors) > 1:
        message += _(" (and {count} more problem(s))").format(count=len(errors) - 1)
    return ApiRequestError(400, message, param=param)


async def _complete(replies: Replies, call: Call) -> dict[str, Any]:
    choices = []
    usage = Usage(0, 0)
    async with replies.turn():
        for index in range(call.n):
            parts = []
            finish, reply_usage = "stop", Usage(0, 0)
            async for kind, value in replies.reply(call):
                if kind == "piece":
                    parts.append(value)
                else:
                    finish, reply_usage = value
            choices.append({"index": index, "message": {"role": "assistant", "content": "".join(parts)},
                            "logprobs": None, "finish_reason": finish})
            usage = Usage(reply_usage.prompt_tokens, usage.completion_tokens + reply_usage.completion_tokens)
    return {"id": _completion_id(), "object": "chat.completion", "created": int(time.time()), "model": call.model,
            "choices": choices, "usage": usage.body()}


async def _stream(replies: Replies, call: Call) -> AsyncIterator[str]:
    completion_id, created = _completion_id(), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": call.model,
                     "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    try:
        async with replies.turn():
            first = True
            async for kind, value in replies.reply(call):
                if first:  # as OpenAI (and LLaMA-Factory) begin: the role, once
                    yield chunk({"role": "assistant", "content": ""})
                    first = False
                if kind == "piece":
                    yield chunk({"content": value})
                    continue
                finish, usage = value
                yield chunk({}, finish)
                if call.include_usage:
                    yield _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                "model": call.model, "choices": [], "usage": usage.body()})
        yield _sse("[DONE]")
    except ApiRequestError as exc:  # the headers are sent: the error is the stream's last event
        yield _sse(exc.body())
