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


# Below these, sampling divides the scores into infinities and torch.multinomial stops the reply with
# "probability tensor contains inf, nan". vLLM raises a temperature under 0.01 to 0.01 itself; the
# huggingface backend does the same, so both backends decode alike.
MIN_TEMPERATURE = 0.01
MIN_REPETITION_PENALTY = 0.01


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
        """The config's decoding settings, refused at load (ChatError) when they would fail at the first reply."""
        return cls(**{f.name: getattr(cfg.infer, f.name) for f in fields(cls)}).checked()

    def checked(self) -> "GenerationSettings":
        if self.repetition_penalty < MIN_REPETITION_PENALTY:
            raise ChatError(_("repetition_penalty: {value} is too small: the scores it divides overflow and the reply "
                              "fails; use a value near 1 (1.0 means no penalty, 1.1 a mild one)").format(
                value=self.repetition_penalty))
        return self

    @property
    def greedy(self) -> bool:
        # temperature 0 means greedy in LLaMA-Factory (it turns do_sample off) and in vLLM; transformers would reject it.
        return not self.do_sample or self.temperature == 0

    @property
    def sampling_temperature(self) -> float:
        """The temperature sampling uses: at least MIN_TEMPERATURE, as vLLM does (lower overflows the scores)."""
        return max(self.temperature, MIN_TEMPERATURE)

    def updated(self, **changes: Any) -> "GenerationSettings":
        """A copy with some settings changed (each checked the way the config checks it)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            allowed = ", ".join(f.name for f in fields(self))
            raise ChatError(_("unknown generation setting(s) {names}; use {allowed}").format(
                names=", ".join(unknown), allowed=allowed))
        merged = replace(self, **changes)
        # Same checks, same messages as a YAML file would get; and the values as the config reads them
        # (max_new_tokens="8" becomes 8, as in a YAML file), not as given.
        return GenerationSettings.from_config(config_mod.from_dict(asdict(merged)))


def read_model_config(model_dir: Path) -> dict[str, Any]:
    """The model's config.json, or {} when it is missing or unreadable (transformers reports that itself)."""
    try:
        data = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
