import json

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


# ---------------------------------------------------------------- cache look-up and completeness
# Fake Hugging Face cache trees: the files are placeholders; the hub module only looks at which exist.

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
MODEL_FILES = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
OFFLINE = EnvSettings.from_environ({"HF_HUB_OFFLINE": "1"})


def _files(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_text("{}" if n.endswith(".json") else "x")
    return folder


def _hf_cache(cache, repo_id, names, listed=None):
    """A snapshot of ``repo_id`` in the layout huggingface_hub writes, optionally with its cached file list."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = _files(repo / "snapshots" / COMMIT, names)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    if listed is not None:  # what snapshot_download records of the repository (trees/<commit>.json)
        (repo / "trees").mkdir()
        (repo / "trees" / f"{COMMIT}.json").write_text(json.dumps(
            {"format_version": 1, "files": {n: {"size": 1, "blob_id": "0" * 40} for n in listed}}))
    return snap


def test_fully_cached_model_is_found_offline_although_the_repo_has_files_never_downloaded(tmp_path):
    # The download takes only WEIGHT_PATTERNS; the repository also holds a README and .gitattributes.
    snap = _hf_cache(tmp_path, "org/full", MODEL_FILES, listed=MODEL_FILES + ["README.md", ".gitattributes"])
    assert hub.resolve_model("org/full", cache_dir=str(tmp_path), env=OFFLINE) == snap


def test_config_only_snapshot_is_not_taken_for_a_model(tmp_path):
    # What `kit estimate` leaves in the cache: config.json alone.
    snap = _hf_cache(tmp_path, "org/big", ["config.json"], listed=MODEL_FILES)
    assert hub.resolve_model("org/big", cache_dir=str(tmp_path), env=OFFLINE, config_only=True) == snap
    with pytest.raises(hub.HubError) as err:
        hub.resolve_model("org/big", cache_dir=str(tmp_path), env=OFFLINE)
    msg = str(err.value)
    assert "'org/big'" in msg and "is incomplete" in msg and str(snap) in msg
    assert "weight files (*.safetensors or *.bin)" in msg and "tokenizer files" in msg
    assert "HF_HUB_OFFLINE" in msg and "give its folder" in msg


def test_config_only_snapshot_without_a_cached_file_list(tmp_path):
    # Older huggingface_hub versions keep no trees/ listing: the snapshot folder is returned as it is.
    _hf_cache(tmp_path, "org/big", ["config.json"])
    with pytest.raises(hub.HubError, match="is incomplete: it has no weight files"):
        hub.resolve_model("org/big", cache_dir=str(tmp_path), env=OFFLINE)


def test_snapshot_missing_a_file_only_the_hub_listing_knows(tmp_path):
    # Our own check passes (weights, config, tokenizer), but the download was interrupted before tokenizer_config.json.
    names = ["config.json", "model.safetensors", "tokenizer.json"]
    _hf_cache(tmp_path, "org/cut", names, listed=names + ["tokenizer_config.json"])
    with pytest.raises(hub.HubError, match=r"incomplete: it has no tokenizer_config.json \(listed by the repository"):
        hub.resolve_model("org/cut", cache_dir=str(tmp_path), env=OFFLINE)


def test_sharded_weights_need_every_shard_the_index_names(tmp_path):
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00003.safetensors", "b": "model-00002-of-00003.safetensors",
                                            "c": "model-00003-of-00003.safetensors"}}
    snap = _hf_cache(tmp_path, "org/sharded", ["config.json", "tokenizer.json", "model-00001-of-00003.safetensors"])
    (snap / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(hub.HubError, match=r"2 of the 3 weight shards model.safetensors.index.json names "
                                           r"\(model-00002-of-00003.safetensors, model-00003-of-00003.safetensors\)"):
        hub.resolve_model("org/sharded", cache_dir=str(tmp_path), env=OFFLINE)
    _files(snap, ["model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"])
    assert hub.resolve_model("org/sharded", cache_dir=str(tmp_path), env=OFFLINE) == snap


@pytest.mark.parametrize("tokenizer_files", [["tokenizer.json"], ["tokenizer.model"], ["vocab.json", "merges.txt"]])
def test_tokenizer_file_variants(tmp_path, tokenizer_files):
    d = _files(tmp_path / "m", ["config.json", "pytorch_model.bin", *tokenizer_files])
    assert hub.missing_files(d) == []


def test_vocab_without_merges_is_not_a_tokenizer(tmp_path):
    d = _files(tmp_path / "m", ["config.json", "model.safetensors", "vocab.json"])
    assert hub.missing_files(d) == ["tokenizer files (tokenizer.json, or tokenizer.model, or vocab.json + merges.txt)"]


def test_local_folder_without_weights_is_refused_before_any_work(tmp_path):
    d = _files(tmp_path / "m", ["config.json", "tokenizer.json"])
    with pytest.raises(hub.HubError, match=r"the folder '.*/m' is not a complete model: it has no weight files \(\*.safetensors or \*.bin\)"):
        hub.resolve_model(str(d))
    assert hub.resolve_model(str(d), config_only=True) == d.resolve()  # enough for kit estimate


def test_local_folder_with_a_broken_shard_index(tmp_path):
    d = _files(tmp_path / "m", ["config.json", "tokenizer.json", "model-00001-of-00002.safetensors"])
    (d / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(hub.HubError, match="a readable model.safetensors.index.json"):
        hub.resolve_model(str(d))


def test_a_cache_error_that_is_not_a_miss_is_reported_not_swallowed(tmp_path):
    snap = _hf_cache(tmp_path, "org/odd", MODEL_FILES)
    ref = snap.parents[1] / "refs" / "main"
    ref.unlink()
    ref.mkdir()  # refs/main a folder: reading it fails, which is not "not cached"
    with pytest.raises(hub.HubError, match=r"looking up 'org/odd' in the Hugging Face cache .* failed \(IsADirectoryError"):
        hub.resolve_model("org/odd", cache_dir=str(tmp_path), env=OFFLINE)


class FakeSnapshotDownload:
    """Stands in for a hub's snapshot_download: records calls, answers the cache look-up, 'downloads' into a folder."""

    def __init__(self, cached=None, cache_error=None, download_to=None, download_files=MODEL_FILES):
        self.calls, self.cached, self.cache_error = [], cached, cache_error
        self.download_to, self.download_files = download_to, download_files

    def __call__(self, repo_id, revision=None, cache_dir=None, local_files_only=False, allow_patterns=None, **kw):
        self.calls.append({"local_files_only": local_files_only, "allow_patterns": allow_patterns})
        if local_files_only:
            if self.cache_error:
                raise self.cache_error
            return str(self.cached)
        return str(_files(self.download_to, self.download_files))


def test_online_lookup_uses_the_download_patterns_and_completes_an_incomplete_snapshot(tmp_path, monkeypatch):
    import huggingface_hub

    cached = _files(tmp_path / "cached", ["config.json"])
    fake = FakeSnapshotDownload(cached=cached, download_to=cached)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    got = hub.resolve_model("org/big", cache_dir=str(tmp_path), env=EnvSettings.from_environ({}))
    assert got == cached and hub.missing_files(got) == []
    assert [c["local_files_only"] for c in fake.calls] == [True, False]
    assert fake.calls[0]["allow_patterns"] == fake.calls[1]["allow_patterns"] == hub.WEIGHT_PATTERNS


def test_config_only_lookup_uses_the_config_pattern(tmp_path, monkeypatch):
    import huggingface_hub

    from huggingface_hub.utils import LocalEntryNotFoundError

    fake = FakeSnapshotDownload(cache_error=LocalEntryNotFoundError("no"), download_to=tmp_path / "dl", download_files=["config.json"])
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    assert hub.resolve_model("org/big", env=EnvSettings.from_environ({}), config_only=True) == tmp_path / "dl"
    assert [c["allow_patterns"] for c in fake.calls] == [["config.json"], ["config.json"]]


def test_bin_only_repository_gets_its_bin_weights(tmp_path, monkeypatch):
    import huggingface_hub

    from huggingface_hub.utils import LocalEntryNotFoundError

    downloads = iter([["config.json", "tokenizer.json"], ["pytorch_model.bin"]])

    def fake(repo_id, revision=None, cache_dir=None, local_files_only=False, allow_patterns=None):
        if local_files_only:
            raise LocalEntryNotFoundError("no")
        return str(_files(tmp_path / "dl", next(downloads)))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    assert hub.missing_files(hub.resolve_model("org/old", env=EnvSettings.from_environ({}))) == []


def test_downloaded_repository_without_weights_is_reported(tmp_path, monkeypatch):
    import huggingface_hub

    from huggingface_hub.utils import LocalEntryNotFoundError

    fake = FakeSnapshotDownload(cache_error=LocalEntryNotFoundError("no"), download_to=tmp_path / "dl",
                                download_files=["config.json", "tokenizer.json"])
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(hub.HubError, match="was downloaded from Hugging Face to .* but has no weight files"):
        hub.resolve_model("org/odd", env=EnvSettings.from_environ({}))


@pytest.fixture()
def fake_modelscope(monkeypatch):
    """A stand-in `modelscope` module (the real one is an optional extra) whose snapshot_download a test sets."""
    import importlib.util
    import sys
    import types

    module = types.ModuleType("modelscope")
    monkeypatch.setitem(sys.modules, "modelscope", module)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "modelscope" else real(n, *a))
    return module


