"""The doctor's answers: one ``Check`` per question, gathered in a ``DoctorReport`` that prints as text,
shows as a table in a notebook and serialises to JSON.

A check's title, found text and fix are made in the language chosen when the checks run (``kit.i18n``);
the report's own words (headings, status words, the summary) are translated when it is shown. Machine
keys (check names, status codes, JSON keys) stay English.
"""

from __future__ import annotations

import html
import json
import textwrap
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from kit.fmt import html_table, jsonable
from kit.i18n import N_, _

OK, WARN, FAIL = "ok", "warn", "fail"
_STATUS_ORDER = {OK: 0, WARN: 1, FAIL: 2}
_COLOURS = {OK: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e"}
# What a person reads for each status code (the code itself stays in JSON).
STATUS_WORDS = {OK: N_("OK"), WARN: N_("WARN"), FAIL: N_("FAIL")}
# Closing punctuation never starts a wrapped line, opening punctuation never ends one.
_NO_LINE_START = set("，。；：、！？）》」』”’,.;:!?)")
_NO_LINE_END = set("（《「『“‘")


def status_word(status: str) -> str:
    return _(STATUS_WORDS[status])


def display_width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` columns, never splitting a word, URL, path or command (people copy them).

    English goes through ``textwrap`` as it always has; text with CJK characters may break between any
    two of them (Chinese has no spaces to break at), still never inside a run of ASCII.
    """
    if display_width(text) == len(text):
        return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
    tokens: list[str] = []
    for ch in text:
        wide = display_width(ch) == 2
        if tokens and (ch in _NO_LINE_START or (tokens[-1][-1] in _NO_LINE_END and not ch.isspace())):
            tokens[-1] += ch
        elif tokens and not wide and not ch.isspace() and not tokens[-1][-1].isspace() and display_width(tokens[-1][-1]) == 1:
            tokens[-1] += ch  # the next character of an ASCII word
        else:
            tokens.append(ch)
    lines, line = [], ""
    for tok in tokens:
        if tok.isspace():
            line += " " if line and not line.endswith(" ") else ""
            continue
        if line.strip() and display_width(line) + display_width(tok) > width:
            lines.append(line.rstrip())
            line = tok
        else:
            line += tok
    lines.append(line.rstrip())
    return lines


@dataclass(frozen=True)
class Check:
    """One question the doctor answers."""

    name: str  # stable id, used in JSON and tests
    title: str  # what was checked, for people
    status: str  # ok | warn | fail
    found: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in _STATUS_ORDER:
            raise ValueError(f"check {self.name}: status {self.status!r} is not ok, warn or fail")
        # A warning without a remedy only worries people; every warn/fail must say what to do.
        if self.status != OK and not self.fix:
            raise ValueError(f"check {self.name}: a {self.status} needs a fix")


@dataclass
class DoctorReport:
    checks: list[Check]

    @property
    def status(self) -> str:
        return max((c.status for c in self.checks), key=_STATUS_ORDER.__getitem__, default=OK)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def subset(self, *names: str) -> "DoctorReport":
        """A report of just these checks, in this order (the NPU notebook shows the stack layer by layer)."""
        return DoctorReport([self.get(n) for n in names])

    def get(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def summary(self) -> str:
        return _("{total} checks: {ok} ok, {warnings} warning(s), {failures} failure(s)").format(
            total=len(self.checks), ok=len(self.checks) - len(self.warnings) - len(self.failures),
            warnings=len(self.warnings), failures=len(self.failures))

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "ok": not self.failures,
            "summary": self.summary(),
            "checks": [jsonable(c) for c in self.checks],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def render_text(self, width: int = 100) -> str:
        status, check, found = _("STATUS"), _("CHECK"), _("FOUND")
        name_w = max([len(c.name) for c in self.checks] + [5, display_width(check)])
        found_w = max(30, width - name_w - 8)
        status_w = max(display_width(w) for w in [status, *map(status_word, STATUS_WORDS)])
        lines = [_("kit doctor: {summary}").format(summary=self.summary()),
                 f"{_pad(status, status_w)}  {_pad(check, name_w)}  {found}",
                 f"{'-' * status_w}  {'-' * name_w}  {'-' * found_w}"]
        indent = " " * (status_w + 2 + name_w + 2)
        for c in self.checks:
            # Never split a URL, path or command across lines: people copy them.
            wrapped = wrap(c.found, found_w)
            lines.append(f"{_pad(status_word(c.status), status_w)}  {c.name:<{name_w}}  {wrapped[0]}")
            lines += [indent + w for w in wrapped[1:]]
            if c.fix:
                lines += [indent + w for w in wrap(_("fix: {fix}").format(fix=c.fix), found_w)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render_text()

    def _repr_html_(self) -> str:
        rows, fix_label = [], html.escape(_("fix:"))
        for c in self.checks:
            fix = f"<br><b>{fix_label}</b> <code>{html.escape(c.fix)}</code>" if c.fix else ""
            rows.append([(html.escape(status_word(c.status)), f"color:{_COLOURS[c.status]};font-weight:bold"),
                         html.escape(c.title), (f"{html.escape(c.found)}{fix}", "text-align:left")])
        header = [html.escape(_("status")), html.escape(_("check")), (html.escape(_("found / fix")), "text-align:left")]
        return (f"<p><b>kit doctor</b>: {html.escape(self.summary())}</p>" + html_table(header, rows))
