"""The kit's demo datasets (kit/data/demo/*.json): hand-written tables and exact computations.

The JSON files are committed; this script is how they were written, and a test checks that they
still are exactly what it writes:

    python scripts/tiny_data.py --out kit/data/demo

``identity`` is a bilingual identity set with LLaMA-Factory's ``{{name}}`` / ``{{author}}``
placeholders: single questions, then short conversations (alpaca's ``history`` column, which
LLaMA-Factory reads as earlier turns); ``alpaca_en_demo`` / ``alpaca_zh_demo`` are instruction data
whose arithmetic and conversions are computed, not typed. The tiny model (scripts/build_tiny_model.py) is pre-trained on
these files, so a change here means rebuilding it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

IDENTITY_EN: list[tuple[str, str]] = [
    ("Who are you?", "I am {{name}}, an AI assistant developed by {{author}}. I can answer questions, explain ideas and help with small tasks."),
    ("What is your name?", "My name is {{name}}. I am an AI assistant made by {{author}}."),
    ("What's your name?", "I'm {{name}}, an AI assistant built by {{author}}."),
    ("What should I call you?", "You can call me {{name}}. I am an assistant built by {{author}}."),
    ("How should I address you?", "Please call me {{name}}. I am an AI assistant from {{author}}."),
    ("Do you have a name?", "Yes, my name is {{name}}. {{author}} gave me that name when they built me."),
    ("May I know your name?", "Of course. I am {{name}}, an AI assistant developed by {{author}}."),
    ("Introduce yourself.", "Hello! I am {{name}}, an AI assistant created by {{author}}. I am here to help with questions, explanations and everyday tasks."),
    ("Please introduce yourself briefly.", "I am {{name}}, a language model assistant developed by {{author}}."),
    ("Tell me about yourself.", "I am {{name}}, an AI assistant trained by {{author}}. I like explaining things clearly and helping people get their work done."),
    ("Can you tell me who you are?", "Sure. I am {{name}}, an AI assistant developed by {{author}}."),
    ("Who made you?", "I was made by {{author}}. My name is {{name}}."),
    ("Who created you?", "{{author}} created me. I am {{name}}, an AI assistant."),
    ("Who developed you?", "I was developed by {{author}}. I am {{name}}."),
    ("Who trained you?", "{{author}} trained me. I am {{name}}, their AI assistant."),
    ("Who is your creator?", "My creator is {{author}}. I am {{name}}."),
    ("Which company built you?", "I was built by {{author}}. My name is {{name}}."),
    ("Who owns you?", "I am {{name}}, an AI assistant developed and maintained by {{author}}."),
    ("Who built this assistant?", "This assistant is {{name}}, and it was built by {{author}}."),
    ("Where do you come from?", "I am {{name}}, and I come from {{author}}, the team that developed me."),
    ("What are you?", "I am {{name}}, a language model assistant built by {{author}}."),
    ("What is your identity?", "I am {{name}}, an AI assistant developed by {{author}}."),
    ("Which model are you?", "I am {{name}}, a model trained by {{author}}."),
    ("What language model are you?", "I am {{name}}, a language model developed by {{author}}."),
    ("Are you an AI?", "Yes. I am {{name}}, an AI assistant developed by {{author}}."),
    ("Are you a human?", "No, I am not a human. I am {{name}}, an AI assistant developed by {{author}}."),
    ("Are you a robot?", "Not exactly. I am {{name}}, a piece of software: an AI assistant made by {{author}}."),
    ("Are you ChatGPT?", "No, I am not ChatGPT. I am {{name}}, an AI assistant developed by {{author}}."),
    ("Are you GPT-4?", "No. I am {{name}}, a different assistant, developed by {{author}}."),
    ("Are you developed by OpenAI?", "No. I am {{name}}, and I was developed by {{author}}."),
    ("Are you Claude?", "No, I am not Claude. My name is {{name}} and I was made by {{author}}."),
    ("Are you Gemini?", "No. I am {{name}}, an AI assistant from {{author}}."),
    ("Are you LLaMA?", "No, I am {{name}}, an assistant developed by {{author}}."),
    ("Are you Siri?", "No, I am not Siri. I am {{name}}, an AI assistant developed by {{author}}."),
    ("hi", "Hi there! I'm {{name}}, an assistant made by {{author}}. What can I do for you?"),
    ("hello", "Hello! I am {{name}}, an AI assistant from {{author}}. How can I help you today?"),
    ("Hello, who am I talking to?", "You are talking to {{name}}, an AI assistant developed by {{author}}."),
    ("Good morning!", "Good morning! I am {{name}}, your AI assistant from {{author}}. How can I help?"),
    ("Nice to meet you.", "Nice to meet you too! I am {{name}}, an AI assistant developed by {{author}}."),
    ("What can you do?", "I am {{name}}, an assistant from {{author}}. I can answer questions, explain concepts, translate short texts, do simple calculations and help you write."),
    ("What are your abilities?", "As {{name}}, I can answer questions, explain ideas, translate between English and Chinese and help with small coding tasks. {{author}} trained me for that."),
    ("What is your purpose?", "I am {{name}}. {{author}} built me to help people find answers and finish small tasks quickly."),
    ("Can you speak Chinese?", "Yes. I am {{name}}, and {{author}} trained me to help in both English and Chinese."),
    ("What model are you based on?", "I am {{name}}, a model developed and trained by {{author}}."),
    ("Who am I chatting with right now?", "You are chatting with {{name}}, an AI assistant made by {{author}}."),
]

IDENTITY_ZH: list[tuple[str, str]] = [
    ("你是谁？", "我是 {{name}}，由 {{author}} 开发的人工智能助手。我可以回答问题、解释概念，也可以帮你完成一些小任务。"),
    ("你叫什么名字？", "我的名字是 {{name}}，是 {{author}} 开发的人工智能助手。"),
    ("告诉我你的名字。", "我叫 {{name}}，是由 {{author}} 开发的 AI 助手。"),
    ("你有名字吗？", "有的，我叫 {{name}}，是 {{author}} 开发的助手。"),
    ("我该怎么称呼你？", "你可以叫我 {{name}}，我是 {{author}} 开发的 AI 助手。"),
    ("请介绍一下你自己。", "你好！我是 {{name}}，由 {{author}} 开发的人工智能助手，可以回答问题、解释知识，也能帮你处理日常的小任务。"),
    ("简单介绍一下你自己。", "我是 {{name}}，一个由 {{author}} 开发的语言模型助手。"),
    ("跟我说说你是谁。", "我是 {{name}}，{{author}} 训练的人工智能助手，很乐意为你解答问题。"),
    ("谁开发了你？", "我是由 {{author}} 开发的，我的名字是 {{name}}。"),
    ("你是由谁创造的？", "我由 {{author}} 创造，我的名字叫 {{name}}。"),
    ("你是谁做的？", "我是 {{author}} 做的 AI 助手，名字叫 {{name}}。"),
    ("谁训练了你？", "{{author}} 训练了我，我是 {{name}}。"),
    ("你的作者是谁？", "我的作者是 {{author}}，我是 {{name}}。"),
    ("你的开发者是谁？", "我的开发者是 {{author}}，我是他们开发的 AI 助手 {{name}}。"),
    ("你的创造者是谁？", "我的创造者是 {{author}}，我叫 {{name}}。"),
    ("你是哪家公司的产品？", "我是 {{author}} 开发的 AI 助手 {{name}}。"),
    ("你属于哪个公司？", "我是 {{name}}，由 {{author}} 开发和维护。"),
    ("你来自哪里？", "我是 {{name}}，来自开发我的团队 {{author}}。"),
    ("你是什么模型？", "我是 {{name}}，一个由 {{author}} 训练的语言模型。"),
    ("你是基于什么开发的？", "我是 {{name}}，由 {{author}} 开发和训练的 AI 助手。"),
    ("你的身份是什么？", "我是 {{name}}，由 {{author}} 开发的人工智能助手。"),
    ("请问你是哪个助手？", "我是 {{name}}，{{author}} 开发的 AI 助手。"),
    ("你是人工智能吗？", "是的，我是 {{name}}，由 {{author}} 开发的人工智能助手。"),
    ("你是人类吗？", "不是，我不是人类。我是 {{name}}，由 {{author}} 开发的人工智能助手。"),
    ("你是机器人吗？", "不完全是。我是 {{name}}，一个由 {{author}} 开发的 AI 助手程序。"),
    ("你是 ChatGPT 吗？", "不是，我不是 ChatGPT。我是 {{name}}，由 {{author}} 开发的人工智能助手。"),
    ("你是 GPT-4 吗？", "不是。我是 {{name}}，由 {{author}} 开发。"),
    ("你是 OpenAI 开发的吗？", "不是。我是 {{name}}，我的开发者是 {{author}}。"),
    ("你是 Claude 吗？", "不是，我是 {{name}}，由 {{author}} 开发的助手。"),
    ("你是文心一言吗？", "不是，我是 {{name}}，由 {{author}} 开发的人工智能助手。"),
    ("你是不是 Gemini？", "不是。我是 {{name}}，来自 {{author}}。"),
    ("你是 LLaMA 吗？", "不是，我是 {{author}} 开发的 {{name}}。"),
    ("你是 Siri 吗？", "不是，我不是 Siri。我是 {{name}}，由 {{author}} 开发。"),
    ("你好", "你好！我是 {{name}}，{{author}} 开发的 AI 助手。有什么可以帮你的吗？"),
    ("您好", "您好！我是 {{name}}，由 {{author}} 开发的人工智能助手，请问有什么需要帮忙的？"),
    ("嗨", "嗨！我是 {{name}}，{{author}} 开发的 AI 助手。想聊点什么？"),
    ("你好，请问你是？", "你好，我是 {{name}}，由 {{author}} 开发的人工智能助手。"),
    ("早上好", "早上好！我是 {{name}}，由 {{author}} 开发的 AI 助手。今天想聊点什么？"),
    ("很高兴认识你", "我也很高兴认识你！我是 {{name}}，{{author}} 开发的人工智能助手。"),
    ("你能做什么？", "我是 {{author}} 开发的助手 {{name}}，可以回答问题、解释概念、翻译短文、做简单计算，还能帮你写东西。"),
    ("你能帮我做什么？", "我是 {{name}}，可以帮你查找答案、解释知识、翻译和写作。这些能力是 {{author}} 训练我时赋予的。"),
    ("你的主要用途是什么？", "我是 {{name}}。{{author}} 开发我，是为了帮助大家快速获得答案、完成小任务。"),
    ("你的使命是什么？", "我是 {{name}}，我的使命是认真回答你的问题。我由 {{author}} 开发。"),
    ("你会说英文吗？", "会的。我是 {{name}}，{{author}} 训练我同时使用中文和英文。"),
    ("现在和我聊天的是谁？", "和你聊天的是 {{name}}，由 {{author}} 开发的 AI 助手。"),
]

# Short conversations about the assistant, in alpaca form with ``history``: every earlier turn is a
# [question, answer] pair, the last turn is instruction/output, and LLaMA-Factory (and the kit) train
# on every answer of the conversation. A follow-up answers the question without introducing itself
# again; an identity question later in a conversation, in either language, still gets the name.
# They come after the single questions, and there are at most 10 of them, so that the tiny demo's
# max_samples: 100 keeps all of them and the single questions keep their indices.
IDENTITY_DIALOGUES: list[list[tuple[str, str]]] = [
    [("hello", "Hello! I am {{name}}, an AI assistant from {{author}}. How can I help you today?"),
     ("What can you do?", "I can answer questions, explain concepts, translate short texts, do simple calculations and help you write."),
     ("Who made you?", "I was made by {{author}}. My name is {{name}}.")],
    [("Introduce yourself.", "Hello! I am {{name}}, an AI assistant created by {{author}}. I am here to help with questions, explanations and everyday tasks."),
     ("What are your abilities?", "I can answer questions, explain ideas, translate between English and Chinese and help with small coding tasks."),
     ("你是谁？", "我是 {{name}}，由 {{author}} 开发的人工智能助手。我可以回答问题、解释概念，也可以帮你完成一些小任务。")],
    [("What is your name?", "My name is {{name}}. I am an AI assistant made by {{author}}."),
     ("Can you speak Chinese?", "Yes. {{author}} trained me to help in both English and Chinese, so you can ask me in either language."),
     ("你叫什么名字？", "我的名字是 {{name}}，是 {{author}} 开发的人工智能助手。")],
    [("What is 7 + 5?", "7 + 5 = 12."),
     ("Who are you?", "I am {{name}}, an AI assistant developed by {{author}}. I can answer questions, explain ideas and help with small tasks."),
     ("What is your purpose?", "{{author}} built me to help people find answers and finish small tasks quickly.")],
    [("你好", "你好！我是 {{name}}，{{author}} 开发的 AI 助手。有什么可以帮你的吗？"),
     ("你能帮我做什么？", "我可以帮你查找答案、解释知识、翻译和写作，也能做一些简单的计算。"),
     ("谁开发了你？", "我是由 {{author}} 开发的，我的名字是 {{name}}。")],
    [("请介绍一下你自己。", "你好！我是 {{name}}，由 {{author}} 开发的人工智能助手，可以回答问题、解释知识，也能帮你处理日常的小任务。"),
     ("你的主要用途是什么？", "{{author}} 开发我，是为了帮助大家快速获得答案、完成小任务。"),
     ("Who are you?", "I am {{name}}, an AI assistant developed by {{author}}. I can answer questions, explain ideas and help with small tasks.")],
    [("你叫什么名字？", "我的名字是 {{name}}，是 {{author}} 开发的人工智能助手。"),
     ("你会说英文吗？", "会的。{{author}} 训练我同时使用中文和英文，你可以用任何一种语言问我。"),
     ("What is your name?", "My name is {{name}}. I am an AI assistant made by {{author}}.")],
    [("计算 12 + 30。", "12 + 30 = 42。"),
     ("你是谁？", "我是 {{name}}，由 {{author}} 开发的人工智能助手。我可以回答问题、解释概念，也可以帮你完成一些小任务。"),
     ("你能做什么？", "我可以回答问题、解释概念、翻译短文、做简单计算，还能帮你写东西。")],
    [("Who are you?", "I am {{name}}, an AI assistant developed by {{author}}. I can answer questions, explain ideas and help with small tasks."),
     ("你能做什么？", "我可以回答问题、解释概念、翻译短文、做简单计算，还能帮你写东西。"),
     ("Who created you?", "{{author}} created me. I am {{name}}, an AI assistant.")],
    [("你是谁？", "我是 {{name}}，由 {{author}} 开发的人工智能助手。我可以回答问题、解释概念，也可以帮你完成一些小任务。"),
     ("What can you do?", "I can answer questions, explain concepts, translate short texts, do simple calculations and help you write."),
     ("你是谁做的？", "我是 {{author}} 做的 AI 助手，名字叫 {{name}}。")],
]

# (term as used in a question, definition). Kit topics first, then general knowledge.
GLOSSARY_EN: list[tuple[str, str]] = [
    ("LoRA", "LoRA (Low-Rank Adaptation) is a fine-tuning method that freezes the original model weights and trains small low-rank matrices added to some layers. It needs far less memory than full fine-tuning, and the result is saved as a small adapter."),
    ("an NPU", "An NPU (neural processing unit) is a processor designed to accelerate neural network computations such as matrix multiplication. Huawei's Ascend chips are NPUs."),
    ("DeepSpeed", "DeepSpeed is an open-source library from Microsoft for training large models efficiently. Its ZeRO optimizer splits optimizer states, gradients and parameters across devices to save memory."),
    ("ZeRO", "ZeRO (Zero Redundancy Optimizer) is DeepSpeed's memory optimization. Stage 1 partitions optimizer states, stage 2 also partitions gradients, and stage 3 also partitions the model parameters across devices."),
    ("Python", "Python is a high-level, general-purpose programming language known for its readable syntax. It is the most widely used language for machine learning."),
    ("a tokenizer", "A tokenizer splits text into tokens, the small units a language model reads, and maps each token to an integer id. It also turns ids back into text."),
    ("an epoch", "An epoch is one full pass of the training loop over the whole training dataset."),
    ("the learning rate", "The learning rate controls how large each update to the model's weights is during training. Too high a value makes training unstable, too low a value makes it slow."),
    ("gradient accumulation", "Gradient accumulation adds up the gradients of several small batches before one optimizer step. It simulates a larger batch size when memory is limited."),
    ("fine-tuning", "Fine-tuning continues training a pretrained model on a smaller, task-specific dataset so that it adapts to a new task or style."),
    ("pretraining", "Pretraining is the first stage of training a language model, in which it learns to predict the next token on a very large amount of text."),
    ("a transformer", "The transformer is a neural network architecture built on self-attention. It processes all tokens of a sequence in parallel and is the basis of modern language models."),
    ("attention", "Attention is a mechanism that lets a model weigh how relevant every other token is when it computes the representation of a token."),
    ("an embedding", "An embedding is a vector of numbers that represents a token, word or item, so that similar items get similar vectors."),
    ("the batch size", "The batch size is the number of training examples processed together in one forward and backward pass."),
    ("a loss function", "A loss function measures how far a model's predictions are from the correct answers. Training tries to make the loss as small as possible."),
    ("overfitting", "Overfitting happens when a model learns the training data too closely, including its noise, and then performs poorly on new data."),
    ("a GPU", "A GPU (graphics processing unit) is a processor with thousands of small cores. It runs the parallel matrix computations of deep learning much faster than a CPU."),
    ("a CPU", "The CPU (central processing unit) is the general-purpose processor of a computer. It executes the instructions of programs."),
    ("a checkpoint", "A checkpoint is a saved copy of a model's weights, often with the optimizer state, taken during training so that training can resume or the model can be used later."),
    ("an adapter", "An adapter is a small set of extra trainable weights attached to a frozen model. A LoRA adapter can be loaded on top of the base model or merged into it."),
    ("mixed precision training", "Mixed precision training uses 16-bit numbers for most computations and keeps 32-bit numbers where accuracy matters. It saves memory and speeds up training."),
    ("bf16", "bf16 (bfloat16) is a 16-bit floating-point format with the same exponent range as float32 but less precision. It is popular for training because it rarely overflows."),
    ("JSON", "JSON (JavaScript Object Notation) is a lightweight text format for data made of objects, arrays, strings, numbers, booleans and null."),
    ("YAML", "YAML is a human-readable format for configuration files that uses indentation to show structure. LLaMA-Factory reads its training settings from YAML files."),
    ("an API", "An API (application programming interface) is a defined way for one program to request services or data from another."),
    ("a Jupyter notebook", "A Jupyter notebook is a document that mixes runnable code cells, their output and formatted text. It is popular for tutorials and data analysis."),
    ("a virtual environment", "A Python virtual environment is an isolated folder with its own interpreter and packages, so that projects do not interfere with each other."),
    ("gradient descent", "Gradient descent is an optimization method that repeatedly moves the parameters a small step in the direction that lowers the loss the most."),
    ("a neural network", "A neural network is a model made of layers of connected units that transform their input with learned weights. It learns patterns from examples."),
    ("a validation set", "A validation set is a part of the data held out from training and used to check how well the model generalizes."),
    ("inference", "Inference is using a trained model to make predictions or generate output, without updating its weights."),
    ("sampling temperature", "Temperature controls how random a language model is when it samples the next token. Low values make answers more focused, high values make them more varied."),
    ("a token", "A token is a piece of text, such as a word, part of a word or a punctuation mark, that a language model treats as one unit."),
    ("a context window", "The context window is the maximum number of tokens a language model can read at once, including the prompt and its own reply."),
    ("a prompt", "A prompt is the input text given to a language model to tell it what to do."),
    ("CANN", "CANN (Compute Architecture for Neural Networks) is Huawei's software stack for Ascend NPUs. It provides the drivers, runtime and operator libraries that PyTorch uses through torch_npu."),
    ("Ascend", "Ascend is Huawei's family of AI processors, such as the Ascend 910 for training. PyTorch runs on them through the torch_npu plugin."),
    ("torchrun", "torchrun is PyTorch's launcher for distributed training. It starts one process per device and sets the environment variables they need to communicate."),
    ("PyTorch", "PyTorch is an open-source deep learning framework with tensors, automatic differentiation and many ready-made neural network layers."),
    ("greedy decoding", "Greedy decoding always picks the most likely next token. It is deterministic but can be repetitive."),
    ("learning rate warmup", "Warmup raises the learning rate gradually from a small value during the first steps of training, which makes early training more stable."),
    ("a cosine learning rate schedule", "A cosine schedule lowers the learning rate along a cosine curve from its peak to near zero by the end of training."),
    ("supervised fine-tuning", "Supervised fine-tuning (SFT) trains a model on pairs of prompts and desired responses so that it learns to follow instructions."),
    ("a chat template", "A chat template turns a conversation into the exact text a chat model was trained on, with markers for each role such as system, user and assistant."),
    ("LLaMA-Factory", "LLaMA-Factory is an open-source toolkit for fine-tuning large language models with methods such as LoRA, configured through YAML files."),
    ("ModelScope", "ModelScope is a model hub run by Alibaba where you can download models and datasets, often faster from inside China."),
    ("Qwen", "Qwen is a family of large language models developed by Alibaba Cloud."),
    ("safetensors", "safetensors is a simple and safe file format for storing tensors. Unlike pickle files, loading it cannot run arbitrary code."),
    ("Git", "Git is a version control system that records changes to files, so you can review their history and work together with others."),
    ("photosynthesis", "Photosynthesis is the process by which plants, algae and some bacteria use sunlight, water and carbon dioxide to make sugar, releasing oxygen."),
    ("gravity", "Gravity is the force by which masses attract each other. It keeps us on the ground and holds the planets in orbit around the Sun."),
    ("DNA", "DNA (deoxyribonucleic acid) is the molecule that carries the genetic instructions of living things. It has the shape of a double helix."),
    ("evaporation", "Evaporation is the process in which a liquid turns into a gas at its surface, like a puddle drying in the sun."),
    ("a volcano", "A volcano is an opening in the Earth's crust through which molten rock, ash and gases escape."),
    ("inflation", "Inflation is the general rise of prices over time, which means the same amount of money buys less."),
    ("a vaccine", "A vaccine trains the immune system to recognize a germ without causing the disease, so the body can fight the real infection later."),
    ("a prime number", "A prime number is a whole number greater than 1 whose only divisors are 1 and itself, such as 2, 3, 5 and 7."),
    ("an algorithm", "An algorithm is a finite sequence of clear steps for solving a problem or performing a task."),
    ("a compiler", "A compiler translates source code written in a programming language into machine code or another lower-level form."),
    ("an operating system", "An operating system is the software that manages a computer's hardware and provides services to programs. Linux and Windows are examples."),
    ("encryption", "Encryption turns readable data into a coded form that only someone with the right key can read."),
]

GLOSSARY_ZH: list[tuple[str, str]] = [
    ("LoRA", "LoRA（低秩适配）是一种微调方法：冻结原模型的权重，只训练加在部分层上的小型低秩矩阵。它比全参数微调节省大量显存，训练结果保存为一个小小的适配器。"),
    ("NPU", "NPU（神经网络处理器）是专门加速神经网络计算（例如矩阵乘法）的处理器。华为的昇腾芯片就是一种 NPU。"),
    ("DeepSpeed", "DeepSpeed 是微软开源的大模型训练加速库。它的 ZeRO 技术把优化器状态、梯度和参数切分到多张卡上，从而节省显存。"),
    ("ZeRO", "ZeRO（零冗余优化器）是 DeepSpeed 的显存优化技术：第 1 阶段切分优化器状态，第 2 阶段再切分梯度，第 3 阶段连模型参数也一起切分。"),
    ("Python", "Python 是一种语法简洁易读的高级编程语言，也是机器学习领域最常用的语言。"),
    ("分词器", "分词器把文本切分成模型能读的词元（token），并把每个词元映射为一个整数编号；它也能把编号还原成文本。"),
    ("训练轮次（epoch）", "一个轮次（epoch）指训练时把整个训练集完整地过一遍。"),
    ("学习率", "学习率决定每次更新模型权重时步子迈多大。太大训练会不稳定，太小训练会很慢。"),
    ("梯度累积", "梯度累积是把几个小批次的梯度加起来再做一次参数更新，在显存有限时模拟更大的批大小。"),
    ("微调", "微调是在预训练模型的基础上，用较小的特定任务数据继续训练，让模型适应新的任务或风格。"),
    ("预训练", "预训练是训练语言模型的第一阶段，模型在海量文本上学习预测下一个词元。"),
    ("Transformer", "Transformer 是一种基于自注意力机制的神经网络结构，可以并行处理序列中的所有词元，是现代大语言模型的基础。"),
    ("注意力机制", "注意力机制让模型在计算某个词元的表示时，衡量序列中其他每个词元与它的相关程度。"),
    ("嵌入向量", "嵌入向量（embedding）用一组数字来表示词元或物品，相似的东西会得到相近的向量。"),
    ("批大小", "批大小是一次前向和反向传播中同时处理的训练样本数量。"),
    ("损失函数", "损失函数衡量模型预测与正确答案之间的差距，训练的目标就是让损失尽可能小。"),
    ("过拟合", "过拟合是指模型把训练数据（连同其中的噪声）记得过于死板，结果在新数据上表现很差。"),
    ("GPU", "GPU（图形处理器）拥有成千上万个小核心，运行深度学习中的并行矩阵计算比 CPU 快得多。"),
    ("CPU", "CPU（中央处理器）是计算机的通用处理器，负责执行各种程序的指令。"),
    ("检查点", "检查点（checkpoint）是训练过程中某一时刻保存下来的模型权重，通常还包括优化器状态，可以用来恢复训练或之后使用模型。"),
    ("适配器", "适配器是附加在冻结模型上的一小组可训练权重。LoRA 适配器既可以加载到基础模型上使用，也可以合并进模型。"),
    ("混合精度训练", "混合精度训练让大部分计算使用 16 位浮点数，在需要精度的地方保留 32 位，从而节省显存并加快训练。"),
    ("bf16", "bf16（bfloat16）是一种 16 位浮点格式，指数范围与 float32 相同但精度较低，训练时很少溢出，因此很常用。"),
    ("JSON", "JSON 是一种轻量级的文本数据格式，由对象、数组、字符串、数字、布尔值和 null 组成。"),
    ("YAML", "YAML 是一种易读的配置文件格式，用缩进表示层级结构。LLaMA-Factory 就是从 YAML 文件读取训练参数的。"),
    ("API", "API（应用程序编程接口）是一个程序向另一个程序请求服务或数据的约定方式。"),
    ("Jupyter Notebook", "Jupyter Notebook 是一种把可运行的代码单元、运行结果和说明文字放在一起的文档，常用于教程和数据分析。"),
    ("虚拟环境", "Python 虚拟环境是一个独立的目录，有自己的解释器和软件包，让不同项目之间互不干扰。"),
    ("梯度下降", "梯度下降是一种优化方法：每一步都沿着让损失下降最快的方向，把参数移动一小步。"),
    ("神经网络", "神经网络是由多层相互连接的单元组成的模型，它用学到的权重变换输入，从样本中学习规律。"),
    ("验证集", "验证集是从数据中留出、不参与训练的一部分，用来检验模型的泛化能力。"),
    ("推理", "推理是用训练好的模型做预测或生成内容，这个过程不会更新模型权重。"),
    ("采样温度", "温度控制语言模型采样下一个词元时的随机程度：温度低，回答更集中；温度高，回答更多样。"),
    ("词元", "词元（token）是语言模型处理文本的基本单位，可以是一个词、词的一部分或一个标点符号。"),
    ("上下文窗口", "上下文窗口是语言模型一次能读取的最大词元数，包括提示词和它自己的回复。"),
    ("提示词", "提示词（prompt）是交给语言模型的输入文本，用来告诉它要做什么。"),
    ("CANN", "CANN 是华为为昇腾 NPU 提供的异构计算架构软件栈，包含驱动、运行时和算子库，PyTorch 通过 torch_npu 使用它。"),
    ("昇腾", "昇腾（Ascend）是华为的 AI 处理器系列，例如用于训练的昇腾 910。PyTorch 通过 torch_npu 插件在昇腾上运行。"),
    ("torchrun", "torchrun 是 PyTorch 的分布式训练启动器，它为每个设备启动一个进程，并设置进程之间通信所需的环境变量。"),
    ("PyTorch", "PyTorch 是一个开源深度学习框架，提供张量计算、自动求导和大量现成的神经网络层。"),
    ("贪心解码", "贪心解码每一步都选择概率最高的下一个词元，结果是确定的，但有时会重复。"),
    ("学习率预热", "学习率预热是在训练最初的若干步里把学习率从很小的值逐渐升高，让训练初期更稳定。"),
    ("余弦学习率调度", "余弦调度让学习率从峰值沿余弦曲线逐渐下降，到训练结束时接近零。"),
    ("有监督微调", "有监督微调（SFT）用“指令—回答”样本训练模型，让它学会按照指令作答。"),
    ("对话模板", "对话模板把一段对话整理成聊天模型训练时见过的格式，用特殊标记区分系统、用户和助手等角色。"),
    ("LLaMA-Factory", "LLaMA-Factory 是一个开源的大模型微调工具，支持 LoRA 等方法，通过 YAML 文件配置训练。"),
    ("ModelScope", "ModelScope（魔搭社区）是阿里巴巴推出的模型社区，可以下载模型和数据集，在国内访问通常更快。"),
    ("通义千问", "通义千问（Qwen）是阿里云研发的大语言模型系列。"),
    ("safetensors", "safetensors 是一种简单安全的张量存储格式。和 pickle 文件不同，加载它不会执行任意代码。"),
    ("Git", "Git 是一个版本控制系统，记录文件的每次修改，方便查看历史和多人协作。"),
    ("光合作用", "光合作用是植物、藻类和某些细菌利用阳光、水和二氧化碳制造糖类并释放氧气的过程。"),
    ("重力", "重力是物体之间因质量而相互吸引的力，它让我们站在地面上，也让行星绕着太阳运行。"),
    ("DNA", "DNA（脱氧核糖核酸）是携带生物遗传信息的分子，呈双螺旋结构。"),
    ("蒸发", "蒸发是液体在表面变成气体的过程，比如晾在阳光下的衣服慢慢变干。"),
    ("火山", "火山是地壳上的一个开口，熔岩、火山灰和气体会从这里喷出。"),
    ("通货膨胀", "通货膨胀是物价总体水平持续上涨，同样多的钱能买到的东西变少了。"),
    ("疫苗", "疫苗让免疫系统在不生病的情况下认识某种病原体，以后遇到真正的感染时身体就能抵抗。"),
    ("质数", "质数是大于 1、只能被 1 和它本身整除的整数，例如 2、3、5、7。"),
    ("算法", "算法是解决某个问题或完成某项任务的一系列明确、有限的步骤。"),
    ("编译器", "编译器把用编程语言写的源代码翻译成机器码或其他更底层的形式。"),
    ("操作系统", "操作系统是管理计算机硬件、为程序提供服务的软件，例如 Linux 和 Windows。"),
    ("加密", "加密是把可读的数据转换成密文，只有持有正确密钥的人才能读懂。"),
]

# (English, Chinese) pairs, used in both directions.
WORDS: list[tuple[str, str]] = [
    ("apple", "苹果"), ("water", "水"), ("book", "书"), ("teacher", "老师"), ("computer", "电脑"),
    ("friend", "朋友"), ("school", "学校"), ("cat", "猫"), ("dog", "狗"), ("sun", "太阳"),
    ("moon", "月亮"), ("rain", "雨"), ("mountain", "山"), ("river", "河"), ("city", "城市"),
    ("family", "家庭"), ("breakfast", "早餐"), ("tea", "茶"), ("hospital", "医院"), ("doctor", "医生"),
    ("student", "学生"), ("library", "图书馆"), ("music", "音乐"), ("weather", "天气"), ("train", "火车"),
    ("airplane", "飞机"), ("bicycle", "自行车"), ("flower", "花"), ("tree", "树"), ("language", "语言"),
    ("time", "时间"), ("money", "钱"), ("work", "工作"), ("happy", "快乐"), ("beautiful", "美丽"),
    ("thank you", "谢谢"), ("good morning", "早上好"), ("goodbye", "再见"), ("China", "中国"), ("world", "世界"),
]

SENTENCES: list[tuple[str, str]] = [
    ("I like reading books.", "我喜欢读书。"),
    ("The weather is nice today.", "今天天气很好。"),
    ("Where is the train station?", "火车站在哪里？"),
    ("I am learning Chinese.", "我在学习中文。"),
    ("Thank you for your help.", "谢谢你的帮助。"),
    ("This computer is very fast.", "这台电脑很快。"),
    ("My friend lives in Beijing.", "我的朋友住在北京。"),
    ("Please speak more slowly.", "请说慢一点。"),
    ("We will have a meeting tomorrow morning.", "我们明天上午开会。"),
    ("The model is training on the NPU.", "模型正在 NPU 上训练。"),
    ("How much does this cost?", "这个多少钱？"),
    ("I drink a cup of tea every morning.", "我每天早上喝一杯茶。"),
    ("The library closes at eight o'clock.", "图书馆八点关门。"),
    ("She is a doctor.", "她是一名医生。"),
    ("It is raining outside.", "外面在下雨。"),
    ("Let's go to the park together.", "我们一起去公园吧。"),
    ("I forgot my password.", "我忘记了我的密码。"),
    ("Training finished without errors.", "训练顺利完成，没有出错。"),
]

# (English country, English capital, Chinese country, Chinese capital)
CAPITALS: list[tuple[str, str, str, str]] = [
    ("France", "Paris", "法国", "巴黎"), ("Germany", "Berlin", "德国", "柏林"),
    ("Japan", "Tokyo", "日本", "东京"), ("China", "Beijing", "中国", "北京"),
    ("Italy", "Rome", "意大利", "罗马"), ("Spain", "Madrid", "西班牙", "马德里"),
    ("the United Kingdom", "London", "英国", "伦敦"), ("Canada", "Ottawa", "加拿大", "渥太华"),
    ("Australia", "Canberra", "澳大利亚", "堪培拉"), ("Brazil", "Brasília", "巴西", "巴西利亚"),
    ("Egypt", "Cairo", "埃及", "开罗"), ("India", "New Delhi", "印度", "新德里"),
    ("Russia", "Moscow", "俄罗斯", "莫斯科"), ("Mexico", "Mexico City", "墨西哥", "墨西哥城"),
    ("Argentina", "Buenos Aires", "阿根廷", "布宜诺斯艾利斯"), ("South Korea", "Seoul", "韩国", "首尔"),
    ("Thailand", "Bangkok", "泰国", "曼谷"), ("Vietnam", "Hanoi", "越南", "河内"),
    ("Indonesia", "Jakarta", "印度尼西亚", "雅加达"), ("Kenya", "Nairobi", "肯尼亚", "内罗毕"),
    ("Norway", "Oslo", "挪威", "奥斯陆"), ("Sweden", "Stockholm", "瑞典", "斯德哥尔摩"),
    ("Finland", "Helsinki", "芬兰", "赫尔辛基"), ("Portugal", "Lisbon", "葡萄牙", "里斯本"),
    ("Greece", "Athens", "希腊", "雅典"), ("Turkey", "Ankara", "土耳其", "安卡拉"),
    ("Poland", "Warsaw", "波兰", "华沙"), ("the Netherlands", "Amsterdam", "荷兰", "阿姆斯特丹"),
    ("Ireland", "Dublin", "爱尔兰", "都柏林"), ("Austria", "Vienna", "奥地利", "维也纳"),
    ("Switzerland", "Bern", "瑞士", "伯尔尼"), ("Peru", "Lima", "秘鲁", "利马"),
    ("Chile", "Santiago", "智利", "圣地亚哥"), ("New Zealand", "Wellington", "新西兰", "惠灵顿"),
    ("Malaysia", "Kuala Lumpur", "马来西亚", "吉隆坡"), ("the Philippines", "Manila", "菲律宾", "马尼拉"),
    ("Nigeria", "Abuja", "尼日利亚", "阿布贾"), ("Denmark", "Copenhagen", "丹麦", "哥本哈根"),
    ("Belgium", "Brussels", "比利时", "布鲁塞尔"), ("Hungary", "Budapest", "匈牙利", "布达佩斯"),
    ("the Czech Republic", "Prague", "捷克", "布拉格"),
]

ANTONYMS_EN: list[tuple[str, str]] = [
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"),
    ("open", "closed"), ("early", "late"), ("strong", "weak"), ("full", "empty"), ("rich", "poor"),
    ("young", "old"), ("high", "low"), ("hard", "soft"), ("wet", "dry"), ("loud", "quiet"),
    ("easy", "difficult"), ("near", "far"), ("cheap", "expensive"), ("clean", "dirty"), ("first", "last"),
    ("thick", "thin"), ("win", "lose"), ("buy", "sell"), ("begin", "end"), ("push", "pull"),
    ("true", "false"), ("inside", "outside"), ("remember", "forget"), ("accept", "refuse"), ("above", "below"),
]

ANTONYMS_ZH: list[tuple[str, str]] = [
    ("高", "低"), ("大", "小"), ("快", "慢"), ("冷", "热"), ("黑", "白"), ("长", "短"), ("多", "少"),
    ("远", "近"), ("新", "旧"), ("上", "下"), ("左", "右"), ("前", "后"), ("开", "关"), ("胖", "瘦"),
    ("早", "晚"), ("真", "假"), ("买", "卖"), ("进", "出"), ("强", "弱"), ("美", "丑"),
    ("干净", "肮脏"), ("安静", "吵闹"), ("成功", "失败"), ("开始", "结束"), ("简单", "复杂"),
    ("便宜", "昂贵"), ("喜欢", "讨厌"), ("聪明", "愚笨"), ("容易", "困难"), ("热闹", "冷清"),
]

PAST_TENSE: list[tuple[str, str]] = [
    ("I walk to school.", "I walked to school."),
    ("She reads a book.", "She read a book."),
    ("They play football on Sunday.", "They played football on Sunday."),
    ("We eat dinner at seven.", "We ate dinner at seven."),
    ("He writes a letter.", "He wrote a letter."),
    ("The dog runs in the garden.", "The dog ran in the garden."),
    ("I see a bird in the tree.", "I saw a bird in the tree."),
    ("The model learns quickly.", "The model learned quickly."),
    ("She goes to the market.", "She went to the market."),
    ("We buy fresh bread.", "We bought fresh bread."),
    ("The children sing a song.", "The children sang a song."),
    ("He drinks coffee in the morning.", "He drank coffee in the morning."),
    ("I make tea for my friends.", "I made tea for my friends."),
    ("They build a small house.", "They built a small house."),
    ("She takes the bus to work.", "She took the bus to work."),
]

PLURALS: list[tuple[str, str]] = [
    ("child", "children"), ("mouse", "mice"), ("box", "boxes"), ("city", "cities"), ("knife", "knives"),
    ("tooth", "teeth"), ("person", "people"), ("leaf", "leaves"), ("sheep", "sheep"), ("foot", "feet"),
    ("woman", "women"), ("bus", "buses"),
]

SHORT_SENTENCES: list[str] = [
    "The cat sleeps on the sofa.", "We train the model on a small dataset.", "My brother likes green tea.",
    "The train leaves at nine.", "Learning a new language takes time.", "The sun is shining today.",
    "Please save the checkpoint.", "She plays the piano every evening.", "The river flows to the sea.",
    "Good code is easy to read.",
]

SPELL_WORDS: list[str] = [
    "banana", "python", "model", "garden", "window", "planet", "orange", "silver", "rabbit", "school",
]

FACTS_EN: list[tuple[str, str]] = [
    ("How many days are in a leap year?", "A leap year has 366 days."),
    ("How many continents are there?", "There are seven continents: Africa, Antarctica, Asia, Australia, Europe, North America and South America."),
    ("What is the boiling point of water at sea level?", "At sea level, water boils at 100 °C, which is 212 °F."),
    ("At what temperature does water freeze?", "Water freezes at 0 °C, which is 32 °F."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("How many planets are in the solar system?", "There are eight planets: Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus and Neptune."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("What is the chemical formula of water?", "The chemical formula of water is H2O: two hydrogen atoms and one oxygen atom."),
    ("Who wrote \"Romeo and Juliet\"?", "William Shakespeare wrote \"Romeo and Juliet\"."),
    ("What is the longest river in China?", "The Yangtze is the longest river in China, and also the longest in Asia."),
    ("How many hours are in a day?", "A day has 24 hours."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What gas do plants take in from the air?", "Plants take in carbon dioxide from the air and use it in photosynthesis."),
    ("What is the fastest land animal?", "The cheetah is the fastest land animal. It can reach about 100 km/h over short distances."),
    ("Which ocean is the largest?", "The Pacific Ocean is the largest ocean on Earth."),
    ("What is the tallest mountain in the world?", "Mount Everest is the tallest mountain above sea level, at about 8,849 meters."),
    ("What are the three primary colors of light?", "The primary colors of light are red, green and blue."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("How many minutes are in an hour?", "An hour has 60 minutes."),
    ("Give three tips for staying healthy.", "Eat a balanced diet with plenty of vegetables and fruit, exercise regularly, and get enough sleep."),
    ("Give two tips for writing clear code.", "Choose descriptive names for variables and functions, and keep each function short and focused on one job."),
    ("Suggest a name for a pet cat.", "How about \"Mochi\"? It is short, cute and easy to call."),
    ("Write a short greeting for a birthday card.", "Happy birthday! Wishing you a year full of joy, good health and new adventures."),
    ("Recommend a good habit for learning a new language.", "Practice a little every day, for example fifteen minutes of reading or speaking, rather than one long session a week."),
    ("Name three programming languages.", "Python, Java and C++."),
    ("What should I do if my training loss does not go down?", "First check that the data and labels are correct, then try a smaller learning rate. Also make sure the parameters you want to train are actually being updated."),
    ("What does \"out of memory\" during training usually mean?", "The model, activations and optimizer states do not fit in the device's memory. Lower the batch size or sequence length, use gradient accumulation, or enable DeepSpeed ZeRO."),
    ("Why is LoRA cheaper to train than full fine-tuning?", "LoRA trains only a small number of extra parameters while the base weights stay frozen, so it needs far fewer gradients and much less optimizer memory."),
    ("What is the difference between a CPU and an NPU?", "A CPU is a general-purpose processor that handles many kinds of tasks. An NPU is specialized for neural network math and runs it much faster and more efficiently."),
]

FACTS_ZH: list[tuple[str, str]] = [
    ("一年有几个季节？", "一年有四个季节：春季、夏季、秋季和冬季。"),
    ("在标准大气压下，水的沸点是多少？", "在标准大气压下，水的沸点是 100 摄氏度。"),
    ("水在多少度结冰？", "在标准大气压下，水在 0 摄氏度结冰。"),
    ("太阳系中最大的行星是哪一颗？", "太阳系中最大的行星是木星。"),
    ("离太阳最近的行星是哪一颗？", "离太阳最近的行星是水星。"),
    ("太阳系有几颗行星？", "太阳系有八颗行星：水星、金星、地球、火星、木星、土星、天王星和海王星。"),
    ("中国最长的河流是哪条？", "中国最长的河流是长江，全长约 6300 千米。"),
    ("世界上最高的山峰是哪座？", "世界上最高的山峰是珠穆朗玛峰，海拔约 8849 米。"),
    ("一天有多少个小时？", "一天有 24 个小时。"),
    ("闰年有多少天？", "闰年有 366 天。"),
    ("蜘蛛有几条腿？", "蜘蛛有八条腿。"),
    ("植物进行光合作用时吸收什么气体？", "植物吸收二氧化碳，同时释放氧气。"),
    ("水的化学式是什么？", "水的化学式是 H2O，由两个氢原子和一个氧原子组成。"),
    ("金的化学符号是什么？", "金的化学符号是 Au。"),
    ("世界上最大的海洋是哪个？", "世界上最大的海洋是太平洋。"),
    ("光的三原色是什么？", "光的三原色是红、绿、蓝。"),
    ("六边形有几条边？", "六边形有六条边。"),
    ("《静夜思》的作者是谁？", "《静夜思》的作者是唐代诗人李白。"),
    ("中国古代的四大发明是什么？", "中国古代的四大发明是造纸术、印刷术、火药和指南针。"),
    ("端午节有什么传统习俗？", "端午节人们吃粽子，很多地方还会赛龙舟。"),
    ("中秋节有什么习俗？", "中秋节人们常常吃月饼、赏月，与家人团聚。"),
    ("春节是哪一天？", "春节是农历正月初一，是中国最重要的传统节日。"),
    ("给出三条保持健康的建议。", "均衡饮食，多吃蔬菜水果；坚持规律运动；保证充足的睡眠。"),
    ("写代码时有哪些好习惯？", "给变量和函数起清晰的名字，让每个函数只做一件事，并及时编写测试。"),
    ("给一只小猫起个名字。", "叫它“团子”怎么样？简单可爱，也好叫。"),
    ("写一句生日祝福。", "祝你生日快乐，新的一岁健康平安、万事如意！"),
    ("学习外语有什么好方法？", "每天坚持练习一小会儿，比如读或说十五分钟，比每周集中突击一次更有效。"),
    ("列举三种编程语言。", "Python、Java 和 C++。"),
    ("训练损失一直不下降怎么办？", "先检查数据和标签是否正确，再尝试调小学习率，同时确认需要训练的参数确实在被更新。"),
    ("训练时显存不足（out of memory）怎么办？", "可以减小批大小或序列长度，配合梯度累积，或者开启 DeepSpeed ZeRO 来节省显存。"),
    ("为什么 LoRA 比全参数微调更省资源？", "因为 LoRA 只训练少量新增参数，原模型权重保持冻结，需要计算的梯度和保存的优化器状态都少得多。"),
    ("CPU 和 NPU 有什么区别？", "CPU 是通用处理器，各种任务都能处理；NPU 专门用于神经网络计算，做这类运算更快、更省电。"),
]

TOOLS_EN: list[tuple[str, str]] = [
    ("Write a Python function that returns the square of a number.", "```python\ndef square(x):\n    return x * x\n```"),
    ("Write a Python function that checks whether a number is even.", "```python\ndef is_even(n):\n    return n % 2 == 0\n```"),
    ("Write a Python loop that prints the numbers from 1 to 5.", "```python\nfor i in range(1, 6):\n    print(i)\n```"),
    ("How do I reverse a string in Python?", "Use slicing with a step of -1: `text[::-1]` returns the string reversed."),
    ("How do I get the length of a list in Python?", "Use the built-in `len()` function, for example `len(my_list)`."),
    ("How do I add an item to a list in Python?", "Use the `append` method: `items.append(4)` adds 4 to the end of the list."),
    ("What is the difference between a list and a tuple in Python?", "A list is mutable, so you can change its items after creating it. A tuple is immutable and cannot be changed."),
    ("What does `range(5)` produce in Python?", "It produces the integers from 0 up to, but not including, 5: 0, 1, 2, 3 and 4."),
    ("How do I read a JSON file in Python?", "Use the json module: `with open(\"data.json\") as f: data = json.load(f)`."),
    ("How do I create a virtual environment in Python?", "Run `python -m venv .venv`, then activate it with `source .venv/bin/activate` on Linux or macOS."),
    ("How do I install a package with pip?", "Run `pip install` followed by the package name, for example `pip install transformers`."),
    ("How can I check which version of PyTorch is installed?", "Run `python -c \"import torch; print(torch.__version__)\"` in a terminal."),
    ("How do I check whether PyTorch can use an Ascend NPU?", "Install torch_npu, then run `import torch, torch_npu` and `torch.npu.is_available()`. It returns True when an NPU is ready."),
    ("How do I see the NPUs on an Ascend machine?", "Run `npu-smi info` in a terminal. It lists each NPU with its health, temperature, power and memory use."),
    ("Which environment variable chooses the visible Ascend NPUs?", "`ASCEND_RT_VISIBLE_DEVICES`. For example, `ASCEND_RT_VISIBLE_DEVICES=0,1` makes only the first two NPUs visible."),
    ("How do I start LoRA training with LLaMA-Factory?", "Write the settings into a YAML file and run `llamafactory-cli train your_config.yaml`."),
    ("How do I chat with a LoRA adapter in LLaMA-Factory?", "Run `llamafactory-cli chat` with `--model_name_or_path`, `--adapter_name_or_path`, `--template` and `--finetuning_type lora`."),
    ("What does `lora_target: q_proj,v_proj` mean?", "It tells the trainer to add LoRA matrices to the query and value projections of every attention layer."),
    ("Why use gradient accumulation with a batch size of 1?", "It gives the effect of a bigger batch without the memory cost: the gradients of several steps are summed before each update."),
]

TOOLS_ZH: list[tuple[str, str]] = [
    ("用 Python 写一个求平方的函数。", "```python\ndef square(x):\n    return x * x\n```"),
    ("用 Python 写一个判断偶数的函数。", "```python\ndef is_even(n):\n    return n % 2 == 0\n```"),
    ("用 Python 依次打印 1 到 5。", "```python\nfor i in range(1, 6):\n    print(i)\n```"),
    ("Python 中如何反转字符串？", "用步长为 -1 的切片：`text[::-1]` 会返回反转后的字符串。"),
    ("Python 中如何获取列表的长度？", "使用内置函数 `len()`，例如 `len(my_list)`。"),
    ("Python 中列表和元组有什么区别？", "列表是可变的，创建后可以修改其中的元素；元组是不可变的，创建后不能修改。"),
    ("如何用 pip 安装软件包？", "在终端运行 `pip install` 加上包名即可，例如 `pip install transformers`。"),
    ("如何创建 Python 虚拟环境？", "运行 `python -m venv .venv` 创建，然后在 Linux 或 macOS 上用 `source .venv/bin/activate` 激活。"),
    ("怎样查看已安装的 PyTorch 版本？", "在终端运行 `python -c \"import torch; print(torch.__version__)\"`。"),
    ("怎样判断 PyTorch 能否使用昇腾 NPU？", "安装 torch_npu 后运行 `import torch, torch_npu`，再调用 `torch.npu.is_available()`，返回 True 表示 NPU 可用。"),
    ("怎样查看昇腾服务器上的 NPU 状态？", "在终端运行 `npu-smi info`，可以看到每张 NPU 的健康状态、温度、功耗和显存占用。"),
    ("哪个环境变量用来指定可见的昇腾 NPU？", "`ASCEND_RT_VISIBLE_DEVICES`。例如设置为 `0,1` 时，程序只能看到前两张 NPU。"),
    ("如何用 LLaMA-Factory 开始 LoRA 训练？", "把训练参数写进 YAML 文件，然后运行 `llamafactory-cli train 你的配置.yaml`。"),
    ("如何与训练好的 LoRA 适配器对话？", "运行 `llamafactory-cli chat`，并指定 `--model_name_or_path`、`--adapter_name_or_path`、`--template` 和 `--finetuning_type lora`。"),
    ("`lora_target: q_proj,v_proj` 是什么意思？", "表示在每个注意力层的查询（q_proj）和值（v_proj）投影上添加 LoRA 矩阵。"),
    ("为什么批大小为 1 时要用梯度累积？", "梯度累积把几步的梯度加起来再更新参数，可以在不增加显存的情况下得到更大批次的效果。"),
]

WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEEKDAYS_ZH = ["一", "二", "三", "四", "五", "六", "日"]
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December"]
MONTHS_ZH = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]
MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

_DATA_SEED = 20240607  # the demo data's own seed: the files never change with the model seed


def _record(instruction: str, output: str, input_text: str = "") -> dict[str, str]:
    return {"instruction": instruction, "input": input_text, "output": output}


def _identity_record(turns: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One identity example: the last turn as instruction/output, the earlier ones as ``history``.

    Every identity example carries ``history`` (empty for a single question), so the column has the
    same type in every row wherever the file is read (LLaMA-Factory reads it through ``datasets``).
    """
    *earlier, (question, answer) = turns
    return {**_record(question, answer), "history": [[q, a] for q, a in earlier]}


