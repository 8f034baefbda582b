import json
import logging

import pytest

from kit import config
from kit.data import DataError, build_sft, encode_supervised, get_template, infer_seqlen, split_indices
from kit.data.loader import Example
from kit.data.template import TemplateError
from kit.model import load_tokenizer

from helpers import make_dataset_dir, make_tiny_model


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def tokenizer(tok_dir):
    return load_tokenizer(tok_dir, get_template("qwen"))


def _cfg(data_dir, **kw):
    return config.from_dict({"dataset": "identity", "dataset_dir": str(data_dir), "template": "qwen", **kw})


def test_infer_seqlen_rule():
    assert infer_seqlen(10, 5, 100) == (10, 5)  # fits
    assert infer_seqlen(300, 20, 100) == (80, 20)  # short response kept, prompt cut
    assert infer_seqlen(20, 300, 100) == (20, 80)  # short prompt kept, response cut
    assert infer_seqlen(300, 100, 100) == (75, 25)  # both cut in proportion


def test_qwen_template_renders_chatml_with_default_system(tokenizer):
    t = get_template("qwen")
    ids = t.encode_prompt(tokenizer, [{"role": "user", "content": "hi"}])
    text = tokenizer.decode(ids)
    assert text == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert t.stop_token_ids(tokenizer) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_unknown_template_suggests():
    with pytest.raises(TemplateError, match="'qwne' is not known; did you mean qwen"):
        get_template("qwne")


def test_labels_mask_prompt_and_train_on_prompt(tmp_path, tokenizer):
    t = get_template("qwen")
    ex = Example("x", 0, [{"role": "user", "content": "Who are you?"}], [{"role": "assistant", "content": "I am Nova."}])
    ids, labels = encode_supervised(t, tokenizer, ex, 1024)
    trained = [i for i, l in zip(ids, labels) if l != -100]
    assert tokenizer.decode(trained) == "I am Nova.<|im_end|>\n"
    ids2, labels2 = encode_supervised(t, tokenizer, ex, 1024, train_on_prompt=True)
    assert ids2 == ids and labels2 == ids


def test_mask_history_trains_last_turn_only(tmp_path, tokenizer):
    t = get_template("qwen")
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "first"},
            {"role": "user", "content": "b"}, {"role": "assistant", "content": "second"}]
    ex = Example("x", 0, msgs[:-1], msgs[-1:])
    _, labels = encode_supervised(t, tokenizer, ex, 1024, mask_history=True)
    assert tokenizer.decode([l for l in labels if l != -100]) == "second<|im_end|>\n"
    _, labels = encode_supervised(t, tokenizer, ex, 1024)
    assert tokenizer.decode([l for l in labels if l != -100]) == "first<|im_end|>\nsecond<|im_end|>\n"


def test_cutoff_len_truncates(tmp_path, tokenizer):
    data = build_sft(_cfg(make_dataset_dir(tmp_path), cutoff_len=16), tokenizer, get_template("qwen"))
    assert max(len(r["input_ids"]) for r in data.all) == 16


def test_sharegpt_jsonl_malformed_dropped_and_counted(tmp_path, tokenizer, caplog):
    d = make_dataset_dir(tmp_path, copies=2)
    with caplog.at_level(logging.WARNING, logger="kit.data"):
        data = build_sft(_cfg(d, dataset="chat"), tokenizer, get_template("qwen"), split=False)
    assert len(data.all) == 4  # 6 read, 2 left without an answer
    assert data.report.per_dataset["chat"] == {"read": 6, "malformed": 2, "truncated": 0, "no_trained_tokens": 0}
    assert "dropped 2 malformed example(s) of 6" in caplog.text
    # the system column is used
    assert "You are a helpful assistant." in tokenizer.decode(data.all[0]["input_ids"])


def test_max_samples_per_dataset_and_order(tmp_path, tokenizer):
    d = make_dataset_dir(tmp_path)
    data = build_sft(_cfg(d, dataset="identity,chat", max_samples=3), tokenizer, get_template("qwen"), split=False)
    assert [(s.dataset, s.index) for s in data.sources] == [("identity", 0), ("identity", 1), ("identity", 2), ("chat", 0), ("chat", 1)]


