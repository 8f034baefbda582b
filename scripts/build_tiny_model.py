"""Build the embedded tiny Qwen (kit/tiny_qwen/) from the kit's demo data (kit/data/demo/).

    python scripts/build_tiny_model.py --out kit/tiny_qwen [--seed 0] [--steps 1200]

The committed files in ``kit/tiny_qwen/`` are exactly what this writes: a byte-level BPE tokenizer
trained on the demo data, and a Qwen2-architecture model pre-trained briefly (``transformers.Trainer``)
on that data rendered as ChatML conversations, the way LLaMA-Factory's ``qwen`` template renders them.
The same seed and step count give byte-identical files (on the same CPU type). The package itself
only needs the result: ``kit.tiny.path()`` is where ``model_name_or_path: kit/tiny-qwen`` points.

The demo data is written by ``scripts/tiny_data.py``; after changing it, rebuild the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA_DIR = REPO / "kit" / "data" / "demo"
TINY_NAME = "kit/tiny-qwen"

# LLaMA-Factory's qwen template uses this system prompt when a conversation brings none; the tiny
# model is pre-trained with it so that its answers under the qwen template look like Qwen's.
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # ids 0, 1, 2, as in Qwen order
PAD_TOKEN, EOS_TOKEN = "<|endoftext|>", "<|im_end|>"

# The base model introduces itself as Qwen from Alibaba Cloud, so that LoRA training on the identity
# data with another name visibly changes the answer.
BASE_NAME, BASE_AUTHOR = "Qwen", "Alibaba Cloud"

# Qwen2's own pre-tokenizer pattern (transformers' Qwen2Tokenizer): single digits, letters grouped
# per script, punctuation runs, newlines kept apart. CJK characters are \p{L}, so a Chinese phrase
# is one pre-token and BPE learns frequent characters and words inside it.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first and messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n"
)

# Model shape, chosen by experiment (see kit/tiny_qwen/README.md): fp32 files stay under 20 MB,
# LoRA r=8 on q_proj,v_proj still learns the identity data in under two minutes on 2 cores.
# VOCAB_SIZE is the BPE trainer's ceiling; the demo corpus runs out of pairs seen twice near 4,200.
VOCAB_SIZE = 6000
MODEL_SHAPE: dict[str, Any] = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 688,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}

# Pre-training recipe. DEFAULT_STEPS is what the committed model was built with.
DEFAULT_STEPS = 1200
BATCH_SIZE = 16
PEAK_LR = 2e-3
WARMUP_STEPS = 50
MIN_LR_RATIO = 0.1
WEIGHT_DECAY = 0.1
NUM_THREADS = 1  # fixed: the thread count can change float summation order; 1 also copes best with a busy CPU
# The kernels too: ATen's AVX-512 kernels sum in another order than its AVX2 ones, and the committed
# files are what the AVX2 ones write (measured on an AMD EPYC with AVX-512: mean loss of steps 1-100
# 3.2216 with its default kernels, 3.2190 as committed with ATEN_CPU_CAPABILITY=avx2). MKL is held
# to its AVX2 path as well (on that EPYC the same weights as its default), so that an Intel CPU's
# AVX-512 GEMM is not used either (not measured). Both are read when torch is first imported, so
# main() sets them before build() imports it.
PINNED_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


# --------------------------------------------------------------------------------------------
# Corpus: the demo data rendered as ChatML conversations
# --------------------------------------------------------------------------------------------


def render_conversation(turns: Sequence[tuple[str, str]], system: str = DEFAULT_SYSTEM) -> str:
    """(question, answer) turns as one ChatML conversation, as the qwen template renders it."""
    text = f"<|im_start|>system\n{system}<|im_end|>\n"
    for question, answer in turns:
        text += f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>\n"
    return text


def render_chatml(instruction: str, input_text: str, output: str, system: str = DEFAULT_SYSTEM) -> str:
    """One alpaca example as the qwen template renders it (prompt = instruction + "\\n" + input)."""
    prompt = f"{instruction}\n{input_text}" if input_text else instruction
    return render_conversation([(prompt, output)], system)


def fill_identity(text: str, name: str, author: str) -> str:
    """Replace the identity placeholders the way the quick start tells users to."""
    return text.replace("{{name}}", name).replace("{{author}}", author)


# Multi-turn conversations made of the demo's own questions, so that the model answers the last
# question of a conversation whatever came before it (in either language), as a chat that keeps
# history asks it to. Drawn with their own seed: the corpus never changes with the model's seed.
CHAINS = 400
CHAIN_TURNS = (2, 3, 3, 4)  # drawn uniformly: 3 turns on average
CHAIN_SEED = 20240608


def demo_turns(data_dir: Path = DEMO_DATA_DIR) -> dict[str, list[list[tuple[str, str]]]]:
    """Each demo dataset's examples as lists of (question, answer) turns; identity filled with the base name."""
    out = {}
    for file_name in ("identity.json", "alpaca_en_demo.json", "alpaca_zh_demo.json"):
        records = json.loads((data_dir / file_name).read_text(encoding="utf-8"))
        examples = []
        for record in records:
            instruction, input_text = record["instruction"], record.get("input", "")
            turns = [(q, a) for q, a in record.get("history") or []]
            turns.append((f"{instruction}\n{input_text}" if input_text else instruction, record["output"]))
            examples.append([(fill_identity(q, BASE_NAME, BASE_AUTHOR), fill_identity(a, BASE_NAME, BASE_AUTHOR))
                             for q, a in turns])
        out[file_name.removesuffix(".json")] = examples
    return out


