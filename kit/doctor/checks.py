"""The doctor's checks: each turns the facts into one ``Check`` (ok / warn / fail, and for every warn
or fail the command to run or the variable to set); ``run_checks`` asks them all, in report order.

The Ascend stack's checks are in ``npu_checks``. Where a check depends on the documented environment
variables it reads them through ``kit.envvars``, with the launcher's own rules, so ``kit doctor`` and
``kit train`` never disagree.
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
from kit.envvars import master_addr, rendezvous_problems
from kit.fmt import gib

DISK_FAIL_BYTES = 1 << 30  # below 1 GiB even the adapter and logs may not fit
DISK_WARN_BYTES = 20 << 30  # a 7B model download alone is ~15 GB
MEMORY_FAIL_BYTES = 1 << 30
MEMORY_WARN_BYTES = 16 << 30  # loading a 7B model in bf16 goes through ~15 GB of host memory


def check_python(f: Facts) -> Check:
    found = f"Python {f.python_version} on {f.os_name} {f.arch}"
    details = {"python": f.python_version, "os": f.os_name, "arch": f.arch}
    if not at_least(f.python_version, MINIMUM_PYTHON):
        return Check("python", "Python and OS", FAIL, found + f"; the kit needs Python >= {'.'.join(map(str, MINIMUM_PYTHON))}",
                     "create an environment with a newer Python, e.g. conda create -n kit python=3.11", details)
    if npu_expected(f) and (f.os_name != "Linux" or f.arch not in ("aarch64", "x86_64")):
        return Check("python", "Python and OS", WARN, found + "; the Ascend stack (CANN, torch_npu) supports Linux on aarch64 or x86_64 only",
                     "use a Linux aarch64/x86_64 machine or container for the NPU", details)
    return Check("python", "Python and OS", OK, found, details=details)


def check_environment(f: Facts) -> Check:
    if f.env_error:
        return Check("environment", "Kit environment variables", FAIL, f.env_error,
                     "unset the variable or set it to a whole number (e.g. unset NNODES)")
    return Check("environment", "Kit environment variables", OK, "the documented variables parse (see kit/envvars.py)")


def check_torch(f: Facts) -> Check:
    t = f.torch
    if t.error:
        fix = "pip install torch==2.13.0 (CPU) or the torch that matches your torch_npu / CUDA"
        if "torch_npu" in t.error or "backend extension" in t.error:
            fix = (f"{set_env_cmd(f)} (torch_npu loads with torch and needs CANN), or export TORCH_DEVICE_BACKEND_AUTOLOAD=0 "
                   "to run without the NPU, or pip uninstall torch-npu on a machine without CANN")
        return Check("torch", "PyTorch", FAIL, f"import torch failed: {t.error}", fix, {"version": t.version})
    build = "npu (torch_npu)" if f.torch_npu.imported else f"cuda {t.cuda_build}" if t.cuda_build else f"rocm {t.hip_build}" if t.hip_build else "cpu"
    details = {"version": t.version, "build": build}
    if not at_least(t.version, MINIMUM_TORCH):
        return Check("torch", "PyTorch", FAIL, f"torch {t.version} is older than {MINIMUM_TORCH}",
                     "pip install --upgrade torch (on an NPU: the version your torch_npu requires)", details)
    return Check("torch", "PyTorch", OK, f"torch {t.version}, {build} build", details=details)


def check_cuda(f: Facts) -> Check:
    t, title = f.torch, "CUDA"
    if t.cuda_available:
        names = ", ".join(d["name"] for d in t.cuda_devices)
        return Check("cuda", title, OK, f"{len(t.cuda_devices)} CUDA device(s): {names} (CUDA {t.cuda_build})", details={"devices": t.cuda_devices})
    if f.requested_device == "cuda":
        return Check("cuda", title, FAIL, f"--device cuda asked for, but torch {t.version} sees no CUDA device" + (f" ({t.cuda_error})" if t.cuda_error else ""),
                     "check nvidia-smi and CUDA_VISIBLE_DEVICES; a +cpu torch has no CUDA: pip install the CUDA build of torch")
    if t.cuda_build and not npu_expected(f):
        return Check("cuda", title, WARN, f"torch is a CUDA {t.cuda_build} build but no CUDA device is usable" + (f" ({t.cuda_error})" if t.cuda_error else ""),
                     "check nvidia-smi and CUDA_VISIBLE_DEVICES; on a machine without a GPU, pip install torch==2.13.0 from the CPU index saves several GB")
    return Check("cuda", title, OK, "no CUDA device (not needed)", details={"present": False})


def check_packages(f: Facts) -> list[Check]:
    out = []
    for name, minimum in MINIMUM_VERSIONS.items():
        have = f.packages.get(name)
        if have is None:
            if name in OPTIONAL_PACKAGES:
                out.append(Check(name, name, WARN, f"not installed; {OPTIONAL_PACKAGES[name]}", f"pip install '{name}>={minimum}'"))
            else:
                out.append(Check(name, name, FAIL, "not installed", f"pip install '{name}>={minimum}'"))
        elif not at_least(have, minimum):
            out.append(Check(name, name, FAIL, f"{name} {have} is older than the kit's minimum {minimum}",
                             f"pip install --upgrade '{name}>={minimum}'", {"version": have}))
        else:
            out.append(Check(name, name, OK, f"{name} {have} (>= {minimum})", details={"version": have}))
    return out


def check_deepspeed_accelerator(f: Facts) -> Check:
    title = "DeepSpeed accelerator"
    if f.deepspeed is None:
        return Check("ds_accelerator", title, OK, "DeepSpeed is not installed; nothing to check", details={"present": False})
    if f.deepspeed.error:
        return Check("ds_accelerator", title, WARN, f.deepspeed.error,
                     "python -c 'from deepspeed.accelerator import get_accelerator; print(get_accelerator())' shows the full error; "
                     "pip install --upgrade deepspeed")
    kind = chosen_kind(f)
    found = f"DeepSpeed uses {f.deepspeed.accelerator} (communication backend {f.deepspeed.backend})"
    details = {"accelerator": f.deepspeed.accelerator, "backend": f.deepspeed.backend, "device": kind}
    if f.deepspeed.accelerator != kind:
        return Check("ds_accelerator", title, WARN, f"{found}, but the kit will train on {kind}",
                     f"export DS_ACCELERATOR={kind}" + (" (and make sure torch_npu imports)" if kind == "npu" else ""), details)
    return Check("ds_accelerator", title, OK, found, details=details)


def check_compiler(f: Facts) -> Check:
    title = "C++ compiler (DeepSpeed ops)"
    if f.compiler:
        return Check("compiler", title, OK, f"{f.compiler}", details={"path": f.compiler})
    if f.deepspeed is None:
        return Check("compiler", title, OK, "no c++/g++ found; not needed without DeepSpeed", details={"path": None})
    return Check("compiler", title, WARN, "no c++ or g++ on PATH: DeepSpeed compiles some ops (e.g. CPU Adam) at first start and fails without one",
                 "apt-get install -y g++ (Debian/Ubuntu) or yum install -y gcc-c++; set TORCH_EXTENSIONS_DIR to a lasting cache")


def _writable(path: Path) -> bool:
    """Can ``path`` be created or written? (Its nearest existing ancestor must be a writable folder.)"""
    p = nearest_existing(path)
    return p.is_dir() and os.access(p, os.W_OK)


def check_hub(f: Facts) -> Check:
    title = "Model hub and caches"
    settings = f.settings()
    ms = settings.use_modelscope_hub if settings else False
    home = Path(f.env.get("HOME", "~"))
    hf_home = Path(f.env.get("HF_HOME") or home / ".cache" / "huggingface")
    ms_cache = Path(f.env.get("MODELSCOPE_CACHE") or home / ".cache" / "modelscope")
    hub = "ModelScope (USE_MODELSCOPE_HUB=1)" if ms else "Hugging Face"
    offline = " offline (HF_HUB_OFFLINE=1)" if settings and settings.hf_hub_offline else ""
    cache = ms_cache if ms else hf_home
    details = {"hub": "modelscope" if ms else "huggingface", "HF_HOME": str(hf_home), "MODELSCOPE_CACHE": str(ms_cache)}
    found = f"model ids resolve through {hub}{offline}; cache {cache}"
    if ms and not f.packages.get("modelscope"):
        return Check("hub", title, FAIL, "USE_MODELSCOPE_HUB=1 but modelscope is not installed",
                     f"pip install 'modelscope>={MINIMUM_VERSIONS['modelscope']}', or unset USE_MODELSCOPE_HUB to use Hugging Face", details)
    if not _writable(cache):
        var = "MODELSCOPE_CACHE" if ms else "HF_HOME"
        return Check("hub", title, WARN, f"{found}, which is not writable: downloads will fail",
                     f"export {var}=/a/writable/folder (with room for the model)", details)
    if not ms and not f.env.get("HF_ENDPOINT"):
        found += "; in mainland China set USE_MODELSCOPE_HUB=1 or HF_ENDPOINT for faster downloads"
    return Check("hub", title, OK, found, details=details)


def check_disk(f: Facts) -> Check:
    title = "Free disk (output_dir)"
    d = f.disk
    if d is None:
        return Check("disk", title, OK, "not checked")
    if d.error or d.free_bytes is None:
        return Check("disk", title, WARN, f"cannot measure free space for {d.path}: {d.error}", "check the path of output_dir (df -h)")
    found = f"{gib(d.free_bytes)} free at {d.checked_path} (for output_dir {d.path})"
    details = {"free_bytes": d.free_bytes, "path": d.checked_path}
    if d.free_bytes < DISK_FAIL_BYTES:
        return Check("disk", title, FAIL, found, "free some space or choose another output_dir (df -h shows the file systems)", details)
    if d.free_bytes < DISK_WARN_BYTES:
        return Check("disk", title, WARN, found + "; a 7B model download needs ~15 GB and checkpoints more",
                     "free space or point output_dir and HF_HOME / MODELSCOPE_CACHE at a larger disk", details)
    return Check("disk", title, OK, found, details=details)


def check_memory(f: Facts) -> Check:
    title, m = "Free memory (host RAM)", f.memory
    if m.error or m.available_bytes is None:
        return Check("memory", title, WARN, m.error or "unknown", "pip install psutil so the doctor can read memory")
    found = f"{gib(m.available_bytes)} available of {gib(m.total_bytes)}"
    details = {"available_bytes": m.available_bytes, "total_bytes": m.total_bytes}
    if m.available_bytes < MEMORY_FAIL_BYTES:
        return Check("memory", title, FAIL, found, "close other programs; even the tiny demo needs about 1 GiB", details)
    if m.available_bytes < MEMORY_WARN_BYTES:
        return Check("memory", title, WARN, found + "; loading a 7B model passes ~15 GB through host memory (the tiny demo is fine)",
                     "use a machine with more RAM for 7B models, or a smaller model (kit estimate shows what fits)", details)
    return Check("memory", title, OK, found, details=details)


def check_distributed(f: Facts) -> Check:
    """torchrun's variables for several processes or nodes, by the launcher's own rules (``rendezvous_problems``)."""
    title = "torchrun / multi-node"
    settings = f.settings()
    if settings is None:  # kit train would refuse too; the environment check names the variable
        return Check("distributed", title, FAIL, f"not checked: {f.env_error or 'a documented variable does not parse'}",
                     "fix the environment check first (kit train refuses to start until then)")
    # --nproc / --nnodes given to the doctor stand for what the person will launch with.
    settings = replace(settings, nnodes=settings.nnodes if f.nnodes is None else f.nnodes,
                       nproc_per_node=settings.nproc_per_node if f.nproc is None else f.nproc)
    nproc, nnodes = settings.nproc_per_node or 1, settings.nnodes
    details = {"nproc_per_node": nproc, "nnodes": nnodes, "MASTER_ADDR": settings.master_addr,
               "MASTER_PORT": settings.master_port or None, "NODE_RANK": settings.node_rank}
    problems = rendezvous_problems(settings)
    if problems:
        fix = (f"on every node: export NNODES={nnodes} NODE_RANK=<0..{nnodes - 1}> MASTER_ADDR=<node 0 IP> MASTER_PORT=29500"
               if nnodes > 1 else "correct or unset the variables named (kit train refuses to launch with them)")
        return Check("distributed", title, FAIL, "; ".join(problems), fix, details)
    if nnodes <= 1:
        if nproc <= 1:
            return Check("distributed", title, OK, "one process on one node: no torchrun variables needed", details=details)
        return Check("distributed", title, OK, f"{nproc} processes on one node: torchrun picks the address and port", details=details)
    return Check("distributed", title, OK,
                 f"{nnodes} nodes x {nproc} processes; this is node {settings.node_rank}, master {master_addr(settings)}:{settings.master_port}",
                 details=details)


def check_smoke(f: Facts) -> Check:
    title = "Smoke test (matmul)"
    s = f.smoke
    if s is None:
        reason = "torch does not import" if f.torch.error else "skipped"
        return Check("smoke", title, OK if not f.torch.error else FAIL, f"not run: {reason}",
                     None if not f.torch.error else "fix the torch check first")
    if not s.ok:
        fix = ("fix the npu / torch_npu checks first; then try python -c \"import torch, torch_npu; print((torch.ones(2,2).npu() @ torch.ones(2,2).npu()).cpu())\""
               if "npu" in s.device or f.requested_device == "npu" else "fix the device checks above (or run with --device cpu)")
        return Check("smoke", title, FAIL, f"64x48 @ 48x32 matmul on {s.device} failed: {s.error}", fix, {"device": s.device})
    return Check("smoke", title, OK, f"64x48 @ 48x32 matmul on {s.device} matches the CPU result (max error {s.max_abs_error:g})",
                 details={"device": s.device, "seconds": s.seconds})


CHECKS: list[Callable[[Facts], Check | list[Check]]] = [
    check_python, check_environment, check_torch, check_npu, check_torch_npu, check_cann, check_cann_env, check_driver,
    check_npu_smi, check_visible_devices, check_cuda, check_packages, check_deepspeed_accelerator, check_compiler,
    check_hub, check_disk, check_memory, check_distributed, check_hccl, check_smoke,
]


def run_checks(facts: Facts) -> DoctorReport:
    checks: list[Check] = []
    for fn in CHECKS:
        try:
            result = fn(facts)
        except Exception as exc:  # a bug in one check must not hide the other answers
            name = fn.__name__.removeprefix("check_")
            result = Check(name, name, FAIL, f"the doctor's own check crashed: {type(exc).__name__}: {exc}",
                           "this is a bug in kit: please report it with the traceback in details",
                           {"traceback": traceback.format_exc()})
        checks += result if isinstance(result, list) else [result]
    return DoctorReport(checks)
