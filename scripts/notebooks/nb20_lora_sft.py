"""Notebook 20 · LoRA SFT (notebooks/en|zh/20_lora_sft.ipynb): the quick start's training, explained as it runs.

The cells in order: ``md("name", english, chinese)``, ``code("name", source)`` (``code("name", source, chinese_copy)``
where the comments need their own Chinese) or ``params(...)``; a cell's name is its id in both editions (cells.py).
The environment-variable parameters, table and cell are shared.py's.
"""

from .cells import bookkeeping, code, md, params
from .shared import ENVIRONMENT_PARAMS_EN, ENVIRONMENT_PARAMS_ZH, envvars_apply, envvars_table

CELLS = [
    md("title", """
# 20 · LoRA SFT with DeepSpeed under torchrun

**What it does:** takes the quick-start YAML of the LLaMA-Factory Ascend docs (`qwen1_5_lora_sft_ds.yaml`),
swaps the model, and trains a LoRA adapter with DeepSpeed ZeRO-0 under torchrun, with a progress bar and a loss
plot that update as it runs. On the way it shows what each step means, computed for the chosen model and data:
LoRA as a picture and a parameter count; the data before training (raw rows, counts, token lengths against
`cutoff_len`, one encoded example with the trained part marked); the batch, the steps and the learning-rate
schedule; what ZeRO-0/2/3 cost in memory; then the measured time, memory and tokens per second next to the
estimate, and realistic times on a 910B; and the peft and transformers calls `kit train` makes, run by hand on the
tiny model. It ends by training on a dataset you write yourself, and with exercises.

**What it needs:** the defaults use the embedded tiny model on the CPU. For the real thing on an NPU set
`model_name_or_path = "qwen/Qwen1.5-7B"` and `use_modelscope_hub = True`, and run it from your LLaMA-Factory
folder (or set `dataset_dir`) to train on LLaMA-Factory's data. **How long:** about five minutes on 2 CPU cores
(two short trainings); for Qwen1.5-7B on a 910B, minutes of compute (worked out near the end) plus loading the model.
""", """
# 20 · 使用 DeepSpeed 与 torchrun 进行 LoRA 微调

**做什么：** 读取 LLaMA-Factory 昇腾文档中快速开始的配置（`qwen1_5_lora_sft_ds.yaml`），替换模型，然后在 torchrun 下用
DeepSpeed ZeRO-0 训练 LoRA 适配器，进度条和损失曲线实时更新。一路上按所选模型和数据算出每一步的含义：用一张图和一个数说明 LoRA；
训练前的数据（原始行、样本数、相对于 `cutoff_len` 的 token 长度、一条标出训练部分的编码样本）；批大小、步数和学习率调度；
ZeRO-0/2/3 各自的显存代价；然后是实测的耗时、显存和每秒 token 数与预估的对照，以及在 910B 上的实际耗时估算；再在微型模型上亲手调用一遍 `kit train` 所用的 peft 和 transformers 接口。最后用你自己写的数据集训练一次，
并留下几个练习。

**需要：** 默认在 CPU 上使用自带的微型模型。在 NPU 上运行真实模型：设置 `model_name_or_path = "qwen/Qwen1.5-7B"`
和 `use_modelscope_hub = True`；要用 LLaMA-Factory 的数据训练，请在 LLaMA-Factory 目录下运行（或设置 `dataset_dir`）。
**耗时：** 2 核 CPU 上约五分钟（两次简短的训练）；Qwen1.5-7B 在 910B 上的计算时间为若干分钟（本 Notebook 末尾给出推算），另加加载模型的时间。
"""),
    params("params", """
model_name_or_path = "kit/tiny-qwen"   # on an NPU use qwen/Qwen1.5-7B, with use_modelscope_hub set to True
track = "quickstart"                   # quickstart: the quick start's qwen1_5_lora_sft_ds.yaml; qwen3: LLaMA-Factory's current
                                       # NPU example qwen3_lora_sft.yaml (on a card with Qwen/Qwen3-4B-Instruct-2507)
dataset = None                         # None keeps identity,alpaca_en_demo of the quick start
dataset_dir = None                     # None: ./data if it has dataset_info.json (as LLaMA-Factory), else the kit's demo data
identity_name = "Lumi"                 # fills {{name}} in the identity data
identity_author = None                 # fills {{author}}; None: "the kit team" in the notebook's language
lora_target = None                     # None keeps q_proj,v_proj
num_train_epochs = None                # None keeps the quick start's 3.0, scaled for the tiny model
max_samples = None                     # None keeps the quick start's 1000, scaled for the tiny model
learning_rate = None                   # None keeps the quick start's 1e-4, scaled for the tiny model
output_dir = None                      # None follows the model: saves/<model name>/lora/sft, as the quick start
seed = 42
device = "auto"                        # auto, npu, cuda or cpu
card = None                            # compare memory with this card, e.g. "910B3"; None: the card of this machine
""" + ENVIRONMENT_PARAMS_EN + """
overrides = []                         # extra config overrides, written as on the kit train command line
peak_tflops = None                     # the card's peak FP16 TFLOPS for the time estimate; None: 320, commonly reported for a 910B (an assumption)
utilisation = 0.2                      # the share of that peak a LoRA run achieves (an assumption: batch 1 keeps it low)
own_data_dir = None                    # where the section on your own data writes its datasets; None: beside output_dir (<output_dir>-my_data-datasets)
train_own_data = True                  # False skips the short training on your own data
""", """
model_name_or_path = "kit/tiny-qwen"   # 在 NPU 上用 qwen/Qwen1.5-7B，并把 use_modelscope_hub 设为 True
track = "quickstart"                   # quickstart：快速开始的 qwen1_5_lora_sft_ds.yaml；qwen3：LLaMA-Factory 当前的
                                       # NPU 示例 qwen3_lora_sft.yaml（在卡上配合 Qwen/Qwen3-4B-Instruct-2507）
dataset = None                         # None 沿用快速开始的 identity,alpaca_en_demo
dataset_dir = None                     # None：./data 中有 dataset_info.json 时读取它（与 LLaMA-Factory 相同），否则用 kit 自带的演示数据
identity_name = "Lumi"                 # 填入身份数据中的 {{name}}
identity_author = None                 # 填入 {{author}}；None：本 Notebook 语言中的“kit 团队”
lora_target = None                     # None 沿用 q_proj,v_proj
num_train_epochs = None                # None 沿用快速开始的 3.0，并按微型模型缩放
max_samples = None                     # None 沿用快速开始的 1000，并按微型模型缩放
learning_rate = None                   # None 沿用快速开始的 1e-4，并按微型模型缩放
output_dir = None                      # None 随模型而定：saves/<模型名>/lora/sft，与快速开始相同
seed = 42
device = "auto"                        # auto、npu、cuda 或 cpu
card = None                            # 与这张卡的显存比较，例如 "910B3"；None：本机的卡
""" + ENVIRONMENT_PARAMS_ZH + """
overrides = []                         # 额外的配置覆盖项，写法与 kit train 命令行相同
peak_tflops = None                     # 卡的 FP16 峰值 TFLOPS，用于估算耗时；None：320，即 910B 常见的报道值（一个假设）
utilisation = 0.2                      # LoRA 训练能达到的峰值比例（一个假设：批大小为 1 时偏低）
own_data_dir = None                    # “用你自己的数据”一节写入数据集的目录；None：放在 output_dir 旁边（<output_dir>-my_data-datasets）
train_own_data = True                  # False 跳过用你自己的数据做的简短训练
"""),
    envvars_table(),
    envvars_apply(),
    md("config", """
## The quick-start config

The quick-start YAML with the model swapped in. `output_dir` follows the model as the quick start's
`saves/Qwen1.5-7B/lora/sft` does: `saves/<model name>/lora/sft`, so notebook 30 finds the adapter when you change
`model_name_or_path` in both notebooks and nothing else.

`track = "qwen3"` starts from LLaMA-Factory's current NPU example instead, `qwen3_lora_sft.yaml` as LLaMA-Factory wrote
it (Qwen3-4B-Instruct-2507, `lora_target: all`, template `qwen3_nothink`, `bf16: true`, no DeepSpeed); the kit ships it
beside the quick start's YAML (`kit/examples/`). On a card, set `model_name_or_path` to that model too.
""", """
## 快速开始的配置

在快速开始的 YAML 上替换模型。`output_dir` 与快速开始的 `saves/Qwen1.5-7B/lora/sft` 一样随模型而定：
`saves/<模型名>/lora/sft`。因此只要在两个 Notebook 中改同一个 `model_name_or_path`，Notebook 30 就能找到这里训练的适配器。

`track = "qwen3"` 则从 LLaMA-Factory 当前的 NPU 示例开始：按 LLaMA-Factory 原样提供的 `qwen3_lora_sft.yaml`
（Qwen3-4B-Instruct-2507、`lora_target: all`、模板 `qwen3_nothink`、`bf16: true`、不用 DeepSpeed）；kit 把它放在快速开始的
YAML 旁边（`kit/examples/`）。在卡上运行时，请同时把 `model_name_or_path` 设为该模型。
"""),
    code("config-load", """
import kit.tutorial
import kit.tutorial.helpers

qs = kit.tutorial.helpers.quickstart_config(
    model_name_or_path, extra=overrides, track=track, dataset=dataset, dataset_dir=dataset_dir, identity_name=identity_name,
    identity_author=identity_author or kit.tutorial.helpers.default_identity_author(), lora_target=lora_target, num_train_epochs=num_train_epochs,
    max_samples=max_samples, learning_rate=learning_rate, output_dir=output_dir, seed=seed, device=device,
)
cfg = qs.cfg
print(qs.output_dir_note(given=output_dir is not None))
qs
"""),
    md("terminal", """
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
    code("terminal-preview", """
print(qs.as_cli())
kit.tutorial.helpers.launch_preview(cfg)
"""),
    md("lora", """
## LoRA in a picture and a number

Fine-tuning all of a 7B model's weights needs their gradients and optimizer state too: several times the memory of
the model itself. LoRA freezes every weight `W` of the base model and learns a small update beside chosen layers: two
thin matrices, `B` (d_out x r) and `A` (r x d_in), whose product has the shape of `W`. Such a layer computes
`h = W x + (lora_alpha / r) · B A x`. Only `A` and `B` are trained; `B` starts at zero, so training starts exactly from
the base model. Below, the layers the quick start adapts, drawn for the chosen model, and the trainable count, from
peft itself (attached to the model built without weights, as `kit estimate` does). Beside the chosen model, the same
`lora_rank` and `lora_target` on the quick start's Qwen1.5-7B, computed from its config (`r × (d_in + d_out)` per
adapted matrix, summed over the layers): the numbers of the model you will train on the NPU.
""", """
## 一张图、一个数看懂 LoRA

全参数微调一个 7B 模型，除了权重本身，还要存放它们的梯度和优化器状态：需要模型本身好几倍的显存。LoRA 冻结基座模型的全部权重 `W`，
只在选定的层旁边学习一个小的增量：两个细长的矩阵 `B`（d_out × r）和 `A`（r × d_in），二者的乘积与 `W` 形状相同。这样的层计算
`h = W x + (lora_alpha / r) · B A x`。只有 `A` 和 `B` 参与训练；`B` 初始为零，所以训练正好从基座模型出发。下面按所选模型画出快速开始
适配的层，并给出可训练参数量，由 peft 本身统计（挂在不加载权重的模型上，与 `kit estimate` 的做法相同）。所选模型旁边列出同样的
`lora_rank` 和 `lora_target` 用在快速开始的 Qwen1.5-7B 上的数字，由它的配置算出（每个被适配的矩阵为 `r × (d_in + d_out)`，
再对各层求和）：这就是你将在 NPU 上训练的模型的数字。
"""),
    code("lora-table", """
import kit.tutorial.lessons

lora = kit.tutorial.lessons.lora_lesson(cfg)
lora
"""),
    md("lora-keys", """
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
    md("which-data", """
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
时，如果本 Notebook 运行所在目录的 `./data` 里有 `dataset_info.json`，就读取它；否则使用 **kit 自带的演示数据**
（一份身份数据和一份小的 alpaca 数据），它不是 LLaMA-Factory 的数据。要自己选择，请把 `dataset_dir` 设为 LLaMA-Factory 的
`data/` 目录，或者设为你自己的、带有 `dataset_info.json` 的目录（并把 `dataset` 设为其中的数据集名）。
"""),
    code("data-source", """
source = kit.tutorial.helpers.data_source(cfg)
source
"""),
    md("data-before", """
## The data before training

What training will read, before it reads it: the first rows of each dataset exactly as written in its file (the
identity data holds `{{name}}` and `{{author}}` placeholders, filled by `identity_name` and `identity_author`), how many
examples each gave, and the length of every example in tokens, encoded with the chat template as training encodes
it. An example longer than `cutoff_len` is cut (the kit keeps LLaMA-Factory's rule: a short answer is kept whole and
the prompt cut, otherwise both shrink in proportion), so an example longer than `cutoff_len` is one the model never
sees whole: the histogram marks `cutoff_len` with a red line when it lies within the picture, and with an arrow
pointing right when it is far beyond the longest example (then nothing is cut). The counts are the encoder's own.
""", """
## 训练前先看数据

训练要读的数据，先看一眼：每个数据集的前几行，与文件里写的完全一样（身份数据中的 `{{name}}` 和 `{{author}}` 占位符由
`identity_name` 和 `identity_author` 填入）；每个数据集读到多少条样本；以及每条样本用对话模板、按训练时的方式编码后的 token 长度。
长于 `cutoff_len` 的样本会被截断（kit 沿用 LLaMA-Factory 的规则：答案较短时完整保留答案、截断提示词，否则两者按比例缩短），
所以长于 `cutoff_len` 的样本，模型都看不到完整内容：`cutoff_len` 落在图的范围内时，直方图用红线标出它；远超最长样本时，
改用指向右侧的箭头标出（此时没有样本被截断）。这些计数都来自编码器本身。
"""),
    code("data-lesson", """
data = kit.tutorial.lessons.data_lesson(cfg)
data
"""),
    md("encoded-example", """
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
    code("encoded-example-show", """
data.example(0)
"""),
    md("settings", """
## The settings and their cost

**Batch and steps.** One optimizer step averages the gradients of `per_device_train_batch_size` examples per process,
over `gradient_accumulation_steps` forward and backward passes, on every process: the effective batch. The quick
start's 1 × 2 × 1 card gives 2 examples per step. Accumulation buys a larger batch without the memory of a larger
one, at the price of time; more processes buy it with more cards. The tiny model needs no such saving: it trains
2 × 1 (its overrides above), the same updates in one pass instead of two, 17% faster on a CPU. The number of optimizer steps follows from the examples trained on
(`val_size` holds some out), the effective batch and `num_train_epochs`.

**The learning-rate schedule**, computed with transformers' own scheduler for this run (`lr_scheduler_type: cosine`,
`warmup_ratio: 0.1`): it climbs from 0 over the first tenth of the steps (warm-up: the new adapter takes small steps
first), then falls along a cosine to 0. After training, the rates the run logged are drawn on it.
""", """
## 各项设置及其代价

**批大小与步数。** 一次优化器更新，平均的是每个进程上 `per_device_train_batch_size` 条样本、经过 `gradient_accumulation_steps`
次前向和反向传播、在所有进程上的梯度：这就是有效批大小。快速开始为 1 × 2 × 1 张卡，即每步 2 条样本。梯度累积在不多占显存的情况下
得到更大的批，代价是时间；更多进程则用更多的卡得到它。小模型不需要节省显存：它按 2 × 1 训练（见上面的覆盖项），
更新相同，只需一次前向和反向传播而不是两次，在 CPU 上快 17%。优化器步数由参与训练的样本数（`val_size` 留出了一部分）、有效批大小和 `num_train_epochs` 决定。

**学习率调度**，用 transformers 自己的调度函数为本次训练计算（`lr_scheduler_type: cosine`，`warmup_ratio: 0.1`）：在前十分之一的步数里
从 0 升高（预热：新的适配器先走小步），然后沿余弦曲线降到 0。训练结束后，训练记录的学习率会画在这条曲线上。
"""),
    code("schedule", """
schedule = kit.tutorial.lessons.schedule_lesson(cfg, data.values()["examples"])
schedule
"""),
    md("zero", """
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
    code("zero-table", """
kit.tutorial.lessons.zero_lesson(cfg, card)
"""),
    md("fit", """
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
    code("fit-check", """
fit = kit.tutorial.helpers.check_training_memory(cfg, card)
fit
"""),
    md("precision", """
## fp16 or bf16 on the 910B

The quick start's YAML says `fp16: true`. Both formats keep a number in 16 bits, split differently (the figures are
`torch.finfo(torch.float16)` and `torch.finfo(torch.bfloat16)`):

| format | exponent bits | mantissa bits | largest value | smallest normal value | on Ascend |
|---|---|---|---|---|---|
| fp16 | 5 | 10 | 65,504 | 6.1e-05 | every card; needs loss scaling |
| bf16 | 8 | 7 | 3.4e+38 | 1.2e-38 | 910B1-B4, 910_93 series, 950; not 910A, 910ProA/ProB, 310P |

fp16 is the more precise of the two but has a narrow range: a gradient below 6e-05 becomes 0 unless the loss is
scaled up first, and an activation above 65,504 becomes `inf`. That is where the zero losses and `grad_norm: nan`
that people report for fp16 LoRA runs on the 910B come from. bf16 has fp32's range with less precision and needs no
loss scaling; every current LLaMA-Factory example uses `bf16: true`. On a 910B, set `bf16: true` and `fp16: false`
(the kit says so once when a run asks for fp16 on a chip that has bf16); on a 910A or a 310P, fp16 is the only
16-bit choice. On this CPU the run trains in fp32: the kit drops fp16 and says why.
""", """
## 910B 上用 fp16 还是 bf16

快速开始的 YAML 写的是 `fp16: true`。两种格式都用 16 位存一个数，只是位的分配不同（数字来自
`torch.finfo(torch.float16)` 和 `torch.finfo(torch.bfloat16)`）：

| 格式 | 指数位 | 尾数位 | 最大值 | 最小正规数 | 昇腾上的支持 |
|---|---|---|---|---|---|
| fp16 | 5 | 10 | 65,504 | 6.1e-05 | 所有卡；需要损失缩放 |
| bf16 | 8 | 7 | 3.4e+38 | 1.2e-38 | 910B1-B4、910_93 系列、950；910A、910ProA/ProB、310P 不支持 |

fp16 精度更高，但范围窄：小于 6e-05 的梯度如果不先放大损失就会变成 0，大于 65,504 的激活值会变成 `inf`。
人们在 910B 上用 fp16 做 LoRA 时遇到的损失为 0 和 `grad_norm: nan`，就来自这里。bf16 的范围与 fp32 相同，精度较低，
不需要损失缩放；LLaMA-Factory 当前的所有示例都用 `bf16: true`。在 910B 上请设置 `bf16: true` 和 `fp16: false`
（训练在支持 bf16 的芯片上要求 fp16 时，kit 会提示一次）；在 910A 或 310P 上，fp16 是唯一的 16 位选择。
在这台 CPU 上，训练以 fp32 进行：kit 会放弃 fp16 并说明原因。
"""),
    md("train", """
## Train

`kit.tutorial.helpers.train` starts `torchrun ... -m kit.train` as a subprocess (DeepSpeed is set), exactly what
`kit train` does, and redraws the progress and the loss from `trainer_log.jsonl` while it runs.
""", """
## 训练

`kit.tutorial.helpers.train` 以子进程方式启动 `torchrun ... -m kit.train`（配置中设置了 DeepSpeed），与 `kit train`
完全相同，并在训练过程中根据 `trainer_log.jsonl` 刷新进度和损失曲线。
"""),
    code("train-run", """
result = kit.tutorial.helpers.train(cfg)
result.summary()
"""),
    md("overfitting", """
## Reading the two losses: is it learning or memorising?

`loss` is measured on the examples being trained on, `eval_loss` on the held-out tenth (`val_size: 0.1`) that
training never sees. While both fall, the adapter is learning something that carries over. When the training
loss keeps falling and the eval loss stays flat (or rises), the adapter is memorising its examples: with the tiny
model the run ends near a training loss of 0.03 against an eval loss of 0.16, and the eval loss stops improving in
the second half. What to change, in order: fewer epochs (`num_train_epochs`; the eval curve says where it stopped
helping), more or more varied data (`max_samples`, another dataset), a lower `learning_rate`, a smaller
`lora_rank`, or `lora_dropout` (for example 0.05). A flat eval loss on a few dozen held-out examples is also
noisy: judge by the trend over several evaluations, and by the answers in notebook 30.
""", """
## 读懂两条损失：是在学习还是在死记？

`loss` 是在训练样本上测得的，`eval_loss` 是在训练从未见过的留出十分之一（`val_size: 0.1`）上测得的。两者同时下降时，适配器学到的
东西能推广到新样本。训练损失继续下降、评估损失却持平（或上升）时，适配器就在死记训练样本：微型模型这次训练结束时训练损失约 0.03，
评估损失约 0.16，且后半程评估损失不再改善。可以按以下顺序调整：减少轮数（`num_train_epochs`；评估曲线告诉你从哪里开始不再有帮助）、
更多或更多样的数据（`max_samples`、换一个数据集）、更低的 `learning_rate`、更小的 `lora_rank`，或设置 `lora_dropout`（例如 0.05）。
留出样本只有几十条时，评估损失本身也有噪声：看多次评估的趋势，并结合 Notebook 30 中的回答来判断。
"""),
    md("outputs", """
## What was written

As LLaMA-Factory writes them: the adapter (`adapter_config.json`, `adapter_model.safetensors`), the
tokenizer, `trainer_log.jsonl`, `all_results.json`, `training_loss.png` and the resolved config
`training_args.yaml`. `training_loss.png` is LLaMA-Factory's picture of the curve drawn above while the run trained.
""", """
## 输出了什么

与 LLaMA-Factory 相同：适配器（`adapter_config.json`、`adapter_model.safetensors`）、分词器、`trainer_log.jsonl`、
`all_results.json`、`training_loss.png`，以及最终生效的配置 `training_args.yaml`。`training_loss.png` 是 LLaMA-Factory
格式的损失曲线图，内容与上面训练时画出的曲线相同。
"""),
    code("outputs-list", r"""
print("\n".join(result.files))
"""),
    md("hood", """
## Under the hood: the same steps with peft and transformers

`kit train` is glue around two libraries, and these cells make its calls themselves, so you can do without the kit.
They run on the embedded tiny model whatever `model_name_or_path` says (seconds on a CPU), with the first examples of
this run's datasets encoded as above; `kit.tutorial.lessons.under_the_hood` hands them only the model's folder, those
rows, `lora_target` resolved (`all` becomes every linear layer) and a folder beside this run's `output_dir`
(`<output_dir>-under_the_hood`).

- `LoraConfig` holds the three LoRA keys; `get_peft_model` freezes the base weights and puts `A` and `B` beside the
  target layers; `print_trainable_parameters` gives peft's count, the figure of the LoRA table above.
- `TrainingArguments` carries the YAML's training keys (`kit train` passes every one, with DeepSpeed's file under
  `deepspeed`); `Trainer` runs the loop: batches padded by `DataCollatorForSeq2Seq` (labels padded with -100),
  forward, loss, backward, optimizer and scheduler steps, the logged loss. Here three steps on the CPU
  (`use_cpu=True`), nothing saved but the adapter: `save_pretrained` writes `adapter_config.json` and
  `adapter_model.safetensors`, the two files notebook 30 loads.
