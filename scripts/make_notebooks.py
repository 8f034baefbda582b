"""Write notebooks/en and notebooks/zh from one source, so both editions have identical code cells.

    python scripts/make_notebooks.py          # rewrite the notebooks (committed without outputs)
    python scripts/make_notebooks.py --check  # exit 1 if the committed notebooks differ from this source

Each notebook: a title cell (what it does, what it needs, how long), exactly one cell tagged
`parameters` with every knob, then only calls into `kit`, prose and pictures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"


def md(en: str, zh: str) -> tuple[str, str, str]:
    return ("markdown", en.strip(), zh.strip())


def code(src: str) -> tuple[str, str, str]:
    return ("code", src.strip(), src.strip())


def params(src: str) -> tuple[str, str, str]:
    return ("parameters", src.strip(), src.strip())


NOTEBOOKS: dict[str, list[tuple[str, str, str]]] = {}

NOTEBOOKS["00_environment_check"] = [
    md("""
# 00 · Environment check

**What it does:** runs the kit's doctor: Python, torch and its build, torch_npu, the CANN toolkit, the
driver, `npu-smi`, visible devices, the libraries (transformers, peft, accelerate, DeepSpeed,
ModelScope), disk, memory and a small matmul on the device. Every warning or failure comes with a fix.

**What it needs:** the kit installed (`bash dev.sh setup`). **How long:** about ten seconds.

The same report is `kit doctor` in a terminal (`kit doctor --json` for machines).
""", """
# 00 · 环境检查

**做什么：** 运行 kit 的环境诊断（doctor）：Python、torch 及其构建类型、torch_npu、CANN 工具包、驱动、
`npu-smi`、可见设备、依赖库（transformers、peft、accelerate、DeepSpeed、ModelScope）、磁盘、内存，
以及在设备上做一次小矩阵乘法。每个警告或失败都附带修复方法。

**需要：** 已安装 kit（`bash dev.sh setup`）。**耗时：** 约十秒。

终端里的等价命令是 `kit doctor`（机器可读：`kit doctor --json`）。
"""),
    params("""
device = "auto"      # auto, npu, cuda or cpu
output_dir = "."     # where training will write: its free disk space is checked
nproc = None         # processes per node you plan to train with; None means one
nnodes = None        # nodes you plan to train with; None means one
"""),
    code("""
import kit.doctor
import kit.nb

report = kit.doctor.doctor(device=device, output_dir=output_dir, nproc=nproc, nnodes=nnodes)
report
"""),
    md("""
**Reading the report.** `OK` needs nothing. `WARN` works but has a fix worth applying (for example a
missing optional library). `FAIL` stops training; its fix is the command to run or the variable to set.
On a machine without an Ascend NPU, the NPU rows say *not present* and the kit runs on CUDA or the CPU.
""", """
**如何阅读报告。** `OK` 无需处理。`WARN` 可以运行，但建议按提示修复（例如缺少可选依赖）。
`FAIL` 会阻止训练，修复方法就是要运行的命令或要设置的环境变量。没有昇腾 NPU 的机器上，NPU 相关行显示
*not present*，kit 会在 CUDA 或 CPU 上运行。
"""),
    code("""
kit.nb.publish("doctor_ok", report.exit_code == 0)
kit.nb.publish("npu_present", bool(report.get("npu").details.get("present")))
kit.nb.publish("doctor_summary", report.summary())
kit.nb.publish("problems", {c.name: c.fix for c in report.failures + report.warnings})
"""),
    md("""
Next: [10 · NPU setup](10_npu_setup.ipynb) walks through the Ascend stack layer by layer.
""", """
下一步：[10 · NPU 环境配置](10_npu_setup.ipynb) 逐层检查昇腾软件栈。
"""),
]

NOTEBOOKS["10_npu_setup"] = [
    md("""
# 10 · NPU setup, layer by layer

**What it does:** checks the Ascend stack the way you would set it up: the driver, the CANN toolkit,
the torch + torch_npu pair, the `set_env.sh` environment, the visible devices, a matmul on the NPU,
and for several cards or nodes the HCCL and torchrun variables. Each step shows what was found here.

**What it needs:** nothing beyond the kit; on a machine without an NPU it says so and finishes.
**How long:** about ten seconds.
""", """
# 10 · NPU 环境配置（逐层检查）

