"""Long texts cut before tokenizing, where the cut provably leaves the tokens that training keeps unchanged.

Tokenizing one 10 MB string takes about 2.3 GB of memory and 13 s (measured with the Qwen
tokenizer: the fast tokenizer keeps ids, offsets and token strings for every token); a 200 MB
example would exhaust any machine, although training keeps at most ``cutoff_len`` of its tokens.
So a text much longer than ``cutoff_len`` can use is tokenized only up to a place where the
tokenizer provably splits, and only far enough to hold more than ``cutoff_len`` tokens.

Why the cut is exact. A fast (``tokenizers``) tokenizer splits off its added tokens, normalizes,
cuts the text into pre-tokens with a regular expression and runs BPE on each pre-token on its own.
For the byte-level BPE tokenizers of the Qwen, Llama 3 and GPT-2 families (their exact
expressions are listed in ``KNOWN_SPLITS``; NFC or no normalizer; no added token containing a line
break or stripping its left side), a position ``b`` with a line break before it, and a letter,
number, punctuation or symbol (not whitespace, not a combining mark) on either side of that line
break (``text[b-2]``, ``text[b]``), is a boundary of every pre-token split of the text: each
alternative of those expressions that can match a line break matches only whitespace, or ends with
its line breaks; none can continue from the line break into ``text[b]``, and none looks further
ahead than the character after its match. NFC cannot join across a line break (it composes with
nothing and has combining class 0), and no added token can contain ``text[b-1:b+1]``. So
``encode(text) == encode(text[:b]) + encode(text[b:])``: the tokens of ``text[:b]`` are exactly
the first tokens of the whole text, and the whole text's length is their count plus the count of
the rest, which can be counted piece by piece between such boundaries (``Cut.rest``) in bounded
memory. ``tests/test_hostile_data.py`` checks the equality on texts built to stress it.

Any other tokenizer (a slow one, another expression, a normalizer that may reorder) is never cut:
its texts are tokenized whole, as before, up to ``WHOLE_LIMIT`` characters; a longer text it
cannot cut makes its example unusable (``TooLong``), which ``build_sft`` drops with the reason.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

from kit.data.errors import DataError
from kit.fmt import size as fmt_size
from kit.i18n import _

# The pre-tokenizer expressions the proof above holds for (exactly as tokenizer.json writes them).
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
               r"\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
KNOWN_SPLITS = (QWEN2_SPLIT, LLAMA3_SPLIT)

# Texts up to this many characters can always be tokenized whole (under 1 GB of memory); a longer one is
# cut when the tokenizer allows it, and refused when it does not.
WHOLE_LIMIT = 4_000_000
# Counting the tokens of a long text's rest goes in pieces of about this many characters.
PIECE = 200_000


# Bytes of memory the fast tokenizer needs per character of a text tokenized whole (measured: Qwen, 10 MB of text).
MEMORY_PER_CHAR = 230


class TooLong(DataError):
    """A text too long to tokenize whole, with no place where this tokenizer can be cut exactly."""

    def __init__(self, chars: int):
        super().__init__(_("a text of {chars} characters, too long to tokenize whole (about {memory} of memory), with no line "
                           "break between letters or punctuation where this tokenizer can be cut exactly; shorten it or "
                           "break its lines").format(chars=chars, memory=fmt_size(chars * MEMORY_PER_CHAR)))
        self.chars = chars


def _is_splittable(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is one the exactness argument in the module's docstring holds for."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", False):
        return False
    try:
        normalizer = json.loads(backend.normalizer.__getstate__()) if backend.normalizer is not None else None
        pre = json.loads(backend.pre_tokenizer.__getstate__()) if backend.pre_tokenizer is not None else None
        model = backend.model
        added = backend.get_added_tokens_decoder().values()
    except Exception:  # a tokenizer built differently: not one we can reason about
        return False
    if normalizer is not None and normalizer.get("type") != "NFC":
        return False
    if type(model).__name__ != "BPE" or getattr(model, "dropout", None) not in (None, 0.0):
        return False
    if any("\n" in t.content or t.lstrip for t in added):
        return False
    if not isinstance(pre, dict):
        return False
    if pre.get("type") == "ByteLevel":  # GPT-2's expression, built in
        return pre.get("use_regex", True) and not pre.get("add_prefix_space", False)
    if pre.get("type") != "Sequence" or len(pre.get("pretokenizers", [])) != 2:
        return False
    split, byte_level = pre["pretokenizers"]
    return (split.get("type") == "Split" and split.get("pattern", {}).get("Regex") in KNOWN_SPLITS
            and split.get("behavior") == "Isolated" and not split.get("invert", False)
            and byte_level.get("type") == "ByteLevel" and not byte_level.get("use_regex", True)
            and not byte_level.get("add_prefix_space", False))


def _solid(ch: str) -> bool:
    """A letter, number, punctuation or symbol that is not a combining mark: never whitespace to any regex engine."""
    return unicodedata.category(ch)[0] in "LNPS" and unicodedata.combining(ch) == 0


def boundary(text: str, start: int, end: int) -> int | None:
    """The first position ``b`` in [start, end) where ``text`` may be cut exactly (see the docstring), or None."""
    i = text.find("\n", max(start - 1, 1), end)
    while i != -1:
        if i + 1 < len(text) and _solid(text[i - 1]) and _solid(text[i + 1]):
            return i + 1
        i = text.find("\n", i + 1, end)
    return None


@dataclass
class Cut:
    """The tokens of a text's first part, exact, and the means to count the rest when a length must be exact."""

    text: str
    at: int  # where the text was cut: ids are encode(text[:at])
    count: Callable[[str], int]

    def rest(self) -> int:
        """Tokens of ``text[at:]``, counted piece by piece between exact boundaries (bounded memory)."""
        total, pos, n = 0, self.at, len(self.text)
        while pos < n:
            limit = min(n, pos + WHOLE_LIMIT)
            # a piece of about PIECE characters; a smaller one where the text has no boundary that far on
            end = n if n - pos <= PIECE else boundary(self.text, pos + PIECE, limit) or boundary(self.text, pos + 1, limit)
            if end is None:
                if n - pos > WHOLE_LIMIT:
                    raise TooLong(n)
                end = n
            total += self.count(self.text[pos:end])
            pos = end
        return total


