"""Datasets off the happy path (issue 20): where file_name leads, what dataset_info.json holds, parser limits.

Each case here once read silently from elsewhere, hung, ran out of memory, trained on the wrong
text or ended in a traceback; now it is read and named, or refused with one message that says
which dataset, which file or key, and what to do.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
from pathlib import Path

import pytest

from kit import cli, config
from kit.data import DataError, build_sft, get_template, load_examples
from kit.model import load_tokenizer

from helpers import make_tiny_model, write_yaml

GOOD = {"instruction": "Who are you?", "input": "", "output": "I am Nova."}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def tokenizer(tok_dir):
    return load_tokenizer(tok_dir, get_template("qwen"))


@pytest.fixture()
def no_hang():
    """Fail a test that blocks (reading a FIFO, /dev/zero) instead of hanging the suite."""
    def stop(signum, frame):
        raise TimeoutError("blocked for 20 s: the file was opened or read when it should have been refused")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _dir(path: Path, entries: dict, files: dict | None = None) -> Path:
    """A dataset folder: dataset_info.json holding ``entries``, and ``files`` (name -> records or raw bytes)."""
    path.mkdir(parents=True, exist_ok=True)
    for name, records in (files or {}).items():
        raw = records if isinstance(records, bytes) else json.dumps(records, ensure_ascii=False).encode("utf-8")
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(raw)
    (path / "dataset_info.json").write_text(json.dumps(entries), encoding="utf-8")
    return path


def _cfg(data_dir: Path, **kw):
    return config.from_dict({"dataset": "mine", "dataset_dir": str(data_dir), "template": "qwen", **kw})


def _load(data_dir: Path):
    return load_examples(["mine"], data_dir)


# ---------------------------------------------------------------- 1. where file_name leads

def _outside_cases(tmp_path: Path):
    """(file_name, the real path it leads to) for each way out of the dataset folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.json").write_text(json.dumps([GOOD]), encoding="utf-8")
    d = tmp_path / "d"
    d.mkdir()
    (d / "link.json").symlink_to(elsewhere / "data.json")
    (d / "linked").symlink_to(elsewhere)
    real = (elsewhere / "data.json").resolve()
    return d, {"dotdot": ("../elsewhere/data.json", real), "absolute": (str(elsewhere / "data.json"), real),
               "symlink": ("link.json", real), "symlinked folder": ("linked/data.json", real), "folder link": ("linked", real)}


@pytest.mark.parametrize("way", ["dotdot", "absolute", "symlink", "symlinked folder", "folder link"])
def test_a_file_outside_the_dataset_folder_is_read_and_named(tmp_path, caplog, way):
    d, cases = _outside_cases(tmp_path)
    file_name, real = cases[way]
    _dir(d, {"mine": {"file_name": file_name}})
    with caplog.at_level(logging.INFO, logger="kit.run.plan"):
        examples, _report = _load(d)
    assert len(examples) == 1 and examples[0].response[0]["content"] == "I am Nova."  # still read, as LLaMA-Factory reads it
    lines = [r.getMessage() for r in caplog.records if r.name == "kit.run.plan"]
    assert len(lines) == 1, lines
    assert f"dataset 'mine': reading {real}, outside the dataset folder {d.resolve()}" in lines[0]


def test_a_file_inside_the_dataset_folder_is_read_without_a_word(tmp_path, caplog):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "sub/data.json"}}, {"sub/data.json": [GOOD]})
    (d / "also.json").symlink_to(d / "sub" / "data.json")  # a link that stays inside is inside
    _dir(d, {"mine": {"file_name": "also.json"}})
    with caplog.at_level(logging.INFO, logger="kit.run.plan"):
        examples, _report = _load(d)
    assert len(examples) == 1 and not [r for r in caplog.records if r.name == "kit.run.plan"]


