"""Where the embedded tiny Qwen lives: ``model_name_or_path: kit/tiny-qwen`` resolves to ``path()``.

The files in ``kit/tiny_qwen/`` are package data, built from the demo data by
``scripts/build_tiny_model.py`` (see ``kit/tiny_qwen/README.md``); the build is not part of the package.
"""

from __future__ import annotations

from pathlib import Path

TINY_NAME = "kit/tiny-qwen"


def path() -> Path:
    """The committed tiny model directory, what ``TINY_NAME`` resolves to."""
    return Path(__file__).resolve().parent / "tiny_qwen"
