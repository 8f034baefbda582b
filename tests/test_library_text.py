"""Libraries' messages a person sees (kit/library_text.py): PyYAML's and json's reasons, a file that is not UTF-8,
pydantic's validation errors in kit api's replies, uvicorn's start and stop lines; in Chinese when the person reads
Chinese, the library's own English otherwise."""

from __future__ import annotations

import json
import logging
import re

import pytest
import yaml

from kit import cli, i18n
from kit import library_text as lt


@pytest.fixture
def zh():
    i18n.set_language("zh")
    yield
    i18n.set_language(None)


# One config for each problem kit/library_text.py words, as the installed PyYAML raises it: a PyYAML that words a
# problem differently fails here (its English would reach a Chinese reader untranslated).
YAML_SAMPLES = {
    "a: b: c": "mapping values are not allowed here",
    "a: 1\nb": "could not find expected ':'",
    "a:\n\tb: 1": "found character '\\t' that cannot start any token",
    "a: @x": "found character '@' that cannot start any token",
    "a: 'abc": "found unexpected end of stream",
    "a:\n  b: 1\n c: 2": "expected <block end>, but found '<block mapping start>'",
    "key: - a": "sequence entries are not allowed here",
    "a: ? b": "mapping keys are not allowed here",
    "a: [1, 2": "expected ',' or ']', but got '<stream end>'",
    "a: {b: 1": "expected ',' or '}', but got '<stream end>'",
    'a: "x\\q"': "found unknown escape character 'q'",
    "a: *nope": "found undefined alias 'nope'",
    "a: &": "expected alphabetic or numeric character, but found '\\x00'",
    "a: |+ x": "expected a comment or a line break, but found 'x'",
    "a: {b: [}": "expected the node content, but found '}'",
    "? [1]\n: 2": "found unhashable key",
    "a: !t\n": "could not determine a constructor for the tag '!t'",
}


def _problem(text: str) -> str:
    with pytest.raises(yaml.YAMLError) as raised:
        yaml.safe_load(text)
    return raised.value.problem


@pytest.mark.parametrize("text", YAML_SAMPLES)
def test_each_yaml_problem_is_worded_in_both_languages(text, zh):
    problem = _problem(text)
    assert problem == YAML_SAMPLES[text]  # PyYAML still says it this way
    chinese = lt.yaml_problem(problem)
    i18n.set_language("en")
    english = lt.yaml_problem(problem)
    # English is PyYAML's own words (a tab is named as one)
    assert english.startswith("found a tab character") if "'\\t'" in problem else english.startswith(problem)
    assert chinese != english and re.search(r"[\u4e00-\u9fff]", chinese)
    # what PyYAML quoted ('<stream end>', 'nope') reaches the Chinese text unchanged
    for quoted in re.findall(r"'[^']*'$", problem):
        if quoted != "'\\t'":
            assert quoted in chinese


def test_a_yaml_problem_the_table_lacks_stays_as_pyyaml_wrote_it(zh):
    assert lt.yaml_problem("found something new") == "found something new"


def test_kit_train_says_a_broken_config_in_chinese(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("model_name_or_path: kit/tiny-qwen\nstage: sft\n  dataset: identity\n", encoding="utf-8")
    try:
        assert cli.main(["--lang", "zh", "train", str(bad)]) == 2
    finally:
        i18n.set_language(None)
    err = capsys.readouterr().err
    assert "第 3 行第 10 列不是合法的 YAML：此处不允许出现映射值" in err and "mapping values" not in err, err
    assert cli.main(["train", str(bad)]) == 2
    assert "line 3, column 10: mapping values are not allowed here: a value that holds ': ' needs quotes" in capsys.readouterr().err


JSON_SAMPLES = ['{"a": 1,}', '{"a" 1}', "[1 2]", "", '"abc', '{"a": "x\\q"}', "[1] x", '"\\u12"', '"a\tb"']


@pytest.mark.parametrize("text", JSON_SAMPLES)
def test_each_json_reason_is_translated(text, zh):
    with pytest.raises(json.JSONDecodeError) as raised:
        json.loads(text)
    exc = raised.value
    chinese = lt.json_problem(exc)
    assert re.search(r"[\u4e00-\u9fff]", lt.json_reason(exc.msg)), chinese
    assert not re.search(r"[A-Za-z]{3,}", chinese.replace("uXXXX", "")), chinese  # nothing of json's English left
    assert chinese.endswith(f"第 {exc.lineno} 行第 {exc.colno} 列")
    i18n.set_language("en")
    assert lt.json_problem(exc) == f"{exc.msg}: line {exc.lineno}, column {exc.colno}"


@pytest.mark.parametrize("raw, reason", [(b"\x80abc", "无效的起始字节"), (b"a\xe4\xbd", "数据意外结束"),
                                         (b"\xe4(x", "无效的后续字节")])
def test_bytes_that_are_not_utf8_are_described(raw, reason, zh):
    with pytest.raises(UnicodeDecodeError) as raised:
        raw.decode("utf-8")
    text = lt.read_problem(raised.value)
    assert reason in text and "UTF-8" in text and f"0x{raw[raised.value.start]:02x}" in text, text


def test_uvicorns_start_and_stop_lines_in_the_persons_language(zh):
    lines = lt.UvicornLines()
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None)
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    assert lines.filter(record) and record.getMessage() == "服务进程 [42] 已启动"
    assert not hasattr(record, "color_message")  # uvicorn's coloured copy would print the English
    other = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Something new %s", ("x",), None)
    assert lines.filter(other) and other.getMessage() == "Something new x"
    lt.translate_uvicorn()
    lt.translate_uvicorn()
    assert sum(isinstance(f, lt.UvicornLines) for f in logging.getLogger("uvicorn.error").filters) == 1
