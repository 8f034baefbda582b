"""A chat panel for notebooks (ipywidgets): transcript, input, Send / Stop / Clear, a few settings.

    panel = ChatPanel(engine)                          # one model
    panel = ChatPanel(tuned, compare_engine=base)      # both answer the same prompt, side by side
    panel                                              # show it (last line of a cell)

Replies are generated in worker threads, so the kernel stays free while tokens stream into the
transcript and Stop can end a reply midway. The same methods the buttons call are public
(``send``, ``stop``, ``clear``, ``wait``), so a notebook run unattended (papermill) or a test can
drive the panel without a browser.

Its labels and status texts are in the language current when the panel is built (a notebook sets
``lang`` first), or in ``ChatPanel(..., lang="zh")``; status texts set later from reply threads keep
that language.
"""

from __future__ import annotations

import gettext
import html
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import ipywidgets as widgets

from kit import i18n
from kit.chat.engine import Engine
from kit.chat.messages import clean_text
from kit.i18n import N_, _

_STYLE = "white-space: pre-wrap; margin: 4px 0; padding: 4px 8px; border-radius: 6px;"
_THOUGHT_STYLE = "color: #666; border-left: 3px solid #ccc; padding-left: 6px; margin: 2px 0;"
_ROLE_STYLE = {"user": "background: #eef3ff;", "assistant": "background: #f4f4f4;"}
_UPDATE_EVERY_S = 0.05  # at most ~20 transcript updates a second: enough to look live, few comm messages


@dataclass
class _Side:
    """One engine's column: its history, its transcript widget, the reply being generated."""

    label: str
    engine: Engine
    transcript: widgets.HTML
    history: list[dict[str, str]] = field(default_factory=list)
    partial: str | None = None  # the reply being streamed, shown after the history
    note: str = ""  # "stopped", an error message, ...
    thread: threading.Thread | None = None
    error: BaseException | None = None
    seconds: float = 0.0


def _engine_label(engine: Engine) -> str:
    """A column's title (English; translated where shown)."""
    return N_("fine-tuned") if getattr(engine, "adapter_dirs", None) else N_("base")


def _speaker(role: str, translate: Callable[[str], str]) -> str:
    """"User: " or "Assistant: " (as the terminal chat writes them), in the panel's language."""
    return translate(N_("User: ") if role == "user" else N_("Assistant: "))


def _translator(lang: str) -> Callable[[str], str]:
    """gettext for the chat catalog in ``lang``, fixed now (English when there is no catalog)."""
    return gettext.translation("chat", localedir=str(i18n.LOCALE_DIR), languages=[lang], fallback=True).gettext


