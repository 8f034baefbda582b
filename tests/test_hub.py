import pytest

from kit import hub
from kit.envvars import EnvSettings

from helpers import make_tiny_model


def test_local_directory(tmp_path):
    d = make_tiny_model(tmp_path / "m")
    assert hub.resolve_model(str(d)) == d.resolve()


@pytest.mark.parametrize("name, message", [
    ("./missing-model", "does not exist"),
    ("/nowhere/qwen", "does not exist"),
])
def test_missing_paths(name, message):
    with pytest.raises(hub.HubError, match=message):
        hub.resolve_model(name, env=EnvSettings.from_environ({}))


def test_directory_without_config(tmp_path):
    with pytest.raises(hub.HubError, match="has no config.json"):
        hub.resolve_model(str(tmp_path))


def test_hf_cached_snapshot_used_without_network(tmp_path):
    # The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}
    repo = tmp_path / "models--qwen--Tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit
    make_tiny_model(snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    got = hub.resolve_model("qwen/Tiny", cache_dir=str(tmp_path), env=EnvSettings.from_environ({"HF_HUB_OFFLINE": "1"}))
    assert got == snap


def test_offline_and_not_cached_says_what_to_do(tmp_path):
    with pytest.raises(hub.HubError, match="not in the Hugging Face cache and HF_HUB_OFFLINE=1"):
        hub.resolve_model("qwen/Qwen1.5-7B", cache_dir=str(tmp_path), env=EnvSettings.from_environ({"HF_HUB_OFFLINE": "1"}))


def test_modelscope_requested_without_modelscope(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "modelscope" else real(n, *a))
    with pytest.raises(hub.HubError, match="pip install 'kit\\[modelscope\\]'"):
        hub.resolve_model("qwen/Qwen1.5-7B", env=EnvSettings.from_environ({"USE_MODELSCOPE_HUB": "1"}))