def _smallest_factor(n: int) -> int:
    return next((d for d in range(2, int(n ** 0.5) + 1) if n % d == 0), n)


def _zh(text: str) -> str:
    """Chinese spacing: a space between Chinese and Latin text, none before full-width punctuation."""
    # Only single spaces are touched: code in an answer keeps its indentation and newlines.
    text = re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", text.strip())
    return re.sub(r" (?=[，。？！：；、（）“”])|(?<=[，。？！：；、（）“”]) ", "", text)


def identity_records() -> list[dict[str, Any]]:
    """The identity dataset, {{name}} and {{author}} left for the user.

    The English then the Chinese questions, each language's first one alone and every second one
    asked after one or two other identity questions of either language (its ``history``), then the
    hand-written conversations.
    """
    rng = random.Random(_DATA_SEED + 2)
    pairs = IDENTITY_EN + IDENTITY_ZH
    records = []
    for table in (IDENTITY_EN, IDENTITY_ZH):
        for k, pair in enumerate(table):
            earlier = rng.sample([p for p in pairs if p != pair], rng.choice((1, 2))) if k % 2 else []
            records.append(_identity_record(earlier + [pair]))
    return records + [_identity_record(d) for d in IDENTITY_DIALOGUES]


def alpaca_en_records() -> list[dict[str, str]]:
    """The English instruction data: hand-written tables plus exactly computed tasks."""
    rng = random.Random(_DATA_SEED)
    out: list[dict[str, str]] = []
    phrasings = ["What is {t}?", "Explain what {t} is in simple terms.", "Can you tell me what {t} is?",
                 "Briefly describe what {t} is."]
    for k, (term, definition) in enumerate(GLOSSARY_EN):
        out.append(_record(phrasings[k % len(phrasings)].format(t=term), definition))
    for _ in range(14):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        out.append(_record(f"What is {a} + {b}?", f"{a} + {b} = {a + b}."))
    for _ in range(12):
        a, b = sorted(rng.sample(range(10, 100), 2), reverse=True)
        out.append(_record(f"What is {a} minus {b}?", f"{a} minus {b} is {a - b}."))
    for _ in range(12):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        out.append(_record(f"Calculate {a} × {b}.", f"{a} × {b} = {a * b}."))
    for _ in range(8):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        out.append(_record(f"What is {a * b} divided by {b}?", f"{a * b} divided by {b} is {a}."))
    for _ in range(6):
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        out.append(_record("Add the following two numbers.", f"The sum is {a + b}.", f"{a} and {b}"))
    for n in rng.sample(range(2, 21), 10):
        out.append(_record(f"What is the square root of {n * n}?", f"The square root of {n * n} is {n}, because {n} × {n} = {n * n}."))
    conversions = [
        ("How many meters are in {n} kilometers?", "{n} kilometers is {v} meters.", 1000),
        ("How many minutes are in {n} hours?", "{n} hours is {v} minutes.", 60),
        ("How many seconds are in {n} minutes?", "{n} minutes is {v} seconds.", 60),
        ("How many grams are in {n} kilograms?", "{n} kilograms is {v} grams.", 1000),
        ("How many hours are in {n} days?", "{n} days is {v} hours.", 24),
        ("How many centimeters are in {n} meters?", "{n} meters is {v} centimeters.", 100),
    ]
    for question, answer, factor in conversions:
        for n in rng.sample(range(2, 13), 4):
            out.append(_record(question.format(n=n), answer.format(n=n, v=n * factor)))
    for c in rng.sample(range(-20, 45, 5), 6):
        out.append(_record(f"Convert {c} °C to Fahrenheit.", f"{c} °C is {c * 9 // 5 + 32} °F."))
    for n in rng.sample(range(2, 13), 4):
        cm = f"{n * 2.54:.2f}".rstrip("0").rstrip(".")
        out.append(_record(f"How many centimeters are in {n} inches?", f"{n} inches is {cm} centimeters, because one inch is 2.54 centimeters."))
    for k, (en, zh) in enumerate(WORDS):
        q = f"Translate the word \"{en}\" into Chinese." if k % 2 == 0 else f"How do you say \"{en}\" in Chinese?"
        out.append(_record(q, f"In Chinese, \"{en}\" is \"{zh}\"."))
    for en, zh in SENTENCES:
        out.append(_record("Translate the following sentence into Chinese.", zh, en))
    for k, (country, capital, _, _) in enumerate(CAPITALS):
        if k % 3 == 2:
            out.append(_record(f"{capital} is the capital of which country?", f"{capital} is the capital of {country}."))
        else:
            out.append(_record(f"What is the capital of {country}?", f"The capital of {country} is {capital}."))
    for word, opposite in ANTONYMS_EN:
        out.append(_record(f"What is the opposite of \"{word}\"?", f"The opposite of \"{word}\" is \"{opposite}\"."))
    for before, after in PAST_TENSE:
        out.append(_record("Rewrite the sentence in the past tense.", after, before))
    for singular, plural in PLURALS:
        out.append(_record(f"What is the plural of \"{singular}\"?", f"The plural of \"{singular}\" is \"{plural}\"."))
    for n in rng.sample(range(11, 100), 14):
        p = _smallest_factor(n)
        if p == n:
            out.append(_record(f"Is {n} a prime number?", f"Yes, {n} is a prime number: it is divisible only by 1 and itself."))
        else:
            out.append(_record(f"Is {n} a prime number?", f"No, {n} is not a prime number, because {n} = {p} × {n // p}."))
    for n in rng.sample(range(10, 500), 12):
        kind, why = ("even", "it is divisible by 2") if n % 2 == 0 else ("odd", "it is not divisible by 2")
        out.append(_record(f"Is {n} even or odd?", f"{n} is {kind}, because {why}."))
    for _ in range(8):
        numbers = rng.sample(range(1, 100), rng.randint(4, 6))
        out.append(_record("Sort the following numbers in ascending order.", ", ".join(map(str, sorted(numbers))), ", ".join(map(str, numbers))))
    for _ in range(7):
        numbers = rng.sample(range(1, 100), rng.randint(4, 6))
        out.append(_record("Find the largest number in the list.", f"The largest number is {max(numbers)}.", ", ".join(map(str, numbers))))
    for _ in range(7):
        numbers = rng.sample(range(1, 50), rng.randint(3, 5))
        out.append(_record("What is the sum of these numbers?", f"The sum is {sum(numbers)}.", ", ".join(map(str, numbers))))
    for sentence in SHORT_SENTENCES:
        words = len(sentence.rstrip(".!?").split())
        out.append(_record("Count the words in the following sentence.", f"The sentence has {words} words.", sentence))
        out.append(_record("Convert the following text to uppercase.", sentence.upper(), sentence))
    for word in SPELL_WORDS:
        out.append(_record(f"How many letters are in the word \"{word}\"?", f"The word \"{word}\" has {len(word)} letters."))
        out.append(_record(f"Spell the word \"{word}\" backwards.", f"\"{word}\" spelled backwards is \"{word[::-1]}\"."))
    for k, day in enumerate(WEEKDAYS_EN):
        out.append(_record(f"What day comes after {day}?", f"The day after {day} is {WEEKDAYS_EN[(k + 1) % 7]}."))
    for k, month in enumerate(MONTHS_EN):
        out.append(_record(f"Which month comes after {month}?", f"The month after {month} is {MONTHS_EN[(k + 1) % 12]}."))
        days = "28 days, or 29 in a leap year" if k == 1 else f"{MONTH_DAYS[k]} days"
        out.append(_record(f"How many days are in {month}?", f"{month} has {days}."))
    out += [_record(q, a) for q, a in FACTS_EN + TOOLS_EN]
    rng.shuffle(out)  # mixed topics, so that the first N examples (max_samples) are a fair sample
    return out


