"""Command-line arguments of every kit command: a config file, then key=value or --key value.

A module of its own so that ``kit.cli`` (which launches training) and ``python -m kit.train`` (which
a person's own torchrun starts) share the parser without importing each other.
"""

from __future__ import annotations

from typing import Sequence

from kit.config import ConfigError
from kit.i18n import _


def split_config_args(args: Sequence[str], command: str = "kit") -> tuple[str | None, list[str]]:
    """``[CONFIG.yaml] [key=value | --key value | --key=value | --flag ...]`` -> (config path, ["key=value", ...]).

    The one parser every kit command uses: LLaMA-Factory's CLI takes ``--key value`` (``llamafactory-cli
    chat --template qwen``), a bare ``--flag`` meaning true as HfArgumentParser reads boolean flags,
    and its YAML overrides take ``key=value``.
    """
    args = list(args)
    path: str | None = None
    overrides: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key, sep, value = arg[2:].partition("=")
            if not key:
                raise ConfigError([_("{command}: {arg} is not a flag; write --key value").format(command=command, arg=repr(arg))])
            if not sep:
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    value = args[i + 1]
                    i += 1
                else:
                    value = "true"
            overrides.append(f"{key}={value}")
        elif "=" in arg:
            overrides.append(arg)
        elif path is None and not overrides:
            path = arg
        else:
            raise ConfigError([_("{command}: unexpected argument {arg}; give the config file first, then key=value or --key value").format(
                command=command, arg=repr(arg))])
        i += 1
    return path, overrides
