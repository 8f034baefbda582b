import torch

from kit.data import get_template
from kit.model import load_tokenizer
from kit.run.recipe import make_collator

from helpers import make_tiny_model


def test_collator_pads_dynamically_and_masks_label_padding(tmp_path):
    tok = load_tokenizer(make_tiny_model(tmp_path / "m"), get_template("qwen"))
    rows = [{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 6, 7]},
            {"input_ids": list(range(10, 20)), "attention_mask": [1] * 10, "labels": list(range(10, 20))}]
    batch = make_collator(tok)(rows)
    assert batch["input_ids"].shape == (2, 16)  # longest is 10, padded to a multiple of 8
    assert batch["input_ids"][0, 3:].eq(tok.pad_token_id).all()
    assert batch["labels"][0].tolist() == [-100, 6, 7] + [-100] * 13
    assert batch["attention_mask"][0].tolist() == [1, 1, 1] + [0] * 13
    assert batch["labels"].dtype == torch.long
    # right padding: the real tokens come first
    assert batch["input_ids"][1, :10].tolist() == list(range(10, 20))