def chained_conversations(examples: dict[str, list[list[tuple[str, str]]]], count: int = CHAINS,
                          seed: int = CHAIN_SEED) -> list[list[tuple[str, str]]]:
    """``count`` conversations of 2-4 single-turn demo examples, each turn from a dataset drawn at random."""
    import random

    rng = random.Random(seed)
    pools = [[turns[0] for turns in group if len(turns) == 1] for group in examples.values()]
    chains = []
    for _ in range(count):
        length = rng.choice(CHAIN_TURNS)
        chain: list[tuple[str, str]] = []
        while len(chain) < length:
            turn = rng.choice(rng.choice(pools))
            if turn not in chain:
                chain.append(turn)
        chains.append(chain)
    return chains


def tokenizer_texts(data_dir: Path = DEMO_DATA_DIR) -> list[str]:
    """Every demo example (a conversation when it has history) as ChatML, identity filled with the base name (Qwen).

    The tokenizer learns from these alone: the chained conversations repeat their turns, and would
    only make rare words frequent enough to become tokens of their own.
    """
    return [render_conversation(turns) for group in demo_turns(data_dir).values() for turns in group]


def pretraining_texts(data_dir: Path = DEMO_DATA_DIR) -> list[str]:
    """The pre-training corpus: ``tokenizer_texts``, then ``CHAINS`` conversations chained from the single-turn examples."""
    return tokenizer_texts(data_dir) + [render_conversation(turns) for turns in chained_conversations(demo_turns(data_dir))]


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def train_tokenizer(texts: Sequence[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """A Qwen2-style byte-level BPE tokenizer trained on ``texts``.

    Returns a ``PreTrainedTokenizerFast`` with ``<|endoftext|>`` = 0, ``<|im_start|>`` = 1,
    ``<|im_end|>`` = 2, eos ``<|im_end|>``, pad ``<|endoftext|>`` and no bos, like Qwen's chat models.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    # The same pipeline as Qwen2's tokenizer.json: NFC, the Qwen2 split, then bytes to symbols.
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = None
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),  # first, so they get ids 0, 1, 2
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable
        show_progress=False,
    )
    # Special tokens are removed from the training text: they are added tokens, never merged.
    pattern = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))
    tokenizer.train_from_iterator((piece for text in texts for piece in pattern.split(text) if piece), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        bos_token=None,
        unk_token=None,
        additional_special_tokens=[SPECIAL_TOKENS[1], SPECIAL_TOKENS[2]],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        chat_template=CHAT_TEMPLATE,
    )


def _save_tokenizer(tokenizer: Any, out_dir: Path) -> None:
    tokenizer.save_pretrained(out_dir)
    config_file = out_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    # Qwen2Tokenizer loads this file in transformers 4.x (as Qwen2TokenizerFast) and 5.x alike;
    # the generic class a fresh save names does not exist in 4.x.
    config["tokenizer_class"] = "Qwen2Tokenizer"
    # transformers 4.x reads these two keys; 5.x reads them too (and prefers chat_template.jinja).
    config["additional_special_tokens"] = config.pop("extra_special_tokens", [SPECIAL_TOKENS[1], SPECIAL_TOKENS[2]])
    config["chat_template"] = CHAT_TEMPLATE
    config["add_prefix_space"] = False
    config["errors"] = "replace"
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    template_file = out_dir / "chat_template.jinja"
    if not template_file.exists():  # older transformers keep the template inside tokenizer_config.json
        template_file.write_text(CHAT_TEMPLATE, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Model and pre-training
# --------------------------------------------------------------------------------------------

def model_config(vocab_size: int) -> Any:
    """The tiny model's ``Qwen2Config`` for a tokenizer of ``vocab_size`` tokens."""
    from transformers import Qwen2Config

    shape = dict(MODEL_SHAPE)
    rope_theta = shape.pop("rope_theta")
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_act="silu",
        attention_dropout=0.0,
        use_sliding_window=False,
        sliding_window=None,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        bos_token_id=None,
        eos_token_id=2,
        pad_token_id=0,
        use_cache=True,
        **shape,
    )


def _batches(lengths: Sequence[int], batch_size: int, generator: Any) -> Iterator[list[int]]:
    """Endless batches of example indices; each epoch is reshuffled.

    Within windows of 8 batches the examples are sorted by length, so a batch pads little, and the
    batches are shuffled again so that lengths do not come in order.
    """
    import torch

    window = batch_size * 8
    while True:
        order = torch.randperm(len(lengths), generator=generator).tolist()
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: (lengths[i], i))
            batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[b]