""", """
## 揭开底层：用 peft 和 transformers 做同样的事

`kit train` 只是两个库外面的一层粘合代码；下面两个单元格直接调用这些库，不用 kit 也能照做。无论 `model_name_or_path` 是什么，
它们都在自带的微型模型上运行（CPU 上几秒钟），使用本次训练数据集的前几条样本，编码方式与上文相同；
`kit.tutorial.lessons.under_the_hood` 只提供模型目录、这些编码后的样本、解析后的 `lora_target`（`all` 展开为所有线性层），
以及本次运行 `output_dir` 旁边的一个目录（`<output_dir>-under_the_hood`）。

- `LoraConfig` 保存三个 LoRA 键；`get_peft_model` 冻结基座权重，在目标层旁边加上 `A` 和 `B`；`print_trainable_parameters`
  给出 peft 统计的参数量，也就是上面 LoRA 表中的数字。
- `TrainingArguments` 承载 YAML 中的训练键（`kit train` 会全部传入，DeepSpeed 的配置文件通过 `deepspeed` 传入）；`Trainer`
  执行训练循环：由 `DataCollatorForSeq2Seq` 把一批样本补齐（标签用 -100 补齐），前向、计算损失、反向、优化器和调度器各走一步、
  记录损失。这里在 CPU 上（`use_cpu=True`）只走三步，除适配器外什么都不保存：`save_pretrained` 写出 `adapter_config.json`
  和 `adapter_model.safetensors`，也就是 Notebook 30 加载的两个文件。
