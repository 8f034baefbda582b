"""The ``kit`` command: train, preprocess, chat, export, doctor, estimate, demo.

Each subcommand calls the same functions the notebooks call. A person's mistake (a KitError) is
printed as one message with exit status 2 and no traceback; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from kit.errors import KitError
from kit.i18n import N_, _

USAGE = N_("""usage: kit [--lang en|zh] <command> [args]

commands:
  train CONFIG.yaml [key=value ...]        LoRA SFT (under torchrun when DeepSpeed or several devices)
  preprocess CONFIG.yaml [key=value ...] [--output FILE.jsonl]
                                           encode the datasets; preview or write every example
  chat [CONFIG.yaml] [--key value ...]     chat in the terminal (llamafactory-cli chat flags)
  export [CONFIG.yaml] [--key value ...]   merge an adapter into its base model and save it
  doctor [--json]                          check the environment (NPU / CANN / torch / libraries)
  estimate CONFIG.yaml [key=value ...]     will it fit? memory per device from config.json
  demo [key=value ...]                     the whole quick start on the embedded tiny model
  batch NOTEBOOK -p NAME VALUE [VALUE ...] [--out DIR] [--parallel N] [--devices 0,1]
                                           run a notebook over a grid of parameters (papermill sweeps)
  keys                                     every config key with its type, default and meaning
""")


TRAIN_HELP = N_("""usage: kit train CONFIG.yaml [key=value ...]

LoRA supervised fine-tuning with a LLaMA-Factory-style YAML (see `kit keys` for every key).
key=value overrides apply after the file. Runs under torchrun when `deepspeed` is set, FORCE_TORCHRUN
is set or several devices are visible; NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT
are honoured. Writes the adapter, trainer_log.jsonl, all_results.json and plots into output_dir.

The quick start's own command works too:
  torchrun --nproc_per_node 1 --nnodes 1 --node_rank 0 --master_addr 127.0.0.1 --master_port 7007 -m kit.train CONFIG.yaml""")


def cmd_train(args: Sequence[str]) -> int:
    from kit import config
    from kit.run import launch

    if any(a in ("-h", "--help") for a in args):
        print(_(TRAIN_HELP))
        return 0
    from kit.config.command_line import split_config_args

    path, overrides = split_config_args(args, "kit train")
    if path is None:
        raise KitError(_("kit train needs a config file: kit train CONFIG.yaml [key=value ...]"))
    cfg = config.load(path, overrides)
    return launch.launch_sft(cfg)


def cmd_preprocess(args: Sequence[str]) -> int:
    from kit import config
    from kit.data import preprocess
    from kit.data import write_jsonl

    parser = argparse.ArgumentParser(prog="kit preprocess")
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--output", help="write every encoded example as JSONL here")
    parser.add_argument("--preview", type=int, default=3, help="examples to show without --output")
    ns = parser.parse_args(list(args))
    encoded = preprocess.encode(config.load(ns.config, ns.overrides))
    data = encoded.data
    if ns.output:
        write_jsonl(data.all, Path(ns.output).expanduser())
        print(json.dumps({"output": ns.output, **data.stats()}, ensure_ascii=False))
        return 0
    for i in range(min(ns.preview, len(data.all))):
        src = data.sources[i]
        tokens, trained = encoded.counts(i)
        print(f"=== example {i} ({src.dataset}[{src.index}]): {tokens} tokens, {trained} trained")
        print("".join(f"[[{text}]]" if is_trained else text for text, is_trained in encoded.pieces(i)))
    print("([[...]] is trained: its labels are kept; the rest has label -100)")
    print(json.dumps(data.stats(), ensure_ascii=False))
    return 0


def cmd_keys(args: Sequence[str]) -> int:
    from kit.config import key_reference

    for row in key_reference():
        choices = f" [{', '.join(map(str, row['choices']))}]" if row["choices"] else ""
        print(f"{row['key']:<30} {row['type']:<14} default={row['default']!r}{choices}\n    {row['help']}")
    return 0


def _lazy(module: str, func: str) -> Callable[[Sequence[str]], int]:
    def run(args: Sequence[str]) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(list(args))

    return run


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "train": cmd_train,
    "preprocess": cmd_preprocess,
    "keys": cmd_keys,
    "doctor": _lazy("kit.doctor", "doctor_main"),
    "estimate": _lazy("kit.estimate.cli", "estimate_main"),
    "chat": _lazy("kit.chat.terminal", "chat_main"),
    "export": _lazy("kit.chat.export", "export_main"),
    "demo": _lazy("kit.tutorial.demo", "demo_main"),
    "batch": _lazy("kit.tutorial.sweep", "batch_main"),
}


def take_language(argv: list[str]) -> list[str]:
    """Apply ``--lang X`` (anywhere on the line) and return the rest; the locale decides without it."""
    from kit import i18n

    rest: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--lang" and i + 1 < len(argv):
            i18n.set_language(argv[i + 1])
            i += 2
            continue
        if argv[i].startswith("--lang="):
            i18n.set_language(argv[i].partition("=")[2])
        else:
            rest.append(argv[i])
        i += 1
    return rest


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = take_language(argv)
    except KitError as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return 2
    from kit import i18n

    i18n.warn_unknown_kit_lang()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_(USAGE))
        return 0
    if argv[0] in ("-V", "--version", "version"):
        from kit import __version__

        print(__version__)
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(_("error: unknown command {name!r}").format(name=argv[0]) + "\n\n" + _(USAGE), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="[kit %(levelname)s] %(message)s")
    from kit.run.launch import Terminated

    try:
        return command(argv[1:])
    except KitError as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_("interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kit ... | head` closed the pipe: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's advice: no second error at exit
        return 0
    except Terminated as exc:  # SIGTERM / SIGHUP: the training processes are already stopped
        print(_("stopped by {signal}: training processes ended").format(signal=exc.name), file=sys.stderr)
        return 128 + exc.signum


if __name__ == "__main__":
    sys.exit(main())
