"""``kit doctor``: is this machine ready for the quick start, and if not, what to do about it.

The doctor works in two steps so that every check can be tested without an NPU:

1. ``gather(...)`` (``probes``) collects *facts* (``facts``): versions, files (CANN ``*.info``, the
   driver's ``version.info``), the output of ``npu-smi info`` (run with a time limit), imports (torch,
   torch_npu through ``kit.device``), the environment mapping, disk and memory, and a small matmul on
   the device. Every probe catches its own errors and records them as facts; gathering never raises.
2. ``run_checks(facts)`` (``checks``, ``npu_checks``) turns the facts into a ``DoctorReport``
   (``report``): one ``Check`` per question, each ``ok`` / ``warn`` / ``fail`` with what was found and,
   for every warn or fail, the command to run or the variable to set.

Tests build ``Facts`` by hand (or gather from a fake CANN tree and a fake ``npu-smi`` script) and call
the checks directly.

Everything a person reads comes in English or Chinese (``kit.i18n``): ``doctor(lang="zh")``,
``kit doctor --lang zh`` or the locale (``LANG=zh_CN.UTF-8``) choose; check names, status codes and JSON
keys stay English.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping

from kit.doctor.checks import CHECKS, run_checks
from kit.doctor.facts import (CannFacts, DeepSpeedFacts, DiskFacts, DriverFacts, Facts, MemoryFacts, NpuChip, NpuSmiFacts,
                              SmokeFacts, TorchFacts, TorchNpuFacts)
from kit.doctor.probes import NPU_SMI_TIMEOUT_S, gather
from kit.doctor.report import FAIL, OK, WARN, Check, DoctorReport
from kit.i18n import LANGUAGES, _, set_language

__all__ = [
    "OK", "WARN", "FAIL", "Check", "DoctorReport", "CHECKS", "doctor", "doctor_main", "gather", "run_checks",
    "Facts", "TorchFacts", "TorchNpuFacts", "CannFacts", "DriverFacts", "NpuChip", "NpuSmiFacts", "DeepSpeedFacts",
    "DiskFacts", "MemoryFacts", "SmokeFacts",
]


def doctor(device: str = "auto", output_dir: str | Path = ".", nproc: int | None = None, nnodes: int | None = None,
           env: Mapping[str, str] | None = None, timeout: float = NPU_SMI_TIMEOUT_S, smoke: bool = True,
           lang: str | None = None) -> DoctorReport:
    """Gather and check; the report shows as a table in a notebook and prints as text.

    ``lang`` ("en", "zh") chooses the language of the report and of the kit's later messages
    (``kit.i18n.set_language``), as a notebook's ``lang`` parameter does; None keeps the current choice.
    """
    if lang is not None:
        set_language(lang)
    return run_checks(gather(device, output_dir, nproc, nnodes, env, timeout, smoke))


def _language_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--lang", choices=LANGUAGES, default=None,
                        help=_("language of the report and messages (default: KIT_LANG or the locale, e.g. LANG=zh_CN.UTF-8)"))


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with the one word it adds itself ("usage:") in the chosen language too."""

    def add_usage(self, usage, actions, groups, prefix=None):  # type: ignore[no-untyped-def]
        super().add_usage(usage, actions, groups, _("usage: ") if prefix is None else prefix)


def doctor_main(argv: list[str]) -> int:
    """``kit doctor``: exit status 1 when any check fails, else 0."""
    # --lang first, so that the help and every message after it are in that language.
    early = argparse.ArgumentParser(add_help=False)
    _language_option(early)
    chosen, _rest = early.parse_known_args(argv)
    if chosen.lang:
        set_language(chosen.lang)
    parser = argparse.ArgumentParser(prog="kit doctor", add_help=False, formatter_class=_HelpFormatter,
                                     description=_("Check this machine for the LoRA quick start; every warning and failure comes with a fix."))
    # Our own group and -h, so that the heading and the help's help are translated like the rest.
    options = parser.add_argument_group(_("options"))
    options.add_argument("-h", "--help", action="help", help=_("show this help message and exit"))
    options.add_argument("--json", action="store_true", help=_("print the report as JSON"))
    options.add_argument("--device", choices=["auto", "npu", "cuda", "cpu"], default="auto", help=_("the device you mean to train on"))
    options.add_argument("--output_dir", default=".", help=_("where training will write (for the free-disk check)"))
    options.add_argument("--nproc", type=int, default=None, help=_("processes per node you will launch (default: NPROC_PER_NODE or 1)"))
    options.add_argument("--nnodes", type=int, default=None, help=_("number of nodes (default: NNODES or 1)"))
    options.add_argument("--timeout", type=float, default=NPU_SMI_TIMEOUT_S, help=_("seconds to wait for npu-smi info"))
    options.add_argument("--no-smoke", dest="smoke", action="store_false", help=_("skip the matmul smoke test"))
    _language_option(options)
    args = parser.parse_args(argv)
    report = doctor(args.device, args.output_dir, args.nproc, args.nnodes, timeout=args.timeout, smoke=args.smoke, lang=args.lang)
    try:
        print(report.to_json() if args.json else report.render_text(), flush=True)
    except BrokenPipeError:
        # `kit doctor --json | head`: the reader has what it wanted (Chinese JSON is over one 8 KiB pipe
        # write). Point stdout at devnull so the exit flush does not raise again, as Python's docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return report.exit_code
