"""The parser of every ``kit`` subcommand: one help layout, one way to say a mistake, in the person's language.

``CommandParser`` is argparse's ArgumentParser with the kit's rules, used by train, preprocess, chat,
export, doctor, estimate, demo, batch and keys (``kit.config.command_line.ConfigCommandParser`` adds the
config-file arguments):

* ``-h``/``--help``: ``usage: kit CMD ...``, the description as written (its line breaks and examples
  kept), then argparse's "positional arguments" and "options";
* a mistake on the command line: the usage line, then one line ``error: ...``, and exit status 2
  (``UsageExit``, a SystemExit, as argparse's parsers exit), before the command does anything: nothing
  is written and there is no traceback.

Everything is in the person's language (``kit.i18n``), argparse's own words included ("usage:",
"options", "the following arguments are required: %s" ...). argparse looks those up with the standard
library's ``gettext.gettext``, that is in the GNU gettext API's global domain, in the language the
environment names. ``argparse_language()`` uses that API as documented: for the time a parser is built,
parses or formats, it binds the domain "argparse" to the kit's catalogs (kit/locale/zh/LC_MESSAGES/
argparse.po, whose msgids are argparse's own, kept by scripts/i18n.py), makes it the global domain and
names the kit's language in LANGUAGE (which gettext reads first); then it puts all three back.

This module imports nothing but the standard library and kit.i18n, so that ``kit doctor`` starts on a
machine where the kit's dependencies are broken.
"""

from __future__ import annotations

import argparse
import contextlib
import gettext
import os
import re
import sys
import unicodedata
from typing import Any, Iterator, NoReturn, Sequence

from kit.i18n import _

ARGPARSE_DOMAIN = "argparse"


@contextlib.contextmanager
def argparse_language(lang: str | None = None) -> Iterator[None]:
    """argparse's own messages in ``lang`` (default: the kit's language, ``kit.i18n.language()``) inside the block.

    The standard library's gettext API, as documented: ``bindtextdomain``, ``textdomain`` and the LANGUAGE
    variable, each restored on the way out (nested blocks are fine). English has no catalog: argparse's text.
    The domain and LANGUAGE are the process's: a command line is parsed before a command starts its threads.
    """
    from kit import i18n

    lang = lang or i18n.language()
    saved_domain = gettext.textdomain()
    saved_folder = gettext.bindtextdomain(ARGPARSE_DOMAIN)
    saved_language = os.environ.get("LANGUAGE")
    gettext.bindtextdomain(ARGPARSE_DOMAIN, str(i18n.LOCALE_DIR))
    gettext.textdomain(ARGPARSE_DOMAIN)
    os.environ["LANGUAGE"] = lang
    try:
        yield
    finally:
        if saved_language is None:
            os.environ.pop("LANGUAGE", None)
        else:
            os.environ["LANGUAGE"] = saved_language
        gettext.textdomain(saved_domain)
        gettext.bindtextdomain(ARGPARSE_DOMAIN, saved_folder)


def argparse_message(msgid: str) -> str:
    """One of argparse's own messages (its exact msgid) in the kit's language, for a check argparse cannot make itself."""
    with argparse_language():
        return gettext.dgettext(ARGPARSE_DOMAIN, msgid)


def quiet_closed_stdout() -> None:
    """The reader closed the pipe (``kit --help | head``): it has what it wanted. Point stdout at devnull so
    that the flush at exit does not raise again, as Python's documentation on SIGPIPE advises."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file behind stdout (a test's capture): nothing will flush to a pipe
        pass


class UsageExit(SystemExit):
    """A command line's end before its command ran: the help was shown (status 0) or it was a mistake (2).

    A SystemExit, as argparse's parsers exit, so a caller of ``doctor_main`` sees what argparse would do;
    ``kit.cli.main`` returns its status.
    """


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's layout; a description or epilog keeps its line breaks, so that examples (and Chinese, which
    has no spaces to wrap at) read as written, and an option's help wraps at the terminal's columns in Chinese too."""

    def _split_lines(self, text: str, width: int) -> list[str]:  # argparse's hook for an option's help
        return wrap_columns(" ".join(text.split()), width)


