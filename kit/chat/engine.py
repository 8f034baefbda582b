"""The chat engine: a base model plus LoRA adapter(s), a prompt template, and streamed replies.

    Engine(model, adapter, template="qwen", ...)    keyword settings -> chat_config -> kit.config
    Engine(config=cfg)                              a Config already loaded (what ``kit chat`` does)
      prepare(messages, system)                     template.encode_prompt, trimmed to fit the context
      stream(messages, system)                      text pieces as they are generated
      chat(messages, system)                        the whole reply
      chat(messages, adapter=False)                 the base model's reply, from the same loaded copy
      stop()                                        end the current reply early, from any thread
      close()                                       free the model and its device memory

Prompts are built by exactly the template code training used (``Template.encode_prompt``), so the
adapter sees at inference the token layout it was trained on. With a reasoning template (qwen3) the
prompt follows ``enable_thinking`` as LLaMA-Factory's does: on, the model writes its own
``<think>...</think>`` first and the reply carries it, shown as ``llamafactory-cli chat`` shows it;
off, the prompt ends in an empty thought and the model answers at once. Earlier replies' thoughts
are left out of the prompt. Two backends generate the tokens:
``huggingface`` (transformers ``generate`` in a worker thread, ``TextIteratorStreamer`` for the
pieces) and ``vllm`` (kit/chat/vllm_backend.py). The terminal loop and the notebook panel only
display what ``stream`` yields.

One reply at a time per engine: each reply is generated in its own thread, which alone marks the
engine busy, so a reader that stops reading cannot hold the engine. A second request while a reply
is still being generated gets a ChatError at once; ``stop()``, or closing or dropping the stream,
ends the reply at its next token, and the next request waits (a bounded time) for that.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from kit import config as config_mod
from kit import model as model_mod
from kit.config import Config
from kit.chat import adapter_check, fitting
from kit.chat.messages import Message, check_turns, split_system
from kit.chat.generation import ChatError, GenerationSettings, read_model_config
from kit.errors import KitError
from kit.chat.template_check import (QWEN3_TEMPLATES, TemplateMismatchWarning, hint_qwen3_template,
                                     with_checked_template)
from kit.i18n import _

logger = logging.getLogger("kit.chat")

# Names other modules take from here; they live in kit.chat.generation and kit.chat.template_check.
__all__ = ["ChatError", "Engine", "GenerationSettings", "Prompt", "QWEN3_TEMPLATES", "ReplyStream", "TemplateMismatchWarning",
           "chat_config", "read_model_config", "release_device_memory", "with_checked_template"]


@dataclass(frozen=True)
class Prompt:
    """A prompt ready to generate from, and what was cut to make it fit the context."""

    ids: list[int]
    max_new_tokens: int  # capped so that prompt + reply fit the context
    dropped_turns: int  # user/assistant pairs removed from the start of the history
    truncated: bool  # the last user message itself was cut


class Backend(Protocol):
    def generate(self, prompt_ids: list[int], settings: GenerationSettings, stop_ids: list[int],
                 stop_event: threading.Event) -> Iterator[str]: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- the huggingface backend

def _event_stopping_criteria(stop_event: threading.Event) -> Any:
    import torch
    from transformers import StoppingCriteria

    class EventStop(StoppingCriteria):
        """Ends generation at the next token once ``stop_event`` is set (Stop button, Ctrl+C)."""

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), stop_event.is_set(), dtype=torch.bool, device=input_ids.device)

    return EventStop()


class HuggingfaceBackend:
    """transformers ``generate`` in a worker thread; pieces come back through TextIteratorStreamer."""

    def __init__(self, model: Any, tokenizer: Any, device: Any):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device

    def generate(self, prompt_ids: list[int], settings: GenerationSettings, stop_ids: list[int],
                 stop_event: threading.Event, use_adapter: bool = True) -> Iterator[str]:
        import contextlib

        import torch
        from transformers import GenerationConfig, StoppingCriteriaList, TextIteratorStreamer

        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.device)
        # A fresh GenerationConfig, so the model's generation_config.json cannot change the decoding
        # (LLaMA-Factory's settings apply, as documented) and greedy stays greedy.
        sampling = ({} if settings.greedy else
                    {"temperature": settings.sampling_temperature, "top_p": settings.top_p, "top_k": settings.top_k})
        gen_config = GenerationConfig(
            do_sample=not settings.greedy, max_new_tokens=settings.max_new_tokens,
            repetition_penalty=settings.repetition_penalty, eos_token_id=stop_ids,
            pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else stop_ids[0],
            **sampling,
        )
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        # The base model's answer from the same weights: peft's disable_adapter() switches the LoRA
        # layers off for this reply only (the engine runs one reply at a time, so no other reply sees it).
        adapter_off = (self.model.disable_adapter() if not use_adapter and _is_peft(self.model)
                       else contextlib.nullcontext())  # no adapter at all: the model is the base model

        def work() -> None:
            try:
                with torch.inference_mode(), adapter_off:
                    self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                        generation_config=gen_config, streamer=streamer,
                                        stopping_criteria=StoppingCriteriaList([_event_stopping_criteria(stop_event)]))
            except BaseException as exc:  # handed to the reading thread, which re-raises it
                failure.append(exc)
                streamer.end()  # generate did not reach its own end(): unblock the reader

        worker = threading.Thread(target=work, name="kit-chat-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            # Also reached when the reader stops early (generator closed): end generation, then wait.
            stop_event.set()
            worker.join()
        if failure:
            raise failure[0]

    def close(self) -> None:
        self.model = None


# ---------------------------------------------------------------- one reply, generated in its own thread

# How long a new request waits for a stopped reply to end (it ends at its next token; on a large
# model on a CPU one token, or a long prompt's prefill, can take seconds).
STOP_WAIT_S = 60.0

_END = object()  # put on a reply's queue after its last piece


class _Generation:
    """One reply being generated in its own thread; the engine holds this, the reader a ReplyStream.

    The thread puts pieces on an unbounded queue, so it never waits for the reader: generation ends
    when the reply is complete or ``stop_event`` is set, whatever the reader does.
    """

    def __init__(self, pieces: Callable[[threading.Event], Iterator[str]]):
        self.stop_event = threading.Event()
        self.done = threading.Event()  # set once the backend has finished (before the reader sees the end)
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(pieces,), name="kit-chat-reply", daemon=True)

    def _run(self, pieces: Callable[[threading.Event], Iterator[str]]) -> None:
        try:
            for piece in pieces(self.stop_event):
                self.queue.put(piece)
        except KitError as exc:  # handed to the reader, which re-raises it
            self.error = exc
        except Exception as exc:
            # A reply that fails (invalid scores, the device out of memory) is a message to the person, and the
            # engine stays usable for the next one; the original stays attached for whoever debugs it.
            error = ChatError(_("the reply failed: {kind}: {error}; the chat can go on (ask again, or change the "
                                "decoding settings)").format(kind=type(exc).__name__, error=(str(exc).splitlines() or [""])[0]))
            error.__cause__ = exc
            self.error = error
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()
            self.queue.put(_END)

    @property
    def running(self) -> bool:
        return not self.done.is_set()


class ReplyStream(Iterator[str]):
    """The pieces of one reply as they are generated.

    Iterate it like a generator. ``close()`` (also on leaving a ``with`` block), or dropping the last
    reference to it, stops the generation at the next token, so an abandoned stream frees the engine.
    """

    def __init__(self, generation: _Generation):
        self._generation = generation
        self._finished = False

    def __iter__(self) -> "ReplyStream":
        return self

    def __next__(self) -> str:
        if self._finished:
            raise StopIteration
        item = self._generation.queue.get()
        if item is _END:
            self._finished = True
            if self._generation.error is not None:
                raise self._generation.error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the generation (at its next token) and end this stream."""
        self._finished = True
        self._generation.stop_event.set()

    def __enter__(self) -> "ReplyStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # A stream nobody reads any more must not keep generating (nor keep the engine busy).
        generation = getattr(self, "_generation", None)
        if generation is not None:
            generation.stop_event.set()