def test_identity_placeholders_filled_or_left(tmp_path, tokenizer):
    d = make_dataset_dir(tmp_path)
    t = get_template("qwen")
    filled = build_sft(_cfg(d, identity_name="Nova", identity_author="Acme"), tokenizer, t, split=False)
    text = tokenizer.decode(filled.all[0]["input_ids"])
    assert "I am Nova, an assistant made by Acme." in text
    left = build_sft(_cfg(d), tokenizer, t, split=False)
    assert "{{name}}" in tokenizer.decode(left.all[0]["input_ids"])


def test_val_size_split(tmp_path, tokenizer):
    d = make_dataset_dir(tmp_path, copies=5)  # 30 examples
    data = build_sft(_cfg(d, val_size=0.1), tokenizer, get_template("qwen"))
    assert (len(data.train), len(data.eval)) == (27, 3)
    assert sorted(map(str, data.train + data.eval)) == sorted(map(str, data.all))
    with pytest.raises(DataError, match="leaves no training data"):
        build_sft(_cfg(d, val_size=30), tokenizer, get_template("qwen"))


def test_split_matches_datasets_train_test_split():
    train, test = split_indices(10, 0.25, 42)
    # datasets: n_test = ceil(0.25 * 10) = 3 from a numpy default_rng(42) permutation
    import numpy as np

    perm = np.random.default_rng(42).permutation(10).tolist()
    assert test == perm[:3] and train == perm[3:]


@pytest.mark.parametrize("setup, message", [
    (lambda d: (d / "identity.json").unlink(), "does not exist"),
    (lambda d: (d / "identity.json").write_text("[{oops"), "is not valid JSON"),
    (lambda d: (d / "identity.json").write_text(json.dumps([{"question": "q", "answer": "a"}])), "none of the mapped alpaca columns"),
    # no example has the answer column: LLaMA-Factory raises, and so does the kit (it names the column)
    (lambda d: (d / "identity.json").write_text(json.dumps([{"instruction": "q"}])), "read from column 'output' (for response)"),
    (lambda d: (d / "identity.json").write_text(json.dumps([{"instruction": "q", "output": 5}])), "every one of the 1 example(s)"),
    (lambda d: (d / "identity.json").write_text(json.dumps([1, 2])), "identity.json example 0 is an int, not an object"),
])
def test_bad_dataset_files(tmp_path, tokenizer, setup, message):
    d = make_dataset_dir(tmp_path)
    setup(d)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_sft(_cfg(d), tokenizer, get_template("qwen"))


def test_unknown_dataset_suggests(tmp_path, tokenizer):
    d = make_dataset_dir(tmp_path)
    with pytest.raises(DataError, match="'identiy' is not in .*did you mean identity"):
        build_sft(_cfg(d, dataset="identiy"), tokenizer, get_template("qwen"))


def test_default_dataset_dir_is_the_kits_demo_data():
    from kit.data.loader import DEMO_DIR, resolve_dataset_dir

    assert resolve_dataset_dir(None) == DEMO_DIR


# ---------------------------------------------------------------- what a person's data file can hold