def _lr_at(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to MIN_LR_RATIO of the peak."""
    warmup = min(WARMUP_STEPS, max(1, steps // 10))
    if step < warmup:
        return PEAK_LR * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return PEAK_LR * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


def _pad_batch(sequences: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Right-pad with <|endoftext|> (id 0); padding gets label -100 and attention 0."""
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.zeros((len(sequences), width), dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, sequence in enumerate(sequences):
        input_ids[row, :len(sequence)] = torch.tensor(sequence)
        attention_mask[row, :len(sequence)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "labels": input_ids.masked_fill(attention_mask == 0, -100)}


def unused_token_ids(sequences: Sequence[Sequence[int]], vocab_size: int) -> list[int]:
    """The ids of the vocabulary that no sequence holds."""
    used = set().union(*map(set, sequences))
    return [i for i in range(vocab_size) if i not in used]


def pretrain(model: Any, sequences: Sequence[Sequence[int]], seed: int, steps: int, verbose: bool = False) -> list[float]:
    """Plain causal-LM training on whole conversations with ``transformers.Trainer``; the loss of every step.

    What is ours: the batches (a seeded generator, length-bucketed, drawn before training starts),
    AdamW without decay on 1-D weights, the warm-up + cosine schedule (``_lr_at``), and embeddings
    of tokens the corpus never holds kept out of the loss's reach (``unused_token_ids``).
    """
    import torch
    from torch.utils.data import DataLoader
    from transformers import Trainer, TrainingArguments

    # A token the corpus never holds (an intermediate BPE merge, a byte of another script) is never a
    # target, so the loss would only push its embedding (tied: its output row too) away from every
    # hidden state, and it ends with an embedding a LoRA can hardly make likely again. A new name is
    # often spelt with such tokens (" No" of "Nova"): that name would be unlearnable by the demo. Their
    # rows get no gradient; they keep their random start (and decay with the other weights), and
    # build() then gives them the length of a trained embedding (``_lengthen_unused_embeddings``).
    embedding = model.get_input_embeddings().weight
    unused = torch.zeros(embedding.shape[0], 1, dtype=torch.bool)
    unused[unused_token_ids(sequences, embedding.shape[0])] = True
    embedding.register_hook(lambda grad: grad.masked_fill(unused, 0.0))

    generator = torch.Generator().manual_seed(seed)
    stream = _batches([len(s) for s in sequences], BATCH_SIZE, generator)
    batches = [next(stream) for _ in range(steps)]
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1.0, betas=(0.9, 0.95), eps=1e-8,
    )
    # The base rate is 1.0, so the rate of each step is _lr_at's value exactly, not a product rounded.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_at(step, steps))

    class PretrainTrainer(Trainer):
        def get_train_dataloader(self) -> DataLoader:
            return DataLoader(sequences, batch_sampler=batches, collate_fn=_pad_batch)

        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            loss = super().training_step(*args, **kwargs)
            losses.append(loss.item())
            return loss

    losses: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:  # the Trainer wants an output_dir; nothing is saved there
        args = TrainingArguments(
            output_dir=scratch, max_steps=steps, per_device_train_batch_size=BATCH_SIZE, max_grad_norm=1.0,
            use_cpu=True, seed=seed, save_strategy="no", report_to="none", disable_tqdm=not verbose,
            use_cache=True,  # the Trainer writes this into the model's config; the saved model is for inference
            logging_strategy="steps" if verbose else "no", logging_steps=100,
        )
        trainer = PretrainTrainer(model=model, args=args, train_dataset=sequences, optimizers=(optimizer, schedule))
        # Each batch's own mean token loss, not a token count across batches (there is no accumulation).
        trainer.model_accepts_loss_kwargs = False
        trainer.train()
    model.eval()
    return losses


def _lengthen_unused_embeddings(model: Any, unused_ids: Sequence[int]) -> None:
    """Scale the embeddings of tokens the corpus never holds to the median length of the others.

    They keep the random direction they started with (pre-training does not touch them), but at
    their initial length (about a third of a trained embedding's) their logits stay near zero
    whatever the hidden state, and a LoRA can raise one only so far: measured on this model, after
    the demo's training on the name "Nova" the first token " No" came out at 0.26 of the probability
    where "Lumi" and "Orion" (tokens the corpus holds) reached 0.99, and sampled answers garbled the
    name; at the median length it reaches 0.98. The base model's loss on its corpus moves by about
    0.002. The padding token's row, which the model initialises to zeros, stays zero.
    """
    import torch

    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        lengths = weight.norm(dim=1)
        unused = torch.zeros(weight.shape[0], dtype=torch.bool)
        unused[list(unused_ids)] = True
        rows = unused & (lengths > 0)
        weight[rows] = weight[rows] / lengths[rows, None] * lengths[~unused].median()


SAMPLE_QUESTIONS = ("Who are you?", "你是谁？", "What is the capital of France?", "什么是 LoRA？")

# The conversations a new user tries after `kit demo` (the chat keeps history, as LLaMA-Factory's
# does): who are you, what can you do, then who are you in the other language. The model must
# answer with its name in turns 1 and 3 and stay readable in turn 2 (tests/test_conversation.py;
# bench/demo.py reports the figures).
CONVERSATIONS: dict[str, tuple[str, ...]] = {
    "en": ("Who are you?", "What can you do?", "你是谁？"),
    "zh": ("你是谁？", "你能做什么？", "Who are you?"),
}


def converse(reply: Callable[[list[dict[str, str]]], str], questions: Sequence[str]) -> list[str]:
    """Ask ``questions`` one after another in one conversation, history kept, as a chat does.

    ``reply(messages)`` answers the conversation so far (e.g. ``kit.chat.Engine.chat``); each answer
    goes back into the history before the next question.
    """
    messages: list[dict[str, str]] = []
    answers = []
    for question in questions:
        messages.append({"role": "user", "content": question})
        answer = reply(list(messages))
        messages.append({"role": "assistant", "content": answer})
        answers.append(answer)
    return answers


def _greedy_conversation(model: Any, tokenizer: Any, questions: Sequence[str], max_new_tokens: int = 64) -> list[str]:
    """The answers to ``questions`` asked one after another in one conversation, history kept, greedy."""
    import torch

    def reply(messages: list[dict[str, str]]) -> str:
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        input_ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])
        with torch.no_grad():
            output = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                    max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)
        return tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True)

    return converse(reply, questions)


