"""Which device the kit runs on: Ascend NPU, CUDA or CPU.

This is the only module that imports ``torch_npu``. The import is guarded: without torch_npu, or
with a torch_npu that cannot load (no CANN, a torch version it was not built for), the kit runs on
CUDA or CPU and ``DeviceInfo.npu_unavailable`` says why the NPU is not in use.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.envvars import EnvSettings
from kit.errors import KitError
from kit.i18n import _


class DeviceError(KitError, ValueError):
    """The device asked for is not there (device: npu on a machine without one, a malformed visible-devices list)."""

KINDS = ("npu", "cuda", "cpu")
BACKENDS = {"npu": "hccl", "cuda": "nccl", "cpu": "gloo"}

_torch_npu_state: dict[str, Any] = {}


def import_torch_npu() -> tuple[Any | None, str | None]:
    """Import torch_npu once; return (module, None) or (None, reason it is unusable).

    The outcome is kept, the reason is worded at each call: in the language chosen by then.
    """
    if "result" not in _torch_npu_state:
        if importlib.util.find_spec("torch_npu") is None:
            outcome: tuple[Any | None, Exception | None] = (None, None)
        else:
            try:
                outcome = (importlib.import_module("torch_npu"), None)
            except Exception as exc:  # torch_npu raises many kinds of errors without CANN
                outcome = (None, exc)
        _torch_npu_state["result"] = outcome
    module, exc = _torch_npu_state["result"]
    if module is not None:
        return module, None
    if exc is None:
        return None, _("torch_npu is not installed (pip install torch-npu, matching your torch version)")
    return None, _("torch_npu is installed but failed to import: {error}. Source the CANN environment "
                   "(source /usr/local/Ascend/ascend-toolkit/set_env.sh) and check that torch and torch_npu "
                   "versions match").format(error=f"{type(exc).__name__}: {exc}")


def parse_visible_devices(value: str | None) -> list[int] | None:
    """Parse ASCEND_RT_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES ("0,1,3") into physical ids.

    The runtime renumbers the listed devices 0..n-1 in the order given, so the process sees
    ``len(result)`` devices. ``None`` means the variable is unset (every device is visible).
    """
    if value is None:
        return None
    value = value.strip()
    if value == "":
        return []
    ids: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit():
            raise DeviceError(_("visible devices list {value!r} has {part!r}, which is not a device number; "
                                "write it as e.g. ASCEND_RT_VISIBLE_DEVICES=0,1").format(value=value, part=part))
        if int(part) in ids:
            raise DeviceError(_("visible devices list {value!r} names device {part} twice").format(value=value, part=part))
        ids.append(int(part))
    return ids


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "npu" | "cuda" | "cpu"
    count: int  # devices visible to this process (1 for the CPU)
    backend: str  # torch.distributed backend: hccl / nccl / gloo
    bf16: bool
    fp16: bool
    name: str
    npu_unavailable: str | None  # why the NPU is not used, when it is not
    visible: list[int] | None  # physical ids from *_VISIBLE_DEVICES, None when unset

    @property
    def is_accelerator(self) -> bool:
        return self.kind in ("npu", "cuda")

    def torch_device(self, local_rank: int = 0):
        import torch

        if self.kind == "cpu":
            return torch.device("cpu")
        return torch.device(self.kind, local_rank % max(self.count, 1))

    def summary(self) -> str:
        yes, no = _("yes"), _("no")
        text = _("{kind} x{count} ({name}), backend {backend}, bf16={bf16}, fp16={fp16}").format(
            kind=self.kind, count=self.count, name=self.name, backend=self.backend, bf16=yes if self.bf16 else no,
            fp16=yes if self.fp16 else no)
        if self.kind != "npu" and self.npu_unavailable:
            text += _("; NPU not used: {reason}").format(reason=self.npu_unavailable)
        return text


def _npu_info(torch_npu: Any, env: EnvSettings, query: bool) -> DeviceInfo | None:
    import torch

    try:
        if not torch.npu.is_available():
            return None
        count = torch.npu.device_count()
        # Asking a card its name or bf16 support opens a context on it (memory held on card 0 by a
        # launcher whose ranks need that card); a launcher only needs the kind and the count.
        name = torch.npu.get_device_name(0) if count and query else "npu"
        bf16 = bool(getattr(torch.npu, "is_bf16_supported", lambda: True)()) if query else True
    except Exception:  # torch_npu without a working driver raises several kinds; treat as no NPU
        return None
    visible = parse_visible_devices(env.ascend_rt_visible_devices)
    return DeviceInfo("npu", count, "hccl", bf16, True, name, None, visible)


def detect(prefer: str | None = None, env: EnvSettings | None = None, query: bool = True) -> DeviceInfo:
    """Pick the device: NPU, then CUDA, then CPU; ``prefer`` forces one and fails if it is absent.

    ``query=False`` finds kind and count without opening a context on any card (name and bf16 are
    then not asked): what a launching parent uses, so the card stays free for its ranks.
    """
    import torch

    env = env or EnvSettings.from_environ()
    if prefer not in (None, "auto", *KINDS):
        raise DeviceError(_("device: {device!r} is not one of auto, npu, cuda, cpu").format(device=prefer))
    npu_reason: str | None = None

    if prefer in (None, "auto", "npu"):
        torch_npu, npu_reason = import_torch_npu()
        if torch_npu is not None:
            info = _npu_info(torch_npu, env, query)
            if info is not None:
                return info
            npu_reason = _("torch_npu imported but torch.npu.is_available() is False: check the driver (npu-smi info) "
                           "and ASCEND_RT_VISIBLE_DEVICES")
        if prefer == "npu":
            raise DeviceError(_("device: npu was asked for but cannot be used: {reason}. "
                                "Set device: auto (or leave it out) to use what this machine has").format(reason=npu_reason))

    if prefer in (None, "auto", "cuda"):
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            return DeviceInfo(
                "cuda", count, "nccl", torch.cuda.is_bf16_supported() if query else True, True,
                torch.cuda.get_device_name(0) if query else "cuda", npu_reason, parse_visible_devices(env.cuda_visible_devices),
            )
        if prefer == "cuda":
            raise DeviceError(_("device: cuda was asked for but torch.cuda.is_available() is False (torch {version}; "
                                "a +cpu build has no CUDA). Set device: auto (or leave it out) to use what this machine has").format(
                version=torch.__version__))

    # bf16 autocast works on CPU (Trainer needs use_cpu=True); fp16 mixed precision needs an accelerator.
    return DeviceInfo("cpu", 1, "gloo", True, False, "cpu", npu_reason or _("no NPU found"), None)


def setup(info: DeviceInfo, env: EnvSettings, local_rank: int = 0) -> None:
    """Per-process device set-up before any model is built."""
    import torch

    if info.kind == "npu":
        torch_npu, _reason = import_torch_npu()
        # The Ascend docs' stack runs with JIT compilation off (binary kernels): much faster start-up.
        torch_npu.npu.set_compile_mode(jit_compile=env.npu_jit_compile)
        torch.npu.config.allow_internal_format = env.npu_jit_compile
        torch.npu.set_device(local_rank % max(info.count, 1))
    elif info.kind == "cuda":
        torch.cuda.set_device(local_rank % max(info.count, 1))


def subprocess_env(env: EnvSettings, base: dict[str, str]) -> dict[str, str]:
    """Environment for a launched training process: the documented variables as ``env`` has them.

    ``env`` is what the launching process read (a notebook's parameters are in it once
    ``kit.envvars.apply`` ran); each rank starts its own NPU runtime, which reads
    ASCEND_RT_VISIBLE_DEVICES and PYTORCH_NPU_ALLOC_CONF when it starts, so they must be in the
    rank's environment, not only in the launcher's.
    """
    out = dict(base)
    if env.pytorch_npu_alloc_conf:
        out["PYTORCH_NPU_ALLOC_CONF"] = env.pytorch_npu_alloc_conf
    if env.ascend_rt_visible_devices is not None:
        out["ASCEND_RT_VISIBLE_DEVICES"] = env.ascend_rt_visible_devices
    if env.cuda_visible_devices is not None:
        out["CUDA_VISIBLE_DEVICES"] = env.cuda_visible_devices
    if env.use_modelscope_hub:
        out["USE_MODELSCOPE_HUB"] = "1"
    return out


def resolve_precision(info: DeviceInfo, fp16: bool, bf16: bool) -> tuple[bool, bool, str | None]:
    """Return (fp16, bf16, warning): what the device can do, and a warning when a request is dropped."""
    if fp16 and bf16:
        raise DeviceError(_("fp16 and bf16 are both true; choose one"))
    if fp16 and not info.fp16:
        return False, False, _("fp16 was asked for but {kind} cannot train in fp16 mixed precision; training in fp32").format(kind=info.kind)
    if bf16 and not info.bf16:
        return False, False, _("bf16 was asked for but this {kind} ({name}) does not support bf16; training in fp32").format(
            kind=info.kind, name=info.name)
    if fp16 and info.kind == "npu" and info.bf16:
        # The quick start says fp16: true; on the 910B, fp16 LoRA runs are a known source of loss 0 or grad_norm nan,
        # and LLaMA-Factory's current examples all use bf16: true (LLaMA-Factory issues #4339, #7489 and its
        # examples/train_lora; kit/doctor/ascend_stack.json lists the sources).
        return fp16, bf16, _("fp16: true on {name}, which computes in bf16: on the 910B, fp16 LoRA runs are a known source of "
                             "loss 0 or grad_norm nan, and LLaMA-Factory's current examples use bf16. To switch, set bf16: true "
                             "and fp16: false in the YAML (or add fp16=false bf16=true to the command)").format(name=info.name)
    return fp16, bf16, None


# ---------------------------------------------------------------- DeepSpeed's op cache

def extensions_dir() -> Path:
    """DeepSpeed's C++ op cache: ``TORCH_EXTENSIONS_DIR`` when set, else one folder per Python environment.

    torch keys a compiled op by its name only, and the op's build.ninja names the environment's site-packages:
    two environments sharing one cache (a second clone's .venv, a notebook kernel's venv next to the terminal's,
    CI beside a checkout) each find the other's build and compile again, a minute of g++ using gigabytes inside
    whatever run loads the op (it once put the Binder memory test at 4.07 GiB). Inside the environment first, so
    the cache goes when the environment goes; under ~/.cache/kit where the environment is read-only.
    """
    given = os.environ.get("TORCH_EXTENSIONS_DIR")
    if given:
        return Path(given)
    for folder in (Path(sys.prefix) / ".kit-torch-extensions",
                   Path.home() / ".cache" / "kit" / "torch_extensions-envs" / re.sub(r"\W", "_", sys.prefix)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    return Path.home() / ".cache" / "kit" / "torch_extensions"


def use_extensions_dir() -> None:
    """Point this process's DeepSpeed at :func:`extensions_dir` (a rank started by a person's own torchrun too)."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(extensions_dir()))


def skip_cpu_shared_memory_op(kind: str, world_size: int) -> bool:
    """On a CPU with one training process, tell DeepSpeed not to load its shared-memory all-reduce op; True if told.

    DeepSpeed loads the op whenever it starts its communication on a CPU. On a machine where it is not yet built,
    that means a g++ compile: about 40 s, gigabytes of memory, and a failed run where no compiler is installed.
    The op only speeds up all-reduce between several processes on one host, and one process has nothing to
    reduce: its gradients are the same without it, and torch.distributed (gloo) does the rest. Several
    processes still load it. The switch is DeepSpeed's own table of the ops this machine can build
    (``deepspeed.ops.__compatible_ops__``, which its communication set-up reads).
    """
    if kind != "cpu" or world_size > 1:
        return False
    import deepspeed.ops
    from deepspeed.accelerator import get_accelerator

    builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
    if builder is None:
        return False
    deepspeed.ops.__compatible_ops__[builder.NAME] = False
    return True
