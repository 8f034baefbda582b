"""The data stage's error, and how a value from a person's file is named inside a message.

A message quotes values from dataset files and dataset_info.json; those can be anything (a list
nested a thousand deep, a 200 MB string), so they are always shown through ``shown``, never
through a bare ``repr``: a message stays one readable line and cannot itself fail.
"""

from __future__ import annotations

import reprlib
from typing import Any

from kit.errors import KitError
from kit.i18n import _


class DataError(KitError, ValueError):
    """A problem with the datasets a person can fix: the CLI prints it as one message, no traceback."""


_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlevel = 3  # depth-limited, so a deeply nested value cannot raise RecursionError here
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = 4


def shown(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters and three levels of nesting."""
    return _SHORT.repr(value)


def a_kind(value: Any) -> str:
    """'an int', 'a list': what a value is, in the words of a message (Chinese has no article: "int 类型")."""
    kind = type(value).__name__
    return (_("an {kind}") if kind[0] in "aeiou" else _("a {kind}")).format(kind=kind)
