"""Messages in the person's language: English (the source text) and Chinese, through gettext catalogs.

Every message a person sees is written in English in the code, wrapped in ``_()`` (or ``N_()`` where
it is defined before the language is known, e.g. a table of check titles, and passed through ``_()``
when shown). Chinese lives in gettext catalogs, one per area of the package (a gettext domain):
``kit/locale/zh/LC_MESSAGES/<area>.po``, compiled to ``.mo`` and shipped in the package. A
translator edits the ``.po`` file; ``python scripts/i18n.py`` extracts, updates and compiles them
with Babel. A message with no translation falls back to English.

The language: ``set_language("zh")`` (a notebook's ``lang`` parameter, ``kit --lang zh``), else the
environment (KIT_LANG, then the POSIX locale variables: ``LANG=zh_CN.UTF-8`` means Chinese), else English.
"""

from __future__ import annotations

import gettext
import os
import sys
from pathlib import Path
from typing import Mapping

from kit.errors import KitError

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "zh")

_state: dict[str, object] = {"lang": None, "catalogs": {}}

# Read here, not in kit.envvars, as the standard library's gettext reads them itself: the locale is not
# the kit's configuration, and kit.envvars (whose messages are translated) must be able to import this module.
LANGUAGE_VARIABLES = ("KIT_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def language_preference(env: Mapping[str, str] | None = None) -> str | None:
    """The first language the kit speaks named by KIT_LANG or the POSIX locale variables, in that order.

    LANGUAGE may list several (``fr:zh``), as gettext reads it. An unknown KIT_LANG (``KIT_LANG=fr``) is
    passed over for the locale's language, and ``unknown_kit_lang`` says so once; an unknown locale (``C``,
    ``fr_FR``) means no preference, as before.
    """
    env = os.environ if env is None else env
    for name in LANGUAGE_VARIABLES:
        value = env.get(name)
        if not value:
            continue
        for part in value.split(":") if name == "LANGUAGE" else [value]:
            if normalise(part):
                return part
        if name != "KIT_LANG":
            return value  # the locale's own choice, even one the kit does not speak: English
    return None


def unknown_kit_lang(env: Mapping[str, str] | None = None) -> str | None:
    """One line saying that KIT_LANG names a language the kit does not speak, or None when it is fine."""
    env = os.environ if env is None else env
    value = env.get("KIT_LANG")
    if not value or normalise(value) or _state["lang"]:  # fine, or overridden by --lang / a notebook's lang
        return None
    return _("KIT_LANG={value} is not a language the kit speaks ({choices}); using {lang}, from the locale").format(
        value=value, choices=", ".join(LANGUAGES), lang=language())


def warn_unknown_kit_lang() -> None:
    """Print ``unknown_kit_lang``'s line to stderr, once per process (the CLI and the notebooks call this)."""
    line = unknown_kit_lang()
    if line and not _state.get("warned"):
        _state["warned"] = True
        print(line, file=sys.stderr)


class LanguageError(KitError, ValueError):
    pass


def normalise(lang: str | None) -> str | None:
    """"zh_CN.UTF-8", "zh-Hans", "ZH" -> "zh"; "en_US" -> "en"; "C", "POSIX", "" -> None (no preference)."""
    if not lang:
        return None
    code = lang.split(":")[0].split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else None


def set_language(lang: str | None = None) -> str:
    """Choose the language of every later message; None goes back to what the environment says."""
    if lang is not None and normalise(lang) is None:
        raise LanguageError(_("lang: {value} is not a language the kit speaks; use one of {choices}").format(
            value=repr(lang), choices=", ".join(LANGUAGES)))
    _state["lang"] = normalise(lang)
    return language()


def language() -> str:
    chosen = _state["lang"]
    if chosen:
        return str(chosen)
    return normalise(language_preference()) or "en"


def _catalog(lang: str) -> gettext.NullTranslations:
    catalogs: dict = _state["catalogs"]  # type: ignore[assignment]
    if lang not in catalogs:
        chain: gettext.NullTranslations = gettext.NullTranslations()
        folder = LOCALE_DIR / lang / "LC_MESSAGES"
        for mo in sorted(folder.glob("*.mo")) if lang != "en" else []:
            with mo.open("rb") as fh:
                area = gettext.GNUTranslations(fh)
            area.add_fallback(chain)
            chain = area
        catalogs[lang] = chain
    return catalogs[lang]


def _(message: str) -> str:
    """``message`` in the current language (English when no catalog has it)."""
    return _catalog(language()).gettext(message)


def N_(message: str) -> str:
    """Marks ``message`` for extraction without translating it now; translate with ``_()`` when shown."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalog(language()).ngettext(singular, plural, n)