**做什么：** 按安装顺序检查昇腾软件栈：驱动、CANN 工具包、torch 与 torch_npu 的版本配对、
`set_env.sh` 环境、可见设备、NPU 上的矩阵乘法，以及多卡或多机时的 HCCL 与 torchrun 变量。
每一步都显示本机检查到的结果。

**需要：** 只需要 kit；没有 NPU 的机器会说明情况并正常结束。**耗时：** 约十秒。
"""),
    params("""
device = "auto"   # auto, npu, cuda or cpu
nproc = None      # cards per node you plan to use; None means one
nnodes = None     # nodes you plan to use; None means one
"""),
    code("""
import kit.doctor
import kit.nb

report = kit.doctor.doctor(device=device, nproc=nproc, nnodes=nnodes)
npu_present = bool(report.get("npu").details.get("present"))
report.subset("npu")
"""),
    md("""
## 1. Driver and firmware

The driver puts `/usr/local/Ascend/driver/version.info` on disk and `npu-smi` on the PATH.
`npu-smi info` lists the chips, their health and memory in use.
""", """
## 1. 驱动与固件

驱动会安装 `/usr/local/Ascend/driver/version.info`，并把 `npu-smi` 放进 PATH。
`npu-smi info` 列出各芯片、健康状态和已用显存。
"""),
    code("""
report.subset("driver", "npu_smi")
"""),
    md("""
## 2. CANN toolkit and `set_env.sh`

CANN is found through `ASCEND_HOME_PATH` / `ASCEND_TOOLKIT_HOME` or its default install path. Every
shell that trains must first run `source /usr/local/Ascend/ascend-toolkit/set_env.sh`.
""", """
## 2. CANN 工具包与 `set_env.sh`

通过 `ASCEND_HOME_PATH` / `ASCEND_TOOLKIT_HOME` 或默认安装路径找到 CANN。每个用于训练的 shell 都要先执行
`source /usr/local/Ascend/ascend-toolkit/set_env.sh`。
"""),
    code("""
report.subset("cann", "cann_env")
"""),
    md("""
## 3. torch and torch_npu

torch_npu is built for exactly one torch version: torch_npu 2.13.0 needs torch 2.13.0. Install them as
a pair, e.g. `pip install torch==2.13.0 torch-npu==2.13.0`.
""", """
## 3. torch 与 torch_npu

torch_npu 只适配一个确定的 torch 版本：torch_npu 2.13.0 需要 torch 2.13.0。请成对安装，例如
`pip install torch==2.13.0 torch-npu==2.13.0`。
"""),
    code("""
report.subset("torch", "torch_npu")
"""),
    md("""
## 4. Visible devices and a smoke test

`ASCEND_RT_VISIBLE_DEVICES=0,1` lets a process see two cards, numbered 0 and 1 inside it. The smoke
test multiplies two small matrices on the chosen device and compares with the CPU.
""", """
## 4. 可见设备与冒烟测试

`ASCEND_RT_VISIBLE_DEVICES=0,1` 让进程只看到两张卡，进程内编号为 0 和 1。冒烟测试在所选设备上做一次小矩阵乘法，
并与 CPU 结果比对。
"""),
    code("""
report.subset("visible_devices", "smoke")
"""),
    md("""
## 5. Several cards or nodes: HCCL and torchrun

With more than one card, `kit train` starts one process per card under torchrun (`NPROC_PER_NODE`,
`NNODES`, `NODE_RANK`, `MASTER_ADDR`, `MASTER_PORT`); the cards talk through HCCL.
""", """
## 5. 多卡或多机：HCCL 与 torchrun

多于一张卡时，`kit train` 会在 torchrun 下每卡启动一个进程（`NPROC_PER_NODE`、`NNODES`、`NODE_RANK`、
`MASTER_ADDR`、`MASTER_PORT`），卡间通信走 HCCL。
"""),
    code("""
report.subset("distributed", "hccl", "ds_accelerator")
"""),
    code("""
if npu_present:
    print("An Ascend NPU is present: fix every FAIL above before training.")
else:
    print("No Ascend NPU on this machine: the NPU steps above are 'not present', and the next notebooks run on "
          f"{report.get('torch').details.get('build', 'cpu')} with the embedded tiny model.")
