"""Checks for the Ascend stack a person installs today (issue 23): the torch_npu/torch/CANN pairing from
``ascend_stack.json``, the CANN kernels (ops) package, ``decorator``, bf16 from the chip's name, the
misnamed NPU_VISIBLE_DEVICES, and another process holding a card.

Where each fact comes from (../shared/reference/ascend/FACTS.md collects them):
- pairing: Ascend/pytorch COMPATIBILITY.en.md (release 26.1.0), dated in the JSON; an unknown version is a
  warning that names the table's date, never a pass or a fail.
- kernels package missing or for another chip: "Op Cast does not has any binary" (LLaMA-Factory #4610, #5189).
- ``decorator`` missing breaks torch_npu (LLaMA-Factory PR #3930).
- bf16: Ascend/pytorch NpuVariables.cpp; LLaMA-Factory #4339, #7489.
- NPU_VISIBLE_DEVICES is not read; more processes than cards hangs (LLaMA-Factory #6428, #7215).
- "Maybe the last training process is running": what people report seeing on LLaMA-Factory when a card is held
  (collected in the kit's issue 23; the phrase is not in LLaMA-Factory's current source, so the kit does not say
  which program prints it); HCCL's "Failed to initialize the HCCP process" is fixed by stopping leftovers and
  waiting about 10 s (FACTS.md).
"""

from __future__ import annotations

from kit.doctor.facts import Facts
from kit.doctor.npu_checks import not_present, npu_expected
from kit.doctor.probes import at_least
from kit.doctor.report import FAIL, OK, WARN, Check
from kit.doctor.stack import bf16_capable, cann_matches, chip_model, pairing, table_date, table_source
from kit.i18n import _

DOCS_KERNELS = "https://www.hiascend.com/developer/download/community/result?module=cann"


def _chip_names(f: Facts) -> list[str]:
    names = [chip_model(c.name) for c in f.npu_smi.chips] or [chip_model(n) for n in f.torch_npu.device_names]
    return sorted({n for n in names if n and n != "?"})


def check_stack_pairing(f: Facts) -> Check:
    title = _("torch_npu / torch / CANN pairing")
    tn = f.torch_npu
    if not tn.installed:
        return not_present("stack_pairing", title, _("torch_npu is not installed"), f)
    date = table_date()
    row = pairing(tn.version)
    details = {"torch_npu": tn.version, "torch": f.torch.version, "cann": f.cann.version, "table_date": date}
    if row is None:
        return Check("stack_pairing", title, WARN,
                     _("the kit's stack table (dated {date}) does not know torch_npu {version}; it may be newer than the table").format(
                         date=date, version=tn.version),
                     _("check Ascend's compatibility table ({source}) for the torch and CANN that torch_npu {version} needs").format(
                         source=table_source(), version=tn.version), details)
    if not row.cann:
        return Check("stack_pairing", title, WARN,
                     _("torch_npu {version} needs torch {torch}; the kit's stack table (dated {date}) does not list its CANN").format(
                         version=tn.version, torch=row.torch, date=date),
                     _("check Ascend's compatibility table ({source}) for the CANN that torch_npu {version} needs").format(
                         source=table_source(), version=tn.version), details)
    if f.cann.version is None:
        return Check("stack_pairing", title, OK, _("torch_npu {version} pairs with torch {torch} and CANN {cann}; no CANN version found to compare").format(
                         version=tn.version, torch=row.torch, cann=", ".join(row.cann)), details=details)
    if not cann_matches(f.cann.version, row.cann):
        return Check("stack_pairing", title, WARN,
                     _("torch_npu {version} is listed with CANN {cann} in the kit's stack table (dated {date}), but CANN {found} is installed").format(
                         version=tn.version, cann=", ".join(row.cann), date=date, found=f.cann.version),
                     _("install CANN {cann}, or the torch_npu release listed for CANN {found} in Ascend's table ({source})").format(
                         cann=", ".join(row.cann), found=f.cann.version, source=table_source()), details)
    return Check("stack_pairing", title, OK, _("torch_npu {version}, torch {torch}, CANN {cann}: a pairing in Ascend's table (kit table dated {date})").format(
                     version=tn.version, torch=row.torch, cann=f.cann.version, date=date), details=details)


