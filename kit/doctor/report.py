"""The doctor's answers: one ``Check`` per question, gathered in a ``DoctorReport`` that prints as text,
shows as a table in a notebook and serialises to JSON."""

from __future__ import annotations

import html
import json
import textwrap
from dataclasses import dataclass, field
from typing import Any

from kit.fmt import html_table, jsonable

OK, WARN, FAIL = "ok", "warn", "fail"
_STATUS_ORDER = {OK: 0, WARN: 1, FAIL: 2}
_COLOURS = {OK: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e"}


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
        return (f"{len(self.checks)} checks: {len(self.checks) - len(self.warnings) - len(self.failures)} ok, "
                f"{len(self.warnings)} warning(s), {len(self.failures)} failure(s)")

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
        name_w = max([len(c.name) for c in self.checks] + [5])
        found_w = max(30, width - name_w - 8)
        lines = [f"kit doctor: {self.summary()}", f"{'STATUS':<6}  {'CHECK':<{name_w}}  FOUND",
                 f"{'-' * 6}  {'-' * name_w}  {'-' * found_w}"]
        indent = " " * (6 + 2 + name_w + 2)
        for c in self.checks:
            # Never split a URL, path or command across lines: people copy them.
            wrapped = textwrap.wrap(c.found, found_w, break_long_words=False, break_on_hyphens=False) or [""]
            lines.append(f"{c.status.upper():<6}  {c.name:<{name_w}}  {wrapped[0]}")
            lines += [indent + w for w in wrapped[1:]]
            if c.fix:
                fix = textwrap.wrap("fix: " + c.fix, found_w, break_long_words=False, break_on_hyphens=False)
                lines += [indent + w for w in fix]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render_text()

    def _repr_html_(self) -> str:
        rows = []
        for c in self.checks:
            fix = f"<br><b>fix:</b> <code>{html.escape(c.fix)}</code>" if c.fix else ""
            rows.append([(c.status.upper(), f"color:{_COLOURS[c.status]};font-weight:bold"), html.escape(c.title),
                         (f"{html.escape(c.found)}{fix}", "text-align:left")])
        return (f"<p><b>kit doctor</b>: {html.escape(self.summary())}</p>"
                + html_table(["status", "check", ("found / fix", "text-align:left")], rows))
