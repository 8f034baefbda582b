"""Peak memory of the steps after training: chatting (the engine), vLLM, exporting a merged model.

``kit estimate --step chat|vllm|export`` and the notebooks' memory checks use these; the training
estimate and its formulas are in kit.estimate.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from kit.estimate.devices import DeviceMemoryError, detect_device, lookup_device, system_ram
from kit.estimate import (VERDICT_COLOUR, FIT_HEADROOM, FRAGMENTATION, OVERHEAD_FIXED, VERDICT_HEADLINE, EstimateError, MemoryItem, ModelShape, model_config_source, rows_text, table_html, count_parameters,
                          read_model_config)
from kit.fmt import GiB, size
from kit.i18n import N_, _


STEPS = ("train", "chat", "vllm", "export")
VLLM_LORA_SLOTS = 2  # kit.chat.vllm_backend.MAX_LORAS


@dataclass(frozen=True)
class StepEstimate:
    """Peak memory of one step that loads a model, against the memory it runs in (a card or host RAM)."""

    step: str
    model: str
    items: tuple[MemoryItem, ...]
    memory_name: str | None
    memory_bytes: int | None
    memory_kind: str  # npu / cuda / cpu: where the step's memory lives
    notes: tuple[str, ...] = ()
    peak_override: int | None = None  # vLLM: the reservation, not the sum of the items

    @property
    def peak_bytes(self) -> int:
        return self.peak_override if self.peak_override is not None else sum(it.bytes for it in self.items)

    @property
    def needed_bytes(self) -> int:
        """What must fit (vLLM: its contents must fit its reservation; otherwise the peak)."""
        return sum(it.bytes for it in self.items)

    @property
    def verdict(self) -> str:
        if not self.memory_bytes:
            return "unknown"
        room = self.peak_override if self.peak_override is not None else self.memory_bytes
        ratio = self.needed_bytes / room
        if self.peak_override is not None and self.peak_override > self.memory_bytes:
            return "does not fit"
        return "fits" if ratio <= FIT_HEADROOM else "tight" if ratio <= 1.0 else "does not fit"

    def headline(self) -> str:
        where = _("host RAM") if self.memory_kind == "cpu" else _("device memory")
        peak = _("{step}: peak {where} about {size}").format(step=self.step, where=where, size=size(self.peak_bytes))
        if self.peak_override is not None:
            peak += _(" (vLLM's reservation; its contents need {size})").format(size=size(self.needed_bytes))
        if not self.memory_bytes:
            return peak + _("; no memory to compare with")
        return _("{verdict}: {peak}; {memory} has {size} ({percent}%)").format(
            verdict=_(VERDICT_HEADLINE[self.verdict]), peak=peak, memory=self.memory_name, size=size(self.memory_bytes),
            percent=f"{100 * self.peak_bytes / self.memory_bytes:.0f}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["items"] = [asdict(it) for it in self.items]
        d.update(peak_bytes=self.peak_bytes, needed_bytes=self.needed_bytes, verdict=self.verdict,
                 peak_gib=round(self.peak_bytes / GiB, 3))
        return d

    def render_text(self) -> str:
        lines = [self.headline(), ""]
        lines += rows_text(self.items)
        lines += [""] + [_("note: {note}").format(note=n) for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render_text()

    def __repr__(self) -> str:  # what a notebook shows as text (and saves beside the HTML)
        return self.render_text()

    def _repr_html_(self) -> str:
        colour = VERDICT_COLOUR.get(self.verdict, "inherit")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<p style='color:{colour}'><b>{html.escape(self.headline())}</b></p>"
                + table_html(self.items) + f"<ul>{notes}</ul>")


def _memory_of(device: str | None, device_memory_gib: float | None) -> tuple[str | None, int | None, str]:
    """(name, bytes, kind) of the memory a step runs in, as ``estimate`` reads ``device`` / ``device_memory_gib``."""
    if device_memory_gib is not None:
        try:
            name, _bytes, kind = lookup_device(device) if device else (_("given memory"), 0, "npu")
        except DeviceMemoryError:
            name = device
            kind = "npu" if any(t in device.lower() for t in ("910", "310", "ascend", "npu")) else "cuda"
        return name, int(device_memory_gib * GiB), kind
    if device:
        return lookup_device(device)
    return detect_device()


def _checkpoint_bytes(raw: Mapping[str, Any]) -> int:
    dtype = str(raw.get("torch_dtype") or raw.get("dtype") or "float32").removeprefix("torch.")
    return {"float32": 4, "float16": 2, "bfloat16": 2}.get(dtype, 4)


def _kv_cache(shape: ModelShape, tokens: int, d: int) -> int:
    return 2 * shape.num_layers * shape.kv_dim * tokens * d


def _runtime(kind: str, rest: int) -> MemoryItem:
    overhead = int(OVERHEAD_FIXED[kind] + FRAGMENTATION[kind] * rest)
    return MemoryItem(N_("runtime and allocator"), overhead, False,
                      _("{fixed} for the {kind} runtime + {percent} held by the allocator (rule of thumb)").format(
                          fixed=size(OVERHEAD_FIXED[kind]), kind=kind, percent=f"{FRAGMENTATION[kind]:.0%}"))


def step_estimate(step: str, config: str | Path | Mapping[str, Any], *, adapter_params: int = 0, merged: bool = False,
                  context_len: int = 1024, vllm_gpu_util: float = 0.7, export_size_gb: int = 5, device: str | None = None,
                  device_memory_gib: float | None = None, trust_remote_code: bool = False) -> StepEstimate:
    """Peak memory of one inference step (chat, vllm or export) for the model whose config.json is ``config``.

    ``adapter_params``: the LoRA adapter's parameter count (``adapter_parameters``), 0 for none;
    ``merged``: the chat engine merges it into the weights at load (no separate LoRA layers then).
    ``device`` / ``device_memory_gib`` as for ``estimate`` (export compares with host RAM instead).
    """
    if step not in STEPS[1:]:
        raise EstimateError(_("step {step!r}: use one of {steps} (kit.estimate.estimate for train)").format(
            step=step, steps=", ".join(STEPS[1:])))
    raw, source = read_model_config(config)
    base = count_parameters(config, 1, "all", trust_remote_code)
    shape, n = base.shape, base.base
    name = raw.get("_name_or_path") or source
    if step == "export":
        d = _checkpoint_bytes(raw)
        weights = n * d
        items = [MemoryItem(N_("base weights (host RAM)"), weights, True,
                            _("{count} parameters x {bytes} B (the checkpoint's dtype, on the CPU)").format(count=f"{n:,}", bytes=d)),
                 MemoryItem(N_("LoRA weights"), adapter_params * 4, True,
                            _("{count} x 4 B (fp32), merged into the weights in place").format(count=f"{adapter_params:,}")),
                 MemoryItem(N_("one shard being written"), min(weights, export_size_gb * 10**9), False,
                            _("save_pretrained writes shards of export_size {size} GB").format(size=export_size_gb)),
                 MemoryItem(N_("Python, torch and transformers"), 1 * GiB, False, _("rule of thumb"))]
        return StepEstimate("export", name, tuple(items), _("host RAM"), system_ram(), "cpu",
                            (_("kit export loads the model on the CPU: it holds nothing on the card, so it can run while "
                               "another job uses the card, but it needs this much free RAM"),))
    mem_name, mem_bytes, kind = _memory_of(device, device_memory_gib)
    d = 4 if kind == "cpu" else 2  # the chat engine: fp32 on a CPU, bf16 (or fp16) on an accelerator
    dname = "fp32" if d == 4 else "bf16/fp16"
    weights = MemoryItem(N_("base weights"), n * d, True, _("{count} parameters x {bytes} B ({dtype})").format(count=f"{n:,}", bytes=d, dtype=dname))
    if step == "chat":
        lora = MemoryItem(N_("LoRA layers"), 0 if merged else adapter_params * 4, True,
                          _("merged into the weights at load: nothing extra") if merged or not adapter_params else
                          _("{count} x 4 B (peft keeps an unmerged adapter in fp32)").format(count=f"{adapter_params:,}"))
        kv = MemoryItem(N_("KV cache"), _kv_cache(shape, context_len, d), True,
                        _("2 x {layers} layers x {kv_dim} x {tokens} tokens x {bytes} B (one conversation at full context)").format(
                            layers=shape.num_layers, kv_dim=shape.kv_dim, tokens=context_len, bytes=d))
        work = MemoryItem(N_("prefill working memory"), context_len * (2 * shape.hidden_size + 2 * shape.q_dim + 2 * shape.kv_dim
                                                                         + 3 * shape.intermediate_size) * d + 8 * shape.vocab_size, False,
                          _("one layer's temporaries for a {tokens}-token prompt, and the last token's logits").format(tokens=context_len))
        items = [weights, lora, kv, work]
        items.append(_runtime(kind, sum(it.bytes for it in items)))
        return StepEstimate("chat", name, tuple(items), mem_name, mem_bytes, kind,
                            (_("one engine holds one copy of the weights: base and fine-tuned answers come from the same copy "
                               "(the adapter switched off for the base model's answer)"),))
    # vllm
    slots = MemoryItem(N_("LoRA slots"), VLLM_LORA_SLOTS * adapter_params * d, False,
                       _("{slots} adapter slots x {count} x {bytes} B").format(slots=VLLM_LORA_SLOTS, count=f"{adapter_params:,}", bytes=d))
    kv = MemoryItem(N_("KV cache, one sequence"), _kv_cache(shape, context_len, d), True,
                    _("2 x {layers} x {kv_dim} x {tokens} tokens (max_model_len) x {bytes} B").format(
                        layers=shape.num_layers, kv_dim=shape.kv_dim, tokens=context_len, bytes=d))
    items = [weights, slots, kv]
    if kind == "cpu":
        items.append(_runtime(kind, sum(it.bytes for it in items)))
        return StepEstimate("vllm", name, tuple(items), mem_name, mem_bytes, kind,
                            (_("vLLM on a CPU: VLLM_CPU_KVCACHE_SPACE sets its KV cache (the kit sizes it from config.json)"),))
    items.append(MemoryItem(N_("runtime and graphs"), int(OVERHEAD_FIXED[kind]), False, _("rule of thumb")))
    reservation = int(vllm_gpu_util * mem_bytes) if mem_bytes else None
    return StepEstimate("vllm", name, tuple(items), mem_name, mem_bytes, kind,
                        (_("vLLM reserves vllm_gpu_util ({util}) of the card when it starts, whatever the model needs, "
                           "and fills the rest with KV cache: no other engine may hold the card while it runs").format(util=vllm_gpu_util),),
                        peak_override=reservation)


def adapter_parameters(adapter_dir: str | Path) -> int:
    """A LoRA adapter's parameter count, from its safetensors header (exact; no weights read)."""
    folder = Path(adapter_dir)
    weights = folder / "adapter_model.safetensors"
    if weights.is_file():
        with weights.open("rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
        total = 0
        for key, info in header.items():
            if key != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= dim
                total += count
        return total
    legacy = folder / "adapter_model.bin"
    return legacy.stat().st_size // 4 if legacy.is_file() else 0


def step_estimate_for_config(cfg: Any, step: str, device: str | None = None, device_memory_gib: float | None = None,
                             adapter_params: int | None = None) -> StepEstimate:
    """``step_estimate`` for a loaded kit Config: its model, its adapter (or the adapter its LoRA keys would
    train: lora_rank on lora_target), its context (cutoff_len, the model's positions, vllm_maxlen)."""
    model_dir, stored_note = model_config_source(cfg.model.model_name_or_path, cfg.model.cache_dir)
    if adapter_params is None:
        adapters = [Path(a) for a in cfg.adapter_paths]
        if adapters and all(a.is_dir() for a in adapters):
            adapter_params = adapter_parameters(adapters[-1])
        else:  # before training: the adapter this config trains
            adapter_params = count_parameters(model_dir, cfg.finetune.lora_rank, cfg.finetune.lora_target,
                                              cfg.model.trust_remote_code).trainable
    raw, _source = read_model_config(model_dir)
    positions = raw.get("max_position_embeddings") or (raw.get("text_config") or {}).get("max_position_embeddings")
    limits = [cfg.data.cutoff_len] + ([int(positions)] if positions else []) + ([cfg.infer.vllm_maxlen] if step == "vllm" else [])
    result = step_estimate(step, model_dir, adapter_params=adapter_params, merged=cfg.infer.merge_adapter and step == "chat",
                           context_len=min(limits), vllm_gpu_util=cfg.infer.vllm_gpu_util, export_size_gb=cfg.infer.export_size,
                           device=device, device_memory_gib=device_memory_gib, trust_remote_code=cfg.model.trust_remote_code)
    return replace(result, notes=(stored_note, *result.notes)) if stored_note else result
