"""LoRA SFT on an accelerator through the kit's own path: tokens/s, model FLOPs utilisation, peak memory (JSON).

    python bench/gpu_train.py [--size 0.5b|7b|tiny] [--steps 200] [--cutoff_len 1024] [--targets q_proj,v_proj all]
                              [--deepspeed ds_z0_config.json ds_z2_config.json] [--gradient_checkpointing auto on off]
                              [--out DIR]

A Qwen2-architecture model of about 0.5B parameters (Qwen2-0.5B's shape; ``--size 7b``: the quick start's
Qwen1.5-7B shape, about 15 GB of bf16 weights written to --out or a temporary folder) is built from a config with
random weights (no download) and trained with `kit train`'s own launcher (kit.run.launch.launch_sft: the
plan, torchrun, DeepSpeed when installed, else plain DDP and the JSON says so), one process, bf16
where the device has it, on synthetic alpaca examples that fill cutoff_len, for each LoRA target
set, DeepSpeed config and gradient-checkpointing setting (auto: the kit decides from its memory
estimate and the log says which; on / off: disable_gradient_checkpointing false / true, forced).
``--size tiny`` runs the same on a CPU in a minute (how it was tested).

FLOPs per trained token, counted for what actually runs (frozen base + adapters):
  base linear layers (incl. lm_head): forward 2N, backward 2N for the input gradients only (the
  frozen weights get no gradient): 4N; plus 2N again when gradient checkpointing recomputes;
  LoRA A and B: 6 per parameter (forward, input and weight gradients);
  causal attention scores and values: 4 * layers * seq * hidden forward (half of a full square),
  x3 with the backward pass.
MFU = FLOPs/token x tokens/s against the device's dense bf16 spec (H100 SXM and H200: 989 TFLOP/s, H100
PCIe 756, A100 312; null for a device not in the table) and against what an 8192^3 bf16 matmul reaches on
the same device, measured before the runs (on an H100 or H200 about 790 TFLOP/s).

Two rates per run: over the Trainer's train_runtime (first steps, CUDA's and cuBLAS's warm-up included), and
steady, from the moments the Trainer's logging lines ({'loss': ...}, every logging_steps) reach this process:
the steps between the first and the last logged step over the time between them. MFU is given for both.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

# Dense bf16 tensor-core TFLOP/s from NVIDIA's data sheets, by a part of torch.cuda.get_device_name();
# the first that matches wins (the H100 PCIe before the SXM part's plain "H100").
SPEC_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0))
LOGGING_STEPS = 10


def spec_tflops() -> tuple[str | None, float | None]:
    import torch

    if not torch.cuda.is_available():
        return None, None
    name = torch.cuda.get_device_name()
    return name, spec_for(name)


def spec_for(device_name: str) -> float | None:
    return next((tflops for part, tflops in SPEC_TFLOPS if part in device_name), None)


def steady_rate(stamped: list[tuple[float, str]]) -> tuple[int, float] | None:
    """(steps, seconds) between the first and the last logged training step, from when their lines arrived."""
    times = [t for t, line in stamped if line.startswith("{'loss'") or line.startswith('{"loss"')]
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) * LOGGING_STEPS, times[-1] - times[0]

SHAPES = {
    # Qwen2-0.5B: 24 layers, hidden 896, 14 heads (2 kv), intermediate 4864, tied embeddings, vocab 151936
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    # Qwen1.5-7B (the quick start's model): 32 layers, hidden 4096, 32 heads (32 kv), intermediate 11008, vocab 151936
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=151936, tie_word_embeddings=False),
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=0, tie_word_embeddings=True),  # vocab: the tokenizer's
}


def build_model(folder: Path, size: str) -> dict:
    """A random-init Qwen2 model with the kit's tiny tokenizer (its ids fit any vocabulary this large)."""
    import shutil

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from kit import tiny

    folder.mkdir(parents=True, exist_ok=True)
    for f in tiny.path().iterdir():  # tokenizer files only
        if f.name.startswith(("tokenizer", "special_tokens", "vocab", "merges", "added_tokens", "chat_template")):
            shutil.copy(f, folder / f.name)
    shape = dict(SHAPES[size])
    from transformers import AutoTokenizer

    shape["vocab_size"] = max(shape["vocab_size"], len(AutoTokenizer.from_pretrained(str(folder))))
    config = Qwen2Config(**shape, max_position_embeddings=32768, rope_theta=1e6, torch_dtype="bfloat16")
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # built in bf16 directly: a 7B model in fp32 first would need 30 GB
    try:
        # On the GPU when there is one: initialising 7B random weights there takes seconds, on the CPU minutes.
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(torch.float32)
    model.save_pretrained(folder, safe_serialization=True)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the training process gets the whole card
    return shape


