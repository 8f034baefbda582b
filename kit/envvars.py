"""The documented environment variables, read in one place.

Everything else in the kit receives these values as arguments; nothing below this module reads
``os.environ`` for configuration. The names are the ones LLaMA-Factory and the Ascend stack document,
so a person's existing shell set-up keeps working.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, MutableMapping

from kit.errors import KitError


class EnvError(KitError, ValueError):
    """A documented environment variable holds a value the kit cannot use."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "y", "on"}


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise EnvError(f"environment variable {name}={raw!r} is not an integer; unset it or give a whole number") from None


LANGUAGE_VARIABLES = ("KIT_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def language_preference(env: Mapping[str, str] | None = None) -> str | None:
    """The first of KIT_LANG and the POSIX locale variables that is set (read alone: a message must
    be shown in the right language even while another variable is the mistake being reported)."""
    env = os.environ if env is None else env
    return next((env[k] for k in LANGUAGE_VARIABLES if env.get(k)), None)


@dataclass(frozen=True)
class EnvSettings:
    ascend_rt_visible_devices: str | None
    cuda_visible_devices: str | None
    use_modelscope_hub: bool
    force_torchrun: bool
    nnodes: int
    node_rank: int
    master_addr: str | None  # None when unset: one node defaults to 127.0.0.1, several nodes need it
    master_port: int
    nproc_per_node: int | None
    npu_jit_compile: bool
    pytorch_npu_alloc_conf: str | None
    hf_hub_offline: bool
    # The language of messages: KIT_LANG, else the POSIX locale variables in their order of precedence.
    language: str | None
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
            master_addr=(env.get("MASTER_ADDR") or "").strip() or None,
            master_port=_int(env, "MASTER_PORT", 0) or 0,
            nproc_per_node=_int(env, "NPROC_PER_NODE", None),
            npu_jit_compile=_flag(env.get("NPU_JIT_COMPILE")),
            pytorch_npu_alloc_conf=env.get("PYTORCH_NPU_ALLOC_CONF"),
            hf_hub_offline=_flag(env.get("HF_HUB_OFFLINE")),
            language=language_preference(env),
            rank=_int(env, "RANK", None),
            local_rank=_int(env, "LOCAL_RANK", None),
            world_size=_int(env, "WORLD_SIZE", None),
        )

    @property
    def under_torchrun(self) -> bool:
        return self.local_rank is not None and self.world_size is not None


LOOPBACK = "127.0.0.1"


def rendezvous_problems(env: EnvSettings) -> list[str]:
    """The launcher's rules for NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT / NPROC_PER_NODE.

    ``kit train`` refuses to launch and ``kit doctor`` fails its check on exactly these: one node
    defaults MASTER_ADDR to 127.0.0.1 and picks a free port; several nodes need both set, the same
    on every node (otherwise the other nodes would dial their own loopback and wait forever).
    """
    problems = []
    if env.nnodes < 1:
        problems.append(f"NNODES={env.nnodes}: give at least 1 node")
    elif not 0 <= env.node_rank < env.nnodes:
        problems.append(f"NODE_RANK={env.node_rank} with NNODES={env.nnodes}: NODE_RANK must be between 0 and {env.nnodes - 1}")
    if env.nproc_per_node is not None and env.nproc_per_node < 1:
        problems.append(f"NPROC_PER_NODE={env.nproc_per_node}: give at least 1 process per node")
    if env.nnodes > 1:
        if not env.master_addr:
            problems.append(f"NNODES={env.nnodes} needs MASTER_ADDR: the address of the node with NODE_RANK=0, "
                            "the same on every node (127.0.0.1 would make each node wait for itself)")
        if not env.master_port:
            problems.append(f"NNODES={env.nnodes} needs MASTER_PORT: a free port on the NODE_RANK=0 node, the same on every node")
    if env.master_port and not 0 < env.master_port < 65536:
        problems.append(f"MASTER_PORT={env.master_port}: give a port between 1 and 65535")
    return problems


def master_addr(env: EnvSettings) -> str:
    """MASTER_ADDR, or loopback for a single node (rendezvous_problems refuses several nodes without it)."""
    return env.master_addr or LOOPBACK


def set_defaults(values: Mapping[str, str], target: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Write variables a library reads itself (vLLM, DeepSpeed), keeping any a person already set.

    The one place the kit writes ``os.environ``; returns what it set.
    """
    target = os.environ if target is None else target
    written = {}
    for key, value in values.items():
        if key not in target:
            target[key] = value
            written[key] = value
    return written
