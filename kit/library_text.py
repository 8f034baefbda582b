"""What libraries say to a person, in the person's language: PyYAML's and json's reasons a file does not parse, a
file that is not UTF-8, pydantic's validation errors (kit api's 400 replies) and uvicorn's lines about its own start
and stop.

Each English template is the library's own wording (the YAML ones add what usually causes the problem in a config),
so in English a person reads what the library wrote; the catalogs translate it. A message not listed here (a newer
library's wording) is passed through as the library wrote it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Mapping

from kit.i18n import N_, _

# PyYAML's problems (yaml.MarkedYAMLError.problem), the ones a hand-written config meets; {0} is what PyYAML quoted.
_YAML: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), template) for pattern, template in (
    (r"mapping values are not allowed here$",
     N_("mapping values are not allowed here: a value that holds ': ' needs quotes, or this line is indented under a key "
        "that already has a value")),
    (r"could not find expected ':'$", N_("could not find expected ':' (each line is key: value, with a space after the colon)")),
    (r"found character '\\t' that cannot start any token$",
     N_("found a tab character, which cannot start any token: YAML indents with spaces only")),
    (r"found character (.+) that cannot start any token$", N_("found character {0} that cannot start any token")),
    (r"found unexpected end of stream$", N_("found unexpected end of stream (a quote that is opened and not closed?)")),
    (r"expected <block end>, but found (.+)$",
     N_("expected <block end>, but found {0}: check this line's indentation, and that nothing follows a quoted value")),
    (r"sequence entries are not allowed here$", N_("sequence entries are not allowed here ('- ' starts one); check the indentation")),
    (r"mapping keys are not allowed here$", N_("mapping keys are not allowed here ('? ' starts one)")),
    (r"expected ',' or '\]', but got (.+)$", N_("expected ',' or ']', but got {0} (a list in [ ] that is not closed?)")),
    (r"expected ',' or '\}', but got (.+)$", N_("expected ',' or '}}', but got {0} (a mapping in {{ }} that is not closed?)")),
    (r"found unknown escape character (.+)$",
     N_("found unknown escape character {0}: inside double quotes write a backslash as \\\\, or use single quotes")),
    (r"found undefined alias (.+)$", N_("found undefined alias {0} (a * that names no & anchor)")),
    (r"expected alphabetic or numeric character, but found (.+)$",
     N_("expected alphabetic or numeric character, but found {0} (after & or * comes a name; quote a value that starts "
        "with them)")),
    (r"expected a comment or a line break, but found (.+)$", N_("expected a comment or a line break, but found {0}")),
    (r"expected the node content, but found (.+)$", N_("expected the node content, but found {0}")),
    (r"found unhashable key$", N_("found unhashable key (a key that is a list or a mapping)")),
    (r"could not determine a constructor for the tag (.+)$",
     N_("could not determine a constructor for the tag {0}: a config holds plain values, not tagged objects")),
)]

# json.JSONDecodeError.msg (CPython's decoder, C and Python): what it matches is replaced, the rest kept.
_JSON: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), template) for pattern, template in (
    (r"Expecting value", N_("Expecting value")),
    (r"Expecting ',' delimiter", N_("Expecting ',' delimiter")),
    (r"Expecting ':' delimiter", N_("Expecting ':' delimiter")),
    (r"Expecting property name enclosed in double quotes", N_("Expecting property name enclosed in double quotes")),
    (r"Unterminated string starting at", N_("Unterminated string starting at")),
    (r"Invalid control character (?:.* )?at", N_("Invalid control character at")),
    (r"Invalid \\escape(?:: .*)?", N_("Invalid \\escape")),
    (r"Invalid \\uXXXX escape", N_("Invalid \\uXXXX escape")),
    (r"Extra data", N_("Extra data")),
    (r"Illegal trailing comma before end of object", N_("Illegal trailing comma before end of object")),
    (r"Illegal trailing comma before end of array", N_("Illegal trailing comma before end of array")),
)]

# UnicodeDecodeError.reason
_DECODE = {
    "invalid start byte": N_("invalid start byte"),
    "invalid continuation byte": N_("invalid continuation byte"),
    "unexpected end of data": N_("unexpected end of data"),
}

# pydantic v2's error types (``error["type"]``) that kit api's request model can raise, in pydantic's English;
# {class_name} comes from the error's ctx.
_PYDANTIC = {
    "missing": N_("Field required"),
    "string_type": N_("Input should be a valid string"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary or instance of {class_name}"),
    "model_attributes_type": N_("Input should be a valid dictionary or object to extract fields from"),
}

# uvicorn's lines about its own life (logger "uvicorn.error"), as its format strings.
_UVICORN = {
    "Started server process [%d]": N_("Started server process [%d]"),
    "Waiting for application startup.": N_("Waiting for application startup."),
    "Application startup complete.": N_("Application startup complete."),
    "Shutting down": N_("Shutting down"),
    "Waiting for connections to close. (CTRL+C to force quit)": N_("Waiting for connections to close. (CTRL+C to force quit)"),
    "Waiting for background tasks to complete. (CTRL+C to force quit)":
        N_("Waiting for background tasks to complete. (CTRL+C to force quit)"),
    "Waiting for application shutdown.": N_("Waiting for application shutdown."),
    "Application shutdown complete.": N_("Application shutdown complete."),
    "Finished server process [%d]": N_("Finished server process [%d]"),
    "Invalid HTTP request received.": N_("Invalid HTTP request received."),
    "Exception in ASGI application\n": N_("Exception in ASGI application\n"),
    "Application startup failed. Exiting.": N_("Application startup failed. Exiting."),
}


def yaml_problem(problem: Any) -> str:
    """PyYAML's ``problem`` text, in the person's language (with the usual cause in a config where there is one)."""
    text = str(problem)
    for pattern, template in _YAML:
        found = pattern.match(text)
        if found:
            return _(template).format(*found.groups())
    return text


def json_reason(msg: str) -> str:
    """json's reason (``JSONDecodeError.msg``, or the text a library kept of it) in the person's language."""
    for pattern, template in _JSON:
        found = pattern.match(msg)
        if found:
            return _(template) + msg[found.end():]
    return msg


def json_problem(exc: json.JSONDecodeError, position: bool = True) -> str:
    """Why json could not read the text, in the person's language; with the line and column unless ``position`` is
    False (a JSON Lines file names its line itself)."""
    if not position:
        return json_reason(exc.msg)
    return _("{reason}: line {line}, column {column}").format(reason=json_reason(exc.msg), line=exc.lineno, column=exc.colno)


def decode_reason(reason: str) -> str:
    """``UnicodeDecodeError.reason`` in the person's language."""
    return _(_DECODE[reason]) if reason in _DECODE else reason


