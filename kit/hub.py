"""Model names -> local directories: a local folder, the embedded tiny model, ModelScope or Hugging Face.

A cached snapshot is used first, without waiting on the network (ModelScope's snapshot_download
otherwise goes online even for a cached model and hangs about 20 s offline). Only when nothing is
cached does the real download run; offline, that fails with a message that says what to do.

The cache is looked up with the same file patterns as the download: huggingface_hub checks a cached
snapshot against the repository's file list and, asked for every file, calls a snapshot that was
downloaded with patterns incomplete. Whatever folder is found (cached, downloaded or given) is then
checked for what the purpose needs: config.json for ``config_only`` (``kit estimate``); config.json
and a tokenizer without ``weights`` (``kit preprocess`` only tokenizes); config.json, the weights
(every shard its index names) and a tokenizer for a model. The config-only snapshot that
``kit estimate`` caches is thus never taken for a model to train.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from kit.envvars import EnvSettings
from kit.errors import KitError
from kit.i18n import _
from kit.library_text import read_problem

TINY_NAMES = {"kit/tiny-qwen", "kit/tiny_qwen", "tiny-qwen"}

WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py", "*.tiktoken"]
CONFIG_PATTERNS = ["config.json"]
# Everything but the weights: config.json, the tokenizer files, the chat template.
TOKENIZER_PATTERNS = [p for p in WEIGHT_PATTERNS if p != "*.safetensors"]
# Only for a repository without safetensors: its weights are pytorch_model*.bin (their index is *.json).
BIN_PATTERNS = ["*.bin"]
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
NOT_MODEL_WEIGHTS = {"training_args.bin", "adapter_model.safetensors", "adapter_model.bin"}


class HubError(KitError):
    pass


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") != 1 or "\\" in name


def missing_files(folder: Path, config_only: bool = False, weights: bool = True) -> list[str]:
    """What ``folder`` lacks to be used as a model (or, with ``config_only``, to be estimated); [] when complete.

    A model needs config.json, its weights (``*.safetensors`` or ``*.bin``; with an index, every
    shard the index names) and a tokenizer (tokenizer.json, a sentencepiece ``*.model``, a
    ``*.tiktoken`` file, or vocab.json with merges.txt). Without ``weights`` (tokenizing only),
    config.json and the tokenizer are enough.
    """
    if not folder.is_dir():
        return [_("folder {folder}").format(folder=folder)]
    missing: list[str] = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if config_only:
        return missing
    # is_file() follows links: a snapshot's link to a blob that never finished downloading counts as missing.
    weight_files = [p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin")
                    and p.name not in NOT_MODEL_WEIGHTS and p.is_file()]
    indexes = [folder / name for name in WEIGHT_INDEXES if (folder / name).is_file()]
    if weights and indexes:
        for index in indexes:
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                shards = sorted(set(weight_map.values()))
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
                missing.append(_("a readable {index} ({error})").format(
                    index=index.name, error=read_problem(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"))
                continue
            lacking = [s for s in shards if not (folder / s).is_file()]
            if lacking:
                shown = ", ".join(lacking[:3]) + (_(" and {count} more").format(count=len(lacking) - 3) if len(lacking) > 3 else "")
                missing.append(_("{count} of the {total} weight shards {index} names ({shown})").format(
                    count=len(lacking), total=len(shards), index=index.name, shown=shown))
    elif weights and not weight_files:
        missing.append(_("weight files (*.safetensors or *.bin)"))
    has_tokenizer = ((folder / "tokenizer.json").is_file()
                     or any(p.is_file() for p in folder.glob("*.model"))
                     or any(p.is_file() for p in folder.glob("*.tiktoken"))
                     or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()))
    if not has_tokenizer:
        missing.append(_("tokenizer files (tokenizer.json, or tokenizer.model, or vocab.json + merges.txt)"))
    return missing


def resolve_model(name: str | None, cache_dir: str | None = None, revision: str = "main",
                  env: EnvSettings | None = None, config_only: bool = False, weights: bool = True) -> Path:
    """Return a local directory holding the model ``name`` (downloading it if it must and may).

    ``config_only`` fetches just config.json (enough for ``kit estimate``), not the weights;
    without ``weights``, config.json and the tokenizer (enough for ``kit preprocess``).
    Raises HubError when the folder (given, cached or downloaded) lacks what the purpose needs.
    """
    if not name:
        raise HubError(_("model_name_or_path: missing; give a local model directory, a hub id (qwen/Qwen1.5-7B) or kit/tiny-qwen"))
    env = env or EnvSettings.from_environ()
    if name in TINY_NAMES:
        from kit import tiny

        return tiny.path()
    local = Path(name).expanduser()
    if local.is_dir():
        return _local_folder(name, local, config_only, weights)
    if local.exists():
        raise HubError(_("model_name_or_path: {name!r} is a file; point it at the model's folder").format(name=name))
    if _looks_like_path(name):
        raise HubError(_("model_name_or_path: {name!r} does not exist; check the path, or give a hub id such as qwen/Qwen1.5-7B").format(
            name=name))
    if env.use_modelscope_hub:
        return _from_modelscope(name, cache_dir, revision, config_only, weights)
    return _from_huggingface(name, cache_dir, revision, env.hf_hub_offline, config_only, weights)


def _local_folder(name: str, local: Path, config_only: bool, weights: bool = True) -> Path:
    if not (local / "config.json").is_file():
        if (local / "adapter_config.json").is_file():
            return local.resolve()  # a LoRA adapter folder: it names its base model, which peft loads
        raise HubError(_("model_name_or_path: {name!r} is a directory but has no config.json; point it at a model folder").format(
            name=name))
    missing = missing_files(local, config_only, weights)
    if missing and not weights and not config_only:
        raise HubError(_("model_name_or_path: the folder {name!r} has no {missing}; tokenizing needs config.json and the "
                         "tokenizer files (tokenizer.json, or tokenizer.model, or vocab.json + merges.txt), not the weights").format(
            name=name, missing=_no_list(missing)))
    if missing:
        raise HubError(_("model_name_or_path: the folder {name!r} is not a complete model: it has no {missing}. "
                         "Copy the model's files there (config.json, the *.safetensors weights, the tokenizer files), "
                         "or give a hub id such as qwen/Qwen1.5-7B").format(name=name, missing=_no_list(missing)))
    return local.resolve()


def _no_list(missing: list[str]) -> str:
    """"a; no b; no c": what a folder lacks, after "it has no"."""
    return _("; no ").join(missing)


def _incomplete(name: str, where: str, folder: Path | None, missing: list[str], what_to_do: str) -> HubError:
    at = _(" at {folder}").format(folder=folder) if folder is not None else ""
    return HubError(_("model_name_or_path: the cached {hub} snapshot of {name!r}{at} is incomplete: it has no {missing}. "
                      "It may be the config-only copy `kit estimate` keeps, or an interrupted download. {what_to_do}, "
                      "or download the model elsewhere and give its folder").format(
        hub=where, name=name, at=at, missing=_no_list(missing), what_to_do=what_to_do))


def _checked(name: str, where: str, folder: Path, config_only: bool, weights: bool = True) -> Path:
    """``folder`` just downloaded, if it holds what the purpose needs."""
    missing = missing_files(folder, config_only, weights)
    if missing:
        raise HubError(_("model_name_or_path: {name!r} was downloaded from {hub} to {folder} but has no {missing}; "
                         "the repository may not hold a transformers model. Check the id, or give a local folder").format(
            name=name, hub=where, folder=folder, missing=_no_list(missing)))
    return folder


def _has_safetensors(folder: Path) -> bool:
    return any(p.name not in NOT_MODEL_WEIGHTS for p in folder.glob("*.safetensors"))


def _is_not_cached_modelscope(exc: Exception) -> bool:
    # modelscope (1.x) raises a plain ValueError for a model with nothing in its cache.
    return isinstance(exc, ValueError) and "cannot find the requested files in the cached path" in str(exc).lower()


def _from_modelscope(name: str, cache_dir: str | None, revision: str, config_only: bool = False, weights: bool = True) -> Path:
    if importlib.util.find_spec("modelscope") is None:
        raise HubError(_("USE_MODELSCOPE_HUB=1 but modelscope is not installed: pip install 'kit[modelscope]' (or pip install modelscope)"))
    from modelscope import snapshot_download

    ms_revision = None if revision == "main" else revision  # ModelScope's default branch is "master"
    patterns = CONFIG_PATTERNS if config_only else WEIGHT_PATTERNS if weights else TOKENIZER_PATTERNS
    try:
        # With local_files_only, modelscope returns the model's cache folder if it holds any file at all,
        # so what it holds is checked below.
        cached = Path(snapshot_download(name, revision=ms_revision, cache_dir=cache_dir, local_files_only=True,
                                        allow_patterns=patterns))
    except (ValueError, OSError) as exc:
        if not _is_not_cached_modelscope(exc):
            raise HubError(_("model_name_or_path: looking up {name!r} in the ModelScope cache ({cache}) failed ({error}); "
                             "check the id and the cache folder's permissions").format(
                name=name, cache=cache_dir or "MODELSCOPE_CACHE", error=f"{type(exc).__name__}: {exc}")) from exc
        cached = None
    if cached is not None and not missing_files(cached, config_only, weights):
        return cached
    try:
        folder = Path(snapshot_download(name, revision=ms_revision, cache_dir=cache_dir, allow_patterns=patterns))
        if not config_only and weights and not _has_safetensors(folder):
            folder = Path(snapshot_download(name, revision=ms_revision, cache_dir=cache_dir, allow_patterns=BIN_PATTERNS))
    except Exception as exc:  # network, authorisation, unknown id: modelscope raises many kinds
        if cached is not None:
            raise _incomplete(name, "ModelScope", cached, missing_files(cached, config_only, weights), _download_failed(exc)) from exc
        raise HubError(_("model_name_or_path: {name!r} is not cached and could not be downloaded from ModelScope ({error}). "
                         "Check the id and the network, or download it elsewhere and give its folder").format(
            name=name, error=f"{type(exc).__name__}: {exc}")) from exc
    return _checked(name, "ModelScope", folder, config_only, weights)


def _download_failed(exc: Exception) -> str:
    return _("Downloading the rest failed ({error}): check the network and run again").format(error=f"{type(exc).__name__}: {exc}")


def _hub_missing(exc: Exception) -> str:
    """The files huggingface_hub's IncompleteSnapshotError says a cached snapshot lacks."""
    found = re.search(r"\d+ file\(s\) are missing \((.*?)\)(?=\. )", str(exc))
    # Without the count in the message (another huggingface_hub version), quote it whole.
    if found:
        return _("{files} (listed by the repository)").format(files=found.group(1))
    return _("all the files the repository lists ({error})").format(error=exc)


