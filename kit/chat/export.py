"""``kit export``: merge LoRA adapter(s) into the base model and save a standalone model.

    kit export --model_name_or_path M --adapter_name_or_path A --template qwen \
               --finetuning_type lora --export_dir D

The result loads with plain transformers (no peft): safetensors weights, the tokenizer with eos set
for the template, a chat template (Jinja) that renders prompts exactly as the kit's template
encodes them, and a generation config that stops at the template's stop words. It is written to a
temporary folder next to D and renamed at the end, so a failure never leaves a half-written export.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from kit import config as config_mod
from kit import model as model_mod
from kit.config import Config
from kit.data.template import Template
from kit.chat.export_folder import (EXPORT_MARKER, ExportError, check_export_dir, check_free_space, make_staging,
                                    os_error, put_in_place, remove_staging, write_marker)
from kit.i18n import N_, _

logger = logging.getLogger("kit.export")

# Names tests and notebooks take from here (they live in kit.chat.export_folder).
__all__ = ["EXPORT_MARKER", "ExportError", "export_main", "export_model", "jinja_chat_template"]
_check_export_dir = check_export_dir  # the name earlier tests use


DESCRIPTION = N_("""Merge a LoRA adapter into its base model and save a standalone model, as llamafactory-cli export does:

  kit export --model_name_or_path qwen/Qwen1.5-7B --adapter_name_or_path saves/Qwen1.5-7B/lora/sft \\
             --template qwen --finetuning_type lora --export_dir models/qwen1.5-7b-sft