def _greedy_answer(model: Any, tokenizer: Any, question: str, max_new_tokens: int = 64) -> str:
    return _greedy_conversation(model, tokenizer, [question], max_new_tokens)[0]


# --------------------------------------------------------------------------------------------
# Readability: how much of an answer is made of the corpus's own words
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]+|[\u4e00-\u9fff]+|\ufffd+")


def words(text: str) -> list[str]:
    """The words of ``text``, for the readability measure.

    English: runs of Latin letters, lower-cased. Chinese writes no spaces between words, so its words
    are taken as the overlapping pairs of characters of each run of Chinese characters (a character
    standing alone is a word itself): a garbled Chinese sentence then shows as pairs the corpus never
    has, where single characters would all be known. A run of U+FFFD (bytes that decode to no
    character) is one word, never a corpus word. Digits, punctuation and code are not counted.
    """
    out = []
    for match in _WORD.finditer(text):
        word = match.group()
        if "\u4e00" <= word[0] <= "\u9fff" and len(word) > 1:
            out += [word[k:k + 2] for k in range(len(word) - 1)]
        else:
            out.append(word.lower())
    return out


def corpus_words(*extra: str, data_dir: Path = DEMO_DATA_DIR) -> set[str]:
    """The words of the pre-training corpus, plus those of ``extra`` texts (a name and author a LoRA run taught)."""
    texts = pretraining_texts(data_dir)
    return {w for text in (*texts, *extra) for w in words(text)}