def _special(tmp_path: Path, kind: str) -> tuple[str, str]:
    """(file_name, what the refusal calls it) for a path that is not a regular file."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "d" / "pipe.jsonl")
        return "pipe.jsonl", "is a named pipe (FIFO), not a regular file"
    if kind == "folder in a folder":
        (tmp_path / "d" / "folder" / "sub.json").mkdir(parents=True)
        (tmp_path / "d" / "folder" / "a.json").write_text(json.dumps([GOOD]), encoding="utf-8")
        return "folder", "sub.json is a folder, not a regular file"
    device = {"zero": "/dev/zero", "urandom": "/dev/urandom"}[kind]
    (tmp_path / "d" / f"{kind}.jsonl").symlink_to(device)
    return f"{kind}.jsonl", "is a character device, not a regular file"


@pytest.mark.parametrize("kind", ["fifo", "zero", "urandom", "folder in a folder"])
def test_what_is_not_a_regular_file_is_refused_before_it_is_opened(tmp_path, no_hang, kind):
    (tmp_path / "d").mkdir()
    file_name, said = _special(tmp_path, kind)
    d = _dir(tmp_path / "d", {"mine": {"file_name": file_name}})
    with pytest.raises(DataError, match="dataset 'mine': .*" + said.replace("(", r"\(").replace(")", r"\)")) as err:
        _load(d)
    assert str(d) in str(err.value)
    # kit train refuses it among the checks made before any model is resolved
    from kit.config import ConfigError
    from kit.run.plan import check_datasets

    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")):
        check_datasets(_cfg(d))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_named_by_an_absolute_file_name_is_refused(tmp_path, no_hang, device):
    d = _dir(tmp_path / "d", {"mine": {"file_name": device}})
    with pytest.raises(DataError, match=f"dataset 'mine': {device} is a character device, not a regular file"):
        _load(d)


def test_a_folder_reads_its_json_files_and_names_what_it_skips(tmp_path, caplog):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "many"}},
             {"many/b.jsonl": json.dumps(GOOD).encode(), "many/a.json": [GOOD, GOOD], "many/README.md": b"# notes"})
    with caplog.at_level(logging.INFO, logger="kit.run.plan"):
        examples, _report = _load(d)
    assert len(examples) == 3
    assert "dataset 'mine': folder " in caplog.text and "reading a.json, b.jsonl; skipping README.md" in caplog.text


def test_a_file_name_that_names_the_dataset_folder_itself_is_refused(tmp_path):
    for file_name in ("", ".", "./"):
        d = _dir(tmp_path / "d", {"mine": {"file_name": file_name}}, {"data.json": [GOOD]})
        with pytest.raises(DataError, match="dataset 'mine': .*"):
            _load(d)
    d = _dir(tmp_path / "d", {"mine": {"file_name": "."}})
    with pytest.raises(DataError, match=r"file_name '\.' in .* names the dataset folder itself"):
        _load(d)


def test_a_broken_symbolic_link_is_named_as_one(tmp_path):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "gone.json"}})
    (d / "gone.json").symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(DataError, match=r"gone.json is a symbolic link to .*nowhere.json, which does not exist"):
        _load(d)


# ---------------------------------------------------------------- 2. what dataset_info.json holds

def test_a_mapped_column_no_example_has_is_an_error_not_empty_prompts(tmp_path):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json", "columns": {"prompt": "question", "response": "output"}}},
             {"m.json": [GOOD, GOOD]})
    with pytest.raises(DataError, match=r"dataset 'mine': dataset_info.json maps prompt to column 'question', but no example "
                                        r"in .*m.json has it \(its columns: input, instruction, output\)"):
        _load(d)


def test_a_mapped_sharegpt_column_no_example_has_is_an_error(tmp_path):
    chat = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json", "formatting": "sharegpt",
                                       "columns": {"messages": "conversations", "system": "sys"}}}, {"m.json": [chat]})
    with pytest.raises(DataError, match=r"maps system to column 'sys', but no example .* \(its columns: conversations\)"):
        _load(d)


def test_openai_style_messages_without_tags_say_which_tags_to_add(tmp_path):
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    entry = {"file_name": "m.json", "formatting": "sharegpt", "columns": {"messages": "messages"}}
    d = _dir(tmp_path / "d", {"mine": entry}, {"m.json": [chat]})
    examples, _report = _load(d)
    assert '"tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user"' in examples[0].problem
    # With those tags, as LLaMA-Factory's docs give them, the same file reads.
    entry["tags"] = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                     "system_tag": "system"}
    examples, _report = _load(_dir(tmp_path / "d2", {"mine": entry}, {"m.json": [chat]}))
    assert examples[0].problem is None


def test_the_default_alpaca_columns_must_be_there_without_columns(tmp_path):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json"}}, {"m.json": [{"prompt": "q", "output": "a"}]})
    with pytest.raises(DataError, match=r"without 'columns' in dataset_info.json, alpaca data is read from column 'instruction'"):
        _load(d)
    # the input column may be left out, as many alpaca files do
    d = _dir(tmp_path / "e", {"mine": {"file_name": "m.json"}}, {"m.json": [{"instruction": "q", "output": "a"}]})
    assert len(_load(d)[0]) == 1


def test_columns_map_only_the_roles_they_name_as_in_llamafactory(tmp_path):
    # With "columns", LLaMA-Factory leaves the roles it does not name unset: the input column is not read.
    record = {"instruction": "Translate", "input": "SECRET", "output": "Bonjour"}
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json", "columns": {"prompt": "instruction", "response": "output"}}},
             {"m.json": [record]})
    examples, _report = _load(d)
    assert examples[0].prompt == [{"role": "user", "content": "Translate"}]


@pytest.mark.parametrize("entry, message", [
    ("m.json", r"dataset 'mine' is a str \('m.json'\); it must be an object such as"),
    ({"file_name": 5}, r"dataset 'mine': file_name is an int \(5\); it must be the name of a .json or .jsonl file"),
    ({"file_name": ["a.json"]}, r"dataset 'mine': file_name is a list"),
    ({"file_name": None}, r"dataset 'mine': file_name is a NoneType"),
    ({"file_name": "m.json", "formatting": 1}, r"dataset 'mine': formatting is an int \(1\); it must be alpaca or sharegpt"),
    ({"file_name": "m.json", "columns": ["instruction", "output"]}, r"dataset 'mine': columns is a list .*; it must be an object"),
    ({"file_name": "m.json", "columns": "instruction"}, r"dataset 'mine': columns is a str"),
    ({"file_name": "m.json", "columns": {"prompt": ["instruction"]}}, r"dataset 'mine': columns.prompt is a list \(\['instruction'\]\); it must be text"),
    ({"file_name": "m.json", "columns": {"response": 3}}, r"dataset 'mine': columns.response is an int"),
    ({"file_name": "m.json", "formatting": "sharegpt", "tags": ["role"]}, r"dataset 'mine': tags is a list"),
    ({"file_name": "m.json", "formatting": "sharegpt", "tags": {"role_tag": 1}}, r"dataset 'mine': tags.role_tag is an int"),
    ({"file_name": "m.json", "ranking": "false"}, r"dataset 'mine': ranking is a str \('false'\); it must be true or false"),
    ({"file_name": "m.json", "ranking": 0}, r"dataset 'mine': ranking is an int"),
    ({"file_name": "m.json", "columns": {"prompt": "instruction"}}, r"dataset 'mine': columns names no response column"),
    ({"file_name": "m.json", "formatting": "sharegpt", "columns": {"system": "system"}}, r"dataset 'mine': columns names no messages column"),
])
def test_a_wrong_type_in_dataset_info_is_one_message_naming_dataset_and_key(tmp_path, entry, message):
    d = _dir(tmp_path / "d", {"mine": entry}, {"m.json": [GOOD]})
    with pytest.raises(DataError, match=message):
        _load(d)


def test_a_wrong_type_reaches_the_person_as_one_line_without_a_traceback(tmp_path, tok_dir, capsys):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json", "columns": ["instruction", "output"]}}, {"m.json": [GOOD]})
    cfg = write_yaml(tmp_path / "c.yaml", {"model_name_or_path": str(tok_dir), "dataset": "mine", "dataset_dir": str(d),
                                           "template": "qwen"})
    assert cli.main(["preprocess", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error: ") and "dataset 'mine': columns is a list" in err


def test_null_columns_and_tags_mean_none_given(tmp_path):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json", "columns": None, "tags": None}}, {"m.json": [GOOD]})
    assert len(_load(d)[0]) == 1


# ---------------------------------------------------------------- 3. parser limits

def test_json_nested_too_deeply_names_the_file(tmp_path):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json"}}, {"m.json": b"[" * 100_000 + b"]" * 100_000})
    with pytest.raises(DataError, match=r"dataset 'mine': .*m.json nests lists or objects too deeply"):
        _load(d)


def test_a_jsonl_line_nested_too_deeply_names_the_line(tmp_path):
    lines = [json.dumps(GOOD), json.dumps(GOOD), '{"instruction": ' + "[" * 100_000 + "]" * 100_000 + "}"]
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.jsonl"}}, {"m.jsonl": "\n".join(lines).encode()})
    with pytest.raises(DataError, match=r"m.jsonl line 3 nests lists or objects too deeply"):
        _load(d)


def test_dataset_info_nested_too_deeply_is_a_message(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "dataset_info.json").write_text('{"mine": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(DataError, match=r"dataset_info.json nests lists or objects too deeply"):
        _load(d)


def test_a_number_too_long_to_convert_names_the_line(tmp_path):
    lines = [json.dumps(GOOD), '{"instruction": "q", "output": "a", "n": ' + "7" * 5000 + "}"]
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.jsonl"}}, {"m.jsonl": "\n".join(lines).encode()})
    with pytest.raises(DataError, match=r"m.jsonl line 2 cannot be read as JSON \(Exceeds the limit"):
        _load(d)


@pytest.mark.parametrize("line, kind", [("[1, 2]", "a list"), ('"text"', "a str"), ("3", "an int"), ("null", "a NoneType")])
def test_a_jsonl_line_that_is_not_an_object_names_file_and_line(tmp_path, line, kind):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.jsonl"}}, {"m.jsonl": f"{json.dumps(GOOD)}\n\n{line}\n".encode()})
    with pytest.raises(DataError, match=rf"dataset 'mine': .*m.jsonl line 3 is {kind}, not an object with columns"):
        _load(d)


def test_json_lines_split_at_newlines_only(tmp_path):
    # JSON allows U+2028, U+2029 and U+0085 raw inside a string; str.splitlines would cut such a line in two.
    records = [{**GOOD, "output": "one\u2028two"}, {**GOOD, "output": "three\u2029four\x85five"}]
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.jsonl"}},
             {"m.jsonl": "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()})
    examples, _report = _load(d)
    assert [e.response[0]["content"] for e in examples] == ["one\u2028two", "three\u2029four\x85five"]


def test_a_file_larger_than_the_memory_it_needs_is_refused_before_reading(tmp_path, monkeypatch):
    from kit.data import files

    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json"}}, {"m.json": [GOOD] * 100})
    size = (d / "m.json").stat().st_size
    monkeypatch.setattr(files, "available_memory", lambda: size)  # less than twice the file
    with pytest.raises(DataError, match=r"dataset 'mine': .*m.json is .* MiB; reading it needs at least .* of memory and .* is available"):
        _load(d)


def test_registry_that_is_not_utf8_names_the_line(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "dataset_info.json").write_bytes('{"mine": {"file_name": "数据.json"}}'.encode("gbk"))
    with pytest.raises(DataError, match=r"dataset_info.json is not UTF-8 text \(byte \d+, line 1"):
        _load(d)


def test_a_record_nested_near_the_parser_limit_is_filled_without_recursion_error(tmp_path):
    deep = "[" * 600 + "]" * 600
    d = _dir(tmp_path / "d", {"identity": {"file_name": "m.jsonl"}},
             {"m.jsonl": ('{"instruction": "Who?", "output": "I am {{name}}.", "extra": ' + deep + "}").encode()})
    examples, _report = load_examples(["identity"], d, fills={"name": "Nova"})
    assert examples[0].response[0]["content"] == "I am Nova."


def test_a_huge_value_in_a_malformed_example_is_shown_short(tmp_path, tokenizer):
    huge = ["x" * 1_000_000] * 3
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json", "columns": {"prompt": "instruction", "response": "output",
                                                                          "history": "history"}}},
             {"m.json": [{**GOOD, "history": []}, {**GOOD, "history": [huge]}]})
    data = build_sft(_cfg(d), tokenizer, get_template("qwen"), split=False)
    assert len(data.report.dropped) == 1 and len(data.report.dropped[0]) < 300, data.report.dropped[0][:400]


# ---------------------------------------------------------------- 3. one huge example

def _stress_texts(seed: int, count: int) -> list[str]:
    """Texts built from what tokenizers treat specially next to line breaks: runs of spaces and newlines,
    \\r\\n, punctuation runs, digits, CJK, combining marks, Hangul jamo, emoji, contractions, NBSP, U+2028,
    special-token text."""
    import random

    rng = random.Random(seed)
    pieces = ["word", "Word", "'s", "'ll", " ", "  ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "!", "!!!", "...", "?\n",
              "1", "2024", "3.14", "你好", "。", "，", "e\u0301", "\u0301", "\u1100\u1161", "\u1161", "😀", "\xa0", "\u2028",
              "<|im_end|>", "<|im_start|>", "-", "—", "(", ")", "\u3000", "x", "é", "Ω", "\u212b", "ﬁ", "#", "＃"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(5, 120))) for _ in range(count)]


@pytest.mark.parametrize("which", ["qwen2 expression + NFC (kit/tiny_qwen)", "GPT-2 byte-level (tests' tiny model)"])
def test_the_tokens_before_a_cut_boundary_are_those_of_the_whole_text(tok_dir, which):
    # kit.data.cut's exactness argument, checked: at every boundary it may cut at, the encoding splits in two.
    from kit import tiny
    from kit.data.cut import _is_splittable, boundary

    tok = load_tokenizer(tiny.path() if which.startswith("qwen2") else tok_dir, get_template("qwen"))
    assert _is_splittable(tok)
    encode = lambda t: tok.encode(t, add_special_tokens=False)  # noqa: E731
    checked = 0
    for text in _stress_texts(seed=20, count=400):
        b = boundary(text, 0, len(text))
        while b is not None:
            assert encode(text) == encode(text[:b]) + encode(text[b:]), (text, b)
            checked += 1
            b = boundary(text, b + 1, len(text))
    assert checked > 200


def test_tokenizers_the_argument_does_not_cover_are_never_cut(tok_dir):
    from kit.data.cut import Encoder, TooLong, _is_splittable

    tok = load_tokenizer(tok_dir, get_template("qwen"))
    tok.add_tokens(["\n###"])  # an added token holding a line break could span the cut
    assert not _is_splittable(tok)
    encoder = Encoder(tok, cutoff_len=16, cut_above=0)
    text = "line of words\n" * 1000
    assert encoder(text) == tok.encode(text, add_special_tokens=False)  # tokenized whole, as before
    import kit.data.cut as cut

    old, cut.WHOLE_LIMIT = cut.WHOLE_LIMIT, 5000
    try:
        with pytest.raises(TooLong, match="a text of 14000 characters, too long to tokenize whole"):
            encoder(text)
    finally:
        cut.WHOLE_LIMIT = old


class _Spy:
    """Wraps a tokenizer and remembers the longest text it was asked to encode."""

    def __init__(self, tok):
        self.__dict__["tok"], self.__dict__["longest"] = tok, 0

    def encode(self, text, **kw):
        self.__dict__["longest"] = max(self.longest, len(text))
        return self.tok.encode(text, **kw)

    def __getattr__(self, name):
        return getattr(self.tok, name)

    def __len__(self):
        return len(self.tok)


def _huge_dataset(path: Path, prompt: str, output: str) -> Path:
    return _dir(path, {"mine": {"file_name": "m.jsonl"}},
                {"m.jsonl": "\n".join(json.dumps(r, ensure_ascii=False) for r in [GOOD, {"instruction": prompt, "output": output}, GOOD]).encode()})


def test_a_huge_example_is_not_tokenized_whole_and_encodes_as_llamafactory_would(tmp_path, tokenizer, monkeypatch):
    # 24 MB in one answer: tokenizing it whole took about 5.5 GB and half a minute; cutoff_len keeps 1024 tokens.
    line = "The answer goes on, line after line, with numbers 12345 and 中文 too.\n"
    huge = line * (24_000_000 // len(line))
    spy = _Spy(tokenizer)
    data = build_sft(_cfg(_huge_dataset(tmp_path / "d", "Tell me everything.", huge), cutoff_len=1024), spy,
                     get_template("qwen"), split=False)
    assert spy.longest < 100_000, f"a text of {spy.longest} characters was tokenized"
    assert [len(r["input_ids"]) for r in data.all][1] == 1024 and data.report.per_dataset["mine"]["truncated"] == 1
    # LLaMA-Factory keeps the short prompt whole and the answer's first tokens: the same for any answer long enough,
    # so the answer cut to 400 000 characters and tokenized whole (no cutting at all) must give the same rows.
    import kit.data.sft as sft
    from kit.data.cut import Encoder

    monkeypatch.setattr(sft, "Encoder", lambda tok, cutoff_len: Encoder(tok, cutoff_len, cut_above=10**9))
    whole = build_sft(_cfg(_huge_dataset(tmp_path / "e", "Tell me everything.", huge[:400_000]), cutoff_len=1024), tokenizer,
                      get_template("qwen"), split=False)
    assert data.all == whole.all


@pytest.mark.parametrize("cutoff_len, mask_history", [(64, False), (300, False), (64, True)])
def test_a_long_prompt_and_a_long_answer_share_cutoff_len_by_their_whole_lengths(tmp_path, tokenizer, monkeypatch,
                                                                                 cutoff_len, mask_history):
    # Both long: LLaMA-Factory splits cutoff_len in proportion to the whole lengths, so the cut parts are counted.
    prompt = "Question line with words and 123 digits!\n" * 4000 + "end"
    answer = "答案：这是一个很长的回答。\n" * 20000
    import kit.data.sft as sft
    from kit.data.cut import Encoder

    spy = _Spy(tokenizer)
    cut = build_sft(_cfg(_huge_dataset(tmp_path / "d", prompt, answer), cutoff_len=cutoff_len, mask_history=mask_history),
                    spy, get_template("qwen"), split=False)
    assert spy.longest < 250_000  # counted in pieces
    monkeypatch.setattr(sft, "Encoder", lambda tok, cutoff_len: Encoder(tok, cutoff_len, cut_above=10**9))
    whole = build_sft(_cfg(_huge_dataset(tmp_path / "e", prompt, answer), cutoff_len=cutoff_len, mask_history=mask_history),
                      tokenizer, get_template("qwen"), split=False)
    assert cut.all == whole.all


def test_a_huge_text_with_no_place_to_cut_is_dropped_with_the_reason(tmp_path, tokenizer, monkeypatch, caplog):
    import kit.data.cut as cut

    monkeypatch.setattr(cut, "WHOLE_LIMIT", 100_000)  # the same rule as 4 million characters, quicker
    d = _huge_dataset(tmp_path / "d", "Say a.", "a" * 150_000)
    with caplog.at_level(logging.WARNING, logger="kit.data"):
        data = build_sft(_cfg(d, cutoff_len=64), tokenizer, get_template("qwen"), split=False)
    assert len(data.all) == 2 and data.report.per_dataset["mine"]["malformed"] == 1
    assert re.match(r"mine\[1\]: a text of 1500\d\d characters, too long to tokenize whole", data.report.dropped[0])
    assert "mine[1]: a text of" in caplog.text


def test_kit_preprocess_shows_the_outside_line(tmp_path, tok_dir, caplog, capsys):
    d, cases = _outside_cases(tmp_path)
    _dir(d, {"mine": {"file_name": cases["symlink"][0]}})
    cfg = write_yaml(tmp_path / "c.yaml", {"model_name_or_path": str(tok_dir), "dataset": "mine", "dataset_dir": str(d),
                                           "template": "qwen"})
    with caplog.at_level(logging.INFO):
        assert cli.main(["preprocess", str(cfg), "--preview", "0"]) == 0
    assert [r.levelname for r in caplog.records if "outside the dataset folder" in r.getMessage()] == ["WARNING"]


def test_refusals_in_chinese(tmp_path, no_hang):
    from kit import i18n

    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "pipe.jsonl")
    d = _dir(tmp_path / "d", {"mine": {"file_name": "pipe.jsonl"}, "two": {"file_name": "m.json", "ranking": "false"}})
    i18n.set_language("zh")
    try:
        with pytest.raises(DataError, match=r"数据集 'mine'：.*pipe.jsonl 是一个命名管道（FIFO），不是普通文件"):
            _load(d)
        with pytest.raises(DataError, match=r"数据集 'two'：ranking 是 str 类型（'false'）；它必须是：true 或 false（不加引号）"):
            load_examples(["two"], d)
    finally:
        i18n.set_language(None)


@pytest.mark.parametrize("content", [[], b""])
def test_a_dataset_with_no_examples_says_so_and_where_to_add_them(tmp_path, tokenizer, content):
    d = _dir(tmp_path / "d", {"mine": {"file_name": "m.json"}}, {"m.json": content})
    with pytest.raises(DataError) as exc:
        build_sft(_cfg(d), tokenizer, get_template("qwen"))
    assert "mine holds no examples (its files are empty)" in str(exc.value) and "malformed" not in str(exc.value)