kit.nb.publish("npu_present", npu_present)
kit.nb.publish("npu_steps", {c.name: c.status for c in report.checks})
kit.nb.publish("doctor_ok", report.exit_code == 0)
"""),
    md("""
Next: [20 · LoRA SFT](20_lora_sft.ipynb) trains an adapter with the quick-start config.
""", """
下一步：[20 · LoRA 微调](20_lora_sft.ipynb) 用快速入门配置训练一个 LoRA 适配器。
"""),
]

NOTEBOOKS["20_lora_sft"] = [
    md("""
# 20 · LoRA SFT with DeepSpeed under torchrun

**What it does:** takes the quick-start YAML of the LLaMA-Factory Ascend docs (`qwen1_5_lora_sft_ds.yaml`),
swaps the model, shows one encoded training example with the trained part marked, estimates memory,
then trains a LoRA adapter with DeepSpeed ZeRO-0 under torchrun, with a progress bar and a loss plot that
update as it runs. It ends with the files in `output_dir`.

**What it needs:** the defaults use the embedded tiny model on the CPU. For the real thing on an NPU set
`model_name_or_path = "qwen/Qwen1.5-7B"` and `USE_MODELSCOPE_HUB=1`. **How long:** a few minutes on 2 CPU
cores; hours for Qwen1.5-7B.
""", """
# 20 · 使用 DeepSpeed 与 torchrun 进行 LoRA 微调

**做什么：** 读取 LLaMA-Factory 昇腾文档中的快速入门配置（`qwen1_5_lora_sft_ds.yaml`），替换模型，展示一条编码后的
训练样本（标出参与训练的部分），估算显存，然后在 torchrun 下用 DeepSpeed ZeRO-0 训练 LoRA 适配器，进度条和损失曲线
实时更新。最后列出 `output_dir` 中的文件。

**需要：** 默认在 CPU 上使用内置的小模型。在 NPU 上运行真实模型：设置 `model_name_or_path = "qwen/Qwen1.5-7B"`
并设置 `USE_MODELSCOPE_HUB=1`。**耗时：** 2 核 CPU 上几分钟；Qwen1.5-7B 需要数小时。
"""),
    params("""
model_name_or_path = "kit/tiny-qwen"   # on an NPU use qwen/Qwen1.5-7B, with USE_MODELSCOPE_HUB set to 1
dataset = None                         # None keeps the quick start's identity,alpaca_en_demo
identity_name = "Lumi"                 # fills {{name}} in the identity data
identity_author = "the kit team"       # fills {{author}}
lora_target = None                     # None keeps q_proj,v_proj
num_train_epochs = None                # None keeps the quick start's 3.0, scaled for the tiny model
max_samples = None                     # None keeps the quick start's 1000, scaled for the tiny model
learning_rate = None                   # None keeps the quick start's 1e-4, scaled for the tiny model
output_dir = "saves/tiny-qwen/lora/sft"
seed = 42
device = "auto"                        # auto, npu, cuda or cpu
overrides = []                         # extra config overrides, written as on the kit train command line
"""),
    code("""
import kit.nb
import kit.tutorial
from kit.estimate import estimate_for_config

qs = kit.tutorial.quickstart_config(
    model_name_or_path, extra=overrides, dataset=dataset, identity_name=identity_name,
    identity_author=identity_author, lora_target=lora_target, num_train_epochs=num_train_epochs,
    max_samples=max_samples, learning_rate=learning_rate, output_dir=output_dir, seed=seed, device=device,
)
cfg = qs.cfg
qs
"""),
    md("""
The same run from a terminal:
""", """
在终端中等价的命令：
"""),
    code("""
print(qs.as_cli())
"""),
    md("""
## One encoded example

The template turns a question and its answer into tokens. Only the answer (green) is trained: the prompt's
labels are -100, exactly as LLaMA-Factory encodes them.
""", """
## 一条编码后的样本

模板把问题和答案变成 token。只有答案（绿色）参与训练：提示部分的标签为 -100，与 LLaMA-Factory 的编码完全一致。
"""),
    code("""
kit.tutorial.preview_example(cfg, 0)
"""),
    md("""
## Will it fit?

From the model's `config.json` alone: parameters, trainable LoRA parameters, and memory per device.
""", """
## 显存够用吗？

