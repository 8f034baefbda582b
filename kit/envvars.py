"""The documented environment variables, read in one place.

Everything else in the kit receives these values as arguments; nothing below this module reads
``os.environ`` for configuration. The names are the ones LLaMA-Factory and the Ascend stack document,
so a person's existing shell set-up keeps working.

The kit writes ``os.environ`` in this module only, through one writer (``_write``), for two reasons:

- ``set_defaults``: variables a library reads itself (vLLM, DeepSpeed); a value a person already set wins.
- ``apply``: the notebooks' parameters (``visible_devices``, ``use_modelscope_hub``, ``npu_alloc_conf``).
  A variable exported in a terminal does not reach a notebook kernel started elsewhere, so the
  notebooks set them; a parameter given explicitly wins over what the kernel inherited (that is
  what a person typing it into the notebook means), and None keeps the inherited value.
"""

from __future__ import annotations

import html
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, MutableMapping

from kit.errors import KitError


from kit.i18n import N_, _


class EnvError(KitError, ValueError):
    """A documented environment variable holds a value the kit cannot use (``variable``: its name)."""

    variable: str | None = None


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "y", "on"}


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        error = EnvError(_("environment variable {name}={value} is not an integer; unset it or give a whole number").format(
            name=name, value=repr(raw)))
        error.variable = name
        raise error from None


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
        problems.append(_("NNODES={nnodes}: give at least 1 node").format(nnodes=env.nnodes))
    elif not 0 <= env.node_rank < env.nnodes:
        problems.append(_("NODE_RANK={node_rank} with NNODES={nnodes}: NODE_RANK must be between 0 and {last}").format(
            node_rank=env.node_rank, nnodes=env.nnodes, last=env.nnodes - 1))
    if env.nproc_per_node is not None and env.nproc_per_node < 1:
        problems.append(_("NPROC_PER_NODE={nproc}: give at least 1 process per node").format(nproc=env.nproc_per_node))
    if env.nnodes > 1:
        if not env.master_addr:
            problems.append(_("NNODES={nnodes} needs MASTER_ADDR: the address of the node with NODE_RANK=0, "
                              "the same on every node (127.0.0.1 would make each node wait for itself)").format(nnodes=env.nnodes))
        if not env.master_port:
            problems.append(_("NNODES={nnodes} needs MASTER_PORT: a free port on the NODE_RANK=0 node, the same on every "
                              "node").format(nnodes=env.nnodes))
    if env.master_port and not 0 < env.master_port < 65536:
        problems.append(_("MASTER_PORT={port}: give a port between 1 and 65535").format(port=env.master_port))
    return problems


def master_addr(env: EnvSettings) -> str:
    """MASTER_ADDR, or loopback for a single node (rendezvous_problems refuses several nodes without it)."""
    return env.master_addr or LOOPBACK