MS = EnvSettings.from_environ({"USE_MODELSCOPE_HUB": "1"})
# What modelscope 1.x raises for a model with nothing in its cache and local_files_only=True.
MS_NOT_CACHED = ValueError("Cannot find the requested files in the cached path and outgoing traffic has been disabled. "
                           "To enable look-ups and downloads online, set 'local_files_only' to False.")


def test_modelscope_not_cached_downloads_with_the_same_patterns(tmp_path, fake_modelscope):
    fake = FakeSnapshotDownload(cache_error=MS_NOT_CACHED, download_to=tmp_path / "ms")
    fake_modelscope.snapshot_download = fake
    assert hub.resolve_model("qwen/Qwen1.5-7B", env=MS) == tmp_path / "ms"
    assert [c["allow_patterns"] for c in fake.calls] == [hub.WEIGHT_PATTERNS, hub.WEIGHT_PATTERNS]


def test_modelscope_config_only_cache_is_completed(tmp_path, fake_modelscope):
    # modelscope's local_files_only returns the model folder whenever it holds any file at all.
    cached = _files(tmp_path / "ms", ["config.json"])
    fake = FakeSnapshotDownload(cached=cached, download_to=cached)
    fake_modelscope.snapshot_download = fake
    assert hub.missing_files(hub.resolve_model("qwen/Qwen1.5-7B", env=MS)) == []
    assert [c["local_files_only"] for c in fake.calls] == [True, False]


