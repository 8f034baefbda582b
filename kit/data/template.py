"""Prompt templates, read from ``templates.json``; one encoder for training and for chat.

The encoding mirrors LLaMA-Factory 0.9.5: each message is rendered through its role's slots and
tokenized on its own (``add_special_tokens=False``), so a template's token ids are the same here as
there. Chat builds prompts with exactly this code, so training and inference cannot drift.

A reasoning template (``"reasoning": true``, LLaMA-Factory's ``ReasoningTemplate``: qwen3) also
handles a thought, ``<think>\n...\n</think>\n\n`` at the start of an assistant message. A reply
without one gets an empty thought (``<think>\n\n</think>\n\n``, tokenized on its own): with
``enable_thinking`` true it is the start of the response, trained; otherwise it ends the prompt, not
trained, and with ``enable_thinking`` false every thought is removed from the data first. Chat
prompts drop the thoughts of earlier replies, and with thinking off end in the empty thought, so the
model answers at once. ``*_nothink`` templates are plain templates: no thought is added or removed.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from kit.data.cut import join
from kit.errors import KitError
from kit.i18n import _

Encode = Callable[[str], list[int]]  # text -> token ids, tokenizer.encode(text, add_special_tokens=False) by default

TEMPLATES_FILE = Path(__file__).with_name("templates.json")

ROLES = ("user", "assistant", "observation")

# LLaMA-Factory's default thought_words, the same for every template it registers.
THOUGHT_WORDS = ("<think>\n", "\n</think>\n\n")


class TemplateError(KitError, ValueError):
    pass


@lru_cache(maxsize=None)
def _registry() -> dict[str, dict[str, Any]]:
    data = json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def names() -> list[str]:
    return sorted(_registry())


@dataclass(frozen=True)
class Template:
    name: str
    format_user: tuple
    format_assistant: tuple
    format_system: tuple
    format_observation: tuple
    format_prefix: tuple
    default_system: str
    stop_words: tuple[str, ...]
    replace_eos: bool
    efficient_eos: bool
    thought_words: tuple[str, str] = THOUGHT_WORDS
    reasoning: bool = False  # LLaMA-Factory's ReasoningTemplate: adds and removes thoughts
    # Set from the data config (build_sft, chat): LLaMA-Factory's DataArguments of the same names.
    enable_thinking: bool | None = True
    preserve_thinking: bool = False  # keep earlier replies' thoughts in chat prompts (LLaMA-Factory's default: no)

    # ------------------------------------------------------------ tokenizer set-up
    def fix_tokenizer(self, tokenizer: Any) -> list[str]:
        """Make eos/pad what the template expects (LLaMA-Factory does the same); return notes of changes."""
        notes: list[str] = []
        if tokenizer.eos_token_id is None:
            tokenizer.add_special_tokens({"eos_token": "<|endoftext|>"})
            notes.append(_("tokenizer had no eos token; added <|endoftext|>"))
        if self.replace_eos and self.stop_words and tokenizer.eos_token != self.stop_words[0]:
            old = tokenizer.eos_token
            tokenizer.add_special_tokens({"eos_token": self.stop_words[0]})
            notes.append(_("template {name} uses {token} as eos (was {old})").format(name=self.name, token=self.stop_words[0], old=old))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
            notes.append(_("tokenizer had no pad token; using eos {token}").format(token=tokenizer.eos_token))
        return notes

    def stop_token_ids(self, tokenizer: Any) -> list[int]:
        ids = [tokenizer.eos_token_id]
        for word in self.stop_words:
            tid = tokenizer.convert_tokens_to_ids(word)
            if tid is not None and tid != getattr(tokenizer, "unk_token_id", None) and tid not in ids:
                ids.append(tid)
        return ids

    # ------------------------------------------------------------ encoding
    def _render(self, tokenizer: Any, slots: Sequence, content: str, encode: Encode | None = None) -> list[int]:
        ids: list[int] = []
        for slot in slots:
            if isinstance(slot, str):
                text = slot.replace("{{content}}", content, 1)
                if text:
                    ids = join(ids, encode(text) if encode is not None else tokenizer.encode(text, add_special_tokens=False))
            elif "token" in slot:
                ids.append(tokenizer.convert_tokens_to_ids(slot["token"]))
            elif slot.get("special") == "eos_token" and tokenizer.eos_token_id is not None:
                ids.append(tokenizer.eos_token_id)
            elif slot.get("special") == "bos_token" and tokenizer.bos_token_id is not None:
                ids.append(tokenizer.bos_token_id)
        return ids

    def encode_messages(self, tokenizer: Any, messages: Sequence[dict[str, str]], system: str | None = None,
                        encode: Encode | None = None) -> list[list[int]]:
        """Token ids of each message; the first also carries the prefix and the system prompt.

        ``encode`` replaces ``tokenizer.encode`` (training passes ``kit.data.cut.Encoder``, which cuts
        texts too long for cutoff_len); what it cut is kept on the ids (``kit.data.cut.Ids``).
        """
        system = system or self.default_system
        encoded: list[list[int]] = []
        for i, message in enumerate(messages):
            ids: list[int] = []
            if i == 0:
                ids = join(ids, self._render(tokenizer, self.format_prefix, "", encode))
                if system:
                    ids = join(ids, self._render(tokenizer, self.format_system, system, encode))
            role = message["role"]
            if role == "user":
                ids = join(ids, self._render(tokenizer, self.format_user, message["content"], encode))
            elif role == "assistant":
                ids = join(ids, self._render(tokenizer, self.format_assistant, message["content"], encode))
            elif role == "observation":
                ids = join(ids, self._render(tokenizer, self.format_observation, message["content"], encode))
            else:
                raise TemplateError(_("role {role!r} is not supported (use user, assistant or observation)").format(role=role))
            encoded.append(ids)
        return encoded

    # ------------------------------------------------------------ thoughts
    def add_thought(self, content: str = "") -> str:
        """``content`` after an empty thought: ``<think>\n\n</think>\n\n`` + content."""
        return self.thought_words[0] + self.thought_words[1] + content

    def remove_thought(self, content: str) -> str:
        """``content`` without its thoughts, as LLaMA-Factory strips them (leading newlines go too)."""
        pattern = re.compile(f"{re.escape(self.thought_words[0])}(.*?){re.escape(self.thought_words[1])}", re.DOTALL)
        return re.sub(pattern, "", content).lstrip("\n")

    def has_thought(self, content: str) -> bool:
        """Whether ``content`` holds a thought tag (an opening or a closing one, as LLaMA-Factory checks)."""
        return self.thought_words[0].strip() in content or self.thought_words[1].strip() in content

    def thought_ids(self, tokenizer: Any) -> list[int]:
        """Token ids of the empty thought, tokenized on its own as LLaMA-Factory does."""
        return tokenizer.encode(self.add_thought(), add_special_tokens=False)

    def split_thought(self, text: str) -> tuple[str | None, str]:
        """(thought, answer) of a generated reply; thought is None when the reply has none.

        A reply still thinking (no closing tag yet) is all thought. As LLaMA-Factory's web UI splits it.
        """
        opening, closing = self.thought_words[0], self.thought_words[1]
        if opening not in text:
            return None, text
        text = text.replace(opening, "")
        thought, found, answer = text.partition(closing)
        return thought, answer if found else ""

    # ------------------------------------------------------------ turns
    def encode_multiturn(self, tokenizer: Any, messages: Sequence[dict[str, str]], system: str | None = None,
                         discard_history_thoughts: bool = False, encode: Encode | None = None) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, response ids) for each user/assistant pair, as in training.

        A reasoning template handles thoughts as LLaMA-Factory's ReasoningTemplate does: with
        ``enable_thinking`` false, every thought is removed first; ``discard_history_thoughts``
        (mask_history) removes those of all but the last reply; each reply left without a thought
        (only the last one when discarding) gets the empty thought, in the response when
        ``enable_thinking`` is true, else at the end of its prompt.
        """
        if not self.reasoning:
            enc = self.encode_messages(tokenizer, messages, system, encode)
            return [(enc[i], enc[i + 1]) for i in range(0, len(enc) - 1, 2)]
        messages = [dict(m) for m in messages]
        if self.enable_thinking is False:
            for i in range(1, len(messages), 2):
                messages[i]["content"] = self.remove_thought(messages[i]["content"])
        if discard_history_thoughts:
            for i in range(1, len(messages) - 2, 2):  # every reply but the last
                messages[i]["content"] = self.remove_thought(messages[i]["content"])
        enc = self.encode_messages(tokenizer, messages, system, encode)
        turns = [len(messages) - 2] if discard_history_thoughts else range(0, len(messages) - 1, 2)
        for i in turns:
            if not self.has_thought(messages[i + 1]["content"]):
                if self.enable_thinking:
                    enc[i + 1] = join(self.thought_ids(tokenizer), enc[i + 1])  # trained: the model learns to emit it
                else:
                    enc[i] = join(enc[i], self.thought_ids(tokenizer))  # prompt: not trained
        return [(enc[i], enc[i + 1]) for i in range(0, len(enc) - 1, 2)]

    def encode_oneturn(self, tokenizer: Any, messages: Sequence[dict[str, str]],
                       system: str | None = None) -> tuple[list[int], list[int]]:
        """(prompt ids, response ids): every message before the last is prompt, as in chat.

        A reasoning template drops the thoughts of earlier replies (unless ``preserve_thinking``), and
        adds the empty thought as ``encode_multiturn`` does when the last message has none.
        """
        messages = [dict(m) for m in messages]
        if self.reasoning:
            if not self.preserve_thinking:
                for i in range(1, len(messages) - 2, 2):
                    messages[i]["content"] = self.remove_thought(messages[i]["content"])
            if self.enable_thinking is False:
                messages[-1]["content"] = self.remove_thought(messages[-1]["content"])
        enc = self.encode_messages(tokenizer, messages, system)
        prompt_ids = [tok for part in enc[:-1] for tok in part]
        response_ids = enc[-1]
        if self.reasoning and not self.has_thought(messages[-1]["content"]):
            if not self.enable_thinking:
                prompt_ids += self.thought_ids(tokenizer)
            else:
                response_ids = self.thought_ids(tokenizer) + response_ids
        return prompt_ids, response_ids

    def encode_prompt(self, tokenizer: Any, messages: Sequence[dict[str, str]], system: str | None = None) -> list[int]:
        """Token ids of a chat prompt ending where the assistant's reply starts (LLaMA-Factory's chat prompt).

        With a reasoning template and thinking off this ends in the empty thought; with thinking on
        the model writes its thought itself.
        """
        return self.encode_oneturn(tokenizer, list(messages) + [{"role": "assistant", "content": ""}], system)[0]


