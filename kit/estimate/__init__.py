"""Will it fit? Memory per device for LoRA SFT, from a model's config.json alone (no weights).

What is exact and what is estimated:

* Parameter counts are exact for any architecture transformers can build: the model is built on the
  meta device (``kit.model.meta_model``: shapes, no memory, no weights) and LoRA is attached to it by
  peft exactly as training attaches it (``kit.model.attach_lora``), then the parameters are counted.
* Weights, LoRA gradients and optimizer state are exact counts times bytes per element under the
  precision policy the kit trains with (stated in each row). The allocator may round up a little.
* Activations are an estimate from a formula (``activation_bytes``): what autograd keeps per token
  for a decoder layer whose base weights are frozen, at the longest sequence (cutoff_len), plus the
  logits and the loss. It assumes a fused attention kernel (sdpa: no S x S score matrix) unless
  ``attention="eager"``. The formula follows the dense Qwen2 / Qwen3 / Llama / Mistral layout; for
  other layouts (mixture-of-experts, fused qkv) it is a rough guide, and the notes say so.
* Framework overhead is a rule of thumb per device kind (runtime context, collective buffers,
  allocator fragmentation).

``bench/estimate_accuracy.py`` compares the estimate with the measured peak memory of real CPU runs.
"""

from __future__ import annotations

import difflib
import functools
import html
import json
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from kit.estimate.devices import DeviceMemoryError, detect_device, lookup_device
from kit.errors import KitError
from kit.fmt import GiB, html_table, ljust, rjust, size, width
from kit.i18n import N_, _
from kit.library_text import read_problem

try:  # recent huggingface_hub validates config fields, raising this (not a ValueError) for a value of the wrong type
    from huggingface_hub.errors import StrictDataclassError as _InvalidConfig
except ImportError:
    _InvalidConfig = ValueError

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
# The layout the activation formula describes (its linear layers named as in LLaMA).
DENSE_DECODERS = ("qwen2", "qwen3", "llama", "mistral")

# Fixed memory per device the formulas do not see: runtime context (CANN / CUDA), collective buffers
# (HCCL/NCCL), kernel workspaces. On the CPU the process's libraries are loaded before training and
# are not counted.
OVERHEAD_FIXED = {"npu": 3 * GiB, "cuda": 1.5 * GiB, "cpu": 64 << 20}
# Memory held but not in use, as a fraction of the rest. Device caching allocators keep freed blocks
# (rule of thumb 10%). On the CPU glibc keeps the per-layer temporaries it frees (its mmap threshold
# rises after the first large free): bench/estimate_accuracy.py measured peak RSS ~1.3x the live
# tensors with the default allocator, ~1.0x with MALLOC_MMAP_THRESHOLD_=65536.
FRAGMENTATION = {"npu": 0.10, "cuda": 0.10, "cpu": 0.30}
FIT_HEADROOM = 0.90  # above 90% of device memory the run is "tight": fragmentation or a long batch tips it over

# A verdict is an English code (``verdict``, the JSON value, what callers compare); text and HTML show these words.
VERDICT_HEADLINE = {"fits": N_("FITS"), "tight": N_("TIGHT"), "does not fit": N_("DOES NOT FIT"), "unknown": N_("UNKNOWN")}
VERDICT_COLOUR = {"fits": "#1a7f37", "tight": "#9a6700", "does not fit": "#cf222e"}  # the HTML headline
VERDICT_WORD = {"fits": N_("fits"), "tight": N_("tight"), "does not fit": N_("does not fit"), "unknown": N_("unknown")}


class EstimateError(KitError):
    pass


# ----------------------------------------------------------------------------------------- model

