"""bench/gpu_train.py's arithmetic: the figures a GPU session reports rest on these (no GPU needed)."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("gpu_train", Path(__file__).resolve().parents[1] / "bench" / "gpu_train.py")
gpu_train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_train)


def test_the_steady_rate_spans_the_first_to_the_last_logged_step():
    stamped = [(0.0, "loading"), (5.0, " 33%|███ | 10/30"), (5.1, "{'loss': '8.3', 'epoch': '0.4'}"),
               (7.0, "{'loss': '8.2', 'epoch': '0.8'}"), (9.1, '{"loss": 8.1}'), (9.2, "{'train_runtime': '9'}")]
    steps, seconds = gpu_train.steady_rate(stamped)
    assert steps == 2 * gpu_train.LOGGING_STEPS
    assert seconds == pytest.approx(4.0)


@pytest.mark.parametrize("lines", [[], [(1.0, "{'loss': '8.3'}")], [(1.0, "{'loss': 1}"), (1.0, "{'loss': 2}")]])
def test_no_steady_rate_without_two_logged_steps_apart(lines):
    assert gpu_train.steady_rate(lines) is None


def test_the_7b_shape_counts_its_linear_layers_as_qwen1_5_7b_has_them():
    shape = dict(gpu_train.SHAPES["7b"])
    # Qwen1.5-7B: 32 layers of 4 x 4096^2 attention and 3 x 4096 x 11008 MLP weights, lm_head 151936 x 4096
    linear = 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 151936 * 4096
    without = gpu_train.flops_per_token(shape, trainable=0, seq=0, checkpointing=False)
    assert without == 4 * linear
    assert gpu_train.flops_per_token(shape, 0, 0, True) == 6 * linear
    assert gpu_train.flops_per_token(shape, 1000, 0, False) == 4 * linear + 6000
    # causal attention, forward and backward: 3 x 4 x layers x seq x hidden / 2
    assert gpu_train.flops_per_token(shape, 0, 1024, False) - without == 3 * 4 * 32 * 1024 * 4096 / 2


def test_a_card_missing_from_the_spec_table_gets_no_spec_mfu():
    names = {"NVIDIA H100 80GB HBM3": 989.0, "NVIDIA H100 PCIe": 756.0, "NVIDIA H200": 989.0, "NVIDIA L4": None}
    assert {name: gpu_train.spec_for(name) for name in names} == names