export_dir must not exist or be empty; export_size sets the shard size in GB (default 5).
--replace_earlier_export replaces an earlier kit export there, but only when the folder holds nothing
except the files that export wrote (listed in its kit_export.json).
""")


# ---------------------------------------------------------------- chat template

def _jinja_literal(text: str) -> str:
    # JSON string syntax is valid in a Jinja string literal (Jinja unescapes \n, \" and \uXXXX).
    return "{{ " + json.dumps(text) + " }}"


def _jinja_slots(slots: Sequence[Any], content_expr: str) -> str:
    out: list[str] = []
    for slot in slots:
        if isinstance(slot, str):
            before, found, after = slot.partition("{{content}}")
            if before:
                out.append(_jinja_literal(before))
            if found:
                out.append("{{ " + content_expr + " }}")
            if after:
                out.append(_jinja_literal(after))
        elif "token" in slot:
            out.append(_jinja_literal(slot["token"]))
        elif slot.get("special") == "eos_token":
            out.append("{{ eos_token }}")
        elif slot.get("special") == "bos_token":
            out.append("{% if bos_token %}{{ bos_token }}{% endif %}")
    return "".join(out)


def _jinja_bool(value: bool | None) -> str:
    return "none" if value is None else ("true" if value else "false")


def _jinja_reasoning(template: Template) -> tuple[str, str, str]:
    """(set-up, assistant content, end) of a reasoning template, as ``encode_prompt`` / ``encode_oneturn`` encode it.

    ``enable_thinking`` may be passed to apply_chat_template (as Qwen3's own template takes it); the
    default is the export's. Earlier replies lose their thoughts (Template.remove_thought, written
    with split since Jinja has no regex); a last reply without a thought, and a prompt ending in a
    user turn with thinking off, get the empty thought.
    """
    opening, closing = template.thought_words
    setup = ("{%- set thinking = enable_thinking if enable_thinking is defined else "
             + _jinja_bool(template.enable_thinking) + " -%}")
    strip = ("{%- set ns = namespace(text='') -%}"
             "{%- for part in content.split(" + json.dumps(closing) + ") -%}"
             "{%- if loop.last -%}{%- set ns.text = ns.text + part -%}"
             "{%- elif " + json.dumps(opening) + " in part -%}{%- set ns.text = ns.text + part.split(" + json.dumps(opening) + ")[0] -%}"
             "{%- else -%}{%- set ns.text = ns.text + part + " + json.dumps(closing) + " -%}{%- endif -%}"
             "{%- endfor -%}{%- set content = ns.text.lstrip('\\n') -%}")
    has_thought = f"({json.dumps(opening.strip())} in content or {json.dumps(closing.strip())} in content)"
    empty = json.dumps(template.add_thought())
    history = "" if template.preserve_thinking else strip
    content = ("{%- set content = message['content'] -%}"
               "{%- if loop.last -%}"
               "{%- if thinking is false -%}" + strip + "{%- endif -%}"
               "{%- if not " + has_thought + " -%}{%- set content = " + empty + " + content -%}{%- endif -%}"
               "{%- else -%}" + history + "{%- endif -%}")
    end = ("{%- if loop_messages and loop_messages[-1]['role'] == 'user' and not thinking -%}"
           "{{ " + empty + " }}{%- endif -%}")
    return setup, content, end


def jinja_chat_template(template: Template) -> str:
    """A Jinja chat template that renders what ``template.encode_prompt`` encodes.

    The user slot already ends with the assistant's header (as in LLaMA-Factory), so
    add_generation_prompt changes nothing, as with LLaMA-Factory's exported templates. A reasoning
    template (qwen3) also drops earlier replies' thoughts and follows ``enable_thinking``, as the
    kit's chat prompts do.
    """
    setup, assistant_content, end = _jinja_reasoning(template) if template.reasoning else ("", "", "")
    assistant_expr = "content" if template.reasoning else "message['content']"
    return (
        setup
        + "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}"
        "{%- else -%}"
        "{%- set system_message = " + json.dumps(template.default_system) + " -%}{%- set loop_messages = messages -%}"
        "{%- endif -%}"
        + _jinja_slots(template.format_prefix, "''")
        + "{%- if system_message -%}" + _jinja_slots(template.format_system, "system_message") + "{%- endif -%}"
        "{%- for message in loop_messages -%}"
        "{%- if message['role'] == 'user' -%}" + _jinja_slots(template.format_user, "message['content']")
        + "{%- elif message['role'] == 'assistant' -%}" + assistant_content + _jinja_slots(template.format_assistant, assistant_expr)
        + "{%- elif message['role'] == 'observation' or message['role'] == 'tool' -%}"
        + _jinja_slots(template.format_observation, "message['content']")
        + "{%- endif -%}{%- endfor -%}"
        + end
    )


# ---------------------------------------------------------------- export

def _drop_load_flags(tokenizer_config: Path) -> None:
    # transformers 5 saves how this process loaded the tokenizer (is_local, local_files_only: true
    # under HF_HUB_OFFLINE) as if it were part of the model; an export must not carry them elsewhere.
    if not tokenizer_config.is_file():
        return
    data = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    if any(k in data for k in ("is_local", "local_files_only")):
        for key in ("is_local", "local_files_only"):
            data.pop(key, None)
        tokenizer_config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _model_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def export_model(cfg: Config, replace_earlier_export: bool = False) -> Path:
    """Merge ``cfg``'s adapters into its base model and save the result in ``export_dir``; return it.

    ``export_dir`` must be new or empty; with ``replace_earlier_export`` it may also hold an earlier
    export of the kit's whose folder holds only the files its kit_export.json lists; those are
    replaced once the new export is complete. Anything else is refused, naming the files in the way:
    nothing a person put there is ever deleted. Whatever the operating system refuses (no permission,
    a full disk) is an ExportError, and nothing half-written is left.
    """
    from kit.chat.adapter_check import check_adapters_fit, checked_adapter_dirs, load_adapters
    from kit.chat.engine import with_checked_template

    config_mod.require(cfg, "export")
    export_dir = Path(cfg.infer.export_dir).expanduser().resolve()
    check_export_dir(export_dir, replace_earlier_export)
    adapter_dirs = checked_adapter_dirs(cfg.adapter_paths)
    stage = model_mod.tokenizer_stage(cfg, template=with_checked_template(
        cfg.data.template, adapter_dirs, cfg.data.default_system, cfg.data.enable_thinking))
    model_dir, template, tokenizer = stage.model_dir, stage.template, stage.tokenizer
    check_adapters_fit(model_dir, adapter_dirs, cfg.model.trust_remote_code)  # before minutes of loading
    # dtype "auto": the checkpoint's own dtype, so the export is the size of the base model.
    model = model_mod.load_model(model_dir, "auto", cfg.model.trust_remote_code)
    if adapter_dirs:
        model = load_adapters(model, adapter_dirs, merge=True)
    else:
        logger.warning(_("no adapter_name_or_path: exporting the base model unchanged"))

    stop_ids = template.stop_token_ids(tokenizer)
    # Plain transformers generate() then stops where the template's replies end.
    model.generation_config.eos_token_id = stop_ids if len(stop_ids) > 1 else stop_ids[0]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    tokenizer.chat_template = jinja_chat_template(template)
    tokenizer.padding_side = "left"  # for batched generation with the exported model

    needed = _model_bytes(model)
    check_free_space(export_dir, needed)
    from kit.run.launch import signals_raise

    staging = None
    with signals_raise():  # SIGTERM / SIGHUP (a closed terminal) clean up as Ctrl+C does: no hidden gigabytes left
        try:
            staging = make_staging(export_dir)
            with model_mod.quiet_libraries():  # the kit's own bar, not "Writing model shards"; no DeepSpeed CPU note
                model.save_pretrained(str(staging), max_shard_size=f"{cfg.infer.export_size}GB")
            tokenizer.save_pretrained(str(staging))
            _drop_load_flags(staging / "tokenizer_config.json")
            write_marker(staging, {"model_name_or_path": cfg.model.model_name_or_path,
                                   "adapter_name_or_path": [str(a) for a in adapter_dirs], "template": template.name})
            earlier = check_export_dir(export_dir, replace_earlier_export)  # still as checked after the (long) save?
            put_in_place(staging, export_dir, earlier)
        except OSError as exc:
            remove_staging(staging)
            raise os_error(exc, export_dir, needed) from exc
        except BaseException:  # Ctrl+C, SIGTERM, or a refusal of the second check: nothing half-written stays
            remove_staging(staging)
            raise
    logger.info(_("exported {model}{adapters} to {export_dir}").format(
        model=model_dir, adapters=f" + {', '.join(map(str, adapter_dirs))}" if adapter_dirs else "", export_dir=export_dir))
    return export_dir


REPLACE_FLAG = "--replace_earlier_export"


def _take_replace_flag(argv: list[str]) -> tuple[bool, list[str]]:
    """``--replace_earlier_export [true|false]`` (or ``=value``): a flag of ``kit export`` only, not a config key."""
    from kit.config import ConfigError

    rest: list[str] = []
    replace_earlier = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == REPLACE_FLAG or arg.startswith(REPLACE_FLAG + "="):
            value = arg.partition("=")[2] if "=" in arg else None
            if value is None and i + 1 < len(argv) and (argv[i + 1].lower() in _BOOL_WORDS
                                                         or _meant_as_value(argv[i + 1])):
                value = argv[i + 1]
                i += 1
            word = (value or "true").lower()
            if word not in _BOOL_WORDS:
                raise ConfigError([_("{flag}: {value!r} is not true or false").format(flag=REPLACE_FLAG, value=value)])
            replace_earlier = _BOOL_WORDS[word]
        else:
            rest.append(arg)
        i += 1
    return replace_earlier, rest


def _meant_as_value(word: str) -> bool:
    """``--replace_earlier_export maybe``: a word after the flag that is no option, override or config file."""
    return (not word.startswith("-") and "=" not in word and not word.lower().endswith((".yaml", ".yml", ".json"))
            and not Path(word).exists())


_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def export_main(argv: list[str]) -> int:
    """Entry point of ``kit export`` (kit.cli routes here)."""
    from kit.chat.terminal import load_config
    from kit.config import ConfigError
    from kit.config.command_line import ConfigCommandParser

    parser = ConfigCommandParser("kit export", _(DESCRIPTION), config_required=False, overrides_metavar="--key value")
    # Shown in the help; read here, before argparse, as its value is optional (a bare flag means true).
    parser.add_argument(REPLACE_FLAG, metavar="[true|false]", help=_("replace an earlier kit export in export_dir (see above)"))
    try:
        replace_earlier, argv = _take_replace_flag(list(argv))
    except ConfigError as exc:
        parser.error(exc.problems[0])
    cfg = load_config(parser.config_args(parser.parse_args(argv)), "kit export")
    out = export_model(cfg, replace_earlier_export=replace_earlier)
    print(json.dumps({"export_dir": str(out), "files": sorted(p.name for p in out.iterdir())}))
    return 0
