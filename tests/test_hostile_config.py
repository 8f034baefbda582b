"""Hostile and mistaken config files and values: one message each, before anything is loaded."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit import config, i18n
from kit.config import ConfigError


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---------------------------------------------------------------- the YAML reader

def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    p = write(tmp_path, "model_name_or_path: kit/tiny-qwen\nlearning_rate: 1.0e-4\ncutoff_len: 64\nlearning_rate: 1.0\n")
    with pytest.raises(ConfigError) as exc:
        config.load(p)
    text = str(exc.value)
    assert "'learning_rate' appears twice, on line 2 and line 4" in text, text


@pytest.mark.parametrize("text, line, says", [
    ("model_name_or_path: m\ntemplate: qwen\nlearning_rate\uff1a1.0e-4\n", 3, "'\uff1a' (U+FF1A) where YAML needs the plain ':'"),
    ("model_name_or_path: m\n# \u6ce8\u91ca\uff0c\u8bf4\u660e\ntemplate: qwen\nlearning_rate:\u3000 1.0e-4\n", 4, "(U+3000)"),
])
def test_a_full_width_character_from_an_input_method_is_named_on_its_own_line(tmp_path, text, line, says):
    with pytest.raises(ConfigError) as exc:
        config.load(write(tmp_path, text))
    assert f"line {line} holds" in str(exc.value) and says in str(exc.value), str(exc.value)


@pytest.mark.parametrize("key, value, char", [
    ("dataset", "identity\uff0calpaca_en_demo", "'\uff0c' (U+FF0C)"),
    ("lora_target", "q_proj\u3001v_proj", "'\u3001' (U+3001)"),
])
def test_a_full_width_comma_inside_a_list_value_is_named(tmp_path, key, value, char):
    # It parses as YAML (one name with a wide comma in it): without the check it became one unknown name.
    with pytest.raises(ConfigError) as exc:
        config.load(write(tmp_path, f"model_name_or_path: m\ntemplate: qwen\n{key}: {value}\n"))
    text = str(exc.value)
    assert f"{key}: {value!r} holds the full-width comma {char}; separate the names with a plain ','" in text, text
    assert "must be a comma list" not in text  # said once, not twice in other words


def test_an_invisible_character_in_a_key_is_shown(tmp_path):
    with pytest.raises(ConfigError) as exc:
        config.load(write(tmp_path, "model_name_or_path: m\nlearning_rate\u200b: 1.0e-4\n"))
    assert "'learning_rate\\u200b': unknown key: it holds an invisible character U+200B; write it as learning_rate" in str(exc.value)


@pytest.mark.parametrize("encoding, says", [("gbk", "is not UTF-8 text (byte 19, line 2"), ("utf-16", "is UTF-16 text")])
def test_a_config_saved_in_another_encoding_says_how_to_convert_it(tmp_path, encoding, says):
    p = tmp_path / "cfg.yaml"
    p.write_text("template: qwen\n# \u6ce8\u91ca\n", encoding=encoding)
    with pytest.raises(ConfigError) as exc:
        config.load(p)
    assert says in str(exc.value) and "save it as UTF-8" in str(exc.value), str(exc.value)


def test_a_duplicate_inside_a_nested_value_is_refused_too(tmp_path):
    p = write(tmp_path, "dataset: {a: 1, a: 2}\n")
    with pytest.raises(ConfigError, match="'a' appears twice"):
        config.read_yaml(p)


def test_aliases_that_expand_to_billions_are_refused_at_once(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("dataset: *a11")  # 10^12 values once joined into a string
    p = write(tmp_path, "\n".join(lines) + "\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 10000 values"):
        config.load(p)
    assert time.perf_counter() - start < 30  # generous: the point is that it returns at all


def test_a_few_aliases_still_work(tmp_path):
    p = write(tmp_path, "base: &lr 1.0e-4\nlearning_rate: *lr\n")
    assert config.read_yaml(p)["learning_rate"] == 1.0e-4


def test_deep_nesting_is_a_message_not_a_recursion_error(tmp_path):
    p = write(tmp_path, "dataset: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested"):
        config.load(p)


def test_moderate_nesting_beyond_the_limit_is_refused(tmp_path):
    p = write(tmp_path, "dataset: " + "[" * 40 + "x" + "]" * 40 + "\n")
    with pytest.raises(ConfigError, match="nested more than 32 levels"):
        config.load(p)


def test_an_alias_that_contains_itself_is_refused(tmp_path):
    p = write(tmp_path, "dataset: &a [x, *a]\n")
    with pytest.raises(ConfigError, match="refers to itself"):
        config.load(p)


def test_a_huge_config_file_is_not_read(tmp_path):
    p = tmp_path / "big.yaml"
    with p.open("w") as fh:
        fh.write("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="MB; a config file is a few KB"):
        config.load(p)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_as_config_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "cfg.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load(fifo)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_as_config_is_refused():
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load("/dev/zero")


# ---------------------------------------------------------------- numbers

FLOAT_KEYS = [k for k, (_s, f) in config.KEYS.items() if config.base_type(f.type)[0] is float]
INT_KEYS = [k for k, (_s, f) in config.KEYS.items() if config.base_type(f.type)[0] is int]


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("raw", [".nan", ".inf", "-.inf", "nan", "inf", "1e999"])
def test_non_finite_floats_are_refused_in_a_file(tmp_path, key, raw):
    p = write(tmp_path, f"{key}: {raw}\n")
    with pytest.raises(ConfigError) as exc:
        config.load(p)
    assert any(problem.startswith(f"{key}:") and "not a finite number" in problem for problem in exc.value.problems), exc.value


@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_non_finite_floats_are_refused_as_overrides_and_values(key):
    with pytest.raises(ConfigError, match=f"{key}: .*not a finite number"):
        config.load(None, [f"{key}=nan"])
    with pytest.raises(ConfigError, match=f"{key}: .*not a finite number"):
        config.from_dict({key: math.inf})


@pytest.mark.parametrize("key", INT_KEYS)
@pytest.mark.parametrize("raw", ["nan", "inf", "1e999", str(2**70)])
def test_integers_that_no_library_can_hold_are_refused(key, raw):
    with pytest.raises(ConfigError) as exc:
        config.load(None, [f"{key}={raw}"])
    assert any(problem.startswith(f"{key}:") for problem in exc.value.problems), exc.value


def test_the_numbers_libraries_refuse_are_refused_at_load():
    with pytest.raises(ConfigError) as exc:
        config.load(None, ["seed=4294967296", "logging_steps=10.5", "save_steps=2.5", "eval_steps=3.5",
                           "vllm_max_lora_rank=12", "ddp_timeout=1e12"])
    text = str(exc.value)
    for key in ("seed", "logging_steps", "save_steps", "eval_steps", "vllm_max_lora_rank", "ddp_timeout"):
        assert f"{key}:" in text, (key, text)
    assert len(exc.value.problems) == 6  # one message each, all at once


def test_the_limits_themselves_are_accepted():
    cfg = config.load(None, ["seed=4294967295", "logging_steps=0.1", "save_steps=20.0", "vllm_max_lora_rank=64",
                             "ddp_timeout=2147483647", "learning_rate=1e-4"])
    assert cfg.train.seed == 2**32 - 1 and cfg.train.logging_steps == 0.1 and cfg.infer.vllm_max_lora_rank == 64


def test_the_transformers_step_rule_matches_what_transformers_checks(tmp_path):
    """The rule above is transformers': a fractional step count above 1 is refused by TrainingArguments."""
    from transformers import TrainingArguments

    with pytest.raises(ValueError, match="logging_steps must be an integer"):
        TrainingArguments(output_dir=str(tmp_path), logging_steps=10.5, use_cpu=True, report_to=[])


