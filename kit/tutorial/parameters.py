"""How a value reaches a notebook run, the same way for ``kit demo`` and ``kit batch`` (and ``kit.tutorial.batch``).

A value whose name is one of the notebook's parameters is passed as that parameter. Any other config
key goes into the notebook's ``overrides`` parameter as a typed mapping, which the notebook hands to
``kit.tutorial.helpers.quickstart_config`` and so to ``kit.config.overrides_dict``, the one route by
which values reach a config. A run made inside a folder of its own (a demo's, a sweep run's) writes
its adapter and its export there: ``run_outputs`` is that one rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection, Mapping

from kit import config as config_mod

OVERRIDES = "overrides"  # the notebook parameter holding config overrides (notebook 20's)
OUTPUT_DIR = "output_dir"
EXPORT_DIR = "export_dir"


def is_config_key(name: str) -> bool:
    return config_mod.ALIASES.get(name, name) in config_mod.KEYS


def route(values: Mapping[str, Any], parameters: Collection[str],
          overrides: Any = None) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Split ``values`` into (notebook parameters, config overrides, names that are neither).

    ``overrides`` is what the notebook's ``overrides`` parameter already holds (its default, or a
    value given for it): the config keys are added to it, so a value given by name wins over the same
    key inside ``overrides``.
    """
    params: dict[str, Any] = {}
    config = config_mod.overrides_dict(overrides)
    unknown: list[str] = []
    for name, value in values.items():
        if name == OVERRIDES:
            config.update(config_mod.overrides_dict(value))
        elif name in parameters:
            params[name] = value
        elif is_config_key(name):
            config[name] = value
        else:
            unknown.append(name)
    return params, config, unknown


def run_outputs(folder: Path) -> dict[str, str]:
    """Where a run made in ``folder`` writes: the adapter in ``folder/output``, a merged export in ``folder/merged``.

    Absolute, as the notebooks run with the run folder (not the person's) as their working directory.
    """
    folder = Path(folder).resolve()
    return {OUTPUT_DIR: str(folder / "output"), EXPORT_DIR: str(folder / "merged")}