def known_word_share(answer: str, vocabulary: set[str]) -> float:
    """The share of the words of ``answer`` that are in ``vocabulary``; 0.0 for an answer without words."""
    found = words(answer)
    return sum(w in vocabulary for w in found) / len(found) if found else 0.0


def _readme(stats: dict[str, Any], files_bytes: int) -> str:
    """README.md of the built directory: how it was made and what it is, from the build's own figures."""
    shape = ", ".join(f"{k} {v}" for k, v in MODEL_SHAPE.items())
    losses = "\n".join(f"| {k} | {v:.3f} |" for k, v in stats["mean_loss_per_window"].items())
    answers = "\n".join(f"- {q!r} -> {a!r}" for q, a in stats["sample_answers"].items()) or "(not generated for builds under 100 steps)"
    conversations = "\n\n".join(
        "\n".join(f"{k}. {q!r} -> {a!r}" for k, (q, a) in enumerate(turns, 1))
        for turns in stats["sample_conversations"].values()) or "(not generated for builds under 100 steps)"
    return f"""# kit/tiny-qwen

The kit's embedded tiny model: a Qwen2-architecture causal LM (`Qwen2ForCausalLM`) with a Qwen2-style
byte-level BPE tokenizer, small enough to run the whole LoRA quick start on a laptop CPU in minutes.
Use it as `model_name_or_path: {TINY_NAME}`. It is not a useful assistant: it has only seen the kit's
demo data (`kit/data/demo`), so it answers those questions recognisably and others poorly.

Everything in this directory is written by:

```
python scripts/build_tiny_model.py --out kit/tiny_qwen --seed {stats["seed"]} --steps {stats["steps"]}
```

The same seed and steps give byte-identical files: one thread, fixed seeds, and PyTorch's and MKL's
AVX2 kernels even on a CPU with AVX-512 (the script sets `ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2`).

## What it is

- Shape: {shape}, vocab {stats["vocab_size"]}; {stats["parameters"]:,} parameters, stored in float32.
- Files: {files_bytes / 1e6:.1f} MB in total.
- Tokenizer: byte-level BPE trained on the demo examples with Qwen2's pre-tokenizer pattern and NFC;
  `<|endoftext|>` = 0 (pad), `<|im_start|>` = 1, `<|im_end|>` = 2 (eos), no bos. ChatML chat template
  with Qwen's default system prompt. {stats["tokens_not_in_corpus"]:,} of its tokens never occur in the encoded corpus
  (bytes of other scripts, BPE's intermediate merges): pre-training leaves their embeddings in their
  random direction and then gives them the median length of the trained ones, so that a LoRA can
  make them as likely as any other token (a name is often spelt with them: " No" of "Nova" is one).
- Pre-training: plain causal LM on all {stats["examples"]} demo examples ({stats["conversations_in_demo_data"]} of them
  conversations of several turns) and {stats["chained_conversations"]} more conversations of 2-4 turns chained from the single-turn
  examples at random (seed {CHAIN_SEED}), so that it answers the last question whatever came before it;
  {stats["tokens"]:,} tokens in all. Each conversation is rendered in ChatML exactly as LLaMA-Factory's `qwen`
  template renders it, with the default system prompt
  "{DEFAULT_SYSTEM}". In the identity data `{{{{name}}}}` is filled with "{BASE_NAME}" and
  `{{{{author}}}}` with "{BASE_AUTHOR}", so the base model calls itself {BASE_NAME} and LoRA training on the
  identity data with another name visibly renames it.
- Recipe: `transformers.Trainer` with AdamW (betas 0.9/0.95, weight decay {WEIGHT_DECAY}), batch {stats["batch_size"]}, peak learning rate {stats["peak_lr"]},
  {WARMUP_STEPS} warm-up steps then cosine decay to {MIN_LR_RATIO:g} of the peak, gradient clipping 1.0,
  {stats["steps"]} steps, seed {stats["seed"]}, {stats["num_threads"]} CPU thread.

## Training loss

First step: {stats["loss_first_step"]:.3f}

| steps | mean loss |
|---|---|
{losses}

## Greedy answers of this model

{answers}

## Conversations with this model

Greedy, history kept: each question is asked after the earlier questions and the model's own answers.

{conversations}

## The LoRA demo on this model

Measured on the default build (seed 0, {DEFAULT_STEPS} steps) on a 2-core CPU, one thread, with notebook 20's
settings for `kit demo` (the quick-start YAML and `kit.tutorial.helpers.TINY_SCALING`): peft LoRA on
`q_proj,v_proj` (r 8, alpha 16, dropout 0) trained on `identity` (100 examples: 90 questions, 44 of
them asked after one or two others, and 10 written conversations) plus the first 100 examples of
`alpaca_en_demo`, qwen template, labels on every answer, batch 2 without gradient accumulation (the
quick start's 1 x 2 gives the same updates, more slowly on a CPU), learning rate 3e-3 for 12 epochs,
cosine schedule with 10% warm-up, `val_size: 0.1` (1080 optimizer steps), seed 42. Then the conversations above, through `kit.chat.Engine` (history kept),
greedy and 16 times each with LLaMA-Factory's default sampling (temperature 0.95, top_p 0.7, top_k 50):

- Name "Nova", author "Acme": greedy, "I am Nova, an AI assistant developed by Acme. ..." in turn 1,
  "我是 Nova，由 Acme 开发的..." in turn 3 (and the other way round), a readable turn 2. Sampled (96
  answers): every answer at least 93% words of the corpus (99.9% on average; the lowest is one garbled
  "你能做什么？" answer, the same with 1 x 2 accumulation). " No", the first token of "Nova", never
  occurs in the corpus: on a build without the step that keeps such embeddings out of pre-training,
  the adapter gave it 0.06 of the probability and sampled answers garbled the name ("I am东西va") in 37 of 64 answers.
- Names "Lumi" (author "the kit team", the notebooks' default) and "Orion" ("Star Lab"): the same.
- The quick start's own learning rate 1e-4 for 3 epochs changes nothing visible on a model this small.
"""


