"""Shared fixtures: a tiny Qwen2 model and LoRA adapters made here, never downloaded.

``tiny_model_dir`` is a copy of LLaMA-Factory's reference tiny-qwen when the reference is present
(the same files LLaMA-Factory was run on), else a random-init Qwen2ForCausalLM with a byte-level BPE
tokenizer trained on a few lines (ChatML special tokens at ids 0, 1, 2, as in Qwen).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Before anything imports huggingface_hub: a stray download must fail loudly, not hang or succeed.
os.environ["HF_HUB_OFFLINE"] = "1"
# The tests read English messages; a developer's LANG=zh_CN.UTF-8 must not change them (the Chinese ones are tested explicitly).
os.environ["KIT_LANG"] = "en"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models on a few cores: one intra-op thread is many times faster than several fighting over
# the cores (measured: 8 LoRA steps 0.34 s with 1 thread, 7.5 s with 2 on a 2-core machine).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference" / "llamafactory"
REFERENCE_TINY = REFERENCE / "tiny-qwen"


def build_tiny_qwen(out: Path, hidden_size: int = 128, seed: int = 0) -> Path:
    """A random-init Qwen2 model and a tokenizer trained here; small enough to build in a second.

    hidden 128 over 4 heads is the reference tiny-qwen's shape: head size 32, which vLLM's CPU attention
    kernels support (16, from hidden 64, is refused), so the vLLM comparison runs on either model.
    """
    from helpers import make_tiny_model

    return make_tiny_model(out, hidden=hidden_size, seed=seed)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 model folder (config, safetensors, tokenizer), writable, shared by the session."""
    out = tmp_path_factory.mktemp("models") / "tiny-qwen"
    if REFERENCE_TINY.is_dir() and not os.environ.get("KIT_TEST_BUILD_TINY"):
        shutil.copytree(REFERENCE_TINY, out)
        for f in out.iterdir():  # the reference is read-only; tests may write next to their copy
            f.chmod(0o644)
        out.chmod(0o755)
        return out
    return build_tiny_qwen(out)


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter trained for a few steps by the kit's own run_sft on tiny_model_dir.

    A high learning rate on the identity data, so the adapter visibly changes greedy replies.
    """
    from kit import config
    from kit.run.recipe import run_sft

    out = tmp_path_factory.mktemp("adapters") / "sft"
    cfg = config.from_dict({
        "model_name_or_path": str(tiny_model_dir), "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_target": "all", "lora_rank": 8, "dataset": "identity", "template": "qwen", "cutoff_len": 256,
        "max_samples": 16, "output_dir": str(out), "overwrite_output_dir": True, "per_device_train_batch_size": 4,
        "learning_rate": 5e-3, "max_steps": 24, "logging_steps": 4, "save_strategy": "no", "report_to": "none",
        "disable_gradient_checkpointing": True, "device": "cpu", "identity_name": "Lumi", "identity_author": "the kit team",
    })
    run_sft(cfg)
    return out


@pytest.fixture(scope="session")
def lf_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adapter in LLaMA-Factory's layout (adapter_config.json + adapter_model.safetensors only),
    made with peft directly, with the reference run's LoRA settings (q_proj,v_proj, r 8, alpha 16).

    The LoRA B weights are random rather than zero (init_lora_weights=False), so it changes replies.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    lora = LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    out = tmp_path_factory.mktemp("adapters") / "lf-layout"
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def base(tiny_model_dir: Path):
    """A greedy chat engine over the tiny base model."""
    from kit.chat import Engine

    return Engine(tiny_model_dir, do_sample=False, max_new_tokens=24)


@pytest.fixture(scope="session")
def tuned(tiny_model_dir: Path, tiny_adapter_dir: Path):
    """A greedy chat engine with the tiny adapter merged."""
    from kit.chat import Engine

    return Engine(tiny_model_dir, tiny_adapter_dir, do_sample=False, max_new_tokens=24)


@pytest.fixture
def restore_environ():
    """os.environ as it was before the test (monkeypatch.delenv of an unset variable records nothing to undo,
    so a variable a test's code wrote, e.g. USE_MODELSCOPE_HUB=1, would reach later tests)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
