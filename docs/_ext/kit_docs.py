"""Sphinx extension: the CLI and config references, generated from the kit's own definitions.

A page holds a marker line and this extension replaces it, when Sphinx reads the page, with MyST
text made from the code itself:

    <!-- kit:config-reference -->   every key of kit.config.key_reference(): type, default, choices, meaning
    <!-- kit:cli-reference -->      kit.cli.USAGE, then each command's ``--help`` output
    <!-- kit:quickstart-yaml -->    the quick-start YAML the kit ships (kit/examples/qwen1_5_lora_sft_ds.yaml)

So the reference cannot drift from the code: a new config key or command appears in the next build.
Each edition's text is in its language: the kit's own messages (each key's meaning, the usage and
``--help`` pages) come from its gettext catalogs, with the language set to the edition's while the text
is made (the zh pages show the Chinese help).
The build runs with ``-E`` (fresh environment), so a changed key is never hidden by Sphinx's cache.
"""

from __future__ import annotations

import io
import logging
import os
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Iterator

CONFIG_MARKER = "<!-- kit:config-reference -->"
CLI_MARKER = "<!-- kit:cli-reference -->"
YAML_MARKER = "<!-- kit:quickstart-yaml -->"

_TEXT = {
    "en": {
        "key": "key", "type": "type", "default": "default", "choices": "allowed values", "help": "meaning",
        "sections": {
            "model": "Model", "data": "Dataset", "finetune": "Fine-tuning method",
            "train": "Training", "infer": "Inference and export",
        },
        "usage": "Usage line",
        "no_help": "This command has no `--help` page of its own; its usage line is above.",
    },
    "zh": {
        "key": "键", "type": "类型", "default": "默认值", "choices": "可选值", "help": "含义",
        "sections": {
            "model": "模型", "data": "数据集", "finetune": "微调方法",
            "train": "训练", "infer": "推理与导出",
        },
        "usage": "用法",
        "no_help": "这个命令没有单独的 `--help` 页面，用法见上面一行。",
    },
}


def _text(lang: str) -> dict[str, Any]:
    return _TEXT.get(lang, _TEXT["en"])


@contextmanager
def _language(lang: str) -> Iterator[None]:
    """The kit speaks ``lang`` inside (then the environment's language again): the edition's, whoever builds it."""
    from kit import i18n

    i18n.set_language(lang)
    try:
        yield
    finally:
        i18n.set_language(None)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _code(value: str) -> str:
    value = str(value).replace("|", "\\|")
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def format_default(value: Any) -> str:
    """A default as a person would write it in the YAML file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value == "":
        return '""'
    return str(value)


def config_reference_md(lang: str = "en") -> str:
    """MyST text: one table per config section, every key of kit.config.key_reference()."""
    from kit.config import key_reference

    t = _text(lang)
    with _language(lang):
        rows = key_reference()
    sections: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        sections.setdefault(row["section"], []).append(row)
    out: list[str] = []
    for section, section_rows in sections.items():
        title = t["sections"].get(section, section)
        out += [f"(config-{section})=", f"## {title} (`{section}`)", ""]
        out += [f"| {t['key']} | {t['type']} | {t['default']} | {t['choices']} | {t['help']} |",
                "|---|---|---|---|---|"]
        for row in section_rows:
            choices = ", ".join(_code(c) for c in row["choices"]) if row["choices"] else ""
            out.append(f"| {_code(row['key'])} | {_cell(row['type'])} | {_code(format_default(row['default']))} "
                       f"| {choices} | {_cell(row['help'])} |")
        out.append("")
    return "\n".join(out)


def usage_lines() -> dict[str, str]:
    """Each command's lines of kit.cli.USAGE (in the kit's current language), keyed by command name."""
    from kit.cli import COMMANDS, USAGE
    from kit.i18n import _

    entries: dict[str, list[str]] = {}
    current = None
    for line in _(USAGE).splitlines():
        words = line.split()
        if line.startswith("  ") and not line.startswith("   ") and words and words[0] in COMMANDS:
            current = words[0]
            entries[current] = [line.strip()]
        elif current and line.startswith("   ") and words:
            entries[current].append(line.strip())
        else:
            current = None
    return {name: "\n".join(lines) for name, lines in entries.items()}


def command_help(command: str) -> str | None:
    """``kit COMMAND --help`` as the terminal shows it, or None if the command prints no usage page.

    Runs in this process (each command imports lazily; seven subprocesses would cost ~20 s), with a
    fixed width so the text does not depend on the terminal of whoever builds the docs.
    """
    from kit import cli

    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main([command, "--help"])
    except SystemExit as exc:  # argparse exits 0 after printing help
        code = exc.code or 0
    except Exception:  # a command that cannot start here (e.g. a missing optional module): usage line only
        return None
    finally:
        root.handlers[:], root.level = saved_handlers, saved_level
        if saved_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved_columns
    text = out.getvalue().strip()
    if code != 0 or not text.lower().startswith(("usage", "用法")):
        return None
    return text


def cli_reference_md(lang: str = "en") -> str:
    """MyST text: kit.cli.USAGE, then one section per command with its --help page."""
    from kit.cli import COMMANDS, USAGE
    from kit.i18n import _

    t = _text(lang)
    fence = "````"  # four backticks: help text may quote code in backticks
    with _language(lang):
        usages = usage_lines()
        out = [f"{fence}text", _(USAGE).strip(), fence, ""]
        for name in COMMANDS:
            out += [f"(cli-{name})=", f"## `kit {name}`", ""]
            help_text = command_help(name)
            if help_text:
                out += [f"{fence}text", help_text, fence, ""]
            else:
                out += [f"{fence}text", usages.get(name, f"kit {name}"), fence, "", t["no_help"], ""]
    return "\n".join(out)


def quickstart_yaml_md() -> str:
    import kit
    from kit.config import QUICKSTART_YAML

    try:  # kit/examples/qwen1_5_lora_sft_ds.yaml, the path in a checkout
        caption = QUICKSTART_YAML.resolve().relative_to(Path(kit.__file__).resolve().parent.parent).as_posix()
    except ValueError:
        caption = QUICKSTART_YAML.name
    return "\n".join(["```{code-block} yaml", f":caption: {caption}", "",
                      QUICKSTART_YAML.read_text(encoding="utf-8").rstrip(), "```"])


def _replace_markers(app: Any, docname: str, source: list[str]) -> None:
    text = source[0]
    lang = app.config.language or "en"
    lang = "zh" if lang.startswith("zh") else "en"
    if CONFIG_MARKER in text:
        text = text.replace(CONFIG_MARKER, config_reference_md(lang))
    if CLI_MARKER in text:
        text = text.replace(CLI_MARKER, cli_reference_md(lang))
    if YAML_MARKER in text:
        text = text.replace(YAML_MARKER, quickstart_yaml_md())
    source[0] = text


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", _replace_markers)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
