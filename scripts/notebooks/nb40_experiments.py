"""Notebook 40 · Experiments (notebooks/en|zh/40_experiments.ipynb): a sweep of LoRA settings, drawn.

The cells in order: ``md("name", english, chinese)``, ``code("name", source)`` (``code("name", source, chinese_copy)``
where the comments need their own Chinese) or ``params(...)``; a cell's name is its id in both editions (cells.py).
"""

from .cells import bookkeeping, code, md, params

CELLS = [
    md("title", """
# 40 · Experiments: a sweep of LoRA settings

**What it does:** trains several short LoRA adapters, one per combination of settings (here `lora_rank`
× `learning_rate`), by running [20 · LoRA SFT](20_lora_sft.ipynb) once per combination with papermill
(`kit.tutorial.batch`, which is `kit batch` in a terminal). Then it draws every run's loss curve on one figure
and the final eval loss of each setting, and says what to read from them.

**What it needs:** nothing beyond the kit; the defaults train the embedded tiny model on the CPU. On an
NPU set a real model, `device = "npu"` and a device list: each run gets a card of its own.
**How long:** a few minutes for six short runs on 2 CPU cores. Runs that already completed in `out` are
skipped, so running the notebook again only draws.
""", """
# 40 · 实验：LoRA 设置的批量对比

**做什么：** 对每一组设置组合（这里是 `lora_rank` × `learning_rate`）各训练一个简短的 LoRA 适配器：用 papermill
把 [20 · LoRA 微调](20_lora_sft.ipynb) 按组合各运行一次（`kit.tutorial.batch`，即终端里的 `kit batch`）。然后把所有运行的
损失曲线画在同一张图上，再画出每组设置最终的评估损失（eval loss），并说明如何解读。

**需要：** 只需要 kit；默认在 CPU 上训练自带的微型模型。在 NPU 上：设置真实模型、`device = "npu"` 和卡号列表，
每个运行独占一张卡。**耗时：** 2 核 CPU 上六个简短运行约几分钟。`out` 中已完成的运行会被跳过，
所以再次运行本 Notebook 只会重新画图。
"""),
    params("params", """
notebook = "20_lora_sft"              # the notebook each run executes: a path, or one of the kit's by name
model_name_or_path = "kit/tiny-qwen"  # on an NPU a real model, e.g. qwen/Qwen1.5-7B
device = "cpu"                        # cpu here; npu (or auto) on an NPU machine
lora_ranks = [2, 8, 32]               # the sweep: one run per rank ...
learning_rates = [1e-3, 3e-3]         # ... and per learning rate
max_samples = 40                      # examples per dataset: each run is a short training
num_train_epochs = 2.0
parallel = 1                          # runs at once; on a CPU they share the cores
visible_devices = None                # the cards the sweep may use, e.g. "0,1,2,3": one card per run, never two runs on one card;
                                      # on one card "0" with parallel = 1: the runs take turns
use_modelscope_hub = None             # True downloads model_name_or_path from ModelScope (USE_MODELSCOPE_HUB); None keeps the inherited value
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
visible_devices = None                # 批量运行可用的卡，例如 "0,1,2,3"：每个运行独占一张卡，不会有两个运行共用一张卡；
                                      # 只有一张卡时设为 "0" 并令 parallel = 1：各运行轮流使用这张卡
use_modelscope_hub = None             # True：从魔搭社区（ModelScope）下载 model_name_or_path（USE_MODELSCOPE_HUB）；None 沿用继承的值
out = "experiments/rank-lr"           # 每个运行一个文件夹，另有 results.csv 和 results.json
"""),
    md("sweep", """
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
    code("sweep-command", """
import kit.tutorial.sweep
import kit.i18n
import kit.tutorial

kit.i18n.set_language(lang)  # the kit's messages, tables and errors from here on are in this language
sweep = {"lora_rank": lora_ranks, "learning_rate": learning_rates}  # a list is a sweep over its values
fixed = {"model_name_or_path": model_name_or_path, "device": device, "max_samples": max_samples,
         "num_train_epochs": num_train_epochs, "logging_steps": 2, "train_own_data": False}
if use_modelscope_hub is not None:
    fixed["use_modelscope_hub"] = use_modelscope_hub
print(kit.tutorial.sweep.command_line(notebook, {**sweep, **fixed}, out, parallel, visible_devices, lang))
"""),
    code("sweep-run", """
rows = kit.tutorial.batch(notebook, {**sweep, **fixed}, out, parallel=parallel, devices=visible_devices, lang=lang)
print(kit.tutorial.sweep.format_table(rows))
"""),
    md("curves", """
## Every run's loss on one figure

One colour per rank, one line style per learning rate, smoothed as notebook 20 smooths its curve. The
curves come from each run's `trainer_log.jsonl`.

**Why the curves rise before they fall.** Each logged loss is the mean over a couple of batches, and the demo
mix holds two kinds of example: alpaca examples the tiny model was pre-trained on (loss near 0.05) and identity
examples that now carry a new name (loss near 4 until the adapter learns it). Which kind comes first is chance
(the shuffle's seed is the same in every run, so every run starts with the same easy batches). The smoothed
curve therefore starts at the mean of the first tenth of the logged losses, not at the first one; the bump in
the first steps is the identity batches arriving, not divergence, and the fall after it is the new name being
learnt. The table's `first_loss` and `final_loss` are the same means over the first and last tenth.
""", """
## 所有运行的损失曲线

每个秩（rank）一种颜色，每个学习率一种线型，并像 Notebook 20 那样做了平滑。曲线来自各运行的 `trainer_log.jsonl`。

**为什么曲线先升后降。** 每个记录的损失是几个批次的平均，而演示数据混有两类样本：微型模型预训练时见过的 alpaca 样本
（损失约 0.05），以及换了新名字的 identity 样本（在适配器学会新名字之前损失约 4）。先来哪一类是偶然的（各运行的打乱种子相同，
所以都以同样几个容易的批次开始）。因此平滑曲线的起点取前十分之一记录损失的平均值，而不是第一个值；开头几步的隆起是
identity 批次到来，不是发散，之后的下降才是新名字被学会。表中的 `first_loss` 和 `final_loss` 也是前、后十分之一的平均值。
"""),
    code("curves-plot", """
import kit.tutorial.lessons

plots = kit.tutorial.lessons.sweep_plots(rows, sweep)  # the runs that completed: a colour per rank, a line style per learning rate
plots.curves()
"""),
    md("eval-loss", """
## Final eval loss per setting

The loss on the held-out examples (`val_size` of the quick start) after the last step: lower is better.
""", """
## 每组设置最终的评估损失

训练结束后在留出样本（快速开始配置中的 `val_size`）上的损失：越低越好。
"""),
    code("eval-loss-bars", """
print(plots.best_line())
plots.bars()
"""),
    md("reading", """
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

On an NPU the same cells take a real model: set `model_name_or_path` (with `use_modelscope_hub = True` to
download it from ModelScope), `device = "npu"`, `visible_devices = "0,1,2,3"` and `parallel = 4`; each run
gets its own card through notebook 20's `visible_devices` parameter. **On one card** set
`visible_devices = "0"` and `parallel = 1`: the runs take turns, and six 7B runs take six times one run's
time, so start with fewer settings (`lora_ranks = [8, 32]`, one learning rate) and a smaller `max_samples`.
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

在 NPU 上，同样的单元格使用真实模型：设置 `model_name_or_path`（设 `use_modelscope_hub = True` 即从魔搭社区下载）、
`device = "npu"`、`visible_devices = "0,1,2,3"` 和 `parallel = 4`；每个运行通过 Notebook 20 的 `visible_devices`
参数独占一张卡。**只有一张卡时**设 `visible_devices = "0"`、`parallel = 1`：各运行轮流使用这张卡，六个 7B 运行耗时是一个运行的
六倍，所以先少试几组设置（`lora_ranks = [8, 32]`、一个学习率），并减小 `max_samples`。
"""),
    md("try", """
## Try this

1. Add `"seed": [1, 2, 3]` to the `sweep` dictionary in the cell that prints the command, and run again: how far apart
   are three runs of the same setting? Is the ranking of the bars larger than that?
2. Set `learning_rates = [1e-2, 3e-2]`: at which rate does a curve stop falling or climb back up, and what does
   its eval loss say?
3. Set `max_samples = 200`: does rank 32 now pull ahead of rank 8, or does this data still not need the
   capacity?
""", """
## 动手试试

1. 在打印命令的那个单元格里，往字典 `sweep` 中加入 `"seed": [1, 2, 3]`，再运行一次：同一设置的三次运行相差多少？柱状图的排名差距比它大吗？
2. 设 `learning_rates = [1e-2, 3e-2]`：学习率到多大时曲线不再下降或重新上升？它的评估损失说明了什么？
3. 设 `max_samples = 200`：秩 32 现在是否领先秩 8，还是这份数据仍然用不到这么大的容量？
"""),
    bookkeeping("publish", """
# What kit demo, kit batch and the tests read back from this notebook (recorded, not shown).
from pathlib import Path

kit.tutorial.publish("runs", len(rows), show=False)
kit.tutorial.publish("failed", [row["run_id"] for row in rows if row["status"] != "ok"], show=False)
kit.tutorial.publish("eval_loss", plots.values()["eval_loss"], show=False)
kit.tutorial.publish("curves", plots.values()["curves"], show=False)
kit.tutorial.publish("best", plots.values()["best"], show=False)
kit.tutorial.publish("results_csv", str((Path(out) / "results.csv").resolve()), show=False);
"""),
]