def test_modelscope_incomplete_cache_and_failed_download_says_which_files(tmp_path, fake_modelscope):
    cached = _files(tmp_path / "ms", ["config.json"])

    def fake(repo_id, revision=None, cache_dir=None, local_files_only=False, allow_patterns=None):
        if local_files_only:
            return str(cached)
        raise ConnectionError("network unreachable")

    fake_modelscope.snapshot_download = fake
    with pytest.raises(hub.HubError, match=r"ModelScope snapshot .* is incomplete: it has no weight files.*"
                                           r"Downloading the rest failed \(ConnectionError: network unreachable\)"):
        hub.resolve_model("qwen/Qwen1.5-7B", env=MS)


def test_modelscope_cache_error_that_is_not_a_miss_is_reported(fake_modelscope):
    fake_modelscope.snapshot_download = FakeSnapshotDownload(cache_error=PermissionError(13, "Permission denied"))
    with pytest.raises(hub.HubError, match=r"ModelScope cache .* failed \(PermissionError: \[Errno 13\] Permission denied\)"):
        hub.resolve_model("qwen/Qwen1.5-7B", env=MS)


def test_hf_incomplete_cache_and_failed_download_says_which_files(tmp_path, monkeypatch):
    import huggingface_hub

    cached = _files(tmp_path / "cached", ["config.json", "model.safetensors"])

    def fake(repo_id, revision=None, cache_dir=None, local_files_only=False, allow_patterns=None):
        if local_files_only:
            return str(cached)
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(hub.HubError, match=r"Hugging Face snapshot .* is incomplete: it has no tokenizer files .*"
                                           r"Downloading the rest failed \(ConnectionError: network unreachable\)"):
        hub.resolve_model("org/cut", env=EnvSettings.from_environ({}))


def test_errors_in_chinese():
    from kit import i18n

    i18n.set_language("zh")
    try:
        with pytest.raises(hub.HubError, match="model_name_or_path：'./missing-model' 不存在；请检查路径"):
            hub.resolve_model("./missing-model", env=EnvSettings.from_environ({}))
    finally:
        i18n.set_language(None)