def set_defaults(values: Mapping[str, str], target: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Write variables a library reads itself (vLLM, DeepSpeed), keeping any a person already set.

    The one place the kit writes ``os.environ``; returns what it set.
    """
    return _write(values, target, replace=False)


def unset_written(written: Mapping[str, str], target: MutableMapping[str, str] | None = None) -> None:
    """Remove variables ``set_defaults`` wrote, where they still hold the value it wrote (a process that
    hosted one training run and goes on, such as a test or a person's script, gets its environment back)."""
    target = os.environ if target is None else target
    for key, value in written.items():
        if target.get(key) == value:
            del target[key]


def _write(values: Mapping[str, str], target: MutableMapping[str, str] | None, replace: bool) -> dict[str, str]:
    """The one writer of ``os.environ`` (or ``target``): returns what changed."""
    target = os.environ if target is None else target
    written = {}
    for key, value in values.items():
        if (replace or key not in target) and target.get(key) != value:
            target[key] = value
            written[key] = value
    return written


# ---------------------------------------------------------------- the notebooks' parameters

class EnvTooLateWarning(UserWarning):
    """A variable was changed after the NPU runtime of this process may already have read it."""


@dataclass(frozen=True)
class Parameter:
    name: str  # the notebook parameter
    variable: str
    read_by: str  # who reads it, and when
    runtime: bool  # read once, by the NPU runtime of a process (not by the kit at each use)


PARAMETERS = (
    Parameter("visible_devices", "ASCEND_RT_VISIBLE_DEVICES",
              N_("the NPU runtime, once, when it starts in a process: the cards that process sees, numbered from 0 "
                 "(physical cards 6,7 appear as 0,1); training ranks and vLLM workers each start their own runtime"), True),
    Parameter("use_modelscope_hub", "USE_MODELSCOPE_HUB",
              N_("the kit, each time it resolves a model id: 1 downloads ids such as qwen/Qwen1.5-7B from ModelScope, "
                 "0 from the Hugging Face Hub"), False),
    Parameter("npu_alloc_conf", "PYTORCH_NPU_ALLOC_CONF",
              N_("torch_npu's memory allocator, once, when it starts in a process: e.g. max_split_size_mb:256 "
                 "(the quick start's vLLM setting) splits fewer large blocks and so fragments less"), True),
)
VLLM_METHOD = "VLLM_WORKER_MULTIPROC_METHOD"
# The quick start's vLLM section on an NPU: applied by ``apply(vllm=True)`` where the kernel has no value of its own.
VLLM_DEFAULTS = {"PYTORCH_NPU_ALLOC_CONF": "max_split_size_mb:256"}


def npu_runtime_state(modules: Mapping[str, Any] | None = None) -> str:
    """How far the NPU runtime of this process has got: "not imported", "imported" or "initialised".

    Looks only (``sys.modules``, and ``torch.npu.is_initialized()`` once torch_npu is there); imports nothing.
    """
    modules = sys.modules if modules is None else modules
    if "torch_npu" not in modules:
        return "not imported"
    npu = getattr(modules.get("torch"), "npu", None)
    is_initialized = getattr(npu, "is_initialized", None)
    try:
        if callable(is_initialized) and is_initialized():
            return "initialised"
    except Exception:  # a torch_npu without a working driver may raise here: treat as not started
        pass
    return "imported"


def _as_text(parameter: str, value: Any) -> str:
    if parameter == "use_modelscope_hub":
        if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "n", "off", ""}:
            return "0"
        return "1" if _flag(str(value)) or value is True else "0"
    if parameter == "visible_devices":
        items = [value] if isinstance(value, int) else (value.split(",") if isinstance(value, str) else list(value))
        ids = [str(i).strip() for i in items]
        if not ids or not all(i.isdigit() for i in ids) or len(set(ids)) != len(ids):
            raise EnvError(_("visible_devices={value}: give card numbers, e.g. 0 or \"0,1\" (each once), or None to keep "
                             "ASCEND_RT_VISIBLE_DEVICES as the kernel inherited it").format(value=repr(value)))
        return ",".join(ids)
    if not isinstance(value, str) or not value.strip():
        raise EnvError(_("{parameter}={value}: give the text of the variable, e.g. \"max_split_size_mb:256\", or None").format(
            parameter=parameter, value=repr(value)))
    return value.strip()


@dataclass(frozen=True)
class Setting:
    parameter: str
    variable: str
    value: str | None  # what this process (and every process it starts) now has; None: unset
    source: str  # SOURCES: "notebook parameter", "inherited", "kit default" or "unset" (English; shown through _())
    read_by: str  # in the language of the moment apply() ran
    replaced: str | None = None  # an inherited value the parameter replaced
    too_late: str | None = None  # why the new value may not take effect in this process


@dataclass(frozen=True)
class AppliedEnvironment:
    """What ``apply`` set: one row per variable, and the warnings a person must read."""

    settings: tuple[Setting, ...]
    runtime_state: str
    warnings: tuple[str, ...] = field(default=())

    def values(self) -> dict[str, str | None]:
        return {s.variable: s.value for s in self.settings}

    def __repr__(self) -> str:
        unset = _("(unset)")
        lines = [f"{s.variable}={s.value if s.value is not None else unset}  [{s.parameter}: {_(s.source)}"
                 + (_(", replaced {value}").format(value=repr(s.replaced)) if s.replaced is not None else "") + "]"
                 for s in self.settings]
        lines += [_("WARNING: {message}").format(message=w) for w in self.warnings]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        unset = html.escape(_("(unset)"))

        def source(s: Setting) -> str:
            replaced = _(" (replaced {value})").format(value=repr(s.replaced)) if s.replaced is not None else ""
            return html.escape(_(s.source) + replaced)

        rows = "".join(
            f"<tr><td><code>{html.escape(s.parameter)}</code></td><td><code>{html.escape(s.variable)}</code></td>"
            f"<td><code>{html.escape(s.value) if s.value is not None else unset}</code></td>"
            f"<td>{source(s)}</td>"
            f"<td style='text-align:left'>{html.escape(s.read_by)}</td></tr>" for s in self.settings)
        too_late = html.escape(_("Too late:"))
        warned = "".join(f"<p style='color:#cf222e'><b>{too_late}</b> {html.escape(w)}</p>" for w in self.warnings)
        head = "".join(f"<th>{html.escape(_(h))}</th>" for h in (N_("parameter"), N_("variable"), N_("value"), N_("from"), N_("read by")))
        return f"<table><tr>{head}</tr>{rows}</table>{warned}"


def apply(visible_devices: Any = None, use_modelscope_hub: Any = None, npu_alloc_conf: str | None = None,
          vllm: bool = False, target: MutableMapping[str, str] | None = None,
          modules: Mapping[str, Any] | None = None) -> AppliedEnvironment:
    """Set the notebooks' parameters as the documented variables, before torch_npu starts; say what each is.

    A parameter given (not None) replaces what the kernel inherited; None keeps the inherited value.
    The variables go into this process's environment, so every process started from it afterwards
    (torchrun and its ranks, vLLM's workers) gets them. ``vllm`` adds the quick start's vLLM settings
    where nothing was given or inherited: VLLM_WORKER_MULTIPROC_METHOD=spawn (vLLM on an NPU cannot fork
    its workers) and PYTORCH_NPU_ALLOC_CONF=max_split_size_mb:256.

    The NPU runtime reads ASCEND_RT_VISIBLE_DEVICES and PYTORCH_NPU_ALLOC_CONF once, when it starts in
    a process. Changing them after torch_npu was imported in this process (and certainly after
    ``torch.npu`` was initialised) does not change this process: a warning says so, and to restart
    the kernel and run this cell first. Processes started later still get the new value.
    """
    target = os.environ if target is None else target
    state = npu_runtime_state(modules)
    given = {"visible_devices": visible_devices, "use_modelscope_hub": use_modelscope_hub, "npu_alloc_conf": npu_alloc_conf}
    settings: list[Setting] = []
    messages: list[str] = []
    for p in PARAMETERS:
        before = target.get(p.variable)
        raw = given[p.name]
        source = N_("notebook parameter")
        if raw is None and vllm and p.variable in VLLM_DEFAULTS and before is None:
            raw, source = VLLM_DEFAULTS[p.variable], N_("kit default (the quick start's vLLM setting)")
        if raw is None:
            settings.append(Setting(p.name, p.variable, before, N_("inherited") if before is not None else N_("unset"), _(p.read_by)))
            continue
        value = _as_text(p.name, raw)
        _write({p.variable: value}, target, replace=True)
        late = None
        if p.runtime and value != before and state != "not imported":
            if state == "initialised":
                late = _("{variable}={value} was set after torch_npu was imported in this process and the NPU runtime had "
                         "started (torch.npu.is_initialized()) ({before} before). This kernel keeps the old setting; training "
                         "processes and vLLM workers started from now on get the new one. Restart the kernel and run this "
                         "cell first to apply it here too.")
            else:
                late = _("{variable}={value} was set after torch_npu was imported in this process; the NPU runtime may "
                         "already have read it ({before} before). This kernel keeps the old setting; training processes and "
                         "vLLM workers started from now on get the new one. Restart the kernel and run this cell first to "
                         "apply it here too.")
            late = late.format(variable=p.variable, value=value, before=repr(before))
            messages.append(late)
            warnings.warn(late, EnvTooLateWarning, stacklevel=2)
        settings.append(Setting(p.name, p.variable, value, source,
                                _(p.read_by), before if before not in (None, value) else None, late))
    if vllm:
        written = set_defaults({VLLM_METHOD: "spawn"}, target)
        value = target.get(VLLM_METHOD)
        if value != "spawn":
            note = _("vLLM, when it starts its engine: spawn starts workers afresh (a forked worker cannot re-initialise the "
                     "NPU); {value} was set before the kit, and vLLM on an NPU then fails with 'Cannot re-initialize NPU in "
                     "forked subprocess'").format(value=repr(value))
        else:
            note = _("vLLM, when it starts its engine: spawn starts workers afresh (a forked worker cannot re-initialise the NPU)")
        settings.append(Setting("(vLLM)", VLLM_METHOD, value, N_("kit default") if written else N_("inherited"), note))
    return AppliedEnvironment(tuple(settings), state, tuple(messages))