仅根据模型的 `config.json` 估算：参数量、可训练的 LoRA 参数量，以及每张卡的显存占用。
"""),
    code("""
estimate_for_config(cfg)
"""),
    md("""
## Train

`kit.tutorial.train` starts `torchrun ... -m kit.train` as a subprocess (DeepSpeed is set), exactly what
`kit train` does, and redraws the progress and the loss from `trainer_log.jsonl` while it runs.
""", """
## 训练

`kit.tutorial.train` 以子进程方式启动 `torchrun ... -m kit.train`（配置中设置了 DeepSpeed），与 `kit train`
完全相同，并在训练过程中根据 `trainer_log.jsonl` 刷新进度和损失曲线。
"""),
    code("""
result = kit.tutorial.train(cfg)
result.summary()
"""),
    md("""
## What was written

As LLaMA-Factory writes them: the adapter (`adapter_config.json`, `adapter_model.safetensors`), the
tokenizer, `trainer_log.jsonl`, `all_results.json`, `training_loss.png` and the resolved config
`training_args.yaml`.
""", """
## 输出了什么

与 LLaMA-Factory 相同：适配器（`adapter_config.json`、`adapter_model.safetensors`）、分词器、`trainer_log.jsonl`、
`all_results.json`、`training_loss.png`，以及最终生效的配置 `training_args.yaml`。
"""),
    code("""
from IPython.display import Image, display

print("\\n".join(result.files))
if (result.output_dir / "training_loss.png").is_file():
    display(Image(filename=str(result.output_dir / "training_loss.png")))
summary = result.summary()
kit.nb.publish("output_dir", str(result.output_dir.resolve()))
kit.nb.publish("first_loss", summary["first_loss"])
kit.nb.publish("final_loss", summary["final_loss"])
kit.nb.publish("eval_loss", summary["eval_loss"])
kit.nb.publish("files", summary["files"])
kit.nb.publish("train_seconds", summary["seconds"])
kit.nb.publish("lora_target", cfg.finetune.lora_target)
"""),
    md("""
Next: [30 · Chat](30_chat_inference.ipynb) talks to the fine-tuned model.
""", """
下一步：[30 · 对话推理](30_chat_inference.ipynb) 与微调后的模型对话。
"""),
]

NOTEBOOKS["30_chat_inference"] = [
    md("""
# 30 · Chat with the adapter

**What it does:** loads the base model with the LoRA adapter merged on the fly (as
`llamafactory-cli chat ... --adapter_name_or_path ... --finetuning_type lora` does), asks the same
questions before and after fine-tuning, opens a chat panel (base and fine-tuned side by side), runs the
vLLM path where vLLM is installed, and exports a merged model.

**What it needs:** the adapter from [20 · LoRA SFT](20_lora_sft.ipynb). **How long:** under a minute
with the tiny model.
""", """
# 30 · 与适配器对话

**做什么：** 加载基座模型，并在加载时合并 LoRA 适配器（与 `llamafactory-cli chat ... --adapter_name_or_path ...
--finetuning_type lora` 相同），在微调前后问同样的问题，打开对话面板（基座模型与微调模型并排），在安装了 vLLM 的
环境中运行 vLLM 推理，并导出合并后的模型。

**需要：** [20 · LoRA 微调](20_lora_sft.ipynb) 训练出的适配器。**耗时：** 使用小模型不到一分钟。
"""),
    params("""
model_name_or_path = "kit/tiny-qwen"
adapter_name_or_path = "saves/tiny-qwen/lora/sft"   # the output_dir of notebook 20
template = "qwen"                                    # use the template the adapter was trained with
identity_name = "Lumi"                               # the name the adapter learned
questions = ["Who are you?", "你是谁？", "What can you do?"]
max_new_tokens = 64
infer_backend = "huggingface"                        # or vllm, where vLLM is installed
export_dir = "saves/tiny-qwen/merged"                # where the merged model is exported
device = "auto"
"""),
    code("""
import kit.nb
import kit.tutorial
from kit.chat import ChatPanel, Engine

greedy = dict(template=template, do_sample=False, max_new_tokens=max_new_tokens, device=device)
base = Engine(model_name_or_path, **greedy)
tuned = Engine(model_name_or_path, adapter_name_or_path, **greedy)
before = kit.tutorial.ask(base, questions)
after = kit.tutorial.ask(tuned, questions)
kit.tutorial.answers_table({"base model": before, "with the adapter": after})
"""),
    code("""
