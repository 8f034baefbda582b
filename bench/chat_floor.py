"""The least a transformers chat does before its first prompt: the floor under `kit chat`'s load time.

    python bench/chat_floor.py MODEL [ADAPTER]

Imports torch, transformers and peft, loads the tokenizer and the model (float32 on the CPU, as `kit chat` and
`llamafactory-cli chat` load it there), applies the LoRA adapter and merges it (peft's merge_and_unload, what
both tools do by default), then prints "User: " and, for each line read, a greedy reply after "Assistant: ",
until "exit". No config, no checks, no template code of its own (the tokenizer's chat template): no chat
program built on transformers and peft can show its prompt sooner on the same machine, so
bench/vs_llamafactory_chat.py runs it beside the two tools as the floor their load times are read against.
"""

from __future__ import annotations

import sys


def main() -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = sys.argv[1]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if len(sys.argv) > 2:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, sys.argv[2]).merge_and_unload()
    model.eval()
    messages: list[dict[str, str]] = []
    while True:
        print("User: ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() == "exit":
            return 0
        messages.append({"role": "user", "content": line.strip()})
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=64, do_sample=False)
        reply = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        messages.append({"role": "assistant", "content": reply})
        print(f"Assistant: {reply}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
