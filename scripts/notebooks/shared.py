"""Blocks several notebooks use, written once: the quick start's environment variables (three parameters, the
table that explains them, the cell that applies them). Notebooks 10, 20 and 30 use them; 30 with vLLM's too."""

from __future__ import annotations

from .cells import Cell, code, md

# The three parameters of the quick start's exports, inside a parameters cell: `... + ENVIRONMENT_PARAMS_EN + ...`.
ENVIRONMENT_PARAMS_EN = """
visible_devices = None                 # cards to use, e.g. "0" or "0,1" (ASCEND_RT_VISIBLE_DEVICES); None keeps the inherited value
use_modelscope_hub = None              # True: model ids download from ModelScope (USE_MODELSCOPE_HUB); None keeps the inherited value
npu_alloc_conf = None                  # e.g. "max_split_size_mb:256" (PYTORCH_NPU_ALLOC_CONF); None keeps the inherited value
""".strip()

ENVIRONMENT_PARAMS_ZH = """
visible_devices = None                 # 要使用的卡，例如 "0" 或 "0,1"（ASCEND_RT_VISIBLE_DEVICES）；None 沿用继承的值
use_modelscope_hub = None              # True：模型 ID 从 ModelScope 下载（USE_MODELSCOPE_HUB）；None 沿用继承的值
npu_alloc_conf = None                  # 例如 "max_split_size_mb:256"（PYTORCH_NPU_ALLOC_CONF）；None 沿用继承的值
""".strip()


# The table of those variables: its heading and rows, the vLLM row (notebook 30 only), then what None means.
_TABLE_EN = """
## The variables the quick start exports

The quick start types `export ASCEND_RT_VISIBLE_DEVICES=0 USE_MODELSCOPE_HUB=1` in a terminal. A variable exported
in a terminal reaches a notebook's kernel only when JupyterLab was started from that terminal afterwards, so here
they are parameters, set by `kit.envvars.apply` in the next cell, before anything imports torch_npu:

| parameter | variable | what it does |
|---|---|---|
| `visible_devices` | `ASCEND_RT_VISIBLE_DEVICES` | the cards a process sees, e.g. `"0"` or `"0,1"`, numbered from 0 inside it (cards 6,7 appear as 0,1) |
| `use_modelscope_hub` | `USE_MODELSCOPE_HUB` | `True`: model ids such as `qwen/Qwen1.5-7B` download from ModelScope, as in the quick start |
| `npu_alloc_conf` | `PYTORCH_NPU_ALLOC_CONF` | torch_npu's memory allocator, e.g. `"max_split_size_mb:256"` against fragmentation |
"""

_VLLM_ROW_EN = """
| (the kit, for vLLM) | `VLLM_WORKER_MULTIPROC_METHOD` | `spawn`: vLLM starts its workers afresh (a forked worker cannot re-initialise the NPU); with it the kit also sets `PYTORCH_NPU_ALLOC_CONF=max_split_size_mb:256`, the quick start's vLLM setting, unless one is given or inherited |
"""

_AFTER_TABLE_EN = """
`None` keeps what the kernel inherited; a value given here replaces it. Every process started from this kernel
(torchrun's training ranks, vLLM's workers) gets the same values. The NPU runtime reads `ASCEND_RT_VISIBLE_DEVICES`
and `PYTORCH_NPU_ALLOC_CONF` once, when it starts in a process: **a value set too late, after torch_npu has started
in this kernel, has no effect here.** The kit says so when it sees that; restart the kernel and run from the top.
"""

_TABLE_ZH = """
## 快速开始里 export 的环境变量

快速开始在终端里执行 `export ASCEND_RT_VISIBLE_DEVICES=0 USE_MODELSCOPE_HUB=1`。只有在那个终端里、export 之后再启动的
JupyterLab，其 Notebook 内核才能拿到这些变量，所以这里把它们做成参数，由下一个单元格里的 `kit.envvars.apply`
在任何代码导入 torch_npu 之前设置：

| 参数 | 环境变量 | 作用 |
|---|---|---|
| `visible_devices` | `ASCEND_RT_VISIBLE_DEVICES` | 进程能看到的卡，例如 `"0"` 或 `"0,1"`；进程内从 0 编号（物理卡 6、7 显示为 0、1） |
| `use_modelscope_hub` | `USE_MODELSCOPE_HUB` | `True`：`qwen/Qwen1.5-7B` 这样的模型 ID 从 ModelScope 下载，与快速开始相同 |
| `npu_alloc_conf` | `PYTORCH_NPU_ALLOC_CONF` | torch_npu 的显存分配器设置，例如 `"max_split_size_mb:256"` 可减少碎片 |
"""

_VLLM_ROW_ZH = """
| （kit 为 vLLM 设置） | `VLLM_WORKER_MULTIPROC_METHOD` | `spawn`：vLLM 以全新进程启动工作进程（fork 出来的工作进程无法重新初始化 NPU）；同时 kit 设置快速开始 vLLM 部分的 `PYTORCH_NPU_ALLOC_CONF=max_split_size_mb:256`，除非参数给出或内核已继承了值 |
"""

_AFTER_TABLE_ZH = """
`None` 表示沿用内核继承的值；在这里给出的值会替换它。从这个内核启动的所有进程（torchrun 的训练进程、vLLM 的
工作进程）都会拿到同样的值。NPU 运行时只在进程里启动时读取一次 `ASCEND_RT_VISIBLE_DEVICES` 和
`PYTORCH_NPU_ALLOC_CONF`：**设置得太晚（torch_npu 已经在这个内核里启动之后）在本内核中不起作用。** kit 发现这种情况时会明确提示；
此时请重启内核，从头运行。
"""


def envvars_table(vllm: bool = False) -> Cell:
    """The markdown cell "envvars-table": what the three parameters set; ``vllm``: with the row of vLLM's variables."""
    def table(head: str, vllm_row: str, after: str) -> str:
        rows = [head.strip()] + ([vllm_row.strip()] if vllm else [])
        return "\n".join(rows) + "\n\n" + after.strip()

    return md("envvars-table", table(_TABLE_EN, _VLLM_ROW_EN, _AFTER_TABLE_EN),
              table(_TABLE_ZH, _VLLM_ROW_ZH, _AFTER_TABLE_ZH))


_APPLY = """
import kit.envvars
import kit.i18n

kit.i18n.set_language(lang)  # the kit's messages, tables and errors from here on are in this language
# First, before anything imports torch_npu: the NPU runtime reads these once, when it starts.
environment = kit.envvars.apply(visible_devices=visible_devices, use_modelscope_hub=use_modelscope_hub,
                                npu_alloc_conf=npu_alloc_conf)
environment
"""


def envvars_apply(vllm: bool = False) -> Cell:
    """The code cell "envvars-apply", right after the table: the language first, then the variables, before anything
    imports torch_npu; ``vllm``: kit.envvars.apply(..., vllm=True), which sets vLLM's variables as well."""
    source = _APPLY
    if vllm:
        end = "npu_alloc_conf=npu_alloc_conf)"
        assert source.count(end) == 1, "envvars_apply: the call's last argument moved; update the vllm variant"
        source = source.replace(end, "npu_alloc_conf=npu_alloc_conf, vllm=True)")
    return code("envvars-apply", source)