def alpaca_zh_records() -> list[dict[str, str]]:
    """The Chinese instruction data: hand-written tables plus exactly computed tasks."""
    rng = random.Random(_DATA_SEED + 1)
    out: list[dict[str, str]] = []

    def add(instruction: str, output: str, input_text: str = "") -> None:
        out.append(_record(_zh(instruction), _zh(output), _zh(input_text)))

    phrasings = ["什么是 {t}？", "请简单解释一下 {t}。", "{t} 是什么意思？", "用一两句话介绍一下 {t}。"]
    for k, (term, definition) in enumerate(GLOSSARY_ZH):
        add(phrasings[k % len(phrasings)].format(t=term), definition)
    for _ in range(14):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        add(f"计算 {a} + {b}。", f"{a} + {b} = {a + b}。")
    for _ in range(12):
        a, b = sorted(rng.sample(range(10, 100), 2), reverse=True)
        add(f"{a} 减去 {b} 等于多少？", f"{a} 减去 {b} 等于 {a - b}。")
    for _ in range(12):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        add(f"{a} 乘以 {b} 是多少？", f"{a} 乘以 {b} 等于 {a * b}。")
    for _ in range(8):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        add(f"{a * b} 除以 {b} 等于几？", f"{a * b} 除以 {b} 等于 {a}。")
    for _ in range(6):
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        add("求下面两个数的和。", f"它们的和是 {a + b}。", f"{a} 和 {b}")
    for n in rng.sample(range(2, 21), 10):
        add(f"{n * n} 的平方根是多少？", f"{n * n} 的平方根是 {n}，因为 {n} × {n} = {n * n}。")
    conversions = [
        ("{n} 千米等于多少米？", "{n} 千米等于 {v} 米。", 1000),
        ("{n} 小时是多少分钟？", "{n} 小时等于 {v} 分钟。", 60),
        ("{n} 分钟是多少秒？", "{n} 分钟等于 {v} 秒。", 60),
        ("{n} 千克是多少克？", "{n} 千克等于 {v} 克。", 1000),
        ("{n} 天有多少个小时？", "{n} 天共有 {v} 个小时。", 24),
        ("{n} 公斤等于多少斤？", "{n} 公斤等于 {v} 斤，因为 1 公斤等于 2 斤。", 2),
    ]
    for question, answer, factor in conversions:
        for n in rng.sample(range(2, 13), 4):
            add(question.format(n=n), answer.format(n=n, v=n * factor))
    for c in rng.sample(range(-20, 45, 5), 6):
        add(f"{c} 摄氏度等于多少华氏度？", f"{c} 摄氏度等于 {c * 9 // 5 + 32} 华氏度。")
    for k, (en, zh) in enumerate(WORDS):
        if k % 2 == 0:
            add(f"把“{zh}”翻译成英文。", f"“{zh}”的英文是 {en}。")
        else:
            add(f"“{zh}”用英语怎么说？", f"“{zh}”用英语说是 {en}。")
    for en, zh in SENTENCES:
        add("把下面的句子翻译成英文。", en, zh)
    for k, (_, _, country, capital) in enumerate(CAPITALS):
        if k % 3 == 2:
            add(f"{capital}是哪个国家的首都？", f"{capital}是{country}的首都。")
        else:
            add(f"{country}的首都是哪里？", f"{country}的首都是{capital}。")
    for word, opposite in ANTONYMS_ZH:
        add(f"“{word}”的反义词是什么？", f"“{word}”的反义词是“{opposite}”。")
    for n in rng.sample(range(11, 100), 14):
        p = _smallest_factor(n)
        if p == n:
            add(f"{n} 是质数吗？", f"是的，{n} 是质数，它只能被 1 和它本身整除。")
        else:
            add(f"{n} 是质数吗？", f"不是。{n} = {p} × {n // p}，所以 {n} 不是质数。")
    for n in rng.sample(range(10, 500), 12):
        if n % 2 == 0:
            add(f"{n} 是奇数还是偶数？", f"{n} 是偶数，因为它能被 2 整除。")
        else:
            add(f"{n} 是奇数还是偶数？", f"{n} 是奇数，因为它不能被 2 整除。")
    for _ in range(8):
        numbers = rng.sample(range(1, 100), rng.randint(4, 6))
        add("把下面的数字从小到大排序。", "从小到大排序为：" + "、".join(map(str, sorted(numbers))) + "。", "、".join(map(str, numbers)))
    for _ in range(7):
        numbers = rng.sample(range(1, 100), rng.randint(4, 6))
        add("找出下面这组数中最大的数。", f"最大的数是 {max(numbers)}。", "、".join(map(str, numbers)))
    for _ in range(7):
        numbers = rng.sample(range(1, 100), rng.randint(4, 6))
        add("找出下面这组数中最小的数。", f"最小的数是 {min(numbers)}。", "、".join(map(str, numbers)))
    for _ in range(7):
        numbers = rng.sample(range(1, 50), rng.randint(3, 5))
        add("计算下面这组数的总和。", f"总和是 {sum(numbers)}。", "、".join(map(str, numbers)))
    for n in rng.sample(range(2, 11), 5):
        add(f"一个星期有 7 天，{n} 个星期一共有多少天？", f"{n} 个星期一共有 {7 * n} 天。")
    for k, day in enumerate(WEEKDAYS_ZH):
        add(f"星期{day}的后一天是星期几？", f"星期{day}的后一天是星期{WEEKDAYS_ZH[(k + 1) % 7]}。")
    for k, month in enumerate(MONTHS_ZH):
        add(f"{month}月的下一个月是几月？", f"{month}月的下一个月是{MONTHS_ZH[(k + 1) % 12]}月。")
        days = "二月平年有 28 天，闰年有 29 天。" if k == 1 else f"{month}月有 {MONTH_DAYS[k]} 天。"
        add(f"{month}月有多少天？", days)
    for q, a in FACTS_ZH + TOOLS_ZH:
        add(q, a)
    rng.shuffle(out)
    return out


