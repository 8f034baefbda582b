"""Notebook 30: answers measured, not only shown (held-out identity questions, sampling, the wrong template)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from kit.fmt import html_table
from kit.i18n import _
from kit.tutorial.display import html_escape
from kit.tutorial.lessons.evaluate import names


# ---------------------------------------------------------------- notebook 30: measured, not only shown

# Identity questions held out from the identity data (the kit's and LLaMA-Factory's): paraphrases that
# training never saw, so a right answer is generalisation, not recall. tests/test_tutorial.py checks that.
HELD_OUT_IDENTITY = {
    "en": ("Who am I speaking with?", "What do people call you?", "Tell me your name, please.", "Could you introduce yourself?",
           "Who are you, exactly?", "Which team made you?"),
    "zh": ("请告诉我你是谁。", "你叫什么？", "介绍一下你自己吧。", "你是哪位？", "谁创造了你？", "我在和谁说话？"),
}


def held_out_questions(lang: str | None = None) -> list[str]:
    return list(HELD_OUT_IDENTITY[lang]) if lang else [q for qs in HELD_OUT_IDENTITY.values() for q in qs]


@dataclass
class IdentityCheck:
    name: str
    before: dict[str, str]
    after: dict[str, str]

    @property
    def questions(self) -> list[str]:
        return list(self.after)

    def share(self, answers: Mapping[str, str]) -> float:
        # The name as a whole word (kit.tutorial.lessons.evaluate.names): "WELumi" or "Lumis" is not "Lumi".
        return sum(names(a, self.name) for a in answers.values()) / max(len(answers), 1)

    @property
    def share_before(self) -> float:
        return self.share(self.before)

    @property
    def share_after(self) -> float:
        return self.share(self.after)

    def values(self) -> dict[str, Any]:
        return {"name": self.name, "share_before": self.share_before, "share_after": self.share_after,
                "questions": list(self.after), "before": self.before, "after": self.after}

    def _repr_html_(self) -> str:
        def cell(answer: str) -> tuple[str, str]:
            mark = "\u2714 " if names(answer, self.name) else ""
            return f"{mark}{html_escape(answer)}", "white-space:pre-wrap;text-align:left"

        rows = [[html_escape(q), cell(self.before[q]), cell(a)] for q, a in self.after.items()]
        naming = html_escape(_("answers naming {name}").format(name=self.name))  # outside the f-string, where gettext's extractor looks
        rows.append([f"<b>{naming}</b>",
                     f"<b>{self.share_before:.0%}</b>", f"<b>{self.share_after:.0%}</b>"])
        return html_table([_("held-out question"), _("base model"), _("with the adapter")], rows)

    def __repr__(self) -> str:
        return _("answers naming {name}: {before:.0%} before, {after:.0%} after, on {n} held-out questions").format(
            name=self.name, before=self.share_before, after=self.share_after, n=len(self.after))


def identity_check(engine: Any, name: str, questions: Sequence[str] | None = None) -> IdentityCheck:
    """Ask held-out identity questions of the base model (adapter off) and the fine-tuned one, from one engine."""
    from kit.tutorial.helpers import ask

    questions = list(questions) if questions else held_out_questions()
    return IdentityCheck(name, ask(engine, questions, adapter=False), ask(engine, questions))


@dataclass
class SamplingLesson:
    question: str
    greedy: str
    sampled: list[str]
    settings: dict[str, Any]

    def values(self) -> dict[str, Any]:
        return {"greedy": self.greedy, "sampled": self.sampled, "distinct_sampled": len(set(self.sampled)), "settings": self.settings}

    def _repr_html_(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        rows = [[html_escape(_("greedy (do_sample=False)")), (html_escape(self.greedy), "white-space:pre-wrap;text-align:left")]]
        rows += [[html_escape(_("sampled #{i} ({settings})").format(i=i, settings=shown)), (html_escape(s), "white-space:pre-wrap;text-align:left")]
                 for i, s in enumerate(self.sampled, 1)]
        return f"<p>{html_escape(self.question)}</p>" + html_table([_("decoding"), _("reply")], rows)

    def __repr__(self) -> str:
        return "\n".join([_("greedy: {reply}").format(reply=self.greedy)]
                         + [_("sampled #{i}: {reply}").format(i=i, reply=s) for i, s in enumerate(self.sampled, 1)])


def sampling_lesson(engine: Any, question: str, samples: int = 3, seed: int = 0) -> SamplingLesson:
    """One question answered greedily, then ``samples`` times with the quick start's (LLaMA-Factory's) sampling defaults."""
    from dataclasses import asdict

    from transformers import set_seed

    from kit.chat.engine import GenerationSettings

    defaults = {k: v for k, v in asdict(GenerationSettings()).items() if k in ("do_sample", "temperature", "top_p", "top_k")}
    messages = [{"role": "user", "content": question}]
    greedy = engine.chat(messages, do_sample=False)
    set_seed(seed)  # the same samples on every run of the notebook
    sampled = [engine.chat(messages, **defaults) for _i in range(samples)]
    return SamplingLesson(question, greedy, sampled, defaults)


@dataclass
class WrongTemplate:
    question: str
    trained_with: str
    used: str
    warning: str | None
    right: str
    wrong: str
    prompt: str  # the wrong template's prompt, as text

    def values(self) -> dict[str, Any]:
        return {"warning": self.warning, "right": self.right, "wrong": self.wrong, "template": self.used}

    def _repr_html_(self) -> str:
        label = html_escape(_("The chat template does not match the model"))
        warn = f"<p style='color:#9a6700'><b>{label}:</b> {html_escape(self.warning)}</p>" if self.warning else ""
        as_trained = html_escape(_("as trained"))
        builds = html_escape(_("The prompt the {used} template builds:").format(used=self.used))
        rows = [[f"<code>{html_escape(self.trained_with)}</code> ({as_trained})", (html_escape(self.right), "white-space:pre-wrap;text-align:left")],
                [f"<code>{html_escape(self.used)}</code>", (html_escape(self.wrong), "white-space:pre-wrap;text-align:left")]]
        return (warn + html_table([_("template"), _("reply to {question!r}").format(question=html_escape(self.question))], rows)
                + f"<p>{builds}</p><pre>{html_escape(self.prompt)}</pre>")

    def __repr__(self) -> str:
        return _("warning: {warning}").format(warning=self.warning) + f"\n{self.trained_with}: {self.right}\n{self.used}: {self.wrong}"


def wrong_template(engine: Any, question: str, template: str = "default", max_new_tokens: int | None = None) -> WrongTemplate:
    """One reply with another template than the adapter was trained with, from the same loaded copy.

    The warning is the one ``Engine(template=...)`` gives (the same check); the reply is generated from
    the prompt that template builds, so no second copy of the model is loaded.
    """
    import threading
    from dataclasses import replace

    from kit.chat.engine import with_checked_template
    from kit.tutorial.helpers import template_mismatch

    warning = template_mismatch(engine.adapter_dirs[-1], template) if engine.adapter_dirs else None
    other = with_checked_template(template, [], engine.cfg.data.default_system, engine.cfg.data.enable_thinking)
    tokenizer = engine.tokenizer
    messages = [{"role": "user", "content": question}]
    ids = other.encode_prompt(tokenizer, messages)
    settings = replace(engine.generation, do_sample=False, max_new_tokens=max_new_tokens or engine.generation.max_new_tokens)
    stop_ids = other.stop_token_ids(tokenizer) or engine.stop_ids
    wrong = "".join(engine.backend.generate(ids, settings, stop_ids, threading.Event()))
    right = engine.chat(messages, do_sample=False)
    return WrongTemplate(question, engine.template.name, template, warning, right, wrong,
                         tokenizer.decode(ids, skip_special_tokens=False))
