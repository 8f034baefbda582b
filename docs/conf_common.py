"""Sphinx settings shared by the English and the Chinese site (docs/en/conf.py, docs/zh/conf.py).

Each language is its own Sphinx project, so the theme's labels and the search index speak the
reader's language; both are built by scripts/build_docs.sh.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

try:
    from kit import __version__ as _kit_version
except Exception:  # the docs can still be read in an editor without the kit installed
    _kit_version = ""


def settings(lang: str) -> dict[str, Any]:
    if not (DOCS / lang / "notebooks").is_dir():
        from sphinx.errors import ConfigError

        raise ConfigError(f"{DOCS / lang / 'notebooks'} is missing: build the site with scripts/build_docs.sh, "
                           "which puts the executed notebooks there")
    title = {"en": "kit: the Ascend LoRA quick start, notebook first",
             "zh": "kit：昇腾 LoRA 快速上手（Notebook 版）"}[lang]
    return {
        "project": "kit",
        "author": "kit contributors",
        "copyright": "kit contributors",
        "version": _kit_version,
        "release": _kit_version,
        "language": "zh_CN" if lang == "zh" else "en",
        "html_title": title,
        "extensions": ["myst_nb", "kit_docs"],
        "exclude_patterns": ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"],
        "source_suffix": {".md": "myst-nb", ".ipynb": "myst-nb"},
        # The notebooks are rendered with the outputs of a real run (scripts/build_docs.sh copies the
        # executed copies in); the docs build never runs them.
        "nb_execution_mode": "off",
        "nb_merge_streams": True,
        # kit.tutorial.publish() records values under its own MIME type for tests and `kit demo`; the page
        # shows the text/plain beside it. An output with only that MIME type (publish(show=False)) is
        # data, not something to show: myst-nb skips it, and its "unknown MIME type" note is silenced.
        "nb_mime_priority_overrides": [("*", "application/vnd.kit.published+json", None)],
        "suppress_warnings": ["mystnb.unknown_mime_type"],
        "myst_enable_extensions": ["colon_fence", "deflist"],
        "myst_heading_anchors": 3,
        # Every broken cross-reference is a warning, and the build runs with -W: it fails.
        "nitpicky": True,
        "html_theme": "sphinx_book_theme",
        "html_theme_options": {
            "show_toc_level": 2,
            "navigation_with_keys": False,
            "use_download_button": True,
        },
        "html_last_updated_fmt": None,
    }
