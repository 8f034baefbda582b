"""Every message in English and Chinese: the catalogs cover the code, the language is chosen as documented."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from kit import i18n

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("kit_i18n_script", ROOT / "scripts" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _reset_language():
    yield
    i18n.set_language(None)


def test_every_message_has_chinese_text_and_compiled_catalogs_are_current():
    script = _script()
    missing = {area: script.untranslated("zh", area) for area in script.AREAS}
    assert not any(missing.values()), {a: m[:10] for a, m in missing.items() if m}
    for area in script.AREAS:
        po = script.po_path("zh", area)
        assert po.with_suffix(".mo").read_bytes() == script.compiled(script.read("zh", area)), f"{area}.mo is stale"


def test_each_source_is_in_one_area():
    script = _script()
    seen: dict[Path, str] = {}
    for area in script.AREAS:
        for path in script.sources(area):
            assert path not in seen, (path, seen.get(path), area)
            seen[path] = area
    every = {p for p in (ROOT / "kit").rglob("*.py")}
    assert every - set(seen) <= {ROOT / "kit" / "__init__.py", ROOT / "kit" / "errors.py",
                                 ROOT / "kit" / "doctor" / "__main__.py"}, sorted(str(p) for p in every - set(seen))


@pytest.mark.parametrize("variables, expected", [
    ({}, "en"), ({"LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "C.UTF-8"}, "en"), ({"LC_ALL": "zh_TW", "LANG": "en_US"}, "zh"),
    ({"KIT_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"), ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, "zh"),
])
def test_language_from_the_environment(monkeypatch, variables, expected):
    for key in ("KIT_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    assert i18n.language() == expected


def test_chosen_language_wins_and_unknown_is_refused(monkeypatch):
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert i18n.set_language("zh-Hans") == "zh"
    assert i18n._("a message no catalog has") == "a message no catalog has"  # English is the fallback
    with pytest.raises(i18n.LanguageError, match="'fr' 不是 kit 支持的语言"):  # said in the language chosen so far
        i18n.set_language("fr")
    i18n.set_language("en")
    with pytest.raises(i18n.LanguageError, match="'fr' is not a language the kit speaks"):
        i18n.set_language("fr")


def test_a_message_in_several_areas_reads_the_same_in_each():
    """All areas' catalogs are looked up as one chain: a msgid two areas share must have one Chinese text,
    or which one shows depends on the order of the chain ("base weights" was 基座权重 in one, 基座模型权重 in another)."""
    script = _script()
    seen: dict[str, tuple[str, str]] = {}
    differ = []
    for area in script.AREAS:
        for message in script.read("zh", area):
            if not message.id or not isinstance(message.id, str) or not message.string:
                continue
            if message.id in seen and seen[message.id][1] != message.string:
                differ.append((message.id, seen[message.id], (area, message.string)))
            seen.setdefault(message.id, (area, message.string))
    assert not differ, differ[:10]