def check_vocab(template: Template, tokenizer: Any, embedding_size: int) -> None:
    """Raise TemplateError when a token the template needs has an id outside the model's embedding.

    ``fix_tokenizer`` adds the template's eos (``<|im_end|>`` for qwen) to a tokenizer that lacks it;
    the new id then has no row in the embedding of ``embedding_size`` rows (config.json's
    vocab_size) and training crashes at its first step. Call this after ``fix_tokenizer``.
    """
    needed: dict[str, tuple[str, int | None]] = {}  # token -> (what the template uses it for, its id)

    def need(token: str | None, what: str, token_id: int | None = None) -> None:
        if token is not None and token not in needed:
            needed[token] = (what, token_id if token_id is not None else tokenizer.convert_tokens_to_ids(token))

    need(tokenizer.eos_token, _("eos token"), tokenizer.eos_token_id)
    need(tokenizer.pad_token, _("pad token"), tokenizer.pad_token_id)
    for word in template.stop_words:
        need(word, _("stop word"))
    slots = [slot for fmt in (template.format_prefix, template.format_system, template.format_user,
                              template.format_assistant, template.format_observation) for slot in fmt]
    for slot in slots:
        if isinstance(slot, dict) and "token" in slot:
            need(slot["token"], _("special token of the template"))
        elif isinstance(slot, dict) and slot.get("special") == "bos_token":
            need(tokenizer.bos_token, _("bos token"), tokenizer.bos_token_id)
    outside = [f"{token} ({what}, id {tid})" for token, (what, tid) in needed.items()
               if isinstance(tid, int) and tid >= embedding_size]
    if outside:
        raise TemplateError(_(
            "template: {template!r} needs {tokens}, but the model's embedding has only {rows} rows (vocab_size in config.json), "
            "so training would crash at its first step: template {name} does not fit this model's tokenizer. Use the model's "
            "own template: default, or the chat template its family uses (qwen, qwen3 and qwen3_nothink are for Qwen models, "
            "whose tokenizers have <|im_start|> and <|im_end|>)").format(
            template=template.name, tokens=", ".join(outside), rows=embedding_size, name=template.name))


