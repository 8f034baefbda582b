"""How much memory a device has: a table of known accelerators by name, or this machine's own device.

``kit estimate`` compares its memory estimate with these numbers.
"""

from __future__ import annotations

import difflib

from kit.errors import KitError
from kit.fmt import GiB
from kit.i18n import _


class DeviceMemoryError(KitError, ValueError):
    pass


# Memory of known devices, as the runtime reports it (npu-smi shows 65536 MB of HBM on a 910B3).
KNOWN_DEVICES: dict[str, tuple[str, float]] = {
    "910b": ("Ascend 910B", 64), "910b1": ("Ascend 910B1", 64), "910b2": ("Ascend 910B2", 64),
    "910b3": ("Ascend 910B3", 64), "910b4": ("Ascend 910B4", 32), "910a": ("Ascend 910A", 32),
    "910": ("Ascend 910", 32), "310p": ("Ascend 310P", 24),
    "a10040g": ("NVIDIA A100-40G", 40), "a10080g": ("NVIDIA A100-80G", 80), "a100": ("NVIDIA A100-80G", 80),
    "h100": ("NVIDIA H100", 80), "h200": ("NVIDIA H200 (141 GB)", 139.8), "v10032g": ("NVIDIA V100-32G", 32),
    "l40s": ("NVIDIA L40S", 44.5), "rtx4090": ("NVIDIA RTX 4090", 24), "4090": ("NVIDIA RTX 4090", 24), "t4": ("NVIDIA T4", 15),
}


def _normalise(name: str) -> str:
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    for prefix in ("ascend", "nvidia", "huawei"):
        key = key.removeprefix(prefix)
    return key.removesuffix("b") if key.endswith("gb") else key  # "A100-80GB" -> "a10080g"


def lookup_device(name: str) -> tuple[str, int, str]:
    """(display name, memory in bytes, kind) for a device name such as 910B, "Ascend 910B4", H200 or cpu."""
    if name.strip().lower() == "cpu":
        return _("cpu (system RAM)"), system_ram(), "cpu"
    key = _normalise(name)
    if key in KNOWN_DEVICES:
        display, gib = KNOWN_DEVICES[key]
        return display, int(gib * GiB), "npu" if display.startswith("Ascend") else "cuda"
    close = difflib.get_close_matches(key, KNOWN_DEVICES, 3)
    known = sorted({v[0] for v in KNOWN_DEVICES.values()})
    raise DeviceMemoryError(_("device {name!r} is not in the table of known devices{close}; known: {known}, cpu. "
                              "Or give the memory with device_memory_gib").format(
        name=name, close=_(" (close: {names})").format(names=", ".join(close)) if close else "", known=", ".join(known)))


def system_ram() -> int:
    from kit.doctor.probes import gather_memory  # the doctor's reading: psutil, else /proc/meminfo

    memory = gather_memory()
    if not memory.total_bytes:
        raise DeviceMemoryError(_("cannot read the size of system RAM: {error}").format(error=memory.error))
    return memory.total_bytes


def detect_device() -> tuple[str, int, str]:
    """The device this machine would train on, and its memory."""
    from kit import device as kit_device

    info = kit_device.detect()
    if info.kind == "cpu":
        return _("cpu (system RAM)"), system_ram(), "cpu"
    import torch

    props = getattr(torch, info.kind).get_device_properties(0)
    return f"{info.name}", int(props.total_memory), info.kind