def check_kernels(f: Facts) -> Check:
    c, title = f.cann, _("CANN kernels (ops) package")
    chips = ", ".join(_chip_names(f)) or _("your chip")
    details = {"ops_version": c.ops_version, "ops_package": c.ops_package, "cann": c.version, "chips": _chip_names(f)}
    if c.root is None or not npu_expected(f):
        return not_present("kernels", title, _("no CANN toolkit, no kernels package to check"), f)
    fix = _("install the CANN kernels (ops) package for {chips}, the same release as the toolkit (CANN {version}) ({docs}), "
            "then source set_env.sh again").format(chips=chips, version=c.version, docs=DOCS_KERNELS)
    if c.ops_version is None and not at_least(c.version, (8, 5)):
        # FACTS.md knows where CANN 8.5 and later record the kernels package (ascend_ops_install.info beside the
        # toolkit's); for older releases the kit does not claim a place, so it says it did not check.
        return Check("kernels", title, OK, _("not checked: the kit knows where CANN 8.5 and later record the kernels package, "
                                             "and this is CANN {version}").format(version=c.version), details=details)
    if c.ops_version is None:
        return Check("kernels", title, WARN,
                     _("no ascend_ops_install.info beside the toolkit's; without the kernels package for the chip, training stops "
                       "with \"Op Cast does not has any binary\""),
                     fix, details)
    found = _("kernels {version}").format(version=c.ops_version) + (f" ({c.ops_package})" if c.ops_package else "")
    if c.version and c.ops_version != c.version:
        return Check("kernels", title, WARN, _("{found}, but the toolkit is CANN {version}").format(found=found, version=c.version), fix, details)
    return Check("kernels", title, OK, _("{found}, the toolkit's release").format(found=found), details=details)


def check_decorator(f: Facts) -> Check:
    title = "decorator"
    have = f.packages.get("decorator")
    if not f.torch_npu.installed:
        return not_present("decorator", title, _("needed only by torch_npu"), f)
    if have is None:
        return Check("decorator", title, FAIL, _("not installed; torch_npu needs it"), "pip install decorator")
    return Check("decorator", title, OK, f"decorator {have}", details={"version": have})


def check_bf16(f: Facts) -> Check:
    title = _("bf16 on this chip")
    names = _chip_names(f)
    if not names:
        return not_present("bf16", title, _("no Ascend chip seen"), f)
    verdicts = {n: bf16_capable(n) for n in names}
    details = {"chips": verdicts}
    listing = ", ".join(names)
    if all(v is True for v in verdicts.values()):
        return Check("bf16", title, OK, _("{chips}: bf16 supported; prefer bf16: true (fp16 LoRA runs on these chips can end "
                                          "with loss 0 or grad_norm nan)").format(chips=listing), details=details)
    if all(v is False for v in verdicts.values()):
        return Check("bf16", title, WARN, _("{chips}: no bf16 on this chip; a config with bf16: true will not run as asked").format(chips=listing),
                     _("train with fp16: true and bf16: false (the quick start's setting)"), details)
    return Check("bf16", title, WARN, _("{chips}: the kit does not know whether these chips compute in bf16").format(chips=listing),
                 _("ask torch: python -c \"import torch, torch_npu; print(torch.npu.is_bf16_supported())\""), details)


def check_npu_visible_name(f: Facts) -> Check:
    title = "NPU_VISIBLE_DEVICES"
    value = f.env.get("NPU_VISIBLE_DEVICES")
    if value is None:
        return Check("npu_visible_name", title, OK, _("unset (the variable the NPU reads is ASCEND_RT_VISIBLE_DEVICES)"))
    if f.env.get("ASCEND_RT_VISIBLE_DEVICES") is None:
        found = _("NPU_VISIBLE_DEVICES={value} is set, but torch_npu does not read it: every card is visible").format(value=value)
    else:
        found = _("NPU_VISIBLE_DEVICES={value} is set and ignored; ASCEND_RT_VISIBLE_DEVICES decides").format(value=value)
    return Check("npu_visible_name", title, WARN, found,
                 _("export ASCEND_RT_VISIBLE_DEVICES={value}; unset NPU_VISIBLE_DEVICES").format(value=value), {"value": value})


def check_card_processes(f: Facts) -> Check:
    title = _("other processes on the cards")
    procs = f.npu_smi.processes
    if f.npu_smi.path is None or f.npu_smi.returncode != 0:
        return not_present("card_processes", title, _("no npu-smi process table to read"), f)
    if not procs:
        return Check("card_processes", title, OK, _("no process holds a card"))
    listing = ", ".join(f"NPU {p.npu_id}: {p.name} (pid {p.pid}" + (f", {p.memory_mb} MB)" if p.memory_mb is not None else ")") for p in procs)
    pids = " ".join(str(p) for p in sorted({p.pid for p in procs}))
    return Check("card_processes", title, WARN,
                 _("{listing}; a previous run may still hold the card (\"Maybe the last training process is running\")").format(
                     listing=listing),
                 _("if they are yours and finished, stop them (kill {pids}), wait about 10 s, then start again; "
                   "or choose free cards with ASCEND_RT_VISIBLE_DEVICES").format(pids=pids),
                 {"processes": [vars(p) for p in procs]})