def write_data(folder: Path, n: int, words: int) -> None:
    """Alpaca examples long enough to be cut at cutoff_len: every step trains full-length sequences."""
    import random

    rng = random.Random(0)
    vocab = ("the model learns a small low rank update to its attention projections while the base weights stay "
             "frozen and the optimizer only keeps moments for the adapter").split()
    rows = [{"instruction": f"Write about topic {i}.", "input": "",
             "output": " ".join(rng.choice(vocab) for _ in range(words))} for i in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "long.json").write_text(json.dumps(rows), encoding="utf-8")
    (folder / "dataset_info.json").write_text(json.dumps({"long": {"file_name": "long.json"}}), encoding="utf-8")


# the kit's key: absent lets the memory estimate decide; false forces recomputation on, true off
CHECKPOINTING = {"auto": None, "on": False, "off": True}


def flops_per_token(shape: dict, trainable: int, seq: int, checkpointing: bool) -> float:
    h, i, layers, v = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"], shape["vocab_size"]
    kv = h * shape["num_key_value_heads"] // shape["num_attention_heads"]
    per_layer = h * h + 2 * h * kv + h * h + 3 * h * i  # q, k, v, o, gate/up/down
    linear = layers * per_layer + v * h  # + lm_head (a matmul even when tied to the embedding)
    base = (4 + (2 if checkpointing else 0)) * linear
    attention = 3 * 4 * layers * seq * h / 2
    return base + 6 * trainable + attention


