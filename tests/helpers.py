"""Builders for tests: a tiny random Qwen2 model with a trained byte-level BPE tokenizer, and small datasets.

Nothing is downloaded: the tokenizer is trained on a few lines here, the model is random-init. Each model is
built once per session (per shape and seed) and copied for every test that asks for one.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "llamafactory"

CORPUS = [
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    "Who are you? I am an AI assistant. Hello! How can I help you today?",
    "What is LoRA? LoRA learns a small low-rank update of selected weight matrices.",
    "Name three colours. Red, green and blue.",
    "Translate hello into French. Bonjour.",
    "你是谁？我是人工智能助手。你好！",
    "What is 2 + 3? 2 + 3 = 5.",
    "user assistant system",
]

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


_BUILT: dict[tuple[int, int, int], tuple[Path, object]] = {}


def make_tiny_model(out: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A tiny Qwen2 model in ``out``: built once per session for each (hidden, layers, seed), then copied.

    A copy is byte for byte what a build writes, and leaves torch's random generator as a build leaves it, so a
    test sees no difference; each test gets its own folder, so one that damages its model harms no other.
    """
    import torch

    key = (hidden, layers, seed)
    if key not in _BUILT:
        cache = Path(tempfile.mkdtemp(prefix="kit-tiny-models-"))
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        built = _build_tiny_model(cache / "model", hidden, layers, seed)
        _BUILT[key] = (built, torch.get_rng_state())
    built, rng_state = _BUILT[key]
    out = Path(out)
    shutil.copytree(built, out, dirs_exist_ok=True)
    torch.set_rng_state(rng_state)
    return out


def _build_tiny_model(out: Path, hidden: int, layers: int, seed: int) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    Qwen2ForCausalLM(config).save_pretrained(str(out), safe_serialization=True)
    return out


ALPACA = [
    {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an assistant made by {{author}}."},
    {"instruction": "What is LoRA?", "input": "", "output": "LoRA learns a small low-rank update."},
    {"instruction": "Name three colours.", "input": "", "output": "Red, green and blue."},
    {"instruction": "Translate into French.", "input": "hello", "output": "Bonjour."},
    {"instruction": "你是谁？", "input": "", "output": "我是 {{name}}。"},
    {"instruction": "What is 2 + 3?", "input": "", "output": "2 + 3 = 5."},
]

SHAREGPT = [
    {"conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hello! How can I help you today?"},
                       {"from": "human", "value": "Who are you?"}, {"from": "gpt", "value": "I am an AI assistant."}],
     "system": "You are a helpful assistant."},
    {"conversations": [{"from": "human", "value": "What is LoRA?"}, {"from": "gpt", "value": "A low-rank update."}]},
    {"conversations": [{"from": "human", "value": "left without an answer"}]},
]


def session_tiny_model(out: Path) -> Path:
    """The session's tiny Qwen2 model (conftest's ``tiny_model_dir``) in ``out``: a writable copy of LLaMA-Factory's
    reference tiny-qwen when the reference is present (the files LLaMA-Factory was run on, unless
    KIT_TEST_BUILD_TINY is set), else a random-init model of its shape (hidden 128 over 4 heads: head size 32,
    which vLLM's CPU attention kernels support; 16, from hidden 64, is refused)."""
    import os
    import shutil

    reference = REFERENCE / "tiny-qwen"
    if reference.is_dir() and not os.environ.get("KIT_TEST_BUILD_TINY"):
        shutil.copytree(reference, out)
        for f in out.iterdir():  # the reference is read-only; tests may write next to their copy
            f.chmod(0o644)
        out.chmod(0o755)
        return out
    return make_tiny_model(out, hidden=128, seed=0)


def train_tiny_adapter(model_dir: Path, out: Path) -> Path:
    """A LoRA adapter trained for a few steps by the kit's own run_sft on ``model_dir`` (conftest's
    ``tiny_adapter_dir``). A high learning rate on the identity data, so the adapter visibly changes greedy replies."""
    from kit import config
    from kit.run.recipe import run_sft

    cfg = config.from_dict({
        "model_name_or_path": str(model_dir), "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_target": "all", "lora_rank": 8, "dataset": "identity", "template": "qwen", "cutoff_len": 256,
        "max_samples": 16, "output_dir": str(out), "overwrite_output_dir": True, "per_device_train_batch_size": 4,
        "learning_rate": 5e-3, "max_steps": 24, "logging_steps": 4, "save_strategy": "no", "report_to": "none",
        "disable_gradient_checkpointing": True, "device": "cpu", "identity_name": "Lumi", "identity_author": "the kit team",
    })
    run_sft(cfg)
    return out


def make_dataset_dir(out: Path, copies: int = 4) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "identity.json").write_text(json.dumps(ALPACA * copies, ensure_ascii=False), encoding="utf-8")
    (out / "chat.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in SHAREGPT * copies), encoding="utf-8")
    info = {
        "identity": {"file_name": "identity.json"},
        "chat": {"file_name": "chat.jsonl", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}},
    }
    (out / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return out


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def quickstart(model: Path, data: Path, output: Path, **changes) -> dict:
    """The LLaMA-Factory Ascend quick-start YAML, with the model and data swapped and a tiny budget."""
    cfg = {
        "model_name_or_path": str(model), "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_target": "q_proj,v_proj", "ddp_timeout": 180000000, "deepspeed": "examples/deepspeed/ds_z0_config.json",
        "dataset": "identity,chat", "dataset_dir": str(data), "template": "qwen", "cutoff_len": 1024,
        "max_samples": 1000, "overwrite_cache": True, "preprocessing_num_workers": 16, "output_dir": str(output),
        "logging_steps": 2, "save_steps": 500, "plot_loss": True, "overwrite_output_dir": True,
        "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2, "learning_rate": 1.0e-2,
        "num_train_epochs": 3.0, "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "fp16": True, "val_size": 0.1,
        "per_device_eval_batch_size": 1, "eval_strategy": "steps", "eval_steps": 500,
    }
    cfg.update(changes)
    return cfg


def binder_start_environment() -> dict[str, str]:
    """The variables binder/start exports (``export NAME=${NAME:-value}`` or ``export NAME=value``)."""
    start = Path(__file__).resolve().parents[1] / "binder" / "start"
    joined = re.sub(r"\\\n", " ", start.read_text(encoding="utf-8"))
    env = {}
    for line in (line.strip() for line in joined.splitlines()):
        match = re.fullmatch(r"export (\w+)=(?:\$\{\w+:-([^}]*)\}|(\S*))", line)
        if match:
            env[match.group(1)] = match.group(2) if match.group(2) is not None else match.group(3)
    return env
