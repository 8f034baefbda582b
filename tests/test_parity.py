"""Token-for-token parity with LLaMA-Factory 0.9.5's supervised encoding (its outputs are in shared/reference)."""

import json

import pytest

from kit import config
from kit.data import build_sft, get_template
from kit.model import load_tokenizer

from helpers import REFERENCE

# golden/: the qwen and default templates; golden-qwen3/: qwen3 and qwen3_nothink, with thinking on and off.
GOLDEN_DIRS = ("golden", "golden-qwen3")
GOLDEN = [p for d in GOLDEN_DIRS for p in sorted((REFERENCE / d).glob("*.jsonl"))] if REFERENCE.exists() else []

pytestmark = pytest.mark.skipif(not GOLDEN, reason=f"LLaMA-Factory reference outputs not found at {REFERENCE}")


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.stem}")
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


@pytest.mark.skipif(not (REFERENCE / "golden-qwen3").is_dir(), reason=f"{REFERENCE / 'golden-qwen3'} not found")
def test_qwen3_golden_sets_are_all_there():
    # The five cases LLaMA-Factory encoded: a missing file must fail here, not shrink the parametrised list.
    names = {p.stem for p in (REFERENCE / "golden-qwen3").glob("*.jsonl")}
    assert names >= {"qwen3_seed_1024", "qwen3_nothink_seed_1024", "qwen3_multiturn", "qwen3_multiturn_no_thinking",
                     "qwen3_nothink_multiturn_mask_history"}


def test_seed_run_split_sizes_match_llamafactory():
    # LLaMA-Factory ran 1473 steps = 3 epochs x ceil(981 / 2): 1090 examples, 109 held out with val_size 0.1.
    from kit.data import split_indices

    train, evals = split_indices(1090, 0.1, 42)
    assert (len(train), len(evals)) == (981, 109)
    assert 3 * -(-len(train) // 2) == json.loads((REFERENCE / "seed_run" / "trainer_log.jsonl").read_text().splitlines()[0])["total_steps"]
