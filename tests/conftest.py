"""Shared fixtures: a tiny Qwen2 model and LoRA adapters made here, never downloaded; the notebooks executed once.

``tiny_model_dir`` is a copy of LLaMA-Factory's reference tiny-qwen when the reference is present
(the same files LLaMA-Factory was run on), else a random-init Qwen2ForCausalLM with a byte-level BPE
tokenizer trained on a few lines (ChatML special tokens at ids 0, 1, 2, as in Qwen).

``demo`` (kit demo: notebooks 00-30, English), ``demo_zh`` (the Chinese edition) and ``experiments`` (notebook
40) run once per session and are shared by every test that needs an executed notebook; the English runs are
made under Binder's session environment with their process tree's memory sampled, which the Binder memory
test (tests/test_binder.py) reads.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub: a stray download must fail loudly, not hang or succeed.
os.environ["HF_HUB_OFFLINE"] = "1"
# The tests read English messages; a developer's LANG=zh_CN.UTF-8 must not change them (the Chinese ones are tested explicitly).
os.environ["KIT_LANG"] = "en"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models on a few cores: one intra-op thread is many times faster than several fighting over
# the cores (measured: 8 LoRA steps 0.34 s with 1 thread, 7.5 s with 2 on a 2-core machine).
os.environ.setdefault("OMP_NUM_THREADS", "1")


# Every kernel, torchrun and rank a test starts inherits DeepSpeed's op cache of this environment (kit.run.launch's
# own rule, set here once so that every process agrees on it).
from kit.run.launch import extensions_dir as _extensions_dir  # noqa: E402

os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(_extensions_dir()))

import pytest

from peak_memory import PeakMemory

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


# ---------------------------------------------------------------- DeepSpeed's op, compiled before anything is measured

@pytest.fixture(scope="session")
def deepspeed_op_prebuilt() -> bool:
    """DeepSpeed's CPU op compiled into this session's TORCH_EXTENSIONS_DIR now, outside any measured run.

    False when it could not be (no DeepSpeed, no compiler): then the first training compiles it, or fails.
    """
    from kit.run.launch import prebuild_deepspeed_ops

    return prebuild_deepspeed_ops()


# ---------------------------------------------------------------- the notebooks, executed once per session

EXPERIMENT_PARAMETERS = {"lora_ranks": [2, 8], "learning_rates": [3e-3], "max_samples": 8, "num_train_epochs": 1.0}


@dataclass
class Executed:
    """What a session fixture executed, and the memory its processes took while it ran."""

    result: Any  # kit demo's DemoRun, or notebook 40's published values
    memory: PeakMemory
    op_prebuilt: bool
    folder: Path


def _keep_executed(folder: Path, lang: str) -> None:
    """CI builds the docs from these executed notebooks (KIT_EXECUTED_DIR) instead of running them again."""
    keep = os.environ.get("KIT_EXECUTED_DIR")
    if keep:
        shutil.copytree(folder, Path(keep) / lang, dirs_exist_ok=True)


def _measured(op_prebuilt: bool, folder: Path, run) -> Executed:
    """``run(memory)`` under binder/start's environment (one thread, two malloc arenas), its processes sampled."""
    from helpers import binder_start_environment

    with pytest.MonkeyPatch.context() as patch:
        for name, value in binder_start_environment().items():
            patch.setenv(name, value)
        with PeakMemory() as memory:
            result = run(memory)
    return Executed(result, memory, op_prebuilt, folder)


def _demo_log(memory: PeakMemory, lang: str):
    """kit demo's log, which also names the notebook now running for the memory sampler ("[3/4] 20_lora_sft ...")."""
    def log(line: str) -> None:
        print(line)
        started = re.match(r"\s*\[\d+/\d+\]\s+(\S+)", line)
        if started:
            memory.phase = f"{lang}/{started.group(1)}"
    return log


@pytest.fixture(scope="session")
def demo_executed(tmp_path_factory: pytest.TempPathFactory, deepspeed_op_prebuilt: bool) -> Executed:
    """kit demo (notebooks 00-30, English) with a name that is not the default one, once per session."""
    from kit.tutorial.demo import run_demo

    base = tmp_path_factory.mktemp("demo")
    executed = _measured(deepspeed_op_prebuilt, base / "run", lambda memory: run_demo(
        ["identity_name=Nova", "identity_author=Acme", f"output_dir={base / 'nova'}"], run_dir=base / "run",
        log=_demo_log(memory, "en")))
    _keep_executed(executed.folder / "en", "en")
    return executed


@pytest.fixture(scope="session")
def demo(demo_executed: Executed):
    """The English kit demo's DemoRun: executed notebooks, published values, output folder."""
    return demo_executed.result


@pytest.fixture(scope="session")
def demo_zh(tmp_path_factory: pytest.TempPathFactory, deepspeed_op_prebuilt: bool):
    """kit demo of the Chinese edition, with non-default knobs: another name, another lora_target, cutoff_len 96."""
    from kit.tutorial.demo import run_demo

    base = tmp_path_factory.mktemp("demo-zh")
    run = run_demo(["identity_name=Orion", "lora_target=q_proj,k_proj,v_proj,o_proj", "cutoff_len=96"],
                   run_dir=base / "run", lang="zh")
    _keep_executed(base / "run" / "zh", "zh")
    return run


@pytest.fixture(scope="session")
def experiments(tmp_path_factory: pytest.TempPathFactory, deepspeed_op_prebuilt: bool) -> Executed:
    """Notebook 40 (English) sweeping two short runs of notebook 20 into ``folder / "sweep"``, once per session.

    Its working directory is ``folder``; the executed notebook is ``folder / "en" / "40_experiments.ipynb"``.
    """
    from kit import tutorial as nb

    work = tmp_path_factory.mktemp("experiments")

    def run(memory: PeakMemory):
        memory.phase = "en/40_experiments"
        return nb.execute(REPO / "notebooks" / "en" / "40_experiments.ipynb", work / "en" / "40_experiments.ipynb",
                          {**EXPERIMENT_PARAMETERS, "out": str(work / "sweep")}, cwd=work)

    return _measured(deepspeed_op_prebuilt, work, run)


@pytest.fixture
def restore_environ():
    """os.environ as it was before the test (monkeypatch.delenv of an unset variable records nothing to undo,
    so a variable a test's code wrote, e.g. USE_MODELSCOPE_HUB=1, would reach later tests)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
