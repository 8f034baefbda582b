"""Token-for-token parity with LLaMA-Factory 0.9.5's supervised encoding (its outputs are in shared/reference)."""

import json

import pytest

from kit import config
from kit.data import build_sft, get_template
from kit.model import load_tokenizer

from helpers import REFERENCE

GOLDEN = sorted((REFERENCE / "golden").glob("*.jsonl")) if REFERENCE.exists() else []

pytestmark = pytest.mark.skipif(not GOLDEN, reason=f"LLaMA-Factory reference outputs not found at {REFERENCE}")


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.stem)
def test_encoding_equals_llamafactory(golden):
    lines = golden.read_text(encoding="utf-8").splitlines()
    settings = json.loads(lines[0])["config"]
    expected = [json.loads(line) for line in lines[1:]]
    cfg = config.from_dict({**settings, "dataset_dir": str(REFERENCE / "data"), "model_name_or_path": str(REFERENCE / "tiny-qwen")})
    template = get_template(cfg.data.template)
    tokenizer = load_tokenizer(REFERENCE / "tiny-qwen", template)
    data = build_sft(cfg, tokenizer, template, split=False)
    assert len(data.all) == len(expected)
    for i, (got, want) in enumerate(zip(data.all, expected)):
        assert got["input_ids"] == want["input_ids"], f"{golden.name}: input_ids differ in example {i}"
        assert got["labels"] == want["labels"], f"{golden.name}: labels differ in example {i}"


def test_seed_run_split_sizes_match_llamafactory():
    # LLaMA-Factory ran 1473 steps = 3 epochs x ceil(981 / 2): 1090 examples, 109 held out with val_size 0.1.
    from kit.data import split_indices

    train, evals = split_indices(1090, 0.1, 42)
    assert (len(train), len(evals)) == (981, 109)
    assert 3 * -(-len(train) // 2) == json.loads((REFERENCE / "seed_run" / "trainer_log.jsonl").read_text().splitlines()[0])["total_steps"]