kit.nb.publish("questions", questions)
kit.nb.publish("answers_before", before)
kit.nb.publish("answers_after", after)
kit.nb.publish("name_learned", identity_name in after[questions[0]] and identity_name not in before[questions[0]])
"""),
    md("""
## Streaming

`Engine.stream` yields the reply piece by piece; the terminal chat (`kit chat`) and the panel below only
display these pieces.
""", """
## 流式输出

`Engine.stream` 逐段产出回复；终端对话（`kit chat`）和下面的面板只负责显示这些片段。
"""),
    code("""
pieces = list(tuned.stream([{"role": "user", "content": questions[0]}]))
print(pieces)
kit.nb.publish("stream_pieces", len(pieces))
"""),
    md("""
## The chat panel

Type a question and press **Send**; **Stop** ends a reply midway, **Clear** empties the history. Both
models answer, side by side. Below, the notebook sends one question itself so an unattended run shows it.
""", """
## 对话面板

输入问题并点击 **Send**；**Stop** 可中途停止回复，**Clear** 清空历史。两个模型并排回答。下面由 notebook
自己发送一个问题，使无人值守运行时也能看到结果。
"""),
    code("""
panel = ChatPanel(tuned, compare_engine=base)
panel.send(questions[0])
panel.wait(300)
kit.nb.publish("panel_reply", panel.history[-1]["content"] if panel.history else "")
panel
"""),
    md("""
## vLLM

With `infer_backend="vllm"` the base model runs in vLLM and the adapter is applied per request
(`LoRARequest`); on an NPU this needs the vllm-ascend plugin. Where vLLM is not installed this cell
explains and skips.
""", """
## vLLM

`infer_backend="vllm"` 时，基座模型在 vLLM 中运行，适配器按请求应用（`LoRARequest`）；NPU 上需要 vllm-ascend 插件。
未安装 vLLM 时，本单元格说明原因并跳过。
"""),
    code("""
import importlib.util

if importlib.util.find_spec("vllm") is None:
    print("vLLM is not installed here: skipped. On CPU: bash scripts/vllm_env.sh; on CUDA: pip install vllm; "
          "on an NPU: vllm with the vllm-ascend plugin.")
    kit.nb.publish("vllm", "skipped")
else:
    fast = Engine(model_name_or_path, adapter_name_or_path, infer_backend="vllm", **greedy)
    reply = fast.chat([{"role": "user", "content": questions[0]}])
    print(reply)
    kit.nb.publish("vllm", "same as huggingface" if reply == after[questions[0]] else "differs")
    fast.close()
"""),
    md("""
## Export a merged model

`kit export` merges the adapter into the base weights and saves a model that transformers loads without
peft.
""", """
## 导出合并后的模型

`kit export` 把适配器合并进基座权重并保存，transformers 无需 peft 即可加载。
"""),
    code("""
from kit.chat.export import export_model
from kit.config import from_dict

# Replaces only an earlier export of the kit's (it carries kit_export.json); any other folder is refused.
merged_dir = export_model(from_dict({"model_name_or_path": model_name_or_path, "adapter_name_or_path": adapter_name_or_path,
                                     "template": template, "finetuning_type": "lora", "export_dir": export_dir}),
                          replace_earlier_export=True)
merged = Engine(str(merged_dir), **greedy)
merged_answer = merged.chat([{"role": "user", "content": questions[0]}])
print(sorted(p.name for p in merged_dir.iterdir()))
kit.nb.publish("export_dir", str(merged_dir.resolve()))
kit.nb.publish("export_same_answer", merged_answer == after[questions[0]])
"""),
]


def build(name: str, lang: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for i, (kind, en, zh) in enumerate(NOTEBOOKS[name]):
        text = en if lang == "en" else zh
        cell_id = f"{name[:2]}-{i:02d}"
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell["id"] = cell_id
        nb.cells.append(cell)
    return nb


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    stale = []
    for lang in ("en", "zh"):
        for name in NOTEBOOKS:
            path = OUT / lang / f"{name}.ipynb"
            text = nbformat.writes(build(name, lang)) + "\n"
            if a.check:
                if not path.is_file() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python scripts/make_notebooks.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