def _one_dataset(tmp_path, records, name="mine.json", **entry):
    """A dataset_dir with one dataset 'mine' made of ``records`` (a list, or raw bytes for the file)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    raw = records if isinstance(records, bytes) else json.dumps(records, ensure_ascii=False).encode("utf-8")
    (tmp_path / name).write_bytes(raw)
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": name, **entry}}), encoding="utf-8")
    return tmp_path


GOOD = {"instruction": "Who are you?", "input": "", "output": "I am Nova."}


@pytest.mark.parametrize("bad, problem", [
    ({"system": 5}, "column 'system' is an int, expected text"),
    ({"system": ["be brief"]}, "column 'system' is a list, expected text"),
    ({"instruction": {"text": "hi"}}, "column 'instruction' is a dict, expected text"),
    ({"input": 2.5}, "column 'input' is a float, expected text"),
    ({"output": ["a", "b"]}, "column 'output' is a list, expected text"),
    ({"history": "earlier"}, "column 'history' is a str, expected a list of [prompt, response] pairs"),
    ({"history": [["q", 7]]}, "column 'history' entry 0: 7 is an int, expected text"),
])
def test_alpaca_column_that_is_not_text_is_a_malformed_example(tmp_path, tokenizer, caplog, bad, problem):
    # every mapped column is in the data (null where unused): a mapped column no example has is an error
    good = {**GOOD, "system": None, "history": None}
    d = _one_dataset(tmp_path, [good, {**good, **bad}, good], columns={
        "prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"})
    with caplog.at_level(logging.WARNING, logger="kit.data"):
        data = build_sft(_cfg(d, dataset="mine"), tokenizer, get_template("qwen"), split=False)
    assert data.report.dropped == [f"mine[1]: {problem}"]
    assert [s.index for s in data.sources] == [0, 2] and data.report.per_dataset["mine"]["malformed"] == 1
    assert f"mine[1]: {problem}" in caplog.text


def _chat(*messages, **columns):
    return {"conversations": [{"from": r, "value": v} for r, v in messages], **columns}


@pytest.mark.parametrize("bad, problem", [
    (_chat(("human", "hi"), ("gpt", 42)), "column 'conversations' message 1 'value' is an int, expected text"),
    (_chat(("human", ["hi"]), ("gpt", "hello")), "column 'conversations' message 0 'value' is a list, expected text"),
    ({"conversations": [{"from": ["human"], "value": "hi"}, {"from": "gpt", "value": "hello"}]},
     "column 'conversations' message 0 'from' is a list, expected text"),
    (_chat(("system", {"be": "brief"}), ("human", "hi"), ("gpt", "hello")),
     "column 'conversations' message 0 'value' is a dict, expected text"),
    (_chat(("human", "hi"), ("gpt", "hello"), system=3), "column 'system' is an int, expected text"),
    (_chat(("human", "hi"), ("gpt", "hello"), tools=[{"name": "f"}]), "column 'tools' is a list, expected text"),
])
def test_sharegpt_value_that_is_not_text_is_a_malformed_example(tmp_path, tokenizer, bad, problem):
    good = _chat(("human", "hi"), ("gpt", "hello"), system=None, tools=None)
    d = _one_dataset(tmp_path, [good, bad], formatting="sharegpt",
                     columns={"messages": "conversations", "system": "system", "tools": "tools"})
    data = build_sft(_cfg(d, dataset="mine"), tokenizer, get_template("qwen"), split=False)
    assert data.report.dropped == [f"mine[1]: {problem}"] and len(data.all) == 1


def test_only_examples_that_are_not_text_is_a_data_error_not_a_traceback(tmp_path, tokenizer):
    d = _one_dataset(tmp_path, [{**GOOD, "system": 1}], columns={
        "prompt": "instruction", "query": "input", "response": "output", "system": "system"})
    with pytest.raises(DataError, match=r"every one of the 1 example\(s\) in mine is malformed \(first: mine\[0\]: column 'system' is an int"):
        build_sft(_cfg(d, dataset="mine"), tokenizer, get_template("qwen"))


@pytest.mark.parametrize("name, raw", [
    ("mine.json", b"\xef\xbb\xbf" + json.dumps([GOOD, GOOD]).encode()),
    ("mine.jsonl", b"\xef\xbb\xbf" + "\n".join(json.dumps(GOOD) for _ in range(2)).encode()),
])
def test_dataset_file_with_a_byte_order_mark_is_read(tmp_path, tokenizer, name, raw):
    d = _one_dataset(tmp_path, raw, name=name)
    info = d / "dataset_info.json"
    info.write_bytes(b"\xef\xbb\xbf" + info.read_bytes())  # Windows Notepad's "UTF-8 with BOM"
    data = build_sft(_cfg(d, dataset="mine"), tokenizer, get_template("qwen"), split=False)
    assert len(data.all) == 2
    assert tokenizer.decode(data.all[0]["input_ids"]).startswith("<|im_start|>system\n")


@pytest.mark.parametrize("raw, message", [
    ("[{\"instruction\": \"你是谁\", \"output\": \"我是\"}]".encode("gbk"), r"mine.json is not UTF-8 text \(byte 18, line 1"),
    (json.dumps([GOOD]).encode("utf-16"), r"mine.json is UTF-16 text, not UTF-8"),
])
def test_dataset_file_that_is_not_utf8_names_the_file(tmp_path, tokenizer, raw, message):
    d = _one_dataset(tmp_path, raw)
    with pytest.raises(DataError, match=r"dataset 'mine': .*" + message + ".*save it as UTF-8"):
        build_sft(_cfg(d, dataset="mine"), tokenizer, get_template("qwen"))


# ---------------------------------------------------------------- cutoff_len too small for the data

LONG_PROMPT = "What is LoRA? LoRA learns a small low-rank update of selected weight matrices. " * 500
LONG_ANSWER = "LoRA learns a small low-rank update of selected weight matrices. " * 20


def test_examples_left_without_a_trained_token_are_counted_and_dropped(tmp_path, tokenizer, caplog):
    records = [GOOD,  # fits in 64 tokens
               {"instruction": LONG_PROMPT, "input": "", "output": "Red, green and blue. " * 6},  # response cut away
               {"instruction": "Explain LoRA.", "input": "", "output": LONG_ANSWER}]  # truncated, still trained
    d = _one_dataset(tmp_path, records)
    with caplog.at_level(logging.WARNING, logger="kit.data"):
        data = build_sft(_cfg(d, dataset="mine", cutoff_len=64), tokenizer, get_template("qwen"), split=False)
    assert data.report.per_dataset["mine"] == {"read": 3, "malformed": 0, "truncated": 2, "no_trained_tokens": 1}
    assert [s.index for s in data.sources] == [0, 2]
    assert all(any(l != -100 for l in r["labels"]) for r in data.all)
    stats = data.stats()
    assert (stats["truncated"], stats["no_trained_tokens"], stats["malformed"], stats["dropped"]) == (2, 1, 0, 1)
    assert data.report.dropped[0].startswith("mine[1]: no trained token within cutoff_len 64 (prompt of ")
    assert "dropped 1 example(s) of 3 that keep no trained token within cutoff_len 64" in caplog.text
    assert "malformed" not in caplog.text


def test_cutoff_len_that_leaves_nothing_to_train_is_a_data_error(tmp_path, tokenizer):
    d = make_dataset_dir(tmp_path)
    with pytest.raises(DataError) as err:
        build_sft(_cfg(d, cutoff_len=2), tokenizer, get_template("qwen"))
    msg = str(err.value)
    assert msg.startswith("cutoff_len: 2 leaves no trained token in any of the 24 example(s) of identity")
    # the shortest prompt: the qwen system prompt and the shortest instruction, as the template renders them
    t = get_template("qwen")
    prompt_lengths = [len(t.encode_prompt(tokenizer, [{"role": "user", "content": r["instruction"] + ("\n" + r["input"] if r["input"] else "")}]))
                      for r in json.loads((d / "identity.json").read_text(encoding="utf-8"))]
    assert f"the shortest such prompt has {min(prompt_lengths)} tokens" in msg


def test_problems_warnings_and_errors_in_chinese(tmp_path, tokenizer, caplog):
    from kit import i18n

    d = _one_dataset(tmp_path / "mine", [GOOD, {**GOOD, "output": ["a", "b"]}, GOOD], columns={
        "prompt": "instruction", "query": "input", "response": "output"})
    i18n.set_language("zh")
    try:
        with caplog.at_level(logging.WARNING, logger="kit.data"):
            data = build_sft(_cfg(d, dataset="mine"), tokenizer, get_template("qwen"), split=False)
        assert data.report.dropped == ["mine[1]: 列 'output' 是 list 类型，应为文本"]
        assert "3 条样本中丢弃了 1 条格式有误的样本：mine[1]" in caplog.text
        with pytest.raises(DataError, match="中没有 'identiy'；是不是想用 identity？"):
            build_sft(_cfg(make_dataset_dir(tmp_path / "two"), dataset="identiy"), tokenizer, get_template("qwen"))
    finally:
        i18n.set_language(None)
    # English again once the language is reset
    with pytest.raises(DataError, match="'identiy' is not in .*did you mean identity"):
        build_sft(_cfg(make_dataset_dir(tmp_path / "two"), dataset="identiy"), tokenizer, get_template("qwen"))
