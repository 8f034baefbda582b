"""Command-line arguments of every kit command that reads a config: a config file, then key=value or --key value.

A module of its own so that ``kit.cli`` (which launches training) and ``python -m kit.train`` (which
a person's own torchrun starts) share the parser without importing each other. ``ConfigCommandParser``
is ``kit.command_parser.CommandParser`` (the parser of every kit command) with these arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from kit.command_parser import CommandParser, argparse_message
from kit.config import ConfigError
from kit.i18n import _


def split_config_args(args: Sequence[str], command: str = "kit") -> tuple[str | None, list[str]]:
    """``[CONFIG.yaml] [key=value | --key value | --key=value | --flag ...]`` -> (config path, ["key=value", ...]).

    How every kit command reads a config file and its overrides: LLaMA-Factory's CLI takes ``--key value``
    (``llamafactory-cli chat --template qwen``), a bare ``--flag`` meaning true as HfArgumentParser reads
    boolean flags, and its YAML overrides take ``key=value``.
    """
    path: str | None = None
    overrides: list[str] = []
    for arg in flags_as_pairs(args, command=command):
        if "=" in arg:
            overrides.append(arg)
        elif path is None and not overrides:
            path = arg
        else:
            raise ConfigError([_("{command}: unexpected argument {arg}; give the config file first, then key=value or --key value").format(
                command=command, arg=repr(arg))])
    return path, overrides


class ConfigCommandParser(CommandParser):
    """A command that takes a config file and overrides, as ``kit train c.yaml key=value --key value``.

    ``parse_args`` returns the namespace with ``config`` (the path or None) and ``overrides``
    (``["key=value", ...]``), read as ``split_config_args`` reads them; the parser's own options (``-h``,
    ``--output`` ...) keep their meaning and every other ``--key [value]`` is a config key.
    """

    def __init__(self, prog: str, description: str | None = None, *, config_required: bool,
                 overrides_metavar: str = "key=value", **kwargs: Any):
        super().__init__(prog, description, words_anywhere=True, **kwargs)
        self.config_required = config_required
        self.add_argument("config", nargs=None if config_required else "?", metavar="CONFIG.yaml",
                          help=_("a LLaMA-Factory-style config file (YAML or JSON)"))
        self.add_argument("overrides", nargs="*", default=[], metavar=overrides_metavar,
                          help=_("config keys that override the file's, as key=value or --key value (kit keys lists them)"))

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        args = list(sys.argv[1:] if args is None else args)
        try:
            words = flags_as_pairs(args, keep=self.own_options, command=self.prog)
        except ConfigError as exc:
            self.error(exc.problems[0])
        ns = super().parse_args(words, namespace)
        try:
            ns.config, ns.overrides = split_config_args(([ns.config] if ns.config else []) + ns.overrides, self.prog)
        except ConfigError as exc:
            self.error(exc.problems[0])
        if ns.config is None and self.config_required:
            self.error(argparse_message("the following arguments are required: %s") % "CONFIG.yaml")
        return ns

    def config_args(self, ns: argparse.Namespace) -> list[str]:
        """The config file and overrides as one argument list (``kit.chat.terminal.load_config`` takes that)."""
        return ([ns.config] if ns.config else []) + list(ns.overrides)


def flags_as_pairs(args: Sequence[str], keep: Any = (), command: str = "kit") -> list[str]:
    """``--key value``, ``--key=value`` and a bare ``--flag`` (true) as ``key=value``; other words, and the
    flags in ``keep`` (a parser's own options), as they are."""
    args = list(args)
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and arg.partition("=")[0] not in keep:
            key, sep, value = arg[2:].partition("=")
            if not key:
                raise ConfigError([_("{command}: {arg} is not a flag; write --key value").format(command=command, arg=repr(arg))])
            if not sep:
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    value = args[i + 1]
                    i += 1
                elif _takes_a_value(key):
                    # e.g. `--output_dir $OUT` with OUT empty: not a folder named "True"
                    raise ConfigError([_("{command}: --{key} needs a value (--{key} VALUE); only a true/false key can be "
                                         "given alone").format(command=command, key=key)])
                else:
                    value = "true"
            arg = f"{key}={value}"
        out.append(arg)
        i += 1
    return out


def _takes_a_value(key: str) -> bool:
    """A known config key that is not true/false (a bare --flag means true only for those)."""
    from kit.config import KEYS
    from kit.config.values import base_type

    known = KEYS.get(key)
    return known is not None and base_type(known[1].type)[0] is not bool