def get(name: str | None) -> Template:
    if not name:
        raise TemplateError(_("template: missing; use the model's template, e.g. qwen for Qwen models"))
    reg = _registry()
    if name not in reg:
        close = difflib.get_close_matches(name, list(reg), n=1)
        hint = _("; did you mean {name}?").format(name=close[0]) if close else ""
        raise TemplateError(_("template: {name!r} is not known{hint} (known: {known})").format(
            name=name, hint=hint, known=", ".join(names())))
    spec = reg[name]
    return Template(
        name=name,
        format_user=tuple(spec["format_user"]),
        format_assistant=tuple(spec["format_assistant"]),
        format_system=tuple(spec["format_system"]),
        format_observation=tuple(spec.get("format_observation", spec["format_user"])),
        format_prefix=tuple(spec.get("format_prefix", [])),
        default_system=spec.get("default_system", ""),
        stop_words=tuple(spec.get("stop_words", [])),
        replace_eos=bool(spec.get("replace_eos", False)),
        efficient_eos=bool(spec.get("efficient_eos", False)),
        thought_words=tuple(spec.get("thought_words", THOUGHT_WORDS)),
        reasoning=bool(spec.get("reasoning", False)),
    )


def with_system(template: Template, default_system: str | None) -> Template:
    """The template with its default system prompt replaced (the default_system key)."""
    if default_system is None:
        return template
    return replace(template, default_system=default_system)


def with_thinking(template: Template, enable_thinking: bool | None) -> Template:
    """The template with the data config's enable_thinking (only a reasoning template uses it)."""
    return template if template.enable_thinking == enable_thinking else replace(template, enable_thinking=enable_thinking)
