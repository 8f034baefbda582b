"""The ``kit`` command: train, preprocess, chat, export, doctor, estimate, demo, batch, keys.

Each subcommand calls the same functions the notebooks call, and reads its command line with the same
parser (``kit.command_parser.CommandParser``): the same ``-h`` layout, and a mistake on the command
line is the usage line and one ``error: ...`` line, exit status 2, in the person's language. A person's
mistake found later (a KitError) is printed as one message with exit status 2 and no traceback;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import functools
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
  api [CONFIG.yaml] [--key value ...]      OpenAI-compatible HTTP server (llamafactory-cli api)
  export [CONFIG.yaml] [--key value ...]   merge an adapter into its base model and save it
  predict [CONFIG.yaml] [--key value ...]  predict on a dataset with an adapter; BLEU/ROUGE as LLaMA-Factory
  doctor [--json]                          check the environment (NPU / CANN / torch / libraries)
  estimate CONFIG.yaml [key=value ...]     will it fit? memory per device from config.json
  demo [key=value ...]                     the whole quick start on the embedded tiny model
  batch NOTEBOOK -p NAME VALUE [VALUE ...] [--out DIR] [--parallel N] [--devices 0,1]
                                           run a notebook over a grid of parameters (papermill sweeps)
  keys                                     every config key with its type, default and meaning
""")


TRAIN_DESCRIPTION = N_("""LoRA supervised fine-tuning with a LLaMA-Factory-style YAML (see `kit keys` for every key).
key=value overrides apply after the file. With `deepspeed` on one device of one node, DeepSpeed runs in
this process, as LLaMA-Factory does; torchrun starts the processes when FORCE_TORCHRUN is set or several
devices are visible; NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT are honoured.
Writes the adapter, trainer_log.jsonl, all_results.json and plots into output_dir.

The quick start's own command works too:
  torchrun --nproc_per_node 1 --nnodes 1 --node_rank 0 --master_addr 127.0.0.1 --master_port 7007 -m kit.train CONFIG.yaml""")


def cmd_train(args: Sequence[str], own_process: bool = False) -> int:
    """``own_process``: ``kit`` is this process's program and it ends with the run, so one DeepSpeed rank
    can run here; called from a person's Python (or a test), training runs under torchrun instead, and the
    caller's process keeps no process group, DeepSpeed state or device memory after the run."""
    from kit import config
    from kit.config.command_line import ConfigCommandParser
    from kit.run import launch

    ns = ConfigCommandParser("kit train", _(TRAIN_DESCRIPTION), config_required=True).parse_args(args)
    cfg = config.load(ns.config, ns.overrides)
    if cfg.train.do_predict and not cfg.train.do_train and cfg.model.adapter_name_or_path:
        from kit.evaluate.cli import run as predict_only  # LLaMA-Factory's do_train: false + do_predict: no training

        return predict_only(cfg)
    return launch.launch_sft(cfg, host_one=own_process)


def cmd_preprocess(args: Sequence[str]) -> int:
    from kit import config
    from kit.config.command_line import ConfigCommandParser
    from kit.data import preprocess
    from kit.data import check_new_output, split_indices, write_jsonl

    parser = ConfigCommandParser("kit preprocess", _(
        "Encode the datasets a config names, as training will: preview a few examples (what is trained is\n"
        "marked), or write every encoded example to a JSONL file."), config_required=True)
    parser.add_argument("--output", metavar="FILE.jsonl", help=_("write every encoded example as JSONL here"))
    parser.add_argument("--preview", type=int, default=3, metavar="N", help=_("examples to show without --output (default 3)"))
    ns = parser.parse_args(args)
    cfg = config.load(ns.config, ns.overrides)
    if ns.output:
        check_new_output(Path(ns.output).expanduser())  # before the encoding's minutes, not after
    encoded = preprocess.encode(cfg)
    data = encoded.data
    stats = data.stats()
    if cfg.data.val_size > 1e-6:  # every example is encoded (no split); say how training would split them
        with contextlib.suppress(KitError):  # a val_size that cannot split these is kit train's message to give
            train_idx, eval_idx = split_indices(len(data.all), cfg.data.val_size, cfg.train.seed)
            stats.update(train=len(train_idx), eval=len(eval_idx))
    if ns.output:
        write_jsonl(data.all, Path(ns.output).expanduser())
        print(json.dumps({"output": ns.output, **stats}, ensure_ascii=False))
        return 0
    for i in range(min(ns.preview, len(data.all))):
        src = data.sources[i]
        tokens, trained = encoded.counts(i)
        print(_("=== example {i} ({dataset}[{index}]): {tokens} tokens, {trained} trained").format(
            i=i, dataset=src.dataset, index=src.index, tokens=tokens, trained=trained))
        print("".join(f"[[{text}]]" if is_trained else text for text, is_trained in encoded.pieces(i)))
    print(_("([[...]] is trained: its labels are kept; the rest has label -100)"))
    print(json.dumps(stats, ensure_ascii=False))
    return 0


def cmd_keys(args: Sequence[str]) -> int:
    from kit.config import key_reference
    from kit.command_parser import CommandParser

    CommandParser("kit keys", _("Every config key with its type, default and meaning.")).parse_args(args)
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
    "api": _lazy("kit.chat.api", "api_main"),
    "export": _lazy("kit.chat.export", "export_main"),
    "predict": _lazy("kit.evaluate.cli", "predict_main"),
    "demo": _lazy("kit.tutorial.demo", "demo_main"),
    "batch": _lazy("kit.tutorial.sweep", "batch_main"),
}


def take_language(argv: list[str]) -> list[str]:
    """Apply ``--lang X`` (anywhere on the line) and return the rest; the locale decides without it."""
    from kit import i18n

    rest: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--lang":
            if i + 1 == len(argv):
                raise i18n.LanguageError(_("--lang needs a language: {choices}").format(choices=", ".join(i18n.LANGUAGES)))
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
    """``kit ...``: the exit status. A closed pipe (``kit --help | head``) ends the output quietly."""
    from kit.command_parser import quiet_closed_stdout

    try:
        code = _main(list(sys.argv[1:] if argv is None else argv), own_process=argv is None)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:
        quiet_closed_stdout()
        return 0


def _usage_error(message: str, usage: str) -> int:
    """The usage, then one line ``error: ...``: what every kit command prints for a mistake on its command line."""
    print(usage.rstrip("\n") + "\n" + _("error: {message}").format(message=message), file=sys.stderr)
    return 2


def _main(argv: list[str], own_process: bool = False) -> int:
    from kit.command_parser import UsageExit

    try:
        argv = take_language(argv)
    except KitError as exc:
        return _usage_error(str(exc), _(USAGE).splitlines()[0])
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
        return _usage_error(_("unknown command {name!r}").format(name=argv[0]), _(USAGE))
    logging.basicConfig(level=logging.INFO, format="[kit %(levelname)s] %(message)s")
    from kit.errors import Terminated

    if command is cmd_train and own_process:  # the kit command itself (argv from the command line), not a call from Python
        command = functools.partial(cmd_train, own_process=True)
    try:
        return command(argv[1:])
    except UsageExit as exc:  # the command's help, or a mistake on its command line (already said)
        return exc.code if isinstance(exc.code, int) else 2
    except KitError as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_("interrupted"), file=sys.stderr)
        return 130
    except Terminated as exc:  # SIGTERM / SIGHUP: what the command started is already stopped, its partial files gone
        print(_("stopped by {signal}").format(signal=exc.name), file=sys.stderr)
        return 128 + exc.signum


if __name__ == "__main__":
    sys.exit(main())
