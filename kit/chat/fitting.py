"""Fitting a conversation into the context: the reply's room, the oldest turns dropped, a long message cut.

Kept apart from the engine so each rule can be read (and tested) on its own. The search for the
turns that fit starts from the newest one and doubles, so its cost follows the context, not the
length of the history: a chat that has run for thousands of turns answers as fast as a new one
(dropping one pair at a time re-encoded the whole history per pair: 112 s per reply at 1600 turns).
"""

from __future__ import annotations

from typing import Any, Sequence

from kit.chat.messages import Message
from kit.chat.generation import ChatError
from kit.i18n import _


def budget(context_len: int, max_new_tokens: int) -> int:
    """Tokens the prompt may take. At least half the context stays the reply's room, so a long
    history cannot leave a one-token answer; a short max_new_tokens leaves the rest for history."""
    return context_len - min(max_new_tokens, context_len // 2)


def check_room(template: Any, tokenizer: Any, system: str | None, context_len: int, max_new_tokens: int) -> int:
    """The tokens of the prompt's fixed part; ChatError when it leaves no room for a message in the context.

    Cutting the front of such a prompt would silently drop the system prompt and the template's
    first tokens, so it is refused with what to change instead.
    """
    fixed = len(template.encode_prompt(tokenizer, [{"role": "user", "content": ""}], system))
    room = budget(context_len, max_new_tokens)
    if fixed >= room:
        raise ChatError(_("the system prompt and the template's own tokens take {tokens} tokens, but the context of "
                          "{context} tokens leaves {budget} for the prompt (the rest is the reply's room); shorten the "
                          "system prompt, or raise cutoff_len (the context is the smallest of cutoff_len, the model's "
                          "max_position_embeddings and vllm_maxlen)").format(tokens=fixed, context=context_len, budget=room))
    return fixed


def fit_history(template: Any, tokenizer: Any, turns: Sequence[Message], system: str | None,
                limit: int) -> tuple[int, list[int]]:
    """(user/assistant pairs dropped from the start, prompt ids): the most recent turns that fit ``limit``.

    The same result as dropping the oldest pair until the prompt fits (a prompt only grows with the
    turns kept), found by doubling the kept pairs from the newest, then halving the gap.
    """
    pairs = (len(turns) - 1) // 2

    def encode(kept: int) -> list[int]:
        return template.encode_prompt(tokenizer, list(turns[len(turns) - 1 - 2 * kept:]), system)

    best = encode(0)
    if len(best) > limit or pairs == 0:
        return pairs, best  # even the last message alone does not fit: it is cut next
    low, high = 0, 1  # `low` pairs fit; `high` is untested
    while high < pairs:
        ids = encode(high)
        if len(ids) > limit:
            break
        low, best = high, ids
        high *= 2
    high = min(high, pairs)  # does not fit (the whole history did not, or it was just tried)
    while high - low > 1:
        mid = (low + high) // 2
        ids = encode(mid)
        if len(ids) <= limit:
            low, best = mid, ids
        else:
            high = mid
    return pairs - low, best


def truncate_last_user(template: Any, tokenizer: Any, content: str, system: str | None, limit: int, fixed: int) -> list[int]:
    """The prompt of the last user message alone, its end cut so that it fits ``limit`` (``fixed`` < ``limit``)."""
    content_ids = tokenizer.encode(content, add_special_tokens=False)[: limit - fixed]
    while True:
        # Keep the start of the message, as LLaMA-Factory's cutoff keeps the start of a source.
        short = tokenizer.decode(content_ids, skip_special_tokens=False)
        ids = template.encode_prompt(tokenizer, [{"role": "user", "content": short}], system)
        # Re-tokenising decoded text can differ by a token or two: cut the message, never the system prompt.
        if len(ids) <= limit or not content_ids:
            return ids
        content_ids = content_ids[: -(len(ids) - limit)]
