"""``kit doctor``: is this machine ready for the quick start, and if not, what to do about it.

The doctor works in two steps so that every check can be tested without an NPU:

1. ``gather(...)`` (``probes``) collects *facts* (``facts``): versions, files (CANN ``*.info``, the
   driver's ``version.info``), the output of ``npu-smi info`` (run with a time limit), imports (torch,
   torch_npu through ``kit.device``), the environment mapping, disk and memory, and a small matmul on
   the device. Every probe catches its own errors and records them as facts; gathering never raises.
2. ``run_checks(facts)`` (``checks``, ``npu_checks``, ``stack_checks``) turns the facts into a ``DoctorReport``
   (``report``): one ``Check`` per question, each ``ok`` / ``warn`` / ``fail`` with what was found and,
   for every warn or fail, the command to run or the variable to set.

Which torch_npu goes with which torch and CANN, and which chips compute in bf16, is data with its date and
sources (``ascend_stack.json``, read by ``stack``): a version the table does not know is a warning naming the date.

Tests build ``Facts`` by hand (or gather from a fake CANN tree and a fake ``npu-smi`` script) and call
the checks directly.

Everything a person reads comes in English or Chinese (``kit.i18n``): ``doctor(lang="zh")``,
``kit doctor --lang zh`` or the locale (``LANG=zh_CN.UTF-8``) choose; check names, status codes and JSON
keys stay English.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from kit.doctor.checks import CHECKS, run_checks
from kit.doctor.facts import (CannFacts, DeepSpeedFacts, DiskFacts, DriverFacts, Facts, MemoryFacts, NpuChip, NpuSmiFacts,
                              SmokeFacts, TorchFacts, TorchNpuFacts)
from kit.doctor.probes import NPU_SMI_TIMEOUT_S, gather
from kit.doctor.report import FAIL, OK, WARN, Check, DoctorReport
from kit.i18n import LANGUAGES, _, set_language

if TYPE_CHECKING:
    from kit.command_parser import CommandParser

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


def _language_option(parser: CommandParser) -> None:
    parser.add_argument("--lang", choices=LANGUAGES, default=None,
                        help=_("language of the report and messages (default: KIT_LANG or the locale, e.g. LANG=zh_CN.UTF-8)"))


def doctor_main(argv: list[str]) -> int:
    """``kit doctor``: exit status 1 when any check fails, else 0."""
    from kit.command_parser import CommandParser

    # --lang first, so that the help and every message after it are in that language.
    early = CommandParser("kit doctor", add_help=False)
    _language_option(early)
    chosen, _rest = early.parse_known_args(argv)
    if chosen.lang:
        set_language(chosen.lang)
    parser = CommandParser("kit doctor", _("Check this machine for the LoRA quick start; every warning and failure comes with a fix."))
    parser.add_argument("--json", action="store_true", help=_("print the report as JSON"))
    parser.add_argument("--device", choices=["auto", "npu", "cuda", "cpu"], default="auto", help=_("the device you mean to train on"))
    parser.add_argument("--output_dir", default=".", help=_("where training will write (for the free-disk check)"))
    parser.add_argument("--nproc", type=int, default=None, metavar="N", help=_("processes per node you will launch (default: NPROC_PER_NODE or 1)"))
    parser.add_argument("--nnodes", type=int, default=None, metavar="N", help=_("number of nodes (default: NNODES or 1)"))
    parser.add_argument("--timeout", type=float, default=NPU_SMI_TIMEOUT_S, metavar="SECONDS", help=_("seconds to wait for npu-smi info"))
    parser.add_argument("--no-smoke", dest="smoke", action="store_false", help=_("skip the matmul smoke test"))
    _language_option(parser)
    args = parser.parse_args(argv)
    report = doctor(args.device, args.output_dir, args.nproc, args.nnodes, timeout=args.timeout, smoke=args.smoke, lang=args.lang)
    try:
        print(report.to_json() if args.json else report.render_text(), flush=True)
    except BrokenPipeError:
        # `kit doctor --json | head`: the reader has what it wanted (Chinese JSON is over one 8 KiB pipe write).
        from kit.command_parser import quiet_closed_stdout

        quiet_closed_stdout()
    return report.exit_code