# ---------------------------------------------------------------- the engine

def _dtype_for(kind: str, bf16: bool) -> Any:
    import torch

    # LLaMA-Factory's infer_dtype "auto": bf16 where supported, else fp16, on an accelerator; the CPU
    # computes in float32 (half precision there is slow and imprecise).
    if kind == "cpu":
        return torch.float32
    return torch.bfloat16 if bf16 else torch.float16


def chat_config(model_name_or_path: str | Path | None,
                adapter_name_or_path: str | Path | Sequence[str | Path] | None = None, **settings: Any) -> Config:
    """The chat Config from keyword arguments, checked by ``config.from_dict``.

    ``settings`` are config keys, as in a YAML file or ``kit chat --key value``: template (default
    qwen; None takes the adapter's), finetuning_type (default lora), infer_backend, merge_adapter,
    default_system, cutoff_len, device, vllm_maxlen, ... and the generation keys (do_sample,
    temperature, top_p, top_k, max_new_tokens, repetition_penalty), which set the default decoding.
    Several adapters may be given as a list; they are applied in order.
    """
    if adapter_name_or_path is not None and not isinstance(adapter_name_or_path, (str, Path)):
        adapter_name_or_path = ",".join(str(a) for a in adapter_name_or_path)
    raw: dict[str, Any] = {"template": "qwen", "finetuning_type": "lora", **settings}
    if model_name_or_path is not None:
        raw["model_name_or_path"] = str(model_name_or_path)
    if adapter_name_or_path is not None:
        raw["adapter_name_or_path"] = str(adapter_name_or_path)
    # The same validation and messages as a YAML file or `kit chat --key value` get.
    return config_mod.from_dict(raw)


