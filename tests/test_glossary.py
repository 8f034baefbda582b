"""One set of Chinese terms: the glossary's rejected variants appear nowhere in the project's Chinese texts."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary.md"


def rejected_terms() -> dict[str, str]:
    """rejected variant -> the term to use, from the glossary's table."""
    out = {}
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[2] and not set(cells[2]) <= set("-: "):
            for variant in re.split(r",\s*", cells[2]):
                if variant and "rejected" not in variant:
                    out[variant] = cells[1]
    return out


def chinese_texts() -> list[Path]:
    paths = [*(ROOT / "docs" / "zh").rglob("*.md"), *(ROOT / "notebooks" / "zh").glob("*.ipynb"),
             *(ROOT / "kit" / "locale" / "zh").rglob("*.po"), *ROOT.glob("README*.md"), *(ROOT / "docs" / "en").rglob("*.md")]
    return [p for p in paths if p.is_file()]


def test_glossary_names_rejected_variants():
    terms = rejected_terms()
    assert terms["快速上手"] == "快速开始" and terms["基础模型"] == "基座模型"


def test_no_rejected_variant_in_chinese_texts():
    terms = rejected_terms()
    found = []
    for path in chinese_texts():
        text = path.read_text(encoding="utf-8")
        for variant, use in terms.items():
            if variant in text:
                found.append(f"{path.relative_to(ROOT)}: {variant} (use {use})")
    assert not found, found