def matmul_tflops() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return round(2 * 8192**3 * reps / (time.perf_counter() - start) / 1e12, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SHAPES), default="0.5b")  # 7b: the quick start's Qwen1.5-7B shape
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--cutoff_len", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--targets", nargs="+", default=["q_proj,v_proj", "all"])
    ap.add_argument("--deepspeed", nargs="+", default=["ds_z0_config.json", "ds_z2_config.json"])
    ap.add_argument("--gradient_checkpointing", nargs="+", choices=sorted(CHECKPOINTING), default=["auto"])
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    # Libraries' notes (DeepSpeed's accelerator line, bound to stdout when it is imported) go to stderr:
    # stdout is this script's JSON alone.
    json_out, sys.stdout = sys.stdout, sys.stderr

    import torch

    from kit import config as config_mod, device as device_mod, i18n
    from kit.run import launch
    from kit.envvars import EnvSettings

    i18n.set_language("en")  # the log lines read below are the English ones
    info = device_mod.detect()
    device_name, spec = spec_tflops()
    matmul = matmul_tflops()  # before the runs, on a card nothing else uses
    has_ds = importlib.util.find_spec("deepspeed") is not None
    runs = []
    with tempfile.TemporaryDirectory(prefix="kit-gpu-bench-") as tmp:
        base = a.out or Path(tmp)
        shape = build_model(base / "model", a.size)
        write_data(base / "data", n=a.steps * a.batch + 16, words=a.cutoff_len)
        settings = [(ds, targets, gc) for ds in (a.deepspeed if has_ds else [None]) for targets in a.targets
                    for gc in a.gradient_checkpointing]
        for ds, targets, gc in settings:
            name = f"{(ds or 'ddp').split('_config')[0]}-{targets.replace(',', '+')}-gc_{gc}"
            out = base / name
            cfg = config_mod.from_dict({
                "model_name_or_path": str(base / "model"), "stage": "sft", "do_train": True, "finetuning_type": "lora",
                "lora_target": targets, "dataset": "long", "dataset_dir": str(base / "data"), "template": "qwen",
                "cutoff_len": a.cutoff_len, "output_dir": str(out), "overwrite_output_dir": True, "max_steps": a.steps,
                "per_device_train_batch_size": a.batch, "gradient_accumulation_steps": 1, "learning_rate": 1e-4,
                "lr_scheduler_type": "cosine", "warmup_ratio": 0.05, "logging_steps": LOGGING_STEPS, "save_steps": 100000,
                "bf16": info.bf16 and info.kind != "cpu", "deepspeed": ds, "report_to": "none",
                **({} if CHECKPOINTING[gc] is None else {"disable_gradient_checkpointing": CHECKPOINTING[gc]})})
            stamped: list[tuple[float, str]] = []
            start = time.perf_counter()
            code = launch.launch_sft(cfg, on_line=lambda line: stamped.append((time.perf_counter(), line)),
                                     env=EnvSettings.from_environ(
                {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1"}))
            wall = time.perf_counter() - start
            lines = [line for _, line in stamped]
            if code != 0:
                errors = [line for line in lines if "Error" in line and "ChildFailedError" not in line]
                runs.append({"run": name, "exit_code": code, "errors": errors[-5:], "tail": lines[-15:]})
                continue
            r = json.loads((out / "all_results.json").read_text())
            adapter = json.loads((out / "adapter_config.json").read_text())
            checkpointing = any("gradient checkpointing on" in line for line in lines)
            trainable = next((int(line.split("trainable params: ")[1].split()[0]) for line in lines
                              if "trainable params: " in line), 0)
            tokens = a.steps * a.batch * a.cutoff_len
            tokens_per_s = tokens / r["train_runtime"]
            steady = steady_rate(stamped)
            steady_tokens_per_s = steady[0] * a.batch * a.cutoff_len / steady[1] if steady else None
            fpt = flops_per_token(shape, trainable, a.cutoff_len, checkpointing)

            def mfu(rate: float | None, peak: float | None) -> float | None:
                return round(fpt * rate / 1e12 / peak, 4) if rate and peak else None

            achieved = fpt * tokens_per_s / 1e12
            runs.append({"run": name, "deepspeed": ds, "lora_target": targets, "target_modules": adapter["target_modules"],
                         "trainable_params": trainable, "gradient_checkpointing_asked": gc, "gradient_checkpointing": checkpointing,
                         "train_runtime_s": r["train_runtime"], "wall_s": round(wall, 1), "tokens_per_s": round(tokens_per_s),
                         "tflops_achieved": round(achieved, 2), "mfu_vs_spec": mfu(tokens_per_s, spec),
                         "mfu_vs_matmul": mfu(tokens_per_s, matmul),
                         "steady_steps": steady[0] if steady else None,
                         "steady_tokens_per_s": round(steady_tokens_per_s) if steady_tokens_per_s else None,
                         "steady_mfu_vs_spec": mfu(steady_tokens_per_s, spec),
                         "steady_mfu_vs_matmul": mfu(steady_tokens_per_s, matmul),
                         "peak_memory_gib": round(r.get("train_peak_memory_mib", 0) / 1024, 2), "train_loss": r["train_loss"]})
    print(json.dumps({"device": info.summary(), "torch": torch.__version__, "size": a.size, "shape": shape,
                      "steps": a.steps, "batch": a.batch, "cutoff_len": a.cutoff_len,
                      "deepspeed": "installed" if has_ds else "not installed: plain DDP, one process",
                      "gpu": device_name, "spec_tflops_bf16": spec, "matmul_tflops_measured": matmul,
                      "runs": runs}, indent=1), file=json_out)
    return 0 if all("exit_code" not in r for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
