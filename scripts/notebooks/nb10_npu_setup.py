"""Notebook 10 · NPU setup (notebooks/en|zh/10_npu_setup.ipynb): the Ascend stack checked layer by layer.

The cells in order: ``md("name", english, chinese)``, ``code("name", source)`` (``code("name", source, chinese_copy)``
where the comments need their own Chinese) or ``params(...)``; a cell's name is its id in both editions (cells.py).
The environment-variable parameters, table and cell are shared.py's.
"""

from .cells import bookkeeping, code, md, params
from .shared import ENVIRONMENT_PARAMS_EN, ENVIRONMENT_PARAMS_ZH, envvars_apply, envvars_table

CELLS = [
    md("title", """
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
    params("params", """
device = "auto"                        # auto, npu, cuda or cpu
nproc = None                           # cards per node you plan to use; None means one
nnodes = None                          # nodes you plan to use; None means one
""" + ENVIRONMENT_PARAMS_EN, """
device = "auto"                        # auto、npu、cuda 或 cpu
nproc = None                           # 计划每个节点使用的卡数；None 表示一张
nnodes = None                          # 计划使用的节点数；None 表示一个
""" + ENVIRONMENT_PARAMS_ZH),
    envvars_table(),
    envvars_apply(),
    code("doctor", """
import kit.doctor
import kit.tutorial

report = kit.doctor.doctor(device=device, nproc=nproc, nnodes=nnodes)
npu_present = bool(report.get("npu").details.get("present"))
report.subset("npu")
"""),
    md("driver", """
## 1. Driver and firmware

The driver puts `/usr/local/Ascend/driver/version.info` on disk and `npu-smi` on the PATH.
`npu-smi info` lists the chips, their health and memory in use.
""", """
## 1. 驱动与固件

驱动会安装 `/usr/local/Ascend/driver/version.info`，并把 `npu-smi` 放进 PATH。
`npu-smi info` 列出各芯片、健康状态和已用显存。
"""),
    code("driver-check", """
report.subset("driver", "npu_smi")
"""),
    md("cann", """
## 2. CANN toolkit and `set_env.sh`

CANN is found through `ASCEND_HOME_PATH` / `ASCEND_TOOLKIT_HOME` or its default install path. Every shell that
trains, and the shell that starts JupyterLab, must first source CANN's `set_env.sh`: since CANN 8.5 it is
`/usr/local/Ascend/cann/set_env.sh`, before that `/usr/local/Ascend/ascend-toolkit/set_env.sh` (a non-root install
uses `${HOME}/Ascend/` instead of `/usr/local/Ascend/`). One line that works for both:

```bash
for f in /usr/local/Ascend/cann/set_env.sh /usr/local/Ascend/ascend-toolkit/set_env.sh; do [ -f "$f" ] && source "$f" && break; done
```

A kernel started from a shell that did not source it does not see CANN: torch_npu does not import, and training
would run on the CPU, very slowly, without a word. The check below catches that.
""", """
## 2. CANN 工具包与 `set_env.sh`

通过 `ASCEND_HOME_PATH` / `ASCEND_TOOLKIT_HOME` 或默认安装路径找到 CANN。每个用于训练的 shell，以及启动 JupyterLab
的 shell，都要先 source CANN 的 `set_env.sh`：CANN 8.5 及以后是 `/usr/local/Ascend/cann/set_env.sh`，更早的版本是
`/usr/local/Ascend/ascend-toolkit/set_env.sh`（非 root 安装时用 `${HOME}/Ascend/` 代替 `/usr/local/Ascend/`）。
两种布局都适用的一行命令：

```bash
for f in /usr/local/Ascend/cann/set_env.sh /usr/local/Ascend/ascend-toolkit/set_env.sh; do [ -f "$f" ] && source "$f" && break; done
```

从没有 source 过它的 shell 启动的内核看不到 CANN：torch_npu 无法导入，训练会一声不响地在 CPU 上运行，非常慢。
下面的检查会发现这种情况。
"""),
    code("cann-check", """
report.subset("cann", "cann_env")
"""),
    md("torch", """
## 3. torch and torch_npu

torch_npu X.Y.Z needs torch X.Y.Z exactly, and each torch_npu release supports only some CANN releases. Install
the pair in one command, then the kit, without touching torch. For CANN 9.1.0, for example:

```bash
pip install torch==2.12.0 torch-npu==2.12.0 decorator     # decorator: a package torch_npu needs
pip install -e ".[deepspeed,modelscope,notebooks]"          # the kit, from its clone
```

Do not run `bash dev.sh` on the card: it installs a CPU build of torch. The doctor checks the pair against its
table (`kit/doctor/ascend_stack.json`, with its source and date; a version it does not know is a warning that says
so). LLaMA-Factory's 910B image (`hiyouga/llamafactory:latest-910b-ubuntu`) already holds a CANN, torch and
torch_npu that go together: inside it, source `set_env.sh`, install only the kit and keep the image's torch.
""", """
## 3. torch 与 torch_npu

torch_npu X.Y.Z 严格要求 torch X.Y.Z，每个 torch_npu 版本只支持特定的 CANN 版本。用一条命令成对安装，再安装 kit，
不改动 torch。以 CANN 9.1.0 为例：

```bash
pip install torch==2.12.0 torch-npu==2.12.0 decorator     # decorator：torch_npu 需要的包
pip install -e ".[deepspeed,modelscope,notebooks]"          # 在 kit 的克隆目录里安装 kit
```

不要在卡上运行 `bash dev.sh`：它安装的是 CPU 版 torch。doctor 按自带的版本表（`kit/doctor/ascend_stack.json`，
注明来源和日期）检查这对版本；表里没有的版本会给出警告并说明原因。LLaMA-Factory 的 910B 镜像
（`hiyouga/llamafactory:latest-910b-ubuntu`）已带有互相配套的 CANN、torch 和 torch_npu：在镜像里 source
`set_env.sh` 后只安装 kit，保留镜像自带的 torch。
"""),
    code("torch-check", """
report.subset("torch", "torch_npu")
"""),
    md("devices", """
## 4. Visible devices and a smoke test

`ASCEND_RT_VISIBLE_DEVICES=0,1` (the parameter `visible_devices = "0,1"`) lets a process see two cards,
numbered 0 and 1 inside it. The smoke test multiplies two small matrices on the chosen device and compares with
the CPU.
""", """
## 4. 可见设备与冒烟测试

`ASCEND_RT_VISIBLE_DEVICES=0,1`（参数 `visible_devices = "0,1"`）让进程只看到两张卡，进程内编号为 0 和 1。
冒烟测试在所选设备上做一次小矩阵乘法，并与 CPU 结果比对。
"""),
    code("devices-check", """
report.subset("visible_devices", "smoke")
"""),
    md("distributed", """
## 5. Several cards or nodes: HCCL and torchrun

With more than one card, `kit train` starts one process per card under torchrun (`NPROC_PER_NODE`,
`NNODES`, `NODE_RANK`, `MASTER_ADDR`, `MASTER_PORT`); the cards talk through HCCL.
""", """
## 5. 多卡或多机：HCCL 与 torchrun

多于一张卡时，`kit train` 会在 torchrun 下每卡启动一个进程（`NPROC_PER_NODE`、`NNODES`、`NODE_RANK`、
`MASTER_ADDR`、`MASTER_PORT`），卡间通信走 HCCL。
"""),
    code("distributed-check", """
report.subset("distributed", "hccl", "ds_accelerator")
"""),
    code("verdict", """
import kit.tutorial.helpers

print(kit.tutorial.helpers.npu_verdict(report))
"""),
    md("try-this", """
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
    md("next", """
Next: [20 · LoRA SFT](20_lora_sft.ipynb) trains an adapter with the quick-start config.
""", """
下一步：[20 · LoRA 微调](20_lora_sft.ipynb) 用快速开始的配置训练一个 LoRA 适配器。
"""),
    bookkeeping("publish", """
# What kit demo and the tests read back from this notebook (recorded, not shown).
kit.tutorial.publish("npu_present", npu_present, show=False)
kit.tutorial.publish("npu_steps", {c.name: c.status for c in report.checks}, show=False)
kit.tutorial.publish("doctor_ok", report.exit_code == 0, show=False)
kit.tutorial.publish("environment", environment.values(), show=False);
"""),
]