class ChatPanel:
    """An ipywidgets chat panel over one engine, or two side by side (``compare_engine``)."""

    def __init__(self, engine: Engine, compare_engine: Engine | None = None, labels: tuple[str, ...] | None = None,
                 system: str | None = None, lang: str | None = None):
        if lang is not None and i18n.normalise(lang) is None:
            raise i18n.LanguageError(_("lang: {lang!r} is not a language the kit speaks; use one of {languages}").format(
                lang=lang, languages=", ".join(i18n.LANGUAGES)))
        # The language is fixed here: texts set later (from reply threads) do not follow a later set_language.
        self.lang = i18n.normalise(lang) or i18n.language()
        self._ = _translator(self.lang)  # the panel's gettext: self._("...")
        if compare_engine is engine:
            raise ValueError(self._("compare_engine: give a second engine (an engine answers one reply at a time), "
                                    "e.g. Engine(model) beside Engine(model, adapter)"))
        engines = [engine] + ([compare_engine] if compare_engine is not None else [])
        labels = labels or tuple(self._(_engine_label(e)) for e in engines)
        if len(labels) != len(engines):
            raise ValueError(self._("labels: {given} given for {engines} engine(s)").format(
                given=len(labels), engines=len(engines)))
        if len(set(labels)) < len(labels):  # e.g. two base models: still tell them apart
            labels = tuple(f"{label} ({i + 1})" for i, label in enumerate(labels))
        self.sides = [_Side(label, e, widgets.HTML(layout=widgets.Layout(flex="1 1 0", min_width="0")))
                      for label, e in zip(labels, engines)]
        self._stop_requested = threading.Event()
        # Guards the histories, the epoch and the running count; reply threads take it to add their turn.
        self._lock = threading.RLock()
        self._epoch = 0  # bumped by clear(): a reply begun before it is dropped, not added to the new history
        self._running = 0  # sides still generating the current reply

        gen = engine.generation
        self.system = widgets.Textarea(value=system if system is not None else engine.template.default_system,
                                       description=self._("System"), layout=widgets.Layout(width="100%"))
        self.temperature = widgets.FloatSlider(value=0.0 if gen.greedy else gen.temperature, min=0.0, max=2.0, step=0.05,
                                               description=self._("Temperature"), tooltip=self._("0 = greedy (deterministic)"))
        self.max_new_tokens = widgets.BoundedIntText(value=min(gen.max_new_tokens, engine.context_len), min=1,
                                                     max=engine.context_len, description=self._("Max tokens"))
        # continuous_update=False: the browser sends the text once, when the box loses focus (pressing Send
        # does that), before the click. With an update per keystroke, ipywidgets holds back the last ones
        # while earlier ones are unanswered, and a quick Send could overtake them and ask a cut-off question.
        self.input = widgets.Textarea(placeholder=self._("Type a message, then Send"), continuous_update=False,
                                      layout=widgets.Layout(width="100%"))
        self.send_button = widgets.Button(description=self._("Send"), button_style="primary", icon="paper-plane")
        self.stop_button = widgets.Button(description=self._("Stop"), button_style="warning", icon="stop", disabled=True)
        self.clear_button = widgets.Button(description=self._("Clear"), icon="trash")
        self.status = widgets.HTML(value=self._("ready"))
        self.send_button.on_click(lambda _: self.send(self.input.value))
        self.stop_button.on_click(lambda _: self.stop())
        self.clear_button.on_click(lambda _: self.clear())

        columns = [widgets.VBox([widgets.HTML(f"<b>{html.escape(s.label)}</b>"), s.transcript],
                                layout=widgets.Layout(flex="1 1 0", min_width="0", border="1px solid #ddd", padding="4px"))
                   for s in self.sides]
        self.widget = widgets.VBox([
            widgets.HBox(columns, layout=widgets.Layout(width="100%")),
            self.input,
            widgets.HBox([self.send_button, self.stop_button, self.clear_button, self.status]),
            widgets.HBox([self.temperature, self.max_new_tokens]),
            self.system,
        ])
        for side in self.sides:
            self._render(side)

    # ------------------------------------------------------------ display
    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _render(self, side: _Side) -> None:
        parts = []
        template = side.engine.template
        for m in side.history:
            parts.append(self._bubble(m["role"], m["content"], template, translate=self._))
        if side.partial is not None:
            parts.append(self._bubble("assistant", side.partial, template, cursor=True, translate=self._))
        if side.note:
            parts.append(f"<div style='color:#a33;{_STYLE}'>{html.escape(side.note)}</div>")
        side.transcript.value = "".join(parts)

    @staticmethod
    def _bubble(role: str, content: str, template: Any = None, cursor: bool = False,
                translate: Callable[[str], str] | None = None) -> str:
        say = translate or _  # a panel passes its own language; called alone, the current one
        name = html.escape(_speaker(role, say).rstrip())
        mark = " \u258d" if cursor else ""  # a cursor while streaming
        thought, answer = template.split_thought(content) if role == "assistant" and template is not None else (None, content)
        if thought is None:
            body = html.escape(content + mark)
        else:
            # As LLaMA-Factory's web UI shows a reasoning reply: the thought in an open box above the answer.
            thinking = template.thought_words[1] not in content
            title = say(N_("Thinking...") if thinking else N_("Thought"))
            body = (f"<details open><summary>{html.escape(title)}</summary>"
                    f"<div style='{_THOUGHT_STYLE}'>{html.escape(thought.strip() + (mark if thinking else ''))}</div></details>"
                    f"{html.escape(answer + ('' if thinking else mark))}")
        return f"<div style='{_STYLE}{_ROLE_STYLE.get(role, '')}'><b>{name}</b> {body}</div>"

    # ------------------------------------------------------------ state for code and tests
    @property
    def busy(self) -> bool:
        return any(s.thread is not None and s.thread.is_alive() for s in self.sides)

    @property
    def history(self) -> list[dict[str, str]]:
        """The conversation with the (first) engine, as chat messages."""
        with self._lock:
            return [dict(m) for m in self.sides[0].history]

    @property
    def compare_history(self) -> list[dict[str, str]] | None:
        with self._lock:
            return [dict(m) for m in self.sides[1].history] if len(self.sides) > 1 else None

    @property
    def transcript_text(self) -> str:
        """The transcript(s) as plain text: one block per engine in compare mode."""
        blocks = []
        for side in self.sides:
            lines = [f"[{side.label}]"] if len(self.sides) > 1 else []
            for m in side.history:
                lines.append(_speaker(m["role"], self._) + m["content"])
            if side.partial is not None:
                lines.append(_speaker("assistant", self._) + side.partial)
            if side.note:
                lines.append(side.note)
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    @property
    def errors(self) -> list[BaseException]:
        return [s.error for s in self.sides if s.error is not None]

    # ------------------------------------------------------------ actions
    def send(self, text: str) -> bool:
        """Ask every engine ``text``; returns at once (False when empty or a reply is still running)."""
        # Text from the browser may carry lone surrogates (half an emoji): cleaned here, the history and the
        # transcript sent back to the browser stay valid UTF-8.
        text = clean_text(text if isinstance(text, str) else "" if text is None else str(text)).strip()
        if not text:
            self.status.value = self._("type a message first")
            return False
        with self._lock:
            if self.busy:
                self.status.value = self._("still answering: wait, or press Stop")
                return False
            self._stop_requested.clear()
            self._running = len(self.sides)
            temperature = float(self.temperature.value)
            settings = {"do_sample": temperature > 0, "temperature": temperature,
                        "max_new_tokens": int(self.max_new_tokens.value)}
            system = clean_text(self.system.value)
            self.input.value = ""
            self.send_button.disabled = True
            self.stop_button.disabled = False
            self.status.value = self._("answering...")
            for side in self.sides:
                side.history.append({"role": "user", "content": text})
                side.partial, side.note, side.error = "", "", None
                self._render(side)
                # The thread gets its own copy of the conversation and the epoch it belongs to.
                side.thread = threading.Thread(target=self._generate,
                                               args=(side, self._epoch, list(side.history), system, settings),
                                               name=f"kit-chat-panel-{side.label}", daemon=True)
            for side in self.sides:
                side.thread.start()
        return True

    def _generate(self, side: _Side, epoch: int, messages: list[dict[str, str]], system: str,
                  settings: dict[str, Any]) -> None:
        start = last_update = time.perf_counter()
        reply, error = "", None
        try:
            if not self._stop_requested.is_set():  # stopped (or cleared) before this thread began
                with side.engine.stream(messages, system, **settings) as pieces:  # leaving it ends generation
                    for piece in pieces:
                        reply += piece
                        if self._stop_requested.is_set():
                            break
                        now = time.perf_counter()
                        if now - last_update >= _UPDATE_EVERY_S:
                            self._show(side, epoch, reply)
                            last_update = now
        except Exception as exc:  # shown in the panel: a notebook has no one to raise to in this thread
            error = exc
        finally:
            with self._lock:
                if epoch == self._epoch:  # after a clear() the reply belongs to a forgotten conversation
                    side.seconds = time.perf_counter() - start
                    side.error = error
                    if error is not None:
                        side.note = self._("error: {kind}: {error}").format(kind=type(error).__name__, error=error)
                    elif self._stop_requested.is_set():
                        side.note = self._("(stopped)")
                    # Keep what was said (even a stopped reply) so the conversation continues from what was shown.
                    side.history.append({"role": "assistant", "content": reply})
                    side.partial = None
                    self._render(side)
                self._finish_if_done(epoch)

    def _show(self, side: _Side, epoch: int, reply: str) -> None:
        with self._lock:
            if epoch == self._epoch:
                side.partial = reply
                self._render(side)

    def _finish_if_done(self, epoch: int) -> None:
        # Called with the lock held. A count, not thread liveness: two sides finishing together would
        # each see the other alive.
        self._running -= 1
        if self._running > 0:
            return
        self.send_button.disabled = False
        self.stop_button.disabled = True
        if epoch == self._epoch:
            times = ", ".join(self._("{label} {seconds:.1f} s").format(label=s.label, seconds=s.seconds)
                              for s in self.sides)
            status = N_("stopped ({times})") if self._stop_requested.is_set() else N_("done ({times})")
            self.status.value = self._(status).format(times=times)

    def stop(self) -> None:
        """End the replies being generated (at the next token)."""
        self._stop_requested.set()
        for side in self.sides:
            side.engine.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the replies are complete; True if they are."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for side in self.sides:
            if side.thread is not None:
                side.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self.busy

    def clear(self, timeout: float = 30.0) -> None:
        """Forget the conversation; a running reply is stopped and dropped.

        The history is cleared at once: a reply still ending belongs to the old conversation and is
        never added to the new one. Waits up to ``timeout`` seconds for it to end, so the next Send is
        taken.
        """
        with self._lock:
            self._epoch += 1
            for side in self.sides:
                side.history.clear()
                side.partial, side.note, side.error = None, "", None
                self._render(side)
            self.status.value = self._("history cleared")
        if self.busy:
            self.stop()
            self.wait(timeout)
