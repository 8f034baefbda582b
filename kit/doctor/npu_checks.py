"""Checks of the Ascend NPU stack, layer by layer: the chip, torch_npu, the CANN toolkit and its
environment, the driver, ``npu-smi info``, ASCEND_RT_VISIBLE_DEVICES and HCCL.

On a machine with no Ascend hardware at all these say "not present" with status ok: the kit then
trains on CUDA or the CPU, which is a supported set-up, not an error. They hold a machine to NPU
standards (warn / fail) only when ``--device npu`` is asked for or something says an NPU is meant to
be used (``npu_expected``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from kit import device as kit_device
from kit.doctor.facts import MINIMUM_CANN, Facts
from kit.doctor.probes import at_least, release
from kit.doctor.report import FAIL, OK, WARN, Check
from kit.i18n import _

NPU_BUSY_FRACTION = 0.2  # an idle 910B shows ~5% of HBM in use; far more means another job holds the chip
_HEALTH_WARN = {"warning"}
DOCS_NPU = "https://llamafactory.readthedocs.io/en/latest/advanced/npu_installation.html"


def npu_signs(f: Facts) -> list[str]:
    """What on this machine says an Ascend NPU is meant to be used."""
    signs = []
    if f.driver.path:
        signs.append(_("driver file {path}").format(path=f.driver.path))
    if f.npu_smi.path:
        signs.append(_("npu-smi at {path}").format(path=f.npu_smi.path))
    if f.davinci_devices:
        signs.append(_("{count} /dev/davinci* device(s)").format(count=len(f.davinci_devices)))
    if f.cann.root:
        signs.append(_("CANN at {path}").format(path=f.cann.root))
    if f.torch_npu.installed:
        signs.append(_("torch_npu installed"))
    return signs


def npu_expected(f: Facts) -> bool:
    """True when the NPU checks should hold the machine to NPU standards (warn/fail), not just inform."""
    if f.requested_device == "npu":
        return True
    return f.requested_device == "auto" and bool(npu_signs(f))


def fallback_kind(f: Facts) -> str:
    return "cuda" if f.torch.cuda_available and f.requested_device != "cpu" else "cpu"


def chosen_kind(f: Facts) -> str:
    if f.requested_device != "auto":
        return f.requested_device
    if f.torch_npu.imported and f.torch_npu.available:
        return "npu"
    return fallback_kind(f)


def not_present(name: str, title: str, what: str, f: Facts, **details: Any) -> Check:
    why = (_("not used: --device {device}").format(device=f.requested_device) if f.requested_device in ("cpu", "cuda")
           else _("not present"))
    return Check(name, title, OK, _("{why}: {what}").format(why=why, what=what), details={"present": False, **details})


def set_env_cmd(f: Facts) -> str:
    if f.cann.set_env is None and f.cann.root is None:
        # Nothing found: name both layouts (CANN 8.5 and later install under cann/; Ascend's install docs, FACTS.md).
        return _("source /usr/local/Ascend/cann/set_env.sh (CANN >= 8.5) or source /usr/local/Ascend/ascend-toolkit/set_env.sh (older CANN)")
    p = f.cann.set_env or (f.cann.root / "set_env.sh" if f.cann.root.name.startswith("cann") else f.cann.root.parent / "set_env.sh")
    return f"source {p}"


def check_npu(f: Facts) -> Check:
    """The headline NPU answer: present and usable, absent (fine), or present but unusable."""
    signs = npu_signs(f)
    tn = f.torch_npu
    title = _("Ascend NPU")
    if tn.imported and tn.available:
        names = ", ".join(sorted(set(tn.device_names))) or "npu"
        return Check("npu", title, OK, _("{count} NPU(s) usable by torch: {names}").format(count=tn.device_count, names=names),
                     details={"present": True, "count": tn.device_count})
    if not npu_expected(f):
        fallback = fallback_kind(f)
        what = (_("no Ascend NPU on this machine (no driver, npu-smi, /dev/davinci*, CANN or torch_npu found); "
                  "the kit will run on {device}") if not signs else
                _("found {signs} but the kit will run on {device}"))
        return not_present("npu", title, what.format(signs=", ".join(signs), device=fallback), f, signs=signs)
    if not signs:
        return Check("npu", title, FAIL,
                     _("--device npu was asked for but no Ascend driver, npu-smi, /dev/davinci*, CANN or torch_npu was found"),
                     _("install the driver, CANN and torch_npu ({docs}); in a container pass --device /dev/davinci0 "
                       "--device /dev/davinci_manager --device /dev/devmm_svm --device /dev/hisi_hdc and mount /usr/local/Ascend/driver"
                       ).format(docs=DOCS_NPU),
                     {"present": False, "signs": signs})
    if not tn.installed:
        why = _("torch_npu is not installed")
        fix = _("pip install torch-npu=={version} (the release matching torch {torch})").format(
            version=".".join(map(str, (release(f.torch.version) or (0,))[:3])), torch=f.torch.version)
    elif not tn.imported:
        why = _("torch_npu does not import: {error}").format(error=tn.import_error)
        fix = _("{set_env}, then check the torch_npu check below").format(set_env=set_env_cmd(f))
    elif tn.error:
        why = _("torch.npu failed: {error}").format(error=tn.error)
        fix = _("check the driver (npu-smi info) and ASCEND_RT_VISIBLE_DEVICES")
    else:
        why = _("torch_npu imports but torch.npu.is_available() is False")
        fix = _("check the driver and device files (npu-smi info, ls /dev/davinci*) and ASCEND_RT_VISIBLE_DEVICES")
    return Check("npu", title, FAIL,
                 _("{why} (found {signs}); training would fall back to {device}, very slowly").format(
                     why=why, signs=", ".join(signs), device=fallback_kind(f)),
                 fix, {"present": True, "usable": False, "signs": signs})


def check_torch_npu(f: Facts) -> Check:
    tn = f.torch_npu
    title = "torch_npu"
    if not tn.installed:
        if not npu_expected(f):
            return not_present("torch_npu", title, _("torch_npu is not installed (needed only for an Ascend NPU)"), f)
        want = ".".join(map(str, (release(f.torch.version) or (0,))[:3]))
        return Check("torch_npu", title, FAIL, _("torch_npu is not installed"),
                     _("pip install torch-npu=={version} (torch_npu X.Y.Z requires torch X.Y.Z)").format(version=want))
    found = "torch_npu " + (tn.version or _("(unknown version)"))
    if tn.import_error:
        return Check("torch_npu", title, FAIL, _("{found} does not import: {error}").format(found=found, error=tn.import_error),
                     _("{set_env}; then make torch and torch_npu versions match (see the torch and cann checks)").format(set_env=set_env_cmd(f)),
                     {"version": tn.version})
    tv, nv = release(f.torch.version), release(tn.version)
    if tv is None or nv is None:
        return Check("torch_npu", title, WARN,
                     _("{found} with torch {torch}: cannot compare the versions").format(found=found, torch=f.torch.version),
                     _("make sure torch_npu X.Y.Z is paired with torch X.Y.Z (pip show torch torch-npu)"), {"version": tn.version})
    if tv[:3] != nv[:3]:
        want = ".".join(map(str, nv[:3]))
        return Check("torch_npu", title, FAIL,
                     _("{found} requires torch {want}, but torch {torch} is installed").format(found=found, want=want, torch=f.torch.version),
                     _("pip install torch=={want} torch-npu=={version} (install them together), or the torch_npu release for your torch").format(
                         want=want, version=tn.version),
                     {"version": tn.version, "torch": f.torch.version})
    return Check("torch_npu", title, OK, _("{found} imports and matches torch {torch}").format(found=found, torch=f.torch.version),
                 details={"version": tn.version, "cann": tn.cann_in_torch})


def check_cann(f: Facts) -> Check:
    c, title = f.cann, _("CANN toolkit")
    if c.root is None:
        if not npu_expected(f):
            return not_present("cann", title, _("no CANN toolkit found (needed only for an Ascend NPU)"), f, searched=c.searched)
        return Check("cann", title, FAIL,
                     _("no CANN toolkit found; looked at ASCEND_HOME_PATH, ASCEND_TOOLKIT_HOME and {paths}").format(
                         paths=", ".join(c.searched) or _("the default paths")),
                     _("install the CANN toolkit >= 8.0.RC1 and the kernels package for your chip ({docs}), then {set_env}").format(
                         docs=DOCS_NPU, set_env=set_env_cmd(f)),
                     {"searched": c.searched})
    details = {"root": str(c.root), "source": c.source, "version": c.version, "ops_version": c.ops_version,
               "info_file": str(c.info_file) if c.info_file else None}
    if c.error:
        return Check("cann", title, FAIL, c.error,
                     _("reinstall the CANN toolkit (its ascend_toolkit_install.info is missing or unreadable), "
                       "or point ASCEND_HOME_PATH at a complete install"),
                     details)
    # source is a variable's name or facts.DEFAULT_SOURCE; only the latter has a translation.
    found = _("CANN {version} at {path} (from {source})").format(version=c.version, path=c.root, source=_(c.source) if c.source else "")
    if c.ops_version:
        found = _("{found}; ops package {version}").format(found=found, version=c.ops_version)
    if not at_least(c.version, MINIMUM_CANN):
        return Check("cann", title, WARN, _("{found}; LLaMA-Factory asks for CANN >= 8.0.RC1").format(found=found),
                     _("install CANN >= 8.0.RC1 with its kernels package ({docs})").format(docs=DOCS_NPU), details)
    return Check("cann", title, OK, found, details=details)


def check_cann_env(f: Facts) -> Check:
    c, title = f.cann, _("CANN environment (set_env.sh)")
    if c.root is None:
        if not npu_expected(f):
            return not_present("cann_env", title, _("no CANN toolkit, nothing to source"), f)
        return Check("cann_env", title, FAIL, _("no CANN toolkit to source"), _("install CANN, then {set_env}").format(set_env=set_env_cmd(f)))
    home = f.env.get("ASCEND_HOME_PATH") or f.env.get("ASCEND_TOOLKIT_HOME")
    ld = f.env.get("LD_LIBRARY_PATH", "")
    roots = {str(c.root), str(c.root.resolve())}
    ld_ok = any(r in ld for r in roots) or (home is not None and home in ld)
    details = {"ASCEND_HOME_PATH": f.env.get("ASCEND_HOME_PATH"), "ASCEND_TOOLKIT_HOME": f.env.get("ASCEND_TOOLKIT_HOME"),
               "LD_LIBRARY_PATH_has_toolkit": ld_ok}
    if not home or not ld_ok:
        missing = [] if home else [_("ASCEND_HOME_PATH / ASCEND_TOOLKIT_HOME unset")]
        missing += [] if ld_ok else [_("LD_LIBRARY_PATH does not contain the toolkit")]
        # torch_npu importing fine means the libraries were found some other way: worth a warning only.
        status = WARN if f.torch_npu.imported else FAIL
        return Check("cann_env", title, status, _("set_env.sh has not been sourced: {missing}").format(missing="; ".join(missing)),
                     _("{set_env} (add it to ~/.bashrc; a notebook kernel must be started from a shell that sourced it)").format(
                         set_env=set_env_cmd(f)), details)
    tc = f.torch_npu.cann_in_torch
    if release(tc) and release(c.version) and release(tc)[:2] != release(c.version)[:2]:
        return Check("cann_env", title, WARN,
                     _("sourced, but torch_npu was loaded with CANN {torch_cann} while the toolkit found is {version}").format(
                         torch_cann=tc, version=c.version),
                     _("source the set_env.sh of the CANN your torch_npu was built for, or {set_env} in a fresh shell").format(
                         set_env=set_env_cmd(f)), details)
    return Check("cann_env", title, OK, _("sourced (ASCEND_HOME_PATH={home}, toolkit on LD_LIBRARY_PATH)").format(home=home), details=details)


def check_driver(f: Facts) -> Check:
    d, title = f.driver, _("Ascend driver")
    if d.path is None:
        if not npu_expected(f):
            return not_present("driver", title, _("no Ascend driver ({paths} absent)").format(paths=", ".join(d.searched)), f)
        return Check("driver", title, FAIL, _("driver version file not found ({paths})").format(paths=", ".join(d.searched)),
                     _("install the Ascend driver and firmware; in a container mount the host's /usr/local/Ascend/driver "
                       "(-v /usr/local/Ascend/driver:/usr/local/Ascend/driver)"))
    if d.error:
        return Check("driver", title, FAIL, d.error, _("reinstall the driver package, or mount the host's /usr/local/Ascend/driver intact"),
                     {"path": str(d.path)})
    return Check("driver", title, OK, _("driver {version} ({path})").format(version=d.version, path=d.path),
                 details={"version": d.version, "path": str(d.path)})


def check_npu_smi(f: Facts) -> Check:
    s, title = f.npu_smi, "npu-smi info"
    if s.path is None:
        if not npu_expected(f):
            return not_present("npu_smi", title, _("npu-smi is not installed (it comes with the Ascend driver)"), f)
        return Check("npu_smi", title, FAIL, _("npu-smi not found on PATH or in /usr/local/sbin, /usr/local/bin"),
                     _("install the Ascend driver (npu-smi comes with it) or add its folder to PATH; "
                       "in a container mount /usr/local/sbin/npu-smi from the host"))
    tail = " | ".join(s.output.strip().splitlines()[-3:])[:300]
    if s.error:
        return Check("npu_smi", title, FAIL, s.error,
                     _("the driver may be hung or busy: check dmesg, stop leftover processes on the cards, "
                       "and if it persists reboot or reinstall the driver"),
                     {"path": s.path})
    if s.returncode != 0:
        return Check("npu_smi", title, FAIL, _("npu-smi info exited with status {code}: {output}").format(
                         code=s.returncode, output=tail or _("(no output)")),
                     _("check the driver is loaded (lsmod | grep drv_davinci), the device files exist (ls /dev/davinci*), "
                       "and that this user may use them (root or the HwHiAiUser group)"), {"path": s.path})
    if s.parse_error:
        return Check("npu_smi", title, FAIL, _("npu-smi info printed output the kit could not read: {error}; it printed: {output}").format(
                         error=s.parse_error, output=tail or _("(nothing)")),
                     _("run npu-smi info yourself; if the table looks normal, report the layout to the kit (with the driver version)"),
                     {"path": s.path})
    chips = [asdict(c) for c in s.chips]
    bad = [c for c in s.chips if c.health.lower() != "ok"]
    busy = [c for c in s.chips if c.memory_total_mb and c.memory_used_mb is not None
            and c.memory_used_mb > NPU_BUSY_FRACTION * c.memory_total_mb]
    names = ", ".join(sorted({c.name for c in s.chips}))
    found = _("{count} chip(s): {names}").format(count=len(s.chips), names=names)
    if s.version:
        found = _("{found}; driver {version}").format(found=found, version=s.version)
    details = {"path": s.path, "chips": chips, "version": s.version}
    if any(c.health.lower() not in _HEALTH_WARN for c in bad):
        listing = ", ".join(f"NPU {c.npu_id} {c.health}" for c in bad)
        return Check("npu_smi", title, FAIL, _("{found}; unhealthy: {listing}").format(found=found, listing=listing),
                     _("see npu-smi info -t health -i <NPU id> for the alarm; avoid these cards with ASCEND_RT_VISIBLE_DEVICES, "
                       "and contact the machine's administrator"), details)
    problems, fixes = [], []
    if bad:
        problems.append(_("health {listing}").format(listing=", ".join(f"NPU {c.npu_id} {c.health}" for c in bad)))
        fixes.append(_("check npu-smi info -t health -i <NPU id>"))
    if busy:
        problems.append(_("memory in use {listing}").format(
            listing=", ".join(f"NPU {c.npu_id}: {c.memory_used_mb}/{c.memory_total_mb} MB" for c in busy)))
        fixes.append(_("another job holds these chips: stop it (see the process table of npu-smi info) "
                       "or choose free chips with ASCEND_RT_VISIBLE_DEVICES"))
    if problems:
        return Check("npu_smi", title, WARN, _("{found}; {problems}").format(found=found, problems="; ".join(problems)), "; ".join(fixes), details)
    return Check("npu_smi", title, OK, _("{found}, all healthy").format(found=found), details=details)


def check_visible_devices(f: Facts) -> Check:
    settings = f.settings()
    title = "ASCEND_RT_VISIBLE_DEVICES"
    raw = settings.ascend_rt_visible_devices if settings else f.env.get("ASCEND_RT_VISIBLE_DEVICES")
    try:
        ids = kit_device.parse_visible_devices(raw)
    except ValueError as exc:
        return Check("visible_devices", title, FAIL, str(exc),
                     _("export ASCEND_RT_VISIBLE_DEVICES=0,1 (card numbers separated by commas) or unset it"))
    n_present = len(f.npu_smi.chips) if f.npu_smi.chips else (f.torch_npu.device_count if raw is None else None)
    if not npu_expected(f):
        if raw is None:
            return not_present("visible_devices", title, _("unset, and no NPU to select"), f)
        return Check("visible_devices", title, WARN, _("ASCEND_RT_VISIBLE_DEVICES={value} is set but there is no NPU to select").format(value=raw),
                     _("unset ASCEND_RT_VISIBLE_DEVICES (or install the NPU stack if this machine should have one)"))
    if ids == []:
        return Check("visible_devices", title, FAIL, _("ASCEND_RT_VISIBLE_DEVICES is set but empty: no NPU is visible"),
                     _("export ASCEND_RT_VISIBLE_DEVICES=0 (or the cards you want), or unset it to see all"))
    visible = len(ids) if ids is not None else n_present
    if ids is not None and n_present:
        beyond = [i for i in ids if i >= n_present]
        if beyond:
            return Check("visible_devices", title, FAIL,
                         _("ASCEND_RT_VISIBLE_DEVICES={value} names device(s) {beyond}, but npu-smi shows {count} (0..{last})").format(
                             value=raw, beyond=beyond, count=n_present, last=n_present - 1),
                         f"export ASCEND_RT_VISIBLE_DEVICES={','.join(str(i) for i in range(min(len(ids), n_present)))}")
    want = f.nproc or 1
    if visible is not None and want > visible:
        return Check("visible_devices", title, FAIL,
                     _("{want} processes per node asked for, but only {visible} NPU(s) visible; more processes than cards hangs at start-up").format(want=want, visible=visible),
                     _("launch with --nproc_per_node {visible} or make more cards visible (ASCEND_RT_VISIBLE_DEVICES)").format(visible=visible),
                     {"visible": visible})
    if ids is not None:
        found = _("{value}: {count} NPU(s) visible, numbered 0..{last} in the process").format(value=raw, count=len(ids), last=len(ids) - 1)
    elif n_present is not None:
        found = _("unset: all {count} NPU(s) visible").format(count=n_present)
    else:
        found = _("unset: all (unknown number of) NPU(s) visible")
    return Check("visible_devices", title, OK, found, details={"ids": ids, "visible": visible})


def check_hccl(f: Facts) -> Check:
    title = _("HCCL (NPU collectives)")
    nproc, nnodes = f.nproc or 1, f.nnodes or 1
    keys = ("HCCL_CONNECT_TIMEOUT", "HCCL_SOCKET_IFNAME", "HCCL_EXEC_TIMEOUT")
    details = {k: f.env.get(k) for k in keys}
    if chosen_kind(f) != "npu" or (nproc <= 1 and nnodes <= 1):
        return Check("hccl", title, OK, _("not needed (one process, or not on an NPU)"), details=details)
    timeout = f.env.get("HCCL_CONNECT_TIMEOUT")
    if timeout is not None and not timeout.isdigit():
        return Check("hccl", title, FAIL, _("HCCL_CONNECT_TIMEOUT={value!r} is not a number of seconds").format(value=timeout),
                     "export HCCL_CONNECT_TIMEOUT=1200", details)
    if nnodes > 1:
        missing = [k for k in ("HCCL_SOCKET_IFNAME", "HCCL_CONNECT_TIMEOUT") if not f.env.get(k)]
        if missing:
            return Check("hccl", title, WARN,
                         _("{nnodes} nodes and {names} unset: HCCL may pick the wrong network or time out while nodes start").format(
                             nnodes=nnodes, names=", ".join(missing)),
                         _("export HCCL_SOCKET_IFNAME=eth0 (the interface carrying MASTER_ADDR; see ip -br addr) HCCL_CONNECT_TIMEOUT=1200"),
                         details)
    set_ = ", ".join(f"{k}={v}" for k, v in details.items() if v) or _("defaults")
    return Check("hccl", title, OK, _("{nproc} process(es) x {nnodes} node(s); HCCL {settings}").format(nproc=nproc, nnodes=nnodes, settings=set_),
                 details=details)
