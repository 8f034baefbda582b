"""The doctor's checks: each turns the facts into one ``Check`` (ok / warn / fail, and for every warn
or fail the command to run or the variable to set); ``run_checks`` asks them all, in report order.

The Ascend stack's checks are in ``npu_checks``. Where a check depends on the documented environment
variables it reads them through ``kit.envvars``, with the launcher's own rules, so ``kit doctor`` and
``kit train`` never disagree.

Every title, found text and fix a person reads goes through ``kit.i18n._`` when the check runs, so the
report comes out in the language chosen (``kit doctor --lang zh``, ``doctor(lang="zh")``, the locale).
Names (packages, commands, variables, paths) stay as they are in both languages.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Callable

from kit.doctor.facts import MINIMUM_PYTHON, MINIMUM_TORCH, MINIMUM_VERSIONS, OPTIONAL_PACKAGES, Facts
from kit.doctor.npu_checks import (check_cann, check_cann_env, check_driver, check_hccl, check_npu, check_npu_smi,
                                   check_torch_npu, check_visible_devices, chosen_kind, npu_expected, set_env_cmd)
from kit.doctor.probes import at_least, nearest_existing
from kit.doctor.report import FAIL, OK, WARN, Check, DoctorReport
from kit.doctor.stack_checks import (check_bf16, check_card_processes, check_decorator, check_kernels, check_npu_visible_name,
                                     check_stack_pairing)
from kit.envvars import master_addr, rendezvous_problems
from kit.fmt import gib
from kit.i18n import _

DISK_FAIL_BYTES = 1 << 30  # below 1 GiB even the adapter and logs may not fit
DISK_WARN_BYTES = 20 << 30  # a 7B model download alone is ~15 GB
MEMORY_FAIL_BYTES = 1 << 30
MEMORY_WARN_BYTES = 16 << 30  # loading a 7B model in bf16 goes through ~15 GB of host memory


def check_python(f: Facts) -> Check:
    title = _("Python and OS")
    found = _("Python {version} on {os} {arch}").format(version=f.python_version, os=f.os_name, arch=f.arch)
    details = {"python": f.python_version, "os": f.os_name, "arch": f.arch}
    if not at_least(f.python_version, MINIMUM_PYTHON):
        return Check("python", title, FAIL,
                     _("{found}; the kit needs Python >= {minimum}").format(found=found, minimum=".".join(map(str, MINIMUM_PYTHON))),
                     _("create an environment with a newer Python, e.g. conda create -n kit python=3.11"), details)
    if npu_expected(f) and (f.os_name != "Linux" or f.arch not in ("aarch64", "x86_64")):
        return Check("python", title, WARN,
                     _("{found}; the Ascend stack (CANN, torch_npu) supports Linux on aarch64 or x86_64 only").format(found=found),
                     _("use a Linux aarch64/x86_64 machine or container for the NPU"), details)
    return Check("python", title, OK, found, details=details)


def check_environment(f: Facts) -> Check:
    title = _("Kit environment variables")
    if f.env_error:
        return Check("environment", title, FAIL, f.env_error,
                     _("unset {name} or set it to a whole number").format(name=f.env_variable) if f.env_variable
                     else _("unset the variable or set it to a whole number"))
    return Check("environment", title, OK, _("the documented variables parse (see kit/envvars.py)"))


def check_torch(f: Facts) -> Check:
    t = f.torch
    if t.error:
        fix = _("pip install torch==2.13.0 (CPU) or the torch that matches your torch_npu / CUDA")
        if "torch_npu" in t.error or "backend extension" in t.error:
            fix = _("{set_env} (torch_npu loads with torch and needs CANN), or export TORCH_DEVICE_BACKEND_AUTOLOAD=0 "
                    "to run without the NPU, or pip uninstall torch-npu on a machine without CANN").format(set_env=set_env_cmd(f))
        return Check("torch", "PyTorch", FAIL, _("import torch failed: {error}").format(error=t.error), fix, {"version": t.version})
    build = "npu (torch_npu)" if f.torch_npu.imported else f"cuda {t.cuda_build}" if t.cuda_build else f"rocm {t.hip_build}" if t.hip_build else "cpu"
    details = {"version": t.version, "build": build}
    if not at_least(t.version, MINIMUM_TORCH):
        return Check("torch", "PyTorch", FAIL, _("torch {version} is older than {minimum}").format(version=t.version, minimum=MINIMUM_TORCH),
                     _("pip install --upgrade torch (on an NPU: the version your torch_npu requires)"), details)
    return Check("torch", "PyTorch", OK, _("torch {version}, {build} build").format(version=t.version, build=build), details=details)


def check_cuda(f: Facts) -> Check:
    t, title = f.torch, "CUDA"
    error = f" ({t.cuda_error})" if t.cuda_error else ""
    if t.cuda_available:
        names = ", ".join(d["name"] for d in t.cuda_devices)
        return Check("cuda", title, OK, _("{count} CUDA device(s): {names} (CUDA {build})").format(
            count=len(t.cuda_devices), names=names, build=t.cuda_build), details={"devices": t.cuda_devices})
    if f.requested_device == "cuda":
        return Check("cuda", title, FAIL, _("--device cuda asked for, but torch {version} sees no CUDA device").format(version=t.version) + error,
                     _("check nvidia-smi and CUDA_VISIBLE_DEVICES; a +cpu torch has no CUDA: pip install the CUDA build of torch"))
    if t.cuda_build and not npu_expected(f):
        return Check("cuda", title, WARN, _("torch is a CUDA {build} build but no CUDA device is usable").format(build=t.cuda_build) + error,
                     _("check nvidia-smi and CUDA_VISIBLE_DEVICES; on a machine without a GPU, pip install torch==2.13.0 from the CPU index saves several GB"))
    return Check("cuda", title, OK, _("no CUDA device (not needed)"), details={"present": False})


def check_packages(f: Facts) -> list[Check]:
    out = []
    for name, minimum in MINIMUM_VERSIONS.items():
        have = f.packages.get(name)
        if have is None:
            if name in OPTIONAL_PACKAGES:
                out.append(Check(name, name, WARN, _("not installed; {why}").format(why=_(OPTIONAL_PACKAGES[name])),
                                 f"pip install '{name}>={minimum}'"))
            else:
                out.append(Check(name, name, FAIL, _("not installed"), f"pip install '{name}>={minimum}'"))
        elif not at_least(have, minimum):
            out.append(Check(name, name, FAIL, _("{name} {version} is older than the kit's minimum {minimum}").format(
                name=name, version=have, minimum=minimum), f"pip install --upgrade '{name}>={minimum}'", {"version": have}))
        else:
            out.append(Check(name, name, OK, f"{name} {have} (>= {minimum})", details={"version": have}))
    return out


def check_deepspeed_accelerator(f: Facts) -> Check:
    title = _("DeepSpeed accelerator")
    if f.deepspeed is None:
        return Check("ds_accelerator", title, OK, _("DeepSpeed is not installed; nothing to check"), details={"present": False})
    if f.deepspeed.error:
        probe = "python -c 'from deepspeed.accelerator import get_accelerator; print(get_accelerator())'"
        return Check("ds_accelerator", title, WARN, f.deepspeed.error,
                     _("{command} shows the full error; pip install --upgrade deepspeed").format(command=probe))
    kind = chosen_kind(f)
    found = _("DeepSpeed uses {accelerator} (communication backend {backend})").format(
        accelerator=f.deepspeed.accelerator, backend=f.deepspeed.backend)
    details = {"accelerator": f.deepspeed.accelerator, "backend": f.deepspeed.backend, "device": kind}
    if f.deepspeed.accelerator != kind:
        fix = (_("export DS_ACCELERATOR={kind} (and make sure torch_npu imports)") if kind == "npu" else "export DS_ACCELERATOR={kind}")
        return Check("ds_accelerator", title, WARN, _("{found}, but the kit will train on {kind}").format(found=found, kind=kind),
                     fix.format(kind=kind), details)
    return Check("ds_accelerator", title, OK, found, details=details)


def check_compiler(f: Facts) -> Check:
    title = _("C++ compiler (DeepSpeed ops)")
    if f.compiler:
        return Check("compiler", title, OK, f"{f.compiler}", details={"path": f.compiler})
    if f.deepspeed is None:
        return Check("compiler", title, OK, _("no c++/g++ found; not needed without DeepSpeed"), details={"path": None})
    return Check("compiler", title, WARN,
                 _("no c++ or g++ on PATH: DeepSpeed compiles some ops (e.g. CPU Adam) at first start and fails without one"),
                 _("apt-get install -y g++ (Debian/Ubuntu) or yum install -y gcc-c++; set TORCH_EXTENSIONS_DIR to a lasting cache"))


def _writable(path: Path) -> bool:
    """Can ``path`` be created or written? (Its nearest existing ancestor must be a writable folder.)"""
    p = nearest_existing(path)
    return p.is_dir() and os.access(p, os.W_OK)


def check_hub(f: Facts) -> Check:
    title = _("Model hub and caches")
    settings = f.settings()
    ms = settings.use_modelscope_hub if settings else False
    home = Path(f.env.get("HOME", "~"))
    hf_home = Path(f.env.get("HF_HOME") or home / ".cache" / "huggingface")
    ms_cache = Path(f.env.get("MODELSCOPE_CACHE") or home / ".cache" / "modelscope")
    hub = "ModelScope (USE_MODELSCOPE_HUB=1)" if ms else "Hugging Face"
    cache = ms_cache if ms else hf_home
    details = {"hub": "modelscope" if ms else "huggingface", "HF_HOME": str(hf_home), "MODELSCOPE_CACHE": str(ms_cache)}
    found = (_("model ids resolve through {hub} offline (HF_HUB_OFFLINE=1); cache {cache}") if settings and settings.hf_hub_offline
             else _("model ids resolve through {hub}; cache {cache}")).format(hub=hub, cache=cache)
    if ms and not f.packages.get("modelscope"):
        return Check("hub", title, FAIL, _("USE_MODELSCOPE_HUB=1 but modelscope is not installed"),
                     _("pip install 'modelscope>={minimum}', or unset USE_MODELSCOPE_HUB to use Hugging Face").format(
                         minimum=MINIMUM_VERSIONS["modelscope"]), details)
    if not _writable(cache):
        var = "MODELSCOPE_CACHE" if ms else "HF_HOME"
        return Check("hub", title, WARN, _("{found}, which is not writable: downloads will fail").format(found=found),
                     _("export {var}=/a/writable/folder (with room for the model)").format(var=var), details)
    if not ms and not f.env.get("HF_ENDPOINT"):
        found = _("{found}; in mainland China set USE_MODELSCOPE_HUB=1 or HF_ENDPOINT for faster downloads").format(found=found)
    return Check("hub", title, OK, found, details=details)


def check_disk(f: Facts) -> Check:
    title = _("Free disk (output_dir)")
    d = f.disk
    if d is None:
        return Check("disk", title, OK, _("not checked"))
    if d.error or d.free_bytes is None:
        return Check("disk", title, WARN, _("cannot measure free space for {path}: {error}").format(path=d.path, error=d.error),
                     _("check the path of output_dir (df -h)"))
    found = _("{free} free at {path} (for output_dir {output_dir})").format(free=gib(d.free_bytes), path=d.checked_path, output_dir=d.path)
    details = {"free_bytes": d.free_bytes, "path": d.checked_path}
    if d.free_bytes < DISK_FAIL_BYTES:
        return Check("disk", title, FAIL, found, _("free some space or choose another output_dir (df -h shows the file systems)"), details)
    if d.free_bytes < DISK_WARN_BYTES:
        return Check("disk", title, WARN, _("{found}; a 7B model download needs ~15 GB and checkpoints more").format(found=found),
                     _("free space or point output_dir and HF_HOME / MODELSCOPE_CACHE at a larger disk"), details)
    return Check("disk", title, OK, found, details=details)


def check_memory(f: Facts) -> Check:
    title, m = _("Free memory (host RAM)"), f.memory
    if m.error or m.available_bytes is None:
        return Check("memory", title, WARN, m.error or _("unknown"), _("pip install psutil so the doctor can read memory"))
    found = _("{available} available of {total}").format(available=gib(m.available_bytes), total=gib(m.total_bytes))
    details = {"available_bytes": m.available_bytes, "total_bytes": m.total_bytes}
    if m.available_bytes < MEMORY_FAIL_BYTES:
        return Check("memory", title, FAIL, found, _("close other programs; even the tiny demo needs about 1 GiB"), details)
    if m.available_bytes < MEMORY_WARN_BYTES:
        return Check("memory", title, WARN,
                     _("{found}; loading a 7B model passes ~15 GB through host memory (the tiny demo is fine)").format(found=found),
                     _("use a machine with more RAM for 7B models, or a smaller model (kit estimate shows what fits)"), details)
    return Check("memory", title, OK, found, details=details)


def check_distributed(f: Facts) -> Check:
    """torchrun's variables for several processes or nodes, by the launcher's own rules (``rendezvous_problems``)."""
    title = _("torchrun / multi-node")
    settings = f.settings()
    if settings is None:  # kit train would refuse too; the environment check names the variable
        return Check("distributed", title, FAIL,
                     _("not checked: {reason}").format(reason=f.env_error or _("a documented variable does not parse")),
                     _("fix the environment check first (kit train refuses to start until then)"))
    # --nproc / --nnodes given to the doctor stand for what the person will launch with.
    settings = replace(settings, nnodes=settings.nnodes if f.nnodes is None else f.nnodes,
                       nproc_per_node=settings.nproc_per_node if f.nproc is None else f.nproc)
    nproc, nnodes = settings.nproc_per_node or 1, settings.nnodes
    details = {"nproc_per_node": nproc, "nnodes": nnodes, "MASTER_ADDR": settings.master_addr,
               "MASTER_PORT": settings.master_port or None, "NODE_RANK": settings.node_rank}
    problems = rendezvous_problems(settings)
    if problems:
        fix = (_("on every node: export NNODES={nnodes} NODE_RANK=<0..{last}> MASTER_ADDR=<node 0 IP> MASTER_PORT=29500").format(
                   nnodes=nnodes, last=nnodes - 1)
               if nnodes > 1 else _("correct or unset the variables named (kit train refuses to launch with them)"))
        return Check("distributed", title, FAIL, "; ".join(problems), fix, details)
    if nnodes <= 1:
        if nproc <= 1:
            return Check("distributed", title, OK, _("one process on one node: no torchrun variables needed"), details=details)
        return Check("distributed", title, OK, _("{nproc} processes on one node: torchrun picks the address and port").format(nproc=nproc),
                     details=details)
    return Check("distributed", title, OK,
                 _("{nnodes} nodes x {nproc} processes; this is node {rank}, master {address}:{port}").format(
                     nnodes=nnodes, nproc=nproc, rank=settings.node_rank, address=master_addr(settings), port=settings.master_port),
                 details=details)


def check_smoke(f: Facts) -> Check:
    title = _("Smoke test (matmul)")
    s = f.smoke
    if s is None:
        reason = _("torch does not import") if f.torch.error else _("skipped")
        return Check("smoke", title, OK if not f.torch.error else FAIL, _("not run: {reason}").format(reason=reason),
                     None if not f.torch.error else _("fix the torch check first"))
    if not s.ok:
        command = "python -c \"import torch, torch_npu; print((torch.ones(2,2).npu() @ torch.ones(2,2).npu()).cpu())\""
        fix = (_("fix the npu / torch_npu checks first; then try {command}").format(command=command)
               if "npu" in s.device or f.requested_device == "npu" else _("fix the device checks above (or run with --device cpu)"))
        return Check("smoke", title, FAIL, _("64x48 @ 48x32 matmul on {device} failed: {error}").format(device=s.device, error=s.error),
                     fix, {"device": s.device})
    return Check("smoke", title, OK,
                 _("64x48 @ 48x32 matmul on {device} matches the CPU result (max error {error:g})").format(device=s.device, error=s.max_abs_error),
                 details={"device": s.device, "seconds": s.seconds})


CHECKS: list[Callable[[Facts], Check | list[Check]]] = [
    check_python, check_environment, check_torch, check_npu, check_torch_npu, check_cann, check_cann_env, check_driver,
    check_stack_pairing, check_kernels, check_decorator, check_bf16, check_npu_smi, check_card_processes, check_visible_devices,
    check_npu_visible_name, check_cuda, check_packages, check_deepspeed_accelerator, check_compiler,
    check_hub, check_disk, check_memory, check_distributed, check_hccl, check_smoke,
]


def run_checks(facts: Facts) -> DoctorReport:
    checks: list[Check] = []
    for fn in CHECKS:
        try:
            result = fn(facts)
        except Exception as exc:  # a bug in one check must not hide the other answers
            name = fn.__name__.removeprefix("check_")
            result = Check(name, name, FAIL,
                           _("the doctor's own check crashed: {type}: {error}").format(type=type(exc).__name__, error=exc),
                           _("this is a bug in kit: please report it with the traceback in details"),
                           {"traceback": traceback.format_exc()})
        checks += result if isinstance(result, list) else [result]
    return DoctorReport(checks)
