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
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping

from kit.doctor.checks import CHECKS, run_checks
from kit.doctor.facts import (CannFacts, DeepSpeedFacts, DiskFacts, DriverFacts, Facts, MemoryFacts, NpuChip, NpuSmiFacts,
                              SmokeFacts, TorchFacts, TorchNpuFacts)
from kit.doctor.probes import NPU_SMI_TIMEOUT_S, gather
from kit.doctor.report import FAIL, OK, WARN, Check, DoctorReport

__all__ = [
    "OK", "WARN", "FAIL", "Check", "DoctorReport", "CHECKS", "doctor", "doctor_main", "gather", "run_checks",
    "Facts", "TorchFacts", "TorchNpuFacts", "CannFacts", "DriverFacts", "NpuChip", "NpuSmiFacts", "DeepSpeedFacts",
    "DiskFacts", "MemoryFacts", "SmokeFacts",
]


def doctor(device: str = "auto", output_dir: str | Path = ".", nproc: int | None = None, nnodes: int | None = None,
           env: Mapping[str, str] | None = None, timeout: float = NPU_SMI_TIMEOUT_S, smoke: bool = True) -> DoctorReport:
    """Gather and check; the report shows as a table in a notebook and prints as text."""
    return run_checks(gather(device, output_dir, nproc, nnodes, env, timeout, smoke))


def doctor_main(argv: list[str]) -> int:
    """``kit doctor``: exit status 1 when any check fails, else 0."""
    parser = argparse.ArgumentParser(prog="kit doctor", description="Check this machine for the LoRA quick start; every warning and failure comes with a fix.")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--device", choices=["auto", "npu", "cuda", "cpu"], default="auto", help="the device you mean to train on")
    parser.add_argument("--output_dir", default=".", help="where training will write (for the free-disk check)")
    parser.add_argument("--nproc", type=int, default=None, help="processes per node you will launch (default: NPROC_PER_NODE or 1)")
    parser.add_argument("--nnodes", type=int, default=None, help="number of nodes (default: NNODES or 1)")
    parser.add_argument("--timeout", type=float, default=NPU_SMI_TIMEOUT_S, help="seconds to wait for npu-smi info")
    parser.add_argument("--no-smoke", dest="smoke", action="store_false", help="skip the matmul smoke test")
    args = parser.parse_args(argv)
    report = doctor(args.device, args.output_dir, args.nproc, args.nnodes, timeout=args.timeout, smoke=args.smoke)
    print(report.to_json() if args.json else report.render_text())
    return report.exit_code