class Ids(list):
    """Token ids of which the first ``exact`` are those of the whole text; ``tail`` counts what was left out.

    A plain list when nothing was cut. Once a message was cut its ids hold more than ``cutoff_len``
    tokens, so whatever the template appends after them is never kept by truncation.
    """

    cuts: tuple[Cut, ...] = ()

    @property
    def tail(self) -> int:
        """Tokens cut away (counting them tokenizes the rest, piece by piece): 0 when nothing was cut."""
        return sum(c.rest() for c in self.cuts)


def join(*parts: list[int]) -> list[int]:
    """``parts`` concatenated, keeping what was cut from each (``Ids.cuts``)."""
    cuts = tuple(c for p in parts for c in getattr(p, "cuts", ()))
    if not cuts:
        return [i for p in parts for i in p]
    out = Ids(i for p in parts for i in p)
    out.cuts = cuts
    return out


class Encoder:
    """``tokenizer.encode`` for training examples: a text longer than ``cutoff_len`` can use is cut first.

    The cut is at the first exact boundary after ``min_chars`` characters (4 per token at first,
    doubled until the part holds more than ``cutoff_len`` tokens), so a 200 MB text costs a few
    hundred KB of tokenizing. Texts under ``WHOLE_LIMIT`` characters are cut only when they exceed
    ``cut_above`` (by default 64 characters a token of cutoff_len, at least 65 536): short texts,
    the usual case, take the plain path.
    """

    def __init__(self, tokenizer: Any, cutoff_len: int, cut_above: int | None = None):
        self.tokenizer = tokenizer
        self.keep = cutoff_len + 1  # tokens a cut part must hold: more than any truncation keeps
        self.splittable = _is_splittable(tokenizer)
        self.cut_above = cut_above if cut_above is not None else max(64 * self.keep, 65_536)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def __call__(self, text: str) -> list[int]:
        if len(text) <= self.cut_above or (not self.splittable and len(text) <= WHOLE_LIMIT):
            return self.tokenizer.encode(text, add_special_tokens=False)
        if not self.splittable:
            raise TooLong(len(text))
        min_chars = 4 * self.keep
        while min_chars < len(text):
            at = boundary(text, min_chars, min(len(text), min_chars + WHOLE_LIMIT))
            if at is None:
                break
            ids = self.tokenizer.encode(text[:at], add_special_tokens=False)
            if len(ids) >= self.keep:
                out = Ids(ids)
                out.cuts = (Cut(text, at, self.count),)
                return out
            min_chars = max(2 * min_chars, at + 1)
        if len(text) <= WHOLE_LIMIT:
            return self.tokenizer.encode(text, add_special_tokens=False)
        raise TooLong(len(text))