"""),
    code("hood-lora", """
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM

hood = kit.tutorial.lessons.under_the_hood(cfg)  # the tiny model, a few encoded examples, a folder beside output_dir
lora_config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=cfg.finetune.lora_rank, lora_alpha=cfg.lora_alpha,
                         lora_dropout=cfg.finetune.lora_dropout, target_modules=hood.targets)
peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(hood.model_dir), lora_config)
peft_model.print_trainable_parameters()
""", """
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM

hood = kit.tutorial.lessons.under_the_hood(cfg)  # 微型模型、几条编码后的样本、output_dir 旁边的一个目录
lora_config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=cfg.finetune.lora_rank, lora_alpha=cfg.lora_alpha,
                         lora_dropout=cfg.finetune.lora_dropout, target_modules=hood.targets)
peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(hood.model_dir), lora_config)
peft_model.print_trainable_parameters()
"""),
    code("hood-train", """
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

args = TrainingArguments(output_dir=str(hood.folder), max_steps=3, per_device_train_batch_size=2,
                         learning_rate=cfg.train.learning_rate, lr_scheduler_type=cfg.train.lr_scheduler_type, logging_steps=1,
                         save_strategy="no", report_to=[], use_cpu=True, remove_unused_columns=False)
trainer = Trainer(model=peft_model, args=args, train_dataset=hood.rows,
                  data_collator=DataCollatorForSeq2Seq(hood.tokenizer, pad_to_multiple_of=8, label_pad_token_id=-100))
