"""Model names -> local directories: a local folder, the embedded tiny model, ModelScope or Hugging Face.

A cached snapshot is used first, without waiting on the network (ModelScope's snapshot_download
otherwise goes online even for a cached model and hangs about 20 s offline). Only when nothing is
cached does the real download run; offline, that fails with a message that says what to do.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kit.envvars import EnvSettings
from kit.errors import KitError

TINY_NAMES = {"kit/tiny-qwen", "kit/tiny_qwen", "tiny-qwen"}


class HubError(KitError):
    pass


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") != 1 or "\\" in name


def resolve_model(name: str | None, cache_dir: str | None = None, revision: str = "main",
                  env: EnvSettings | None = None, config_only: bool = False) -> Path:
    """Return a local directory holding the model ``name`` (downloading it if it must and may).

    ``config_only`` fetches just config.json (enough for ``kit estimate``), not the weights.
    """
    if not name:
        raise HubError("model_name_or_path: missing; give a local model directory, a hub id (qwen/Qwen1.5-7B) or kit/tiny-qwen")
    env = env or EnvSettings.from_environ()
    if name in TINY_NAMES:
        from kit import tiny

        return tiny.path()
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file() and not (local / "adapter_config.json").is_file():
            raise HubError(f"model_name_or_path: {name!r} is a directory but has no config.json; point it at a model folder")
        return local.resolve()
    if local.exists():
        raise HubError(f"model_name_or_path: {name!r} is a file; point it at the model's folder")
    if _looks_like_path(name):
        raise HubError(f"model_name_or_path: {name!r} does not exist; check the path, or give a hub id such as qwen/Qwen1.5-7B")
    if env.use_modelscope_hub:
        return _from_modelscope(name, cache_dir, revision, config_only)
    return _from_huggingface(name, cache_dir, revision, env.hf_hub_offline, config_only)


WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py", "*.tiktoken"]


def _from_modelscope(name: str, cache_dir: str | None, revision: str, config_only: bool = False) -> Path:
    if importlib.util.find_spec("modelscope") is None:
        raise HubError("USE_MODELSCOPE_HUB=1 but modelscope is not installed: pip install 'kit[modelscope]' (or pip install modelscope)")
    from modelscope import snapshot_download

    ms_revision = None if revision == "main" else revision  # ModelScope's default branch is "master"
    try:
        return Path(snapshot_download(name, revision=ms_revision, cache_dir=cache_dir, local_files_only=True))
    except Exception:
        pass  # not cached: download below
    try:
        patterns = ["config.json"] if config_only else WEIGHT_PATTERNS
        return Path(snapshot_download(name, revision=ms_revision, cache_dir=cache_dir, allow_patterns=patterns))
    except Exception as exc:
        raise HubError(f"model_name_or_path: {name!r} is not cached and could not be downloaded from ModelScope "
                       f"({type(exc).__name__}: {exc}). Check the id and the network, or download it elsewhere and give its folder") from None


def _from_huggingface(name: str, cache_dir: str | None, revision: str, offline: bool, config_only: bool = False) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision, cache_dir=cache_dir, local_files_only=True))
    except Exception:
        pass
    if offline:
        raise HubError(f"model_name_or_path: {name!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading. "
                       "Download it where there is network, or give a local folder (or set USE_MODELSCOPE_HUB=1 for ModelScope)")
    try:
        return Path(snapshot_download(name, revision=revision, cache_dir=cache_dir,
                                      allow_patterns=["config.json"] if config_only else WEIGHT_PATTERNS))
    except Exception as exc:
        raise HubError(f"model_name_or_path: {name!r} is not cached and could not be downloaded from Hugging Face "
                       f"({type(exc).__name__}: {exc}). Check the id and the network, set USE_MODELSCOPE_HUB=1 to use ModelScope, "
                       "or give a local folder") from None
