"""The documented environment variables, read in one place.

Everything else in the kit receives these values as arguments; nothing below this module reads
``os.environ`` for configuration. The names are the ones LLaMA-Factory and the Ascend stack document,
so a person's existing shell set-up keeps working.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "y", "on"}


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer; unset it or give a whole number") from None


@dataclass(frozen=True)
class EnvSettings:
    ascend_rt_visible_devices: str | None
    cuda_visible_devices: str | None
    use_modelscope_hub: bool
    force_torchrun: bool
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int
    nproc_per_node: int | None
    npu_jit_compile: bool
    pytorch_npu_alloc_conf: str | None
    hf_hub_offline: bool
    # Set by torchrun in the processes it starts.
    rank: int | None
    local_rank: int | None
    world_size: int | None

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> "EnvSettings":
        env = os.environ if env is None else env
        return cls(
            ascend_rt_visible_devices=env.get("ASCEND_RT_VISIBLE_DEVICES"),
            cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"),
            use_modelscope_hub=_flag(env.get("USE_MODELSCOPE_HUB")),
            force_torchrun=_flag(env.get("FORCE_TORCHRUN")),
            nnodes=_int(env, "NNODES", 1),
            node_rank=_int(env, "NODE_RANK", 0),
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=_int(env, "MASTER_PORT", 0) or 0,
            nproc_per_node=_int(env, "NPROC_PER_NODE", None),
            npu_jit_compile=_flag(env.get("NPU_JIT_COMPILE")),
            pytorch_npu_alloc_conf=env.get("PYTORCH_NPU_ALLOC_CONF"),
            hf_hub_offline=_flag(env.get("HF_HUB_OFFLINE")),
            rank=_int(env, "RANK", None),
            local_rank=_int(env, "LOCAL_RANK", None),
            world_size=_int(env, "WORLD_SIZE", None),
        )

    @property
    def under_torchrun(self) -> bool:
        return self.local_rank is not None and self.world_size is not None
