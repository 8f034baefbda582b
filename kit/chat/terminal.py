"""``kit chat``: llamafactory-cli's terminal chat loop on the kit's engine.

    kit chat [CONFIG.yaml] --model_name_or_path M --adapter_name_or_path A --template qwen \
             --finetuning_type lora [--infer_backend vllm] [--do_sample false] [--key value ...]

Flags are the config keys (the same as ``llamafactory-cli chat``); a YAML file gives them too and
flags override it. Both go through ``kit.config.load`` so that validation and messages are the same
as for training.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import IO, Any, Sequence

from kit import config as config_mod
from kit.chat.messages import clean_text
from kit.config import Config, ConfigError
from kit.errors import KitError
from kit.i18n import N_, _
from kit.library_text import decode_reason

logger = logging.getLogger("kit.chat")

# Defined before the language is known: shown through _() (run_loop, chat_main).
WELCOME = N_("Welcome to the CLI application, use `clear` to remove the history, use `exit` to exit the application.")
# The commands are LLaMA-Factory's English words in every language; a Chinese speaker may also type these.
EXIT_WORDS = ("exit", "退出")
CLEAR_WORDS = ("clear", "清空")
DESCRIPTION = N_("""Chat in the terminal with a model and its LoRA adapter, as llamafactory-cli chat does:

  kit chat --model_name_or_path qwen/Qwen1.5-7B --adapter_name_or_path saves/Qwen1.5-7B/lora/sft \\
           --template qwen --finetuning_type lora

Any config key works as --key value (or --key=value): infer_backend (huggingface, vllm), do_sample,
temperature, top_p, top_k, max_new_tokens, repetition_penalty, merge_adapter, default_system,
enable_thinking, cutoff_len, device, vllm_maxlen ... (kit keys lists them all). In the chat, `clear`
empties the history and `exit` (or Ctrl+C at the prompt, or end of input) leaves; Ctrl+C during a
reply stops that reply and the chat goes on.

