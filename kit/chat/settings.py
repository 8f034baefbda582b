"""What the chat engine and its backends share: the error a person's mistake raises, decoding settings, config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from kit import config as config_mod
from kit.config import Config
from kit.errors import KitError
from kit.i18n import _


class ChatError(KitError):
    """A person's mistake in using the chat engine (bad messages, an unknown setting)."""


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings; the defaults are LLaMA-Factory's (its ``GeneratingArguments``)."""

    do_sample: bool = True
    temperature: float = 0.95
    top_p: float = 0.7
    top_k: int = 50
    max_new_tokens: int = 1024
    repetition_penalty: float = 1.0

    @classmethod
    def from_config(cls, cfg: Config) -> "GenerationSettings":
        return cls(**{f.name: getattr(cfg.infer, f.name) for f in fields(cls)})

    @property
    def greedy(self) -> bool:
        # temperature 0 means greedy in LLaMA-Factory's web UI and in vLLM; transformers would reject it.
        return not self.do_sample or self.temperature == 0

    def updated(self, **changes: Any) -> "GenerationSettings":
        """A copy with some settings changed (each checked the way the config checks it)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            allowed = ", ".join(f.name for f in fields(self))
            raise ChatError(_("unknown generation setting(s) {names}; use {allowed}").format(
                names=", ".join(unknown), allowed=allowed))
        merged = replace(self, **changes)
        # Same checks, same messages as a YAML file would get.
        config_mod.from_dict(asdict(merged))
        return merged


def read_model_config(model_dir: Path) -> dict[str, Any]:
    """The model's config.json, or {} when it is missing or unreadable (transformers reports that itself)."""
    try:
        data = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