@dataclass(frozen=True)
class ModelShape:
    """The sizes the activation formula needs (parameter counts come from the meta model)."""

    model_type: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int

    @classmethod
    def from_config(cls, config: Any, source: str = "config.json") -> "ModelShape":
        """From a transformers config: its attribute_map reads other names (n_embd, n_layer, ...)."""
        c = config.get_text_config() if hasattr(config, "get_text_config") else config
        get = {k: getattr(c, k, None) for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")}
        missing = [k for k, v in get.items() if not isinstance(v, int) or v <= 0]
        if missing:
            raise EstimateError(_("{source}: the activation formula needs these as positive integers: {keys}").format(
                source=source, keys=", ".join(missing)))
        h, heads = get["hidden_size"], get["num_attention_heads"]
        return cls(model_type=str(getattr(c, "model_type", "")).lower(), hidden_size=h, intermediate_size=get["intermediate_size"],
                   num_layers=get["num_hidden_layers"], num_heads=heads, num_kv_heads=int(getattr(c, "num_key_value_heads", None) or heads),
                   head_dim=int(getattr(c, "head_dim", None) or h // heads), vocab_size=get["vocab_size"])

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim


def parse_targets(lora_target: str | Sequence[str], available: Sequence[str]) -> tuple[str, ...]:
    """LLaMA-Factory's lora_target: "all" (every linear layer but lm_head) or names, comma separated.

    ``available``: the model's linear layers (``kit.model.linear_module_names``), what training accepts.
    """
    if not available:
        raise EstimateError(_("lora_target: this model has no torch.nn.Linear layers for LoRA (besides the output head)"))
    names = [t.strip() for t in (lora_target.split(",") if isinstance(lora_target, str) else lora_target) if t.strip()]
    if names == ["all"]:
        return tuple(available)
    bad = [n for n in names if n not in available]
    if bad or not names:
        hints = [_("{name} (did you mean {close}?)").format(name=n, close=m[0]) if (m := difflib.get_close_matches(n, available, 1))
                 else n for n in bad]
        raise EstimateError(_("lora_target: {names} is not a linear layer of this model; use all or some of {available}").format(
            names=", ".join(hints) or _("empty"), available=", ".join(available)))
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class ParameterCounts:
    base: int  # the model's own parameters (frozen under LoRA)
    trainable: int  # what peft adds for this rank and these targets
    targets: tuple[str, ...]
    shape: ModelShape


def count_parameters(config: str | Path | Mapping[str, Any], lora_rank: int = 8, lora_target: str | Sequence[str] = "all",
                     trust_remote_code: bool = False) -> ParameterCounts:
    """Exact base and LoRA parameter counts: the model built on the meta device, with peft's LoRA attached."""
    raw, source = read_model_config(config)
    # The model's own folder when there is one, so code shipped with it works (trust_remote_code).
    folder = str(Path(source).parent) if not isinstance(config, Mapping) and Path(source).name == "config.json" else None
    target_key = lora_target if isinstance(lora_target, str) else tuple(lora_target)
    return _count_parameters(json.dumps(raw, sort_keys=True), folder, source, trust_remote_code, lora_rank, target_key)


@functools.lru_cache(maxsize=32)  # the suggestions and a notebook's re-runs ask again for the same model
def _count_parameters(config_json: str, folder: str | None, source: str, trust_remote_code: bool, lora_rank: int,
                      lora_target: str | tuple[str, ...]) -> ParameterCounts:
    import torch

    from kit import model as model_mod

    with tempfile.TemporaryDirectory(prefix="kit-estimate-") as tmp:
        if folder is None:  # contents given, not a folder: meta_model reads a folder's config.json
            (Path(tmp) / "config.json").write_text(config_json, encoding="utf-8")
        try:
            model = model_mod.meta_model(Path(folder or tmp), trust_remote_code)
        except (model_mod.ModelError, _InvalidConfig, TypeError, ValueError, KeyError, OSError) as exc:  # a person's mistake, no traceback
            detail = (str(exc).splitlines() or [""])[0][:400].replace(tmp, source)
            raise EstimateError(_("{source}: transformers cannot build this model from it ({error})").format(
                source=source, error=f"{type(exc).__name__}: {detail}")) from None
    shape = ModelShape.from_config(model.config, source)
    first_seen = list(dict.fromkeys(name.rsplit(".", 1)[-1] for name, _module in model.named_modules()))
    available = sorted(model_mod.linear_module_names(model), key=first_seen.index)  # "all" in the model's order: q, k, v, o, ...
    targets = parse_targets(lora_target, available)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft / transformers deprecation notices are not the person's concern here
        peft_model = model_mod.attach_lora(model, targets, lora_rank, 2 * lora_rank, 0.0)
    trainable, total = model_mod.count_parameters(peft_model)
    return ParameterCounts(base=total - trainable, trainable=trainable, targets=targets, shape=shape)


def read_model_config(config: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """config.json contents and where they came from; ``config`` may be the file, its folder, or a dict."""
    if isinstance(config, Mapping):
        return dict(config), "config"
    path = Path(config)
    if path.is_dir():
        path = path / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EstimateError(_("{path}: not found; point at the model's config.json or its folder").format(path=path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EstimateError(_("{path}: not valid JSON ({error})").format(path=path, error=read_problem(exc))) from None
    if not isinstance(data, dict):
        raise EstimateError(_("{path}: must hold a JSON object").format(path=path))
    return data, str(path)


# ------------------------------------------------------------------------------------- activations

def activation_bytes(shape: ModelShape, targets: Sequence[str], rank: int, dtype_bytes: int, batch: int, seq: int,
                     gradient_checkpointing: bool, attention: str = "sdpa") -> tuple[int, str]:
    """Approximate activation memory at the peak (the start of the backward pass); returns (bytes, formula).

    Per token and decoder layer, autograd keeps (d = bytes of the training dtype; a frozen linear keeps
    nothing for its own backward, a LoRA-adapted one keeps its input for lora_A's gradient):

    - the two RMSNorms: their input upcast to fp32 and 1/rms: ``2 * (4h + 4)``
    - the normed input of q/k/v if one of them is adapted: ``h * d``; of gate/up likewise
    - attention (fused sdpa): rotated q, k and v (k, v expanded to all heads when a padding mask
      forces ``repeat_kv``, i.e. batch > 1), the output, fp32 log-sum-exp: ``(q + 2 kv' + q) * d + 4 heads``;
      eager attention adds the scores and probabilities: ``2 * heads * S * d``
    - o_proj's input if adapted: ``q * d``; down_proj's input if adapted: ``i * d``
    - the MLP: gate, silu(gate), up: ``3 i * d``; each LoRA path: ``r * d``

    Logits and loss: logits (d), log-softmax output, its gradient and the logits' gradient (fp32):
    ``V * (d + 12)`` per token. With gradient checkpointing each layer keeps only its input
    (``h * d``) and one layer is recomputed at a time, so the layer term counts once.
    """
    h, i, d = shape.hidden_size, shape.intermediate_size, dtype_bytes
    t = set(targets)
    padded = batch > 1  # a batch of one needs no padding mask: sdpa runs causal, GQA without repeat_kv
    kv = shape.q_dim if padded and shape.num_kv_heads != shape.num_heads else shape.kv_dim
    per_layer = 2 * (4 * h + 4)
    per_layer += h * d if t & {"q_proj", "k_proj", "v_proj"} else 0
    per_layer += h * d if t & {"gate_proj", "up_proj"} else 0
    per_layer += (2 * shape.q_dim + 2 * kv) * d + 4 * shape.num_heads
    per_layer += seq * d if padded else 0  # sdpa converts the boolean mask to the dtype, in every layer
    per_layer += 2 * shape.num_heads * seq * d if attention == "eager" else 0
    per_layer += shape.q_dim * d if "o_proj" in t else 0
    per_layer += i * d if "down_proj" in t else 0
    per_layer += 3 * i * d + len(t) * rank * d
    logits = shape.vocab_size * 12
    final_norm = 4 * h + 4
    tokens = batch * seq
    mask = batch * seq * seq if padded else 0  # the boolean padding mask, shared by all layers
    if gradient_checkpointing:
        # The peak is either the loss's backward (logits) or one layer recomputed with its gradients.
        layers = shape.num_layers * h * d + max(logits, 2 * per_layer)
        formula = _("tokens x (L x h x d + max(logits {logits} B, 2 x one layer {per_layer} B)) + final norm + padding mask").format(
            logits=logits, per_layer=per_layer)
        return tokens * (layers + final_norm) + mask, formula
    layers = shape.num_layers * per_layer
    formula = _("tokens x (L x {per_layer} B per layer + logits {logits} B + final norm) + padding mask").format(
        per_layer=per_layer, logits=logits)
    return tokens * (layers + final_norm + logits) + mask, formula


# ---------------------------------------------------------------------------------------- result

@dataclass(frozen=True)
class MemoryItem:
    name: str  # English, a stable id (JSON, bench/estimate_accuracy.py look rows up by it); text and HTML show _(name)
    bytes: int
    exact: bool
    how: str  # in the language of the run


def rows_text(items: Sequence[MemoryItem], total: tuple[str, int, str] | None = None) -> list[str]:
    """The table of a text rendering: name, size, exact or estimate, how; aligned in terminal columns."""
    rows = [(_(it.name), size(it.bytes), _("exact") if it.exact else _("estimate"), it.how) for it in items]
    if total is not None:
        rows.append((total[0], size(total[1]), _("estimate"), total[2]))
    w = max(width(r[0]) for r in rows)
    kind_w = max(width(_("exact")), width(_("estimate")))
    return [f"  {ljust(name, w)}  {rjust(amount, 10)}  {ljust(kind, kind_w)}  {how}" for name, amount, kind, how in rows]


def table_html(items: Sequence[MemoryItem], total_row: list | None = None) -> str:
    rows = [[html.escape(_(it.name)), (size(it.bytes), "text-align:right"), html.escape(_("exact") if it.exact else _("estimate")),
             (html.escape(it.how), "text-align:left")] for it in items]
    if total_row is not None:
        rows.append(total_row)
    header = [html.escape(_("memory")), html.escape(_("size")), html.escape(_("kind")), (html.escape(_("how")), "text-align:left")]
    return html_table(header, rows)


@dataclass(frozen=True)
class Estimate:
    model: str
    model_type: str
    base_params: int
    trainable_params: int
    lora_rank: int
    lora_targets: tuple[str, ...]
    dtype: str
    cutoff_len: int
    batch_size: int
    gradient_accumulation_steps: int
    zero_stage: int | None
    num_devices: int
    gradient_checkpointing: bool
    device_kind: str
    items: tuple[MemoryItem, ...]
    device_name: str | None = None
    device_memory_bytes: int | None = None
    device_source: str | None = None  # "named", "detected" or "given"
    processes_sharing_device: int = 1  # CPU: every process on the node takes from the same RAM
    notes: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = field(default=())

    @property
    def total_params(self) -> int:
        return self.base_params + self.trainable_params

    @property
    def per_device_bytes(self) -> int:
        return sum(it.bytes for it in self.items)

    @property
    def needed_bytes(self) -> int:
        return self.per_device_bytes * self.processes_sharing_device

    @property
    def verdict(self) -> str:
        if not self.device_memory_bytes:
            return "unknown"
        ratio = self.needed_bytes / self.device_memory_bytes
        return "fits" if ratio <= FIT_HEADROOM else "tight" if ratio <= 1.0 else "does not fit"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["items"] = [asdict(it) for it in self.items]
        d.update(total_params=self.total_params, per_device_bytes=self.per_device_bytes, needed_bytes=self.needed_bytes, verdict=self.verdict,
                 per_device_gib=round(self.per_device_bytes / GiB, 3),
                 device_memory_gib=round(self.device_memory_bytes / GiB, 3) if self.device_memory_bytes else None)
        return d

    def _headline(self) -> str:
        need = _("{size} per device").format(size=size(self.per_device_bytes))
        if self.processes_sharing_device > 1:
            need += _(" x {count} processes = {size}").format(count=self.processes_sharing_device, size=size(self.needed_bytes))
        if not self.device_memory_bytes:
            return _("needs about {need}; no device memory to compare with (name one with --device)").format(need=need)
        return _("{verdict}: needs about {need}; {device} has {memory} ({percent}%)").format(
            verdict=_(VERDICT_HEADLINE[self.verdict]), need=need, device=self.device_name, memory=size(self.device_memory_bytes),
            percent=f"{100 * self.needed_bytes / self.device_memory_bytes:.0f}")

    def _settings(self) -> str:
        zero = _("no DeepSpeed") if self.zero_stage is None else f"ZeRO-{self.zero_stage}"
        return _("{model} ({model_type}): {base} base parameters (exact), LoRA r={rank} on {targets}: {trainable} trainable "
                 "(exact, {percent}% of {total}). {dtype}, cutoff_len {cutoff_len}, batch {batch} x accumulation {accumulation} "
                 "x {devices} device(s), {zero}, gradient checkpointing {checkpointing}, {device_kind}.").format(
            model=self.model, model_type=self.model_type, base=f"{self.base_params:,}", rank=self.lora_rank,
            targets=",".join(self.lora_targets), trainable=f"{self.trainable_params:,}",
            percent=f"{100 * self.trainable_params / self.total_params:.3f}", total=f"{self.total_params:,}", dtype=self.dtype,
            cutoff_len=self.cutoff_len, batch=self.batch_size, accumulation=self.gradient_accumulation_steps, devices=self.num_devices,
            zero=zero, checkpointing=_("on") if self.gradient_checkpointing else _("off"), device_kind=self.device_kind)

    def render_text(self) -> str:
        lines = [self._headline(), self._settings(), ""]
        lines += rows_text(self.items, (_("total"), self.per_device_bytes, _("per device")))
        lines += [""] + [_("note: {note}").format(note=n) for n in self.notes]
        lines += [_("to fit: {suggestion}").format(suggestion=s) for s in self.suggestions]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render_text()

    def __repr__(self) -> str:  # what a notebook shows as text (and saves beside the HTML)
        return self.render_text()

    def _repr_html_(self) -> str:
        colour = VERDICT_COLOUR.get(self.verdict, "inherit")
        total = ["<b>" + html.escape(_("total")) + "</b>", (f"<b>{size(self.per_device_bytes)}</b>", "text-align:right"),
                 html.escape(_("estimate")), html.escape(_("per device"))]
        to_fit = html.escape(_("to fit:"))
        extra = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        extra += "".join(f"<li><b>{to_fit}</b> {html.escape(s)}</li>" for s in self.suggestions)
        return (f"<p style='color:{colour}'><b>{html.escape(self._headline())}</b></p><p>{html.escape(self._settings())}</p>"
                + table_html(self.items, total) + f"<ul>{extra}</ul>")


# ------------------------------------------------------------------------------------- estimate

def estimate(config: str | Path | Mapping[str, Any], *, lora_rank: int = 8, lora_target: str | Sequence[str] = "all",
             dtype: str = "bf16", cutoff_len: int = 1024, batch_size: int = 1, gradient_accumulation_steps: int = 1,
             zero_stage: int | None = None, num_devices: int = 1, nnodes: int = 1, gradient_checkpointing: bool = True,
             device: str | None = None, device_memory_gib: float | None = None, attention: str = "sdpa",
             trust_remote_code: bool = False, suggest: bool = True) -> Estimate:
    """Estimate memory per device for LoRA SFT.

    ``config``: config.json, its folder or its contents. ``zero_stage``: DeepSpeed ZeRO stage (0-3) or
    None without DeepSpeed. ``num_devices``: data-parallel processes in all (nproc_per_node x nnodes).
    ``device``: a name from KNOWN_DEVICES (kit.estimate.devices) or "cpu"; None detects this machine's device.
    ``device_memory_gib`` overrides the memory compared with.
    """
    raw, source = read_model_config(config)
    if dtype not in DTYPE_BYTES:
        raise EstimateError(_("dtype {dtype!r}: use one of {allowed}").format(dtype=dtype, allowed=", ".join(DTYPE_BYTES)))
    if zero_stage not in (None, 0, 1, 2, 3):
        raise EstimateError(_("zero_stage {stage!r}: use 0, 1, 2, 3 or None (no DeepSpeed)").format(stage=zero_stage))
    if attention not in ("sdpa", "eager"):
        raise EstimateError(_("attention {attention!r}: use sdpa or eager").format(attention=attention))
    for name, value in (("lora_rank", lora_rank), ("cutoff_len", cutoff_len), ("batch_size", batch_size),
                        ("gradient_accumulation_steps", gradient_accumulation_steps), ("num_devices", num_devices), ("nnodes", nnodes)):
        if not isinstance(value, int) or value < 1:
            raise EstimateError(_("{key} {value!r}: must be a whole number >= 1").format(key=name, value=value))
    counts = count_parameters(config, lora_rank, lora_target, trust_remote_code)
    shape, targets, base, trainable = counts.shape, counts.targets, counts.base, counts.trainable

    if device_memory_gib is not None:
        dev_mem, dev_source = int(device_memory_gib * GiB), "given"
        try:
            dev_name, _bytes, kind = lookup_device(device) if device else (_("given memory"), 0, "npu")
        except DeviceMemoryError:  # an unlisted name is fine when the memory is given: guess its kind from the name
            dev_name = device
            kind = "npu" if any(s in device.lower() for s in ("910", "310", "ascend", "npu")) else "cuda"
    elif device:
        (dev_name, dev_mem, kind), dev_source = lookup_device(device), "named"
    else:
        (dev_name, dev_mem, kind), dev_source = detect_device(), "detected"

    d = DTYPE_BYTES[dtype]
    n = num_devices
    zero = zero_stage or 0
    shard_w, shard_g, shard_o = (n if zero >= 3 else 1), (n if zero >= 2 else 1), (n if zero >= 1 else 1)
    # Mixed precision under DeepSpeed keeps an fp32 master copy of the trainable weights in the optimizer.
    master = 4 if (zero_stage is not None and d != 4) else 0

    def sharded(shards: int, stage: int) -> str:
        return _(" / {count} devices (ZeRO-{stage})").format(count=n, stage=stage) if shards > 1 else ""

    moments = (_("AdamW: 2 moments + fp32 master copy = {count} x {bytes} B") if master
               else _("AdamW: 2 moments = {count} x {bytes} B")).format(count=f"{trainable:,}", bytes=8 + master)
    items = [
        MemoryItem(N_("base weights"), -(-base * d // shard_w), True,
                   _("{count} frozen parameters x {bytes} B ({dtype})").format(count=f"{base:,}", bytes=d, dtype=dtype) + sharded(shard_w, 3)),
        MemoryItem(N_("LoRA weights"), -(-trainable * 4 // shard_w), True,
                   _("{count} x 4 B (trainable parameters are kept in fp32)").format(count=f"{trainable:,}") + sharded(shard_w, 3)),
        MemoryItem(N_("LoRA gradients"), -(-trainable * 4 // shard_g), True,
                   _("{count} x 4 B (fp32)").format(count=f"{trainable:,}") + sharded(shard_g, zero)),
        MemoryItem(N_("optimizer state"), -(-trainable * (8 + master) // shard_o), True,
                   moments + sharded(shard_o, zero)),
    ]
    act, formula = activation_bytes(shape, targets, lora_rank, d, batch_size, cutoff_len, gradient_checkpointing, attention)
    how_act = (_("{batch} x {cutoff_len} tokens at cutoff_len, with gradient checkpointing, {attention} attention: {formula} "
                 "(kit.estimate.activation_bytes)") if gradient_checkpointing else
               _("{batch} x {cutoff_len} tokens at cutoff_len, without gradient checkpointing, {attention} attention: {formula} "
                 "(kit.estimate.activation_bytes)"))
    items.append(MemoryItem(N_("activations"), act, False,
                            how_act.format(batch=batch_size, cutoff_len=cutoff_len, attention=attention, formula=formula)))
    dynamic = sum(it.bytes for it in items)
    overhead = int(OVERHEAD_FIXED[kind] + FRAGMENTATION[kind] * dynamic)
    items.append(MemoryItem(N_("framework overhead"), overhead, False,
                            _("{fixed} fixed for the {kind} runtime + {percent} of the rest held by the allocator").format(
                                fixed=size(OVERHEAD_FIXED[kind]), kind=kind, percent=f"{FRAGMENTATION[kind]:.0%}")
                            + (_(" (measured on CPU)") if kind == "cpu" else _(" (rule of thumb)"))))

    notes = [
        _("exact: parameter counts, and bytes for weights, gradients and optimizer state under the stated precision"),
        _("estimate: activations (formula, at the longest sequence cutoff_len allows; shorter batches use less), framework overhead"),
        _("gradient accumulation ({steps}) adds no memory: gradients accumulate in place; effective batch {batch} sequences").format(
            steps=gradient_accumulation_steps, batch=batch_size * gradient_accumulation_steps * num_devices),
    ]
    if shape.model_type not in DENSE_DECODERS:
        notes.append(_("activations: the formula follows the dense Qwen2 / Llama layout; {model_type} differs "
                       "(e.g. mixture-of-experts or fused projections), so take that row as a rough guide").format(model_type=shape.model_type))
    if zero_stage is None and num_devices > 1:
        notes.append(_("{count} devices without DeepSpeed: plain DDP, every device holds everything").format(count=num_devices))
    sharing = max(1, num_devices // max(1, nnodes)) if kind == "cpu" else 1
    result = Estimate(
        model=raw.get("_name_or_path") or source, model_type=shape.model_type, base_params=base,
        trainable_params=trainable, lora_rank=lora_rank, lora_targets=targets, dtype=dtype, cutoff_len=cutoff_len,
        batch_size=batch_size, gradient_accumulation_steps=gradient_accumulation_steps, zero_stage=zero_stage,
        num_devices=num_devices, gradient_checkpointing=gradient_checkpointing, device_kind=kind, items=tuple(items),
        device_name=dev_name, device_memory_bytes=dev_mem, device_source=dev_source, processes_sharing_device=sharing,
        notes=tuple(notes))
    if suggest and result.verdict in ("tight", "does not fit"):
        result = replace(result, suggestions=tuple(_suggestions(config, result, device=dev_name, memory=dev_mem, kind=kind,
                                                                 attention=attention, nnodes=nnodes, trust_remote_code=trust_remote_code)))
    return result


def _suggestions(config: str | Path | Mapping[str, Any], e: Estimate, device: str, memory: int, kind: str, attention: str,
                 nnodes: int, trust_remote_code: bool) -> list[str]:
    """Settings that would bring the estimate under the device's memory, each tried on its own."""
    base = dict(lora_rank=e.lora_rank, lora_target=e.lora_targets, dtype=e.dtype, cutoff_len=e.cutoff_len, batch_size=e.batch_size,
                gradient_accumulation_steps=e.gradient_accumulation_steps, zero_stage=e.zero_stage, num_devices=e.num_devices,
                nnodes=nnodes, gradient_checkpointing=e.gradient_checkpointing, device=device if kind != "cpu" else "cpu",
                device_memory_gib=memory / GiB, attention=attention, trust_remote_code=trust_remote_code, suggest=False)
    tries: list[tuple[str, dict[str, Any]]] = []
    if not e.gradient_checkpointing:
        tries.append((_("turn gradient checkpointing on (disable_gradient_checkpointing: false)"), {"gradient_checkpointing": True}))
    if e.batch_size > 1:
        steps = e.batch_size * e.gradient_accumulation_steps
        tries.append((_("per_device_train_batch_size: 1, gradient_accumulation_steps: {steps} (same effective batch)").format(steps=steps),
                      {"batch_size": 1, "gradient_accumulation_steps": steps}))
    if e.dtype == "fp32":
        tries.append((_("bf16: true (910B and recent GPUs; fp16: true otherwise)"), {"dtype": "bf16"}))
    if e.num_devices > 1 and (e.zero_stage or 0) < 3:
        tries.append((_("deepspeed: ds_z3_config.json (ZeRO-3 shards the weights over {count} devices)").format(count=e.num_devices),
                      {"zero_stage": 3}))
    if e.cutoff_len > 256:
        tries.append((f"cutoff_len: {e.cutoff_len // 2}", {"cutoff_len": e.cutoff_len // 2}))
    out = []
    verdicts = []
    for text, change in tries:
        alt = estimate(config, **{**base, **change})  # the counts come from count_parameters' cache
        out.append(_("{change}: {size} ({verdict})").format(change=text, size=size(alt.needed_bytes), verdict=_(VERDICT_WORD[alt.verdict])))
        verdicts.append(alt.verdict)
    if len(tries) > 1 and "fits" not in verdicts:
        combined: dict[str, Any] = {}
        for _text, change in tries:
            combined.update(change)
        alt = estimate(config, **{**base, **combined})
        out.append(_("all of the above together: {size} ({verdict})").format(size=size(alt.needed_bytes), verdict=_(VERDICT_WORD[alt.verdict])))
    if not out:
        out.append(_("use more devices with ZeRO-3, a device with more memory, or a smaller model"))
    return out


# ------------------------------------------------------------------------------- inference steps

# What each step that loads a model holds at its peak, besides training (``estimate``):
#   chat    the chat engine (huggingface backend): weights in the inference dtype, the LoRA layers
#           (peft keeps an unmerged adapter in fp32), the KV cache of one conversation, one layer's
#           working memory at the prompt's prefill, the runtime;
#   vllm    vLLM takes gpu_memory_utilization x the card by design and must fit weights, LoRA slots
#           and one sequence's KV cache inside it;
#   export  kit export loads on the CPU (host RAM), never on the card: weights in the checkpoint's
#           dtype, the adapter merged in place, one shard being written.


# ------------------------------------------------------------------------------------------- from a kit config

def _zero_stage_of(cfg: Any, config_path: Path) -> int | None:
    if not cfg.train.deepspeed:
        return None
    from kit.config.deepspeed import find_deepspeed_config, read_deepspeed_config, stage_of

    return stage_of(read_deepspeed_config(find_deepspeed_config(cfg.train.deepspeed, config_path.parent)))


def model_config_dir(name: str | None, cache_dir: str | None) -> Path:
    local = Path(name).expanduser() if name else None
    if local is not None and local.is_dir():  # no hub call (and no download) for a local folder
        return local
    from kit.hub import resolve_model

    return resolve_model(name, cache_dir=cache_dir, config_only=True)


# The config.json values of the example YAMLs' models, with their sources: what the estimate uses when the
# model's own config.json cannot be had (not a local folder, not cached, no download).
STORED_SHAPES_FILE = Path(__file__).with_name("model_shapes.json")


@functools.lru_cache(maxsize=1)
def _stored_shapes() -> dict[str, dict[str, Any]]:
    """Each stored model's entry by its lower-case hub id and aliases (ids are matched whatever their case)."""
    data = json.loads(STORED_SHAPES_FILE.read_text(encoding="utf-8"))
    out: dict[str, dict[str, Any]] = {}
    for model_id, entry in data["models"].items():
        for key in (model_id, *entry.get("aliases", ())):
            out[key.lower()] = {**entry, "id": model_id}
    return out


def stored_model_config(name: str | None) -> dict[str, Any] | None:
    """The kit's stored copy of config.json for ``name`` (a hub id, any case) from model_shapes.json, or None.

    Only the models of the kit's example YAMLs are stored; the copy names the hub id as ``_name_or_path``.
    """
    entry = _stored_shapes().get((name or "").strip().lower())
    if entry is None:
        return None
    return {**entry["config"], "_name_or_path": name}


def model_config_source(name: str | None, cache_dir: str | None) -> tuple[Path | dict[str, Any], str | None]:
    """The model's config.json for an estimate: (its folder, None), or (the stored copy, a note saying so).

    A local folder, the hub cache and the download (``model_config_dir``) come first; the stored copy
    (``stored_model_config``) only when they fail for a model the kit stores. Any other model's failure is raised.
    """
    from kit.hub import HubError

    try:
        return model_config_dir(name, cache_dir), None
    except HubError:
        stored = stored_model_config(name)
        if stored is None:
            raise
    return stored, _("{name} is not on this machine, so the estimate uses the kit's stored copy of the model's shape "
                     "(the config.json figures from the Hugging Face hub in kit/estimate/model_shapes.json); "
                     "no weights are needed").format(name=name)


def estimate_for_config(cfg: Any, device: str | None = None, device_memory_gib: float | None = None,
                        nproc: int = 1, nnodes: int = 1) -> "Estimate":
    """The estimate for a loaded kit Config (what ``kit estimate`` and the SFT notebook show)."""
    model_dir, stored_note = model_config_source(cfg.model.model_name_or_path, cfg.model.cache_dir)
    dtype = "bf16" if cfg.train.bf16 else "fp16" if cfg.train.fp16 else "fp32"
    config_path = Path(cfg.source) if cfg.source else Path.cwd() / "config.yaml"
    result = estimate(model_dir, lora_rank=cfg.finetune.lora_rank, lora_target=cfg.finetune.lora_target, dtype=dtype,
                      cutoff_len=cfg.data.cutoff_len, batch_size=cfg.train.per_device_train_batch_size,
                      gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
                      zero_stage=_zero_stage_of(cfg, config_path), num_devices=nproc * nnodes, nnodes=nnodes,
                      gradient_checkpointing=cfg.train.disable_gradient_checkpointing is not True,
                      device=device, device_memory_gib=device_memory_gib, trust_remote_code=cfg.model.trust_remote_code)
    return replace(result, notes=(stored_note, *result.notes)) if stored_note else result