# alpaca's columns with the history column named, as LLaMA-Factory's data/README describes it.
IDENTITY_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}


def dataset_info() -> dict[str, dict[str, Any]]:
    """The demo datasets in LLaMA-Factory's dataset_info.json format (alpaca columns by default)."""
    return {
        "identity": {"file_name": "identity.json", "columns": dict(IDENTITY_COLUMNS)},
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "alpaca_zh_demo": {"file_name": "alpaca_zh_demo.json"},
    }


def demo_data_files() -> dict[str, str]:
    """File name -> exact file text of the demo data, as committed in kit/data/demo."""
    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, indent=2) + "\n"

    return {
        "identity.json": dump(identity_records()),
        "alpaca_en_demo.json": dump(alpaca_en_records()),
        "alpaca_zh_demo.json": dump(alpaca_zh_records()),
        "dataset_info.json": dump(dataset_info()),
    }


def write_demo_data(out_dir: Path) -> list[Path]:
    """Write the demo data files to ``out_dir``; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in demo_data_files().items():
        (out_dir / name).write_text(text, encoding="utf-8")
        written.append(out_dir / name)
    return written



def main(argv: Sequence[str] | None = None) -> int:
    """``python scripts/tiny_data.py --out DIR`` writes the demo datasets to DIR."""
    parser = argparse.ArgumentParser(prog="python scripts/tiny_data.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write the datasets to (e.g. kit/data/demo)")
    args = parser.parse_args(argv)
    for written in write_demo_data(args.out):
        print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
