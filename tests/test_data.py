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
    assert data.report.per_dataset["chat"] == {"read": 6, "malformed": 2}
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
    (lambda d: (d / "identity.json").write_text(json.dumps([{"instruction": "q"}])), "every one of the 1 example(s)"),
    (lambda d: (d / "identity.json").write_text(json.dumps([1, 2])), "example 0 is a int"),
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
