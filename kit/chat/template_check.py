"""The template chat uses against the one an adapter was trained with: the warnings LLaMA-Factory users need."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from kit.data import template as template_mod
from kit.data.template import Template
from kit.i18n import _

logger = logging.getLogger("kit.chat")


class TemplateMismatchWarning(UserWarning):
    """The adapter was trained with another template than the one chat uses."""


def with_checked_template(name: str | None, adapter_dirs: Sequence[Path], default_system: str | None,
                          enable_thinking: bool | None = True) -> Template:
    """The chat template, set up as the config says; a warning when an adapter was trained otherwise."""
    recorded = {str(d): t for d in adapter_dirs if (t := _recorded_template(d))}
    if not name:
        if recorded:
            name = next(iter(recorded.values()))
            logger.info(_("template: not given; using {template}, recorded with the adapter").format(template=name))
        # else template_mod.get(None) says the template is missing
    template = template_mod.with_thinking(template_mod.get(name), enable_thinking)
    for adapter, trained_with in recorded.items():
        if trained_with != template.name:
            _warn_mismatch(_("the adapter {adapter} was trained with template {trained!r} but chat uses {used!r}"
                             "{difference}; replies may be poor. Pass --template {trained} to match training").format(
                adapter=adapter, trained=trained_with, used=template.name,
                difference=_template_difference(trained_with, template.name)))
        elif template.reasoning:
            trained_thinking = _recorded_key(Path(adapter), "enable_thinking", True)
            if trained_thinking != enable_thinking:
                _warn_mismatch(_("the adapter {adapter} was trained with enable_thinking: {trained} but chat uses {used}, "
                                 "so its prompts {difference}; replies may be poor. Pass --enable_thinking {trained} to "
                                 "match training").format(adapter=adapter, trained=_yaml_value(trained_thinking),
                                                          used=_yaml_value(enable_thinking),
                                                          difference=_thinking_difference(enable_thinking)))
    return template_mod.with_system(template, default_system)


def _warn_mismatch(message: str) -> None:
    logger.warning(message)
    warnings.warn(message, TemplateMismatchWarning, stacklevel=4)


def _template_difference(trained_with: str, used: str) -> str:
    """Why two templates LLaMA-Factory users mix up give different prompts (empty when nothing to add)."""
    try:
        trained, chat = template_mod.get(trained_with), template_mod.get(used)
    except template_mod.TemplateError:
        return ""
    if trained.reasoning and not chat.reasoning:
        return _(" ({used} has no thought handling: replies start without the <think> block the adapter learned)").format(
            used=used)
    if chat.reasoning and not trained.reasoning:
        return _(" ({used} adds a <think> block to prompts or replies that the adapter never saw)").format(used=used)
    if trained.default_system != chat.default_system:
        return _(" ({used} has a different default system prompt)").format(used=used)
    return ""


def _thinking_difference(enable_thinking: bool | None) -> str:
    if enable_thinking:
        return _("leave the thought to the model instead of ending in an empty <think> block")
    return _("end in an empty <think> block instead of leaving the thought to the model")


def _yaml_value(value: Any) -> str:
    return "null" if value is None else str(value).lower()


def _recorded_key(adapter_dir: Path, key: str, default: Any) -> Any:
    """A key of the config an adapter was trained with (the kit's training_args.yaml), or ``default``."""
    import yaml

    f = adapter_dir / "training_args.yaml"
    try:
        data = yaml.safe_load(f.read_text(encoding="utf-8")) if f.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    return data.get(key, default) if isinstance(data, dict) else default


def _recorded_template(adapter_dir: Path) -> str | None:
    """The template an adapter was trained with, when its training_args.yaml says so.

    Read here rather than with kit.model.adapter_template, which fails on a training_args.yaml that
    is not a mapping or not UTF-8: such a file only means the template is not known.
    """
    value = _recorded_key(adapter_dir, "template", None)
    return value if isinstance(value, str) and value else None


# LLaMA-Factory's templates for Qwen3 models: qwen3 for the thinking models, qwen3_nothink for Instruct-2507.
QWEN3_TEMPLATES = ("qwen3", "qwen3_nothink")


def hint_qwen3_template(model_config: Mapping[str, Any], template: str, adapter_dirs: Sequence[Path]) -> None:
    """Say so when a Qwen3 model chats with another template, unless its adapter was trained with that one."""
    model_type = str(model_config.get("model_type") or "")
    if not model_type.startswith("qwen3") or template in QWEN3_TEMPLATES:
        return
    if any(_recorded_template(d) == template for d in adapter_dirs):
        return  # trained that way: chat must match training
    logger.warning(_("the model is a {model_type} model but chat uses template {template!r}; LLaMA-Factory uses "
                     "qwen3_nothink for Qwen3 Instruct models and qwen3 for thinking models: pass --template "
                     "qwen3_nothink (or qwen3)").format(model_type=model_type, template=template))


