"""Shared by the lessons: the model a lesson is about, its shapes on the meta device."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Mapping

from kit.config import Config


def lesson_model_dir(cfg: Config) -> Path:
    from kit.estimate import model_config_dir as resolve  # a local folder without a hub call, else config.json only

    return resolve(cfg.model.model_name_or_path, cfg.model.cache_dir)


def meta_model(config: str | Path | Mapping[str, Any], trust_remote_code: bool = False) -> Any:
    """The model on the meta device (shapes, no memory) from its folder or a config.json dict."""
    from kit import model as model_mod

    if isinstance(config, Mapping):
        with tempfile.TemporaryDirectory(prefix="kit-lessons-") as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(dict(config)), encoding="utf-8")
            return model_mod.meta_model(Path(tmp), trust_remote_code)
    return model_mod.meta_model(Path(config), trust_remote_code)


def linear_shapes(model: Any) -> dict[str, tuple[int, int, int]]:
    """Per linear-layer short name: (out_features, in_features, how many layers have one)."""
    import torch

    shapes: dict[str, tuple[int, int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            short = name.rsplit(".", 1)[-1]
            out_f, in_f, n = shapes.get(short, (module.out_features, module.in_features, 0))
            shapes[short] = (out_f, in_f, n + 1)
    return shapes


def matmul_parameters(config: str | Path | Mapping[str, Any], trust_remote_code: bool = False) -> int:
    """Weights that take part in a matrix multiply per token: every linear layer's weight, the output head included.

    The input embedding is a table lookup, not a multiply; a tied output head multiplies by the same
    table, so it counts once as the head.
    """
    return sum(o * i * n for o, i, n in linear_shapes(meta_model(config, trust_remote_code)).values())


# The quick start's model, Qwen1.5-7B (its config.json, the fields that fix its shape), so its time on a
# 910B and its LoRA figures can be worked out on any machine, offline.
QUICKSTART_MODEL = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 4096, "intermediate_size": 11008,
                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 151936,
                    "tie_word_embeddings": False, "max_position_embeddings": 32768}