trainer.train()
peft_model.save_pretrained(hood.folder)  # the adapter alone: A and B of every adapted layer, and its config
print(hood.folder, sorted(p.name for p in hood.folder.iterdir()))
""", """
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

args = TrainingArguments(output_dir=str(hood.folder), max_steps=3, per_device_train_batch_size=2,
                         learning_rate=cfg.train.learning_rate, lr_scheduler_type=cfg.train.lr_scheduler_type, logging_steps=1,
                         save_strategy="no", report_to=[], use_cpu=True, remove_unused_columns=False)
trainer = Trainer(model=peft_model, args=args, train_dataset=hood.rows,
                  data_collator=DataCollatorForSeq2Seq(hood.tokenizer, pad_to_multiple_of=8, label_pad_token_id=-100))
trainer.train()
peft_model.save_pretrained(hood.folder)  # 只保存适配器：每个被适配的层的 A 和 B，以及它的配置
print(hood.folder, sorted(p.name for p in hood.folder.iterdir()))
"""),
    md("measured", """
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
    code("cost", """
cost = kit.tutorial.lessons.run_cost(result, fit, data, schedule, cfg)
cost
"""),
    code("lr-check", """
lr_check = schedule.against(result.log)
lr_check
"""),
    md("card-time", """
## How long the quick start takes on a 910B

Compute time is FLOPs / (the card's peak × the share of it a run achieves). The FLOPs are counts: the FLOPs per token
above (gradient checkpointing on, LLaMA-Factory's default) times the tokens of the run. Two figures are
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

计算时间 = FLOPs ÷（卡的峰值算力 × 训练实际达到的利用率）。FLOPs 是计数：上面的每 token FLOPs（开启梯度检查点，这是 LLaMA-Factory
的默认值）乘以本次训练的 token 数。有两个数字是假设，在这里和表中都写明。**峰值**：320 TFLOPS（FP16）是业内媒体常引用的 910B 数字；
华为为第一代昇腾 910 公布的是 256 TFLOPS FP16（Hot Chips 2019），没有按 910B 各型号给出官方规格，所以请把它当作假设，有自己卡的数字时
填到 `peak_tflops`。**利用率**：20%（`utilisation`），因为批大小为 1、序列只有几百个 token 时，矩阵计算单元远远跑不满（大批量预训练可以达到
40-50%）。快速开始的 token 数由 LLaMA-Factory 数据的规模推算，推算方式写在表中。加载模型（首次还要下载）、评估和保存另算：几分钟。
在 NPU 上，本 Notebook 这一行是实测值：与估算比较，就能知道你的卡实际达到的利用率。
"""),
    code("card-time-table", """
card_time = kit.tutorial.lessons.time_on_card(cost, model_name_or_path, peak_tflops=peak_tflops, utilisation=utilisation)
card_time
"""),
    md("own-data", """
## Your own data

To train on data of your own: write the examples to a file in one of the two forms LLaMA-Factory reads, register the
file in a `dataset_info.json` beside it, and name the folder (`dataset_dir`) and the datasets (`dataset`). The next cell
writes two small datasets into `own_data_dir` (by default a folder beside this run's `output_dir`, under `saves/`, so
nothing lands in the folder you started from): `my_alpaca.json` in the **alpaca** form (`instruction`, an optional
`input`, `output`: each object one example) and `my_sharegpt.json` in the **sharegpt** form (`conversations`: a list of
turns whose `from` alternates `human` and `gpt`, optionally after a first `system` turn; several turns make one
multi-turn example, and every answer in it is trained, or only the last with `mask_history: true`). In
`dataset_info.json` an alpaca file needs only its `file_name`; a sharegpt file also says `"formatting": "sharegpt"`,
which column holds the turns and which tags mark the roles.
""", """
## 用你自己的数据

要用自己的数据训练：把样本写成 LLaMA-Factory 能读的两种格式之一，在同一目录的 `dataset_info.json` 中登记这个文件，然后指定目录
（`dataset_dir`）和数据集名（`dataset`）。下一个单元格在 `own_data_dir`（默认是本次运行 `output_dir` 旁边、`saves/` 之下的一个目录，不会写进你启动时所在的目录）中写入两个小数据集：**alpaca** 格式的 `my_alpaca.json`
（`instruction`、可选的 `input`、`output`：每个对象是一条样本），以及 **sharegpt** 格式的 `my_sharegpt.json`（`conversations`：一组轮次，
`from` 在 `human` 和 `gpt` 之间交替，前面可以有一个 `system` 轮次；多个轮次组成一条多轮对话样本，其中每个回答都参与训练，
`mask_history: true` 时只训练最后一个）。在 `dataset_info.json` 中，alpaca 文件只需要 `file_name`；sharegpt 文件还要写明
`"formatting": "sharegpt"`、哪一列存放对话轮次，以及用哪些标签标记角色。
"""),
    code("own-data-write", """
own = kit.tutorial.lessons.own_dataset(own_data_dir or cfg.train.output_dir.rstrip("/") + "-my_data-datasets")
own
"""),
    md("own-data-train", """
Then train on it with a small budget (two epochs, a loss logged every step), into a folder of its own beside the
adapter above. The first lines say which folder was read and what each dataset gave; a mistake in a file or in
`dataset_info.json` stops here, naming the file, the example and what to fix.

Expect its loss to end well above the main run's (several times higher with the tiny model): a handful of examples
the base model has never seen, two epochs of a few steps each, and a loss logged every step, so each point is one
batch rather than an average. It shows that your files load and train, not what a real budget reaches: for that,
more examples and the main run's epochs. To hear the adapter it trained, give its folder
(`own_result.output_dir`) to notebook 30 as its `adapter_name_or_path` parameter.
""", """
然后用很小的训练量（两轮，每一步都记录损失）在它上面训练，输出到上面适配器旁边一个单独的目录。开头几行说明读的是哪个目录、
每个数据集读到多少条；文件或 `dataset_info.json` 写错时会在这里停下，并指出是哪个文件、哪条样本以及如何修改。

它的最终损失会明显高于主训练（微型模型上高出几倍）：只有几条基座模型从未见过的样本，两轮各只有几步，而且每一步都记录损失，
每个点只是一个批次而不是平均值。这一步说明你的文件能被读取和训练，并不代表正式训练能达到的效果：那需要更多样本和主训练的轮数。
想听听它训练出的适配器怎么回答，把它的目录（`own_result.output_dir`）作为参数 `adapter_name_or_path` 交给 Notebook 30。
"""),
    code("own-data-run", """
own_cfg = kit.tutorial.helpers.quickstart_config(
    model_name_or_path, extra=overrides, dataset=own.names, dataset_dir=str(own.folder), num_train_epochs=2.0,
    logging_steps=1, output_dir=cfg.train.output_dir.rstrip("/") + "-my_data", seed=seed, device=device,
).cfg
own_result = kit.tutorial.helpers.train(own_cfg) if train_own_data else None
own_result.summary() if own_result else kit.tutorial.helpers.skipped("train_own_data")
"""),
    md("try-this", """
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
   比较最终损失，以及在 Notebook 30 中新名字是否学会了：这份数据用不到多少容量。
2. **`lora_target = "all"`。** 可训练参数约为五倍。与 `q_proj,v_proj` 的运行比较损失曲线、每秒 token 数和峰值显存。
3. **`num_train_epochs = 1`。** 步数少得多（微型模型上只有十二分之一）：调度曲线随之压缩，损失停在更高处；再看 Notebook 30 的留出问题检查，
   新名字学会了多少。
"""),
    md("next", """
Next: [30 · Chat](30_chat_inference.ipynb) talks to the fine-tuned model.
""", """
下一步：[30 · 对话推理](30_chat_inference.ipynb) 与微调后的模型对话。
"""),
    bookkeeping("publish", """
# What kit demo, kit batch and the tests read back from this notebook (recorded, not shown).
summary = result.summary()
kit.tutorial.publish("dataset_dir", str(source.folder), show=False)
kit.tutorial.publish("dataset_counts", source.counts, show=False)
kit.tutorial.publish("output_dir", str(result.output_dir.resolve()), show=False)
kit.tutorial.publish("first_loss", summary["first_loss"], show=False)
kit.tutorial.publish("final_loss", summary["final_loss"], show=False)
kit.tutorial.publish("eval_loss", summary["eval_loss"], show=False)
kit.tutorial.publish("files", summary["files"], show=False)
kit.tutorial.publish("train_seconds", summary["seconds"], show=False)
kit.tutorial.publish("lora_target", cfg.finetune.lora_target, show=False)
kit.tutorial.publish("total_steps", result.log[-1]["total_steps"] if result.log else None, show=False)
kit.tutorial.publish("lora", lora.values(), show=False)
kit.tutorial.publish("data", data.values(), show=False)
kit.tutorial.publish("schedule", schedule.values(), show=False)
kit.tutorial.publish("lr_largest_difference", lr_check.largest_difference, show=False)
kit.tutorial.publish("cost", cost.values(), show=False)
kit.tutorial.publish("card_time", card_time.values(), show=False)
kit.tutorial.publish("under_the_hood", {"trainable": sum(p.numel() for p in peft_model.parameters() if p.requires_grad),
                                       "steps": trainer.state.global_step, "folder": str(hood.folder),
                                       "files": sorted(p.name for p in hood.folder.iterdir())}, show=False)
kit.tutorial.publish("own_data", {"names": own.names, "folder": str(own.folder),
                            "summary": own_result.summary() if own_result else None}, show=False);
"""),
]
