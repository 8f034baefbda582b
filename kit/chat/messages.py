"""Chat messages as a person or a program hands them in: checked, and made safe for the tokenizer.

A notebook passes a string where a list was meant, a browser sends text with a lone UTF-16
surrogate (half an emoji), a terminal with the wrong encoding hands on undecodable bytes: each is
either a ChatError saying what to give, or text cleaned so the reply still comes, never a
TypeError from deep inside the tokenizer.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from kit.chat.generation import ChatError
from kit.i18n import _

logger = logging.getLogger("kit.chat")

Message = Mapping[str, str]
_EXAMPLE = "[{'role': 'user', 'content': ...}]"


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (and surrogate pairs joined), so it encodes as UTF-8.

    A tokenizer (and UTF-8 output) refuses lone surrogates; they come from surrogateescape'd bytes or
    from JSON ``\\ud83d`` escapes cut in half. A pair written as two escapes is one character again.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _clean(value: str, where: str) -> str:
    cleaned = clean_text(value)
    if cleaned != value:
        logger.warning(_("{where}: the text held characters that are not valid Unicode (lone surrogates); they were "
                         "replaced with \ufffd").format(where=where))
    return cleaned


def split_system(messages: Any, system: Any) -> tuple[str | None, list[Message]]:
    """(system prompt, user/assistant turns); an OpenAI-style leading system message works as well as ``system``."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        hint = _("; to send one text, give {example}").format(example="[{'role': 'user', 'content': text}]") \
            if isinstance(messages, str) else ""
        raise ChatError(_("messages: expected a list of messages like {example}, got a {kind}{hint}").format(
            kind=type(messages).__name__, example=_EXAMPLE, hint=hint))
    turns = list(messages)
    for i, message in enumerate(turns):
        if not isinstance(message, Mapping):
            raise ChatError(_("messages[{index}]: expected a message like {example}, got a {kind}").format(
                index=i, kind=type(message).__name__, example="{'role': 'user', 'content': ...}"))
    if turns and turns[0].get("role") == "system":
        if system is None:
            system = turns[0].get("content")
        turns = turns[1:]
    if system is not None and not isinstance(system, str):
        raise ChatError(_("system: expected the system prompt's text (a string), got a {kind}").format(kind=type(system).__name__))
    return (_clean(system, "system") if system is not None else None), turns


def check_turns(turns: Sequence[Message]) -> list[Message]:
    """The turns, checked (user, assistant, ..., user) and with their text cleaned."""
    if not turns:
        raise ChatError(_("messages: empty; give at least one {example} message").format(
            example="{'role': 'user', 'content': ...}"))
    out: list[Message] = []
    for i, message in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        role = message.get("role")
        if role != expected:
            raise ChatError(_("messages[{index}]: role {role!r}, expected {expected!r}; messages alternate user, "
                              "assistant, ..., and end with a user message").format(index=i, role=role, expected=expected))
        content = message.get("content")
        if not isinstance(content, str):
            raise ChatError(_("messages[{index}]: content must be a string").format(index=i))
        out.append({**message, "content": _clean(content, f"messages[{i}]")})
    if len(turns) % 2 == 0:
        raise ChatError(_("messages: the last message must be the user's (the assistant answers it)"))
    return out