def decode_problem(exc: UnicodeDecodeError) -> str:
    """Why bytes are not text in ``exc.encoding`` (UTF-8 for every file the kit reads), in the person's language."""
    return _("byte {byte} at position {position} is not {encoding} ({reason})").format(
        byte=f"0x{exc.object[exc.start]:02x}" if exc.start < len(exc.object) else "?", position=exc.start,
        encoding=exc.encoding.upper(), reason=decode_reason(exc.reason))


def read_problem(exc: Exception) -> str:
    """A JSON file's failure to read as json.loads raised it: not UTF-8, or not JSON (ValueError's other kinds as they are)."""
    if isinstance(exc, UnicodeDecodeError):
        return decode_problem(exc)
    if isinstance(exc, json.JSONDecodeError):
        return json_problem(exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def pydantic_problem(error: Mapping[str, Any]) -> str:
    """One of pydantic's validation errors (an item of ``exc.errors()``) as its message, in the person's language."""
    kind, ctx = error.get("type"), dict(error.get("ctx") or {})
    if kind == "value_error" and "error" in ctx:  # a validator's own ValueError: its text is the kit's (translated)
        return str(ctx["error"])
    template = _PYDANTIC.get(str(kind))
    if template is None:
        return str(error.get("msg", ""))
    try:
        return _(template).format(class_name=ctx.get("class_name", ""))
    except (KeyError, IndexError, ValueError):  # a catalog entry that does not fit: pydantic's own text
        return str(error.get("msg", ""))


class UvicornLines(logging.Filter):
    """Puts uvicorn's lines about starting and stopping into the person's language (on ``uvicorn.error``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        template = _UVICORN.get(str(record.msg))
        if template is not None:
            record.msg = _(template)
            record.__dict__.pop("color_message", None)  # its coloured copy is the English one
        return True


def translate_uvicorn() -> None:
    """Install UvicornLines once on uvicorn's logger (after uvicorn.Config, which configures its logging)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, UvicornLines) for f in logger.filters):
        logger.addFilter(UvicornLines())