A Qwen3 model takes --template qwen3_nothink (Instruct-2507) or qwen3 (thinking models). With qwen3 a
reply's thought, <think>...</think>, is printed as llamafactory-cli chat prints it, and left out of
later prompts; --enable_thinking false makes the model answer without one.
""")


def load_config(argv: Sequence[str], command: str = "kit chat") -> Config:
    from kit.config.command_line import split_config_args

    path, overrides = split_config_args(argv, command)
    if path is not None and Path(path).suffix.lower() not in (".yaml", ".yml", ".json") and not Path(path).is_file():
        raise ConfigError([_("{command}: {path!r} is neither a flag nor a config file; flags start with -- "
                             "(e.g. --model_name_or_path)").format(command=command, path=path)])
    cfg = config_mod.load(path, overrides)
    config_mod.require(cfg, "chat")
    return cfg


# ---------------------------------------------------------------- reading input

class LineReader:
    """Lines typed or piped in; bytes that are not UTF-8 are replaced (and the user is told) instead of crashing."""

    def __init__(self, stdin: IO[Any], stdout: IO[str]):
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = bool(getattr(stdin, "isatty", lambda: False)())
        if self.interactive and hasattr(stdin, "reconfigure"):
            # input() keeps line editing on a terminal; surrogateescape lets us see and report bad bytes.
            stdin.reconfigure(errors="surrogateescape")

    def read(self, prompt: str) -> str | None:
        """One line without its newline; None at end of input."""
        if self.interactive:
            try:
                text = input(prompt)
            except EOFError:
                return None
            raw = text.encode("utf-8", "surrogateescape")
        else:
            self.stdout.write(prompt)
            self.stdout.flush()
            buffer = getattr(self.stdin, "buffer", None)
            line = buffer.readline() if buffer is not None else self.stdin.readline()
            if not line:
                return None
            if isinstance(line, str):
                try:
                    raw = line.encode("utf-8", "surrogateescape")
                except UnicodeEncodeError:  # lone surrogates that are not escaped bytes: no bytes to recover
                    return self._replaced(clean_text(line.rstrip("\r\n")))
            else:
                raw = line
            raw = raw.rstrip(b"\r\n")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.stdout.write("\n" + _("[input was not valid UTF-8 ({reason} at byte {start}); undecodable bytes "
                                      "were replaced with \ufffd. Set your terminal to UTF-8, e.g. LANG=C.UTF-8]").format(
                reason=decode_reason(exc.reason), start=exc.start) + "\n")
            return raw.decode("utf-8", errors="replace")

    def _replaced(self, text: str) -> str:
        self.stdout.write("\n" + _("[input held characters that are not valid Unicode; they were replaced with \ufffd]") + "\n")
        return text


def _safe_output(stdout: IO[str]) -> None:
    """A terminal that cannot show every character (LANG=C, a latin-1 console) gets ? instead of a crash mid-reply."""
    encoding = (getattr(stdout, "encoding", None) or "utf-8").lower().replace("-", "").replace("_", "")
    if encoding not in ("utf8", "utf8sig") and hasattr(stdout, "reconfigure"):
        try:
            stdout.reconfigure(errors="replace")
        except (ValueError, OSError):  # a stream that cannot change now: its own errors setting stays
            pass


# ---------------------------------------------------------------- the loop

def run_loop(engine: Any, stdin: IO[Any] | None = None, stdout: IO[str] | None = None) -> int:
    """llamafactory-cli's chat loop: `clear`, `exit`, streamed replies; returns the exit status.

    The texts are in the language current when it starts (kit.i18n); `exit` and `clear` are typed as
    in LLaMA-Factory, and 退出 / 清空 do the same.
    """
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    _safe_output(stdout)
    reader = LineReader(stdin, stdout)
    messages: list[dict[str, str]] = []
    stdout.write(_(WELCOME) + "\n")
    user_prompt, assistant_prompt = "\n" + _("User: "), _("Assistant: ")
    stdout.flush()
    while True:
        try:
            query = reader.read(user_prompt)
        except KeyboardInterrupt:
            stdout.write("\n")
            return 0
        if query is None:  # end of input (Ctrl+D, or the end of a pipe)
            stdout.write("\n")
            return 0
        query = query.strip()
        if not query:
            continue  # nothing to answer: prompt again
        if query in EXIT_WORDS:
            return 0
        if query in CLEAR_WORDS:
            messages = []
            stdout.write(_("History has been removed.") + "\n")
            continue
        messages.append({"role": "user", "content": query})
        reply = _answer(engine, messages, stdout, assistant_prompt)
        if reply is None:
            messages.pop()  # not answered: the next question follows the last answered one
        else:
            messages.append({"role": "assistant", "content": reply})


def _answer(engine: Any, messages: list[dict[str, str]], stdout: IO[str], assistant_prompt: str) -> str | None:
    """Stream one reply; the text to keep in the history, or None when nothing was answered.

    Nothing that happens during a reply ends the chat: Ctrl+C stops the reply (what was shown is
    kept, as the notebook panel keeps it), and an error is one message, after which the person may
    ask again.
    """
    reply: list[str] = []
    try:
        stdout.write(assistant_prompt)  # inside: a Ctrl+C that lands right after the prompt also stops only this reply
        stdout.flush()
        for piece in engine.stream(messages):
            reply.append(piece)
            stdout.write(piece)
            stdout.flush()
    except KeyboardInterrupt:
        engine.stop()  # ends generation at its next token; the next question waits for that
        stdout.write("\n" + _("[reply stopped; ask again, or type `exit` (Ctrl+C at the prompt also leaves)]") + "\n")
        return "".join(reply) or None
    except KitError as exc:
        stdout.write("\n" + _("error: {message}").format(message=exc) + "\n")
        return None
    except BrokenPipeError:  # `kit chat | head`: the reader has gone; kit.cli ends quietly
        raise
    except Exception as exc:  # a failure inside the model's code: say it, keep the conversation
        logger.debug("reply failed", exc_info=True)
        stdout.write("\n" + _("error: the reply failed: {kind}: {error}").format(
            kind=type(exc).__name__, error=(str(exc).splitlines() or [""])[0]) + "\n")
        return None
    stdout.write("\n")
    return "".join(reply)


def chat_main(argv: list[str]) -> int:
    """Entry point of ``kit chat`` (kit.cli routes here)."""
    from kit.config.command_line import ConfigCommandParser

    parser = ConfigCommandParser("kit chat", _(DESCRIPTION), config_required=False, overrides_metavar="--key value")
    ns = parser.parse_args(argv)
    from kit.chat.engine import Engine

    cfg = load_config(parser.config_args(ns), "kit chat")
    engine = Engine(config=cfg)
    try:
        return run_loop(engine)
    finally:
        engine.close()