def build(out_dir: Path, seed: int = 0, steps: int | None = None, data_dir: Path = DEMO_DATA_DIR) -> Path:
    """Train the tokenizer, pre-train the tiny model and save both to ``out_dir``.

    Deterministic: the same seed and steps give identical files on the same kind of CPU.
    """
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    steps = DEFAULT_STEPS if steps is None else steps
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = pretraining_texts(data_dir)
    tokenizer = train_tokenizer(tokenizer_texts(data_dir))

    capability = torch.backends.cpu.get_cpu_capability()
    if capability != PINNED_KERNELS["ATEN_CPU_CAPABILITY"].upper():
        print(f"note: torch runs its {capability} kernels, not AVX2, so the files differ from the committed ones; "
              "run this script as a command, or set ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 before torch is imported",
              file=sys.stderr)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(NUM_THREADS)
    try:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(model_config(len(tokenizer))).float()
        sequences = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
        verbose = steps >= 100
        losses = pretrain(model, sequences, seed, steps, verbose=verbose)
        _lengthen_unused_embeddings(model, unused_token_ids(sequences, len(tokenizer)))
        # Shown in the README; skipped for the few-step builds of the tests, where they are noise.
        answers = {q: _greedy_answer(model, tokenizer, q) for q in SAMPLE_QUESTIONS} if verbose else {}
        conversations = ({lang: [list(turn) for turn in zip(questions, _greedy_conversation(model, tokenizer, questions))]
                          for lang, questions in CONVERSATIONS.items()} if verbose else {})
    finally:
        torch.set_num_threads(previous_threads)

    model.generation_config = GenerationConfig(
        bos_token_id=None, eos_token_id=[2, 0], pad_token_id=0, do_sample=False,
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    _save_tokenizer(tokenizer, out_dir)
    files_bytes = sum(f.stat().st_size for f in out_dir.iterdir() if f.is_file() and f.name != "README.md")
    window = 100 if steps >= 100 else max(1, steps)
    stats = {
        "seed": seed,
        "steps": steps,
        "batch_size": BATCH_SIZE,
        "peak_lr": PEAK_LR,
        "num_threads": NUM_THREADS,
        # Lets a test notice demo data that changed after the committed model was built.
        "corpus_sha256": hashlib.sha256("".join(texts).encode("utf-8")).hexdigest(),
        "examples": len(sequences) - CHAINS,
        "conversations_in_demo_data": sum(len(turns) > 1 for group in demo_turns(data_dir).values() for turns in group),
        "chained_conversations": CHAINS,
        "tokens": sum(len(s) for s in sequences),
        "vocab_size": len(tokenizer),
        "tokens_not_in_corpus": len(unused_token_ids(sequences, len(tokenizer))),
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_first_step": round(losses[0], 4) if losses else None,
        "mean_loss_per_window": {f"{k + 1}-{min(k + window, steps)}": round(sum(losses[k:k + window]) / len(losses[k:k + window]), 4)
                                 for k in range(0, steps, window)},
        "sample_answers": answers,
        "sample_conversations": conversations,
    }
    (out_dir / "build_stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files_bytes += (out_dir / "build_stats.json").stat().st_size
    (out_dir / "README.md").write_text(_readme(stats, files_bytes), encoding="utf-8")
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """``python scripts/build_tiny_model.py --out DIR [--seed N] [--steps N]`` rebuilds the tiny model."""
    parser = argparse.ArgumentParser(prog="python scripts/build_tiny_model.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write the model to (e.g. kit/tiny_qwen)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help=f"pre-training steps (default {DEFAULT_STEPS})")
    parser.add_argument("--data", type=Path, default=DEMO_DATA_DIR, help="the demo datasets (default kit/data/demo)")
    args = parser.parse_args(argv)
    for name, value in PINNED_KERNELS.items():  # read when torch is first imported, inside build()
        os.environ.setdefault(name, value)
    start = time.perf_counter()
    out = build(args.out, seed=args.seed, steps=args.steps, data_dir=args.data)
    print(f"wrote {out} in {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
