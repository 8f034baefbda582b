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


# Terms that a plain substring cannot reject (the English word is also a file name, a value or a config key): each
# is rejected only next to Chinese text. notebook -> Notebook, cpu (as hardware) -> CPU, 模型 id -> 模型 ID,
# worker -> 工作进程, "Ascend 910B" inside a Chinese sentence -> 昇腾 910B, 无训练 -> 无可训练, nested （（）） parentheses.
CJK = r"[\u4e00-\u9fff]"
IN_CHINESE = {
    "notebook (use Notebook)": re.compile(rf"{CJK}\s?notebook|(?<![\w/._`-])notebook\s?{CJK}"),
    "cpu (use CPU)": re.compile(r"(?<![\w`])cpu\s?(上|核|机器)"),
    "模型 id (use 模型 ID)": re.compile(r"模型\s?id\b"),
    "worker (use 工作进程)": re.compile(rf"{CJK}\s?workers?\b|(?<![\w_`])workers?\s?{CJK}"),
    "Ascend 910B (use 昇腾 910B)": re.compile(rf"{CJK}[^\n\"]{{0,12}}Ascend 910B|Ascend 910B\s?{CJK}"),
    "无训练 (use 无可训练)": re.compile(r"无训练"),
    "nested parentheses": re.compile(r"（[^）\n]*（"),
}


def test_terms_in_chinese_sentences():
    found = []
    for path in chinese_texts():
        name = str(path.relative_to(ROOT))
        if "/en/" in name or name == "README.md":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            found += [f"{name}: {rule}: {line.strip()[:120]}" for rule, rx in IN_CHINESE.items() if rx.search(line)]
    assert not found, "\n".join(found)


def test_the_term_rules_catch_what_they_name():
    hits = {rule for rule, rx in IN_CHINESE.items()
            for text in ("本 notebook 运行", "在 cpu 上", "模型 id 从", "每个 worker 进程", "在 Ascend 910B 上",
                         "无训练 token", "（约 4 GiB（bf16））") if rx.search(text)}
    assert hits == set(IN_CHINESE)
    assert not any(rx.search(s) for rx in IN_CHINESE.values()
                   for s in ("notebook = \"20_lora_sft\"", "device: `cpu`；", "preprocessing_num_workers: 16"))