# A run of characters that is not broken (a word of English, a path), one wide character, or spaces.
_PIECES = re.compile(r"[^\s\u1100-\uffff]+|[\u1100-\uffff]|\s+")
_NO_LINE_START = set("，。、；：！？）》」』”’")  # Chinese punctuation that closes: never first on a line


def columns(text: str) -> int:
    """How many terminal columns ``text`` takes: a Chinese character (East Asian wide) takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap_columns(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken at spaces or between Chinese characters
    (textwrap counts characters, so a Chinese line came out twice as wide as the terminal)."""
    lines: list[str] = []
    line = ""
    for piece in _PIECES.findall(text):
        if piece.isspace():
            line += " " if line else ""
        elif line and columns(line + piece) > width and piece not in _NO_LINE_START:
            lines.append(line.rstrip())
            line = piece
        else:
            line += piece
    if line.strip():
        lines.append(line.rstrip())
    return lines


class CommandParser(argparse.ArgumentParser):
    """The parser of every ``kit`` subcommand: the same help and errors, in the person's language (see the module).

    ``words_anywhere``: positional words (``key=value``, a config file) may come before, between or after the
    options, as ``kit demo a=1 --json b=2``; the options must then each take a fixed number of values.
    Abbreviated flags are not taken: a flag is spelt in full, as a config key is.
    """

    def __init__(self, prog: str, description: str | None = None, *, usage: str | None = None,
                 epilog: str | None = None, add_help: bool = True, words_anywhere: bool = False):
        self.own_options: dict[str, argparse.Action] = {}  # before argparse adds -h through add_argument
        self.words_anywhere = words_anywhere
        with argparse_language():
            super().__init__(prog=prog, usage=usage, description=description, epilog=epilog,
                             formatter_class=HelpFormatter, add_help=add_help, allow_abbrev=False)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if self.words_anywhere and action.option_strings and not (action.nargs is None or isinstance(action.nargs, int)):
            raise ValueError(f"{action.option_strings[0]}: words_anywhere needs options with a fixed number of values")
        self.own_options.update(dict.fromkeys(action.option_strings, action))
        return action

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        args = list(sys.argv[1:] if args is None else args)
        with argparse_language():
            return super().parse_args(self.options_first(args) if self.words_anywhere else args, namespace)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None):  # type: ignore[no-untyped-def]
        with argparse_language():
            return super().parse_known_args(args, namespace)

    def options_first(self, args: list[str]) -> list[str]:
        """The options this parser knows (with their values) first, then every other word in its order."""
        options: list[str] = []
        words: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                words += args[i:]
                break
            attached = arg.startswith("--") and "=" in arg
            action = self.own_options.get(arg.partition("=")[0] if attached else arg)
            if action is None:
                words.append(arg)
                i += 1
                continue
            count = 0 if attached else (1 if action.nargs is None else int(action.nargs))
            options += args[i:i + 1 + count]
            i += 1 + count
        return options + words

    def format_usage(self) -> str:
        with argparse_language():
            return super().format_usage()

    def format_help(self) -> str:
        with argparse_language():
            return super().format_help()

    def error(self, message: str) -> NoReturn:
        """The usage line, then one line ``error: ...``; exit status 2."""
        message = message.removeprefix(f"{self.prog}: ")  # a message that names the command already
        self.exit(2, self.format_usage() + _("error: {message}").format(message=message) + "\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        try:
            sys.stdout.flush()  # the help, before the message and the exit
            if message:
                sys.stderr.write(message)
                sys.stderr.flush()
        except BrokenPipeError:
            quiet_closed_stdout()
        raise UsageExit(status)
