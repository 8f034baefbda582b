"""Chat with a base model and its LoRA adapter(s): one engine, thin front ends.

``Engine`` (engine.py) loads the model, builds prompts with the training template and streams
replies (huggingface or vLLM backend); ``kit chat`` (terminal.py), ``kit export`` (export.py) and the
notebook ``ChatPanel`` (widget.py) only use it. The widget is imported on demand so that the
terminal and export do not need ipywidgets.
"""

from kit.chat.engine import (ChatError, Engine, GenerationSettings, Prompt, ReplyStream, TemplateMismatchWarning,
                             chat_config)

__all__ = ["ChatError", "ChatPanel", "Engine", "GenerationSettings", "Prompt", "ReplyStream", "TemplateMismatchWarning",
           "chat_config"]


def __getattr__(name: str):
    if name == "ChatPanel":
        from kit.chat.widget import ChatPanel

        return ChatPanel
    raise AttributeError(f"module 'kit.chat' has no attribute {name!r}")
