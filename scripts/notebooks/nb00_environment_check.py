"""Notebook 00 · Environment check (notebooks/en|zh/00_environment_check.ipynb): the kit's doctor, and how to read it.

The cells in order: ``md("name", english, chinese)``, ``code("name", source)`` (``code("name", source, chinese_copy)``
where the comments need their own Chinese) or ``params(...)``; a cell's name is its id in both editions (cells.py).
"""

from .cells import bookkeeping, code, md, params

CELLS = [
    md("title", """
# 00 · Environment check

**What it does:** runs the kit's doctor: Python, torch and its build, torch_npu, the CANN toolkit, the
driver, `npu-smi`, visible devices, the libraries (transformers, peft, accelerate, DeepSpeed,
ModelScope), disk, memory and a small matmul on the device. Every warning or failure comes with a fix.

**What it needs:** the kit installed: `bash dev.sh setup` on a CPU machine; on an Ascend card torch and the
matching torch_npu first, then `pip install -e ".[deepspeed,modelscope,notebooks]"` (notebook 10, steps 2 and 3),
with JupyterLab started from a shell that sourced CANN's `set_env.sh`. **How long:** about ten seconds.

The same report is `kit doctor` in a terminal (`kit doctor --json` for machines).
""", """
# 00 · 环境检查

**做什么：** 运行 kit 的环境诊断（doctor）：Python、torch 及其构建类型、torch_npu、CANN 工具包、驱动、
`npu-smi`、可见设备、依赖库（transformers、peft、accelerate、DeepSpeed、ModelScope）、磁盘、内存，
以及在设备上做一次小矩阵乘法。每个警告或失败都附带修复方法。

**需要：** 已安装 kit：CPU 机器上运行 `bash dev.sh setup`；昇腾卡上先装 torch 和配套的 torch_npu，再
`pip install -e ".[deepspeed,modelscope,notebooks]"`（见 Notebook 10 的第 2、3 步），并在 source 过 CANN 的
`set_env.sh` 的 shell 里启动 JupyterLab。**耗时：** 约十秒。

终端里的等价命令是 `kit doctor`（机器可读：`kit doctor --json`）。
"""),
    params("params", """
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
    code("doctor", """
import kit.doctor
import kit.i18n
import kit.tutorial

kit.i18n.set_language(lang)  # the kit's messages, tables and errors from here on are in this language
report = kit.doctor.doctor(device=device, output_dir=output_dir, nproc=nproc, nnodes=nnodes)
report
"""),
    md("reading-the-report", """
**Reading the report.** `OK` needs nothing. `WARN` works but has a fix worth applying (for example a
missing optional library). `FAIL` stops training; its fix is the command to run or the variable to set.
On a machine without an Ascend NPU, the NPU rows say *not present* and the kit runs on CUDA or the CPU.
""", """
**如何阅读报告。** `正常` 无需处理。`警告` 可以运行，但建议按提示修复（例如缺少可选依赖）。
`失败` 会阻止训练，修复方法就是要运行的命令或要设置的环境变量。没有昇腾 NPU 的机器上，NPU 相关行显示
*不存在*，kit 会在 CUDA 或 CPU 上运行。
"""),
    md("try-this", """
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
    md("next", """
Next: [10 · NPU setup](10_npu_setup.ipynb) walks through the Ascend stack layer by layer.
""", """
下一步：[10 · NPU 环境配置](10_npu_setup.ipynb) 逐层检查昇腾软件栈。
"""),
    bookkeeping("publish", """
# What kit demo and the tests read back from this notebook (recorded, not shown).
kit.tutorial.publish("doctor_ok", report.exit_code == 0, show=False)
kit.tutorial.publish("npu_present", bool(report.get("npu").details.get("present")), show=False)
kit.tutorial.publish("doctor_summary", report.summary(), show=False)
kit.tutorial.publish("problems", {c.name: c.fix for c in report.failures + report.warnings}, show=False)
kit.tutorial.publish("checks", {c.name: c.status for c in report.checks}, show=False);
"""),
]