class Engine:
    """A model (+ adapters) and its template, answering chat messages.

    ``Engine(model, adapter, **settings)`` builds its Config with ``chat_config`` (settings are config
    keys: template, infer_backend, merge_adapter, max_new_tokens, ...); ``Engine(config=cfg)`` takes a
    Config already loaded, as ``kit chat`` does. Either way the same set-up follows.
    """

    def __init__(self, model_name_or_path: str | Path | None = None,
                 adapter_name_or_path: str | Path | Sequence[str | Path] | None = None, *,
                 config: Config | None = None, **settings: Any):
        if config is None:
            config = chat_config(model_name_or_path, adapter_name_or_path, **settings)
        elif model_name_or_path is not None or adapter_name_or_path is not None or settings:
            raise ChatError(_("Engine: give either config= or the model, adapter and settings, not both; "
                              "change a Config with cfg.replace(key=value) or build one with kit.chat.chat_config(...)"))
        from kit import device as device_mod

        self.cfg = cfg = config
        self.generation = GenerationSettings.from_config(cfg)  # settings that would fail at the first reply fail here
        self._lock = threading.Lock()  # guards starting a reply; never held while a reply streams
        self._current: _Generation | None = None
        self._closed = False
        self.backend_name = cfg.infer.infer_backend

        # Each folder's files, config and weights header are checked here, before any model is read.
        adapter_dirs = adapter_check.checked_adapter_dirs(cfg.adapter_paths)
        if adapter_dirs and cfg.finetune.finetuning_type != "lora":  # config validation says so too
            raise ChatError(_("adapter_name_or_path needs finetuning_type: lora, not {finetuning_type}").format(
                finetuning_type=cfg.finetune.finetuning_type))
        self.adapter_dirs = adapter_dirs
        template = with_checked_template(cfg.data.template, adapter_dirs, cfg.data.default_system, cfg.data.enable_thinking)
        if cfg.infer.infer_backend == "vllm":
            from kit.chat import vllm_backend

            vllm_backend.require_vllm()  # fail at once, before any weights are read
        stage = model_mod.tokenizer_stage(cfg, template=template)
        self.model_dir, self.template, self.tokenizer = stage.model_dir, stage.template, stage.tokenizer
        self.stop_ids = self.template.stop_token_ids(self.tokenizer)
        self.model_config = read_model_config(self.model_dir)
        self.context_len = self._context_len()
        # A context with no room for a message fails here, not at the first reply.
        fitting.check_room(self.template, self.tokenizer, self.template.default_system, self.context_len,
                           self.generation.max_new_tokens)
        hint_qwen3_template(self.model_config, self.template.name, adapter_dirs)
        # An adapter for another model (other shapes, more or fewer layers) is refused before the weights load.
        adapter_check.check_adapters_fit(self.model_dir, adapter_dirs, cfg.model.trust_remote_code)

        try:
            info = device_mod.detect(cfg.model.device)
        except (RuntimeError, ValueError) as exc:  # e.g. device: npu where there is none
            raise ChatError(str(exc)) from None
        self.device_info = info
        if cfg.infer.infer_backend == "vllm":
            from kit.chat import vllm_backend

            dtype = str(_dtype_for(info.kind, info.bf16)).removeprefix("torch.")
            self.backend: Backend = vllm_backend.VllmBackend(
                self.model_dir, adapter_dirs, cfg, info, max_model_len=self.context_len, dtype=dtype,
                model_config=self.model_config)
        else:
            self.backend = self._load_huggingface(adapter_dirs, info)
        logger.info(_("chat engine ready: {model}{adapters}, template {template}, backend {backend}, {device}").format(
            model=self.model_dir, adapters=f" + {', '.join(map(str, adapter_dirs))}" if adapter_dirs else "",
            template=self.template.name, backend=self.backend_name, device=info.kind))

    # ------------------------------------------------------------ loading
    def _load_huggingface(self, adapter_dirs: list[Path], info: Any) -> HuggingfaceBackend:
        model = model_mod.load_model(self.model_dir, _dtype_for(info.kind, info.bf16), self.cfg.model.trust_remote_code)
        if adapter_dirs:
            # Merged at load by default ("dynamic merge", as LLaMA-Factory does): the same speed as the
            # base model. merge_adapter=False keeps the LoRA layers separate (base and adapter weights
            # stay inspectable; slower per token).
            model = adapter_check.load_adapters(model, adapter_dirs, merge=self.cfg.infer.merge_adapter)
        device = info.torch_device()
        model.to(device)
        model.eval()
        model.generation_config.pad_token_id = self.tokenizer.pad_token_id
        return HuggingfaceBackend(model, self.tokenizer, device)

    def _context_len(self) -> int:
        """Tokens one conversation may span: cutoff_len, the model's positions, and vLLM's maxlen."""
        limits = [self.cfg.data.cutoff_len]
        text_config = self.model_config.get("text_config")
        positions = (self.model_config.get("max_position_embeddings")
                     or (text_config.get("max_position_embeddings") if isinstance(text_config, dict) else None))
        if isinstance(positions, int) and not isinstance(positions, bool) and positions > 0:
            limits.append(positions)
        if self.cfg.infer.infer_backend == "vllm":
            limits.append(self.cfg.infer.vllm_maxlen)
        return min(limits)

    @property
    def model(self) -> Any:
        """The transformers model (huggingface backend only)."""
        return getattr(self.backend, "model", None)

    # ------------------------------------------------------------ prompts
    def prepare(self, messages: Sequence[Message], system: str | None = None,
                max_new_tokens: int | None = None) -> Prompt:
        """The prompt ids for ``messages``; the oldest turns are dropped when it does not fit the context."""
        system, turns = split_system(messages, system)
        turns = check_turns(turns)
        wanted = max_new_tokens or self.generation.max_new_tokens
        limit = fitting.budget(self.context_len, wanted)
        fixed = fitting.check_room(self.template, self.tokenizer, system, self.context_len, wanted)
        dropped = 0
        ids = self.template.encode_prompt(self.tokenizer, turns, system)
        if len(ids) > limit and len(turns) > 1:
            dropped, ids = fitting.fit_history(self.template, self.tokenizer, turns, system, limit)
        truncated = len(ids) > limit
        if truncated:
            ids = fitting.truncate_last_user(self.template, self.tokenizer, turns[-1]["content"], system, limit, fixed)
        if dropped:
            logger.info(_("history too long for the context ({tokens} tokens): dropped the {dropped} oldest turn(s)").format(
                tokens=self.context_len, dropped=dropped))
        if truncated:
            logger.warning(_("the message alone is longer than the context ({tokens} tokens); it was cut to fit").format(
                tokens=self.context_len))
        return Prompt(ids, max(1, min(wanted, self.context_len - len(ids))), dropped, truncated)

    # ------------------------------------------------------------ generation
    def stream(self, messages: Sequence[Message], system: str | None = None, *, adapter: bool = True,
               **generation: Any) -> ReplyStream:
        """The reply in pieces as they are generated; ``generation`` overrides the defaults once.

        ``adapter=False`` answers as the base model, from the same loaded weights: the LoRA layers are
        switched off for this reply (an unmerged adapter: ``merge_adapter: false``, or the vLLM
        backend, which applies the adapter per request). One copy of the model then gives both the
        base and the fine-tuned answers, one after the other.

        Raises ChatError at once for bad messages or settings, when another reply is still being
        generated (one reply at a time per engine), and after ``close()``.
        """
        if self._closed:
            raise ChatError(_("this engine was closed (its model freed); create a new Engine to chat again"))
        if not adapter:
            self._check_can_disable_adapter()
        settings = self.generation.updated(**generation) if generation else self.generation
        prompt = self.prepare(messages, system, settings.max_new_tokens)
        settings = replace(settings, max_new_tokens=prompt.max_new_tokens)
        backend, stop_ids = self.backend, self.stop_ids
        if adapter:
            pieces = lambda stop_event: backend.generate(prompt.ids, settings, stop_ids, stop_event)  # noqa: E731
        else:
            pieces = lambda stop_event: backend.generate(prompt.ids, settings, stop_ids, stop_event, use_adapter=False)  # noqa: E731
        return ReplyStream(self._start(pieces))

    def _check_can_disable_adapter(self) -> None:
        """adapter=False needs the adapter kept apart from the base weights (or no adapter at all)."""
        if not self.adapter_dirs or self.backend_name == "vllm" and len(self.adapter_dirs) == 1:
            return
        if len(self.adapter_dirs) > 1:
            raise ChatError(_("adapter=False: this engine has several adapters, and all but the last are merged into the "
                              "weights; load the base model alone (Engine(model)) for its answers"))
        if self.cfg.infer.merge_adapter:
            raise ChatError(_("adapter=False: the adapter was merged into the weights at load (merge_adapter: true), so the "
                              "base model is gone from this engine; create it with merge_adapter=False to ask both from one copy"))

    def _start(self, pieces: Callable[[threading.Event], Iterator[str]]) -> _Generation:
        with self._lock:
            current = self._current
            if current is not None and current.running:
                if not current.stop_event.is_set():
                    raise ChatError(_("a reply is still being generated; call stop() or finish reading it "
                                      "(or close() its stream) before asking again"))
                # Stopped (stop(), or its stream closed or dropped): it ends at its next token.
                if not current.done.wait(STOP_WAIT_S):
                    raise ChatError(_("the previous reply was stopped but has not ended after {seconds:.0f} s; "
                                      "try again in a moment").format(seconds=STOP_WAIT_S))
            generation = _Generation(pieces)
            self._current = generation
            generation.thread.start()
            return generation

    def chat(self, messages: Sequence[Message], system: str | None = None, *, adapter: bool = True, **generation: Any) -> str:
        """The whole reply as one string (``adapter=False``: the base model's, see ``stream``)."""
        with self.stream(messages, system, adapter=adapter, **generation) as pieces:
            return "".join(pieces)

    @property
    def busy(self) -> bool:
        """A reply is being generated (stopped replies count until they have ended)."""
        current = self._current
        return current is not None and current.running

    def stop(self) -> None:
        """End the reply being generated, at the next token; safe to call from any thread, or when idle.

        Its stream then ends, and the next request waits for it to end rather than failing.
        """
        current = self._current
        if current is not None:
            current.stop_event.set()

    def close(self) -> None:
        """Free the model and its device memory (and the vLLM engine's processes); safe to call twice.

        On one card this must happen before another copy is loaded (vLLM, an export check): the
        backend drops its model, the last reply's thread is let go, a garbage collection frees what
        only cycles still held, and the device's caching allocator returns its blocks to the card.
        """
        if self._closed:
            return
        self.stop()
        current = self._current
        if current is not None:
            current.done.wait(STOP_WAIT_S)
        self._current = None
        self._closed = True
        self.backend.close()
        release_device_memory(getattr(self, "device_info", None))

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------- helpers

def _is_peft(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def release_device_memory(info: Any = None) -> None:
    """Collect garbage, then hand the device allocator's cached blocks back to the card (NPU or CUDA)."""
    import gc

    gc.collect()
    kind = getattr(info, "kind", None)
    if kind in ("npu", "cuda"):
        import torch

        empty_cache = getattr(getattr(torch, kind, None), "empty_cache", None)
        if callable(empty_cache):
            empty_cache()