def _from_huggingface(name: str, cache_dir: str | None, revision: str, offline: bool, config_only: bool = False,
                      weights: bool = True) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import LocalEntryNotFoundError

    patterns = CONFIG_PATTERNS if config_only else WEIGHT_PATTERNS if weights else TOKENIZER_PATTERNS
    cached: Path | None = None
    missing: list[str] = []
    try:
        cached = Path(snapshot_download(name, revision=revision, cache_dir=cache_dir, allow_patterns=patterns,
                                        local_files_only=True))
        missing = missing_files(cached, config_only, weights)
    except LocalEntryNotFoundError as exc:
        # huggingface_hub >= 1.x raises IncompleteSnapshotError (a LocalEntryNotFoundError with the folder) when
        # its cached file list names files the snapshot lacks; older versions only say "not cached".
        path = getattr(exc, "snapshot_path", None)
        if path:
            cached = Path(path)
            missing = (missing_files(cached, config_only, weights) if cached.is_dir() else []) or [_hub_missing(exc)]
    except (OSError, ValueError) as exc:  # an unreadable cache, an invalid id or revision
        raise HubError(_("model_name_or_path: looking up {name!r} in the Hugging Face cache ({cache}) failed ({error}); "
                         "check the id, the revision and the cache folder").format(
            name=name, cache=cache_dir or "HF_HUB_CACHE", error=f"{type(exc).__name__}: {exc}")) from exc
    if cached is not None and not missing:
        return cached
    if offline:
        if missing:
            raise _incomplete(name, "Hugging Face", cached, missing,
                              _("Download it again where there is network, without HF_HUB_OFFLINE=1"))
        raise HubError(_("model_name_or_path: {name!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading. "
                         "Download it where there is network, or give a local folder (or set USE_MODELSCOPE_HUB=1 for ModelScope)").format(
            name=name))
    try:
        folder = Path(snapshot_download(name, revision=revision, cache_dir=cache_dir, allow_patterns=patterns))
        if not config_only and weights and not _has_safetensors(folder):
            folder = Path(snapshot_download(name, revision=revision, cache_dir=cache_dir, allow_patterns=BIN_PATTERNS))
    except Exception as exc:  # network, authorisation, gated or unknown repository: many kinds
        if missing:
            raise _incomplete(name, "Hugging Face", cached, missing, _download_failed(exc)) from exc
        raise HubError(_("model_name_or_path: {name!r} is not cached and could not be downloaded from Hugging Face ({error}). "
                         "Check the id and the network, set USE_MODELSCOPE_HUB=1 to use ModelScope, or give a local folder").format(
            name=name, error=f"{type(exc).__name__}: {exc}")) from exc
    return _checked(name, "Hugging Face", folder, config_only, weights)