def test_numpy_refuses_the_seed_the_config_refuses():
    import numpy as np

    np.random.seed(config.SEED_MAX)
    with pytest.raises(ValueError):
        np.random.seed(config.SEED_MAX + 1)


# ---------------------------------------------------------------- the language

@pytest.fixture
def clean_language(monkeypatch):
    for key in i18n.LANGUAGE_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    i18n.set_language(None)
    yield monkeypatch
    i18n.set_language(None)


def test_an_unknown_kit_lang_falls_back_to_the_locale(clean_language):
    clean_language.setenv("KIT_LANG", "fr")
    clean_language.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.language() == "zh"
    line = i18n.unknown_kit_lang()
    assert line is not None and "KIT_LANG=fr" in line
    clean_language.setenv("LANG", "en_US.UTF-8")
    assert i18n.language() == "en"


def test_language_lists_are_read_as_gettext_reads_them(clean_language):
    clean_language.setenv("LANGUAGE", "fr:zh")
    assert i18n.language() == "zh"


def test_a_known_kit_lang_or_a_chosen_language_says_nothing(clean_language):
    clean_language.setenv("KIT_LANG", "zh")
    assert i18n.unknown_kit_lang() is None
    clean_language.setenv("KIT_LANG", "fr")
    i18n.set_language("en")
    assert i18n.unknown_kit_lang() is None


def test_the_cli_says_once_which_language_it_uses_instead(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in i18n.LANGUAGE_VARIABLES}
    env.update(KIT_LANG="xx", LANG="zh_CN.UTF-8")
    out = subprocess.run([sys.executable, "-m", "kit.cli", "keys"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("KIT_LANG=xx") == 1, out.stderr
    assert "zh" in out.stderr
