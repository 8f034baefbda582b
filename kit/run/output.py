"""The output folder's rules: what a non-empty ``output_dir`` means, which checkpoint a run resumes
from, and what ``overwrite_output_dir`` removes: only what the run manifest (``kit_run.json``, class
``Manifest``) lists as written by a kit run. ``decide_output`` says it in one line and writes nothing;
``prepare_output`` applies the decision when the run starts (rank 0 only).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.config import Config, ConfigError
from kit.i18n import _

logger = logging.getLogger("kit.run.plan")

# The names a run writes at the top of output_dir (LLaMA-Factory's, the kit's training_args.yaml, and what
# DeepSpeed adds). They no longer decide what is removed (the run's manifest does); they say which of a
# person's files a run would write over, so that such a folder is refused instead.
RUN_FILES = (
    "adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model", "chat_template.jinja", "training_args.bin", "training_args.yaml",
    "trainer_log.jsonl", "trainer_state.json", "all_results.json", "train_results.json", "eval_results.json",
    "training_loss.png", "training_eval_loss.png", "latest", "zero_to_fp32.py",
)
RUN_FOLDER_PATTERNS = ("checkpoint-*", "global_step*", "runs")

# The run manifest: the top-level entries of output_dir that kit runs wrote. Only these are ever removed.
MANIFEST = "kit_run.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class OutputDecision:
    """What the run does with output_dir: start fresh, resume, or clear the last run's files first."""

    resume_from: str | None
    remove: tuple[Path, ...] = ()  # the last run's files, removed when the run starts (overwrite_output_dir)
    keep: tuple[str, ...] = ()  # a person's other files, left alone
    message: str | None = None  # one line a person reads: what happens and why



# ---------------------------------------------------------------- output_dir: what is the kit's

def _plain_name(name: str) -> bool:
    """A manifest entry names something directly inside output_dir, never a path that leads elsewhere."""
    return bool(name) and name not in (".", "..", MANIFEST) and not any(c in name for c in "/\\\0")


def is_manifest_file(name: str) -> bool:
    """kit_run.json, or the temporary file a kill left behind while it was being replaced."""
    return name == MANIFEST or (name.startswith(f".{MANIFEST}.") and name.endswith(".tmp"))


def _relative_file(name: str) -> bool:
    """A recorded file inside a listed folder: a relative path that stays inside it."""
    parts = name.split("/")
    return bool(name) and "\\" not in name and "\0" not in name and all(p not in ("", ".", "..") for p in parts)


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder`` (links counted as files, never followed), as sorted relative paths."""
    out = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        out += [(here / f).relative_to(folder).as_posix() for f in files]
        out += [(here / d).relative_to(folder).as_posix() for d in dirs if (here / d).is_symlink()]
    return sorted(out)


class Manifest:
    """kit_run.json: the top-level entries of output_dir (files, and folders with all they hold) a kit run wrote.

    overwrite_output_dir removes these and nothing else. A checkpoint folder is listed before the
    Trainer writes it, so a run killed while saving still leaves its half-written folder recorded as
    its own; once the save is complete, the files in it are recorded too ("contents"), so a file a
    person puts into a checkpoint folder later is seen as theirs. Only rank 0 writes the file, each
    time whole and by a rename, so a kill never leaves half a manifest.
    """

    def __init__(self, folder: Path, entries: Any = (), contents: dict[str, list[str]] | None = None):
        self.folder = Path(folder)
        self.entries: set[str] = set(entries)
        self.contents: dict[str, list[str]] = dict(contents or {})

    @classmethod
    def read(cls, folder: Path) -> "Manifest | None":
        """The folder's manifest, or None when it has none; OSError or ValueError when it cannot be trusted."""
        path = Path(folder) / MANIFEST
        if not path.exists() and not path.is_symlink():
            return None
        if path.is_symlink() or not path.is_file():
            raise ValueError("not a plain file")
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data.get("entries") if isinstance(data, dict) else None
        if (not isinstance(data, dict) or data.get("kit_run") != MANIFEST_FORMAT or not isinstance(entries, list)
                or not all(isinstance(e, str) and _plain_name(e) for e in entries)):
            # A hand-edited entry such as "../x" or "/home" would make overwrite_output_dir reach outside the folder.
            raise ValueError(f"not a kit run manifest of format {MANIFEST_FORMAT} listing names inside the folder")
        contents = data.get("contents", {})
        if not isinstance(contents, dict) or not all(
                name in entries and isinstance(files, list) and all(isinstance(f, str) and _relative_file(f) for f in files)
                for name, files in contents.items()):
            raise ValueError("its contents do not list files inside the folders it names")
        return cls(folder, entries, contents)

    def existing(self) -> list[str]:
        return sorted(e for e in self.entries if (self.folder / e).exists() or (self.folder / e).is_symlink())

    def add(self, *names: str) -> None:
        if not set(names) <= self.entries:
            self.entries |= set(names)
            self.write()

    def record_contents(self, name: str) -> None:
        """Record the files a listed folder holds now that the kit has written it whole (a checkpoint after its save)."""
        folder = self.folder / name
        if name in self.entries and folder.is_dir() and not folder.is_symlink():
            self.contents[name] = files_in(folder)
            self.write()

    def foreign_inside(self) -> dict[str, list[str]]:
        """Per listed folder whose files were recorded: the files in it now that the kit did not write."""
        found = {}
        for name, recorded in self.contents.items():
            folder = self.folder / name
            if folder.is_dir() and not folder.is_symlink():
                extra = sorted(set(files_in(folder)) - set(recorded))
                if extra:
                    found[name] = extra
        return found

    def prune(self) -> None:
        """Drop entries that no longer exist (checkpoints the Trainer rotated away, a save that was cancelled)."""
        if set(self.existing()) != self.entries:
            self.entries = set(self.existing())
            self.contents = {k: v for k, v in self.contents.items() if k in self.entries}
            self.write()

    def write(self) -> None:
        tmp = self.folder / f".{MANIFEST}.{os.getpid()}.tmp"
        data: dict[str, Any] = {"kit_run": MANIFEST_FORMAT, "entries": sorted(self.entries)}
        contents = {k: v for k, v in sorted(self.contents.items()) if k in self.entries}
        if contents:
            data["contents"] = contents
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / MANIFEST)


def run_names(cfg: Config) -> tuple[str, ...]:
    """The names this run may write at the top of output_dir (tensorboard's runs/ only when it reports there)."""
    tensorboard = any(r.strip() in ("tensorboard", "all") for r in cfg.train.report_to.split(","))
    return RUN_FILES + (("runs",) if tensorboard else ())


def _run_may_write(name: str, cfg: Config) -> bool:
    return name in run_names(cfg) or any(Path(name).match(p) for p in RUN_FOLDER_PATTERNS)


def _few(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (_(" and {count} more").format(count=len(names) - limit) if len(names) > limit else "")


def _step(path: Path) -> int:
    tail = path.name.rpartition("-")[2]
    return int(tail) if path.name.startswith("checkpoint-") and tail.isdigit() else -1


# ---------------------------------------------------------------- output_dir: can a checkpoint be resumed from

TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt")


def _torch_file_problem(path: Path) -> str | None:
    """torch.save writes a zip archive; a truncated or garbled one has no readable central directory (cheap to check)."""
    import zipfile

    if zipfile.is_zipfile(path):
        return None
    return _("{name} is unreadable (not a complete PyTorch file)").format(name=path.name)


def _adapter_weights_problem(folder: Path) -> str | None:
    safetensors, binary = folder / "adapter_model.safetensors", folder / "adapter_model.bin"
    try:
        import torch

        if safetensors.is_file():
            from safetensors.torch import load_file

            tensors, name = load_file(str(safetensors)), safetensors.name
        elif binary.is_file():
            tensors, name = torch.load(binary, map_location="cpu", weights_only=True), binary.name
        else:
            return _("no adapter_model.safetensors")
    except Exception as exc:  # a damaged file raises whatever its reader raises (SafetensorError, RuntimeError, ...)
        return _("{name} is unreadable ({error})").format(name=(safetensors if safetensors.is_file() else binary).name,
                                                           error=str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)
    if not isinstance(tensors, dict):
        return _("{name} holds no weights").format(name=name)
    if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in tensors.values()):
        return _("{name} holds nan or inf weights (the run had diverged when it was saved)").format(name=name)
    return None


def checkpoint_problems(folder: Path, deepspeed: bool) -> list[str]:
    """Why the Trainer could not resume from this checkpoint folder; empty when it can.

    Reads what resuming reads, before anything is written or any model loaded: the Trainer state, the
    adapter (its weights must load and be finite), and the optimizer and scheduler state this run's
    kind (DeepSpeed or not) loads. A missing optimizer would otherwise be silently restarted from zero.
    """
    if not folder.is_dir():
        return [_("not a folder")]
    problems = []
    state = folder / "trainer_state.json"
    if not state.is_file():
        problems.append(_("no trainer_state.json (cut short while saving)"))
    else:
        try:
            data = json.loads(state.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(_("trainer_state.json is unreadable ({error})").format(error=exc))
        else:
            if not isinstance(data, dict) or not isinstance(data.get("global_step"), int):
                problems.append(_("trainer_state.json holds no global_step"))
    try:
        adapter = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        if not isinstance(adapter, dict):
            raise ValueError(_("not a JSON object"))
    except FileNotFoundError:
        problems.append(_("no adapter_config.json"))
    except (OSError, ValueError) as exc:
        problems.append(_("adapter_config.json is unreadable ({error})").format(error=exc))
    weights = _adapter_weights_problem(folder)
    if weights:
        problems.append(weights)
    needed = ["scheduler.pt"] if deepspeed else ["optimizer.pt", "scheduler.pt"]
    problems += [_("no {name}").format(name=name) for name in needed if not (folder / name).is_file()]
    torch_files = [folder / n for n in TORCH_FILES if (folder / n).is_file()] + sorted(folder.glob("rng_state*.pth"))
    if deepspeed:
        tag = (folder / "latest").read_text(encoding="utf-8", errors="replace").strip() if (folder / "latest").is_file() else ""
        states = sorted((folder / tag).glob("*.pt")) if tag and _plain_name(tag) and (folder / tag).is_dir() else []
        if not states:
            problems.append(_("no DeepSpeed state (latest, global_step*/): it was saved by a run without DeepSpeed, "
                              "or cut short"))
        torch_files += states
    problems += [p for p in map(_torch_file_problem, torch_files) if p]
    return problems


def newest_usable_checkpoint(folder: Path, names: Any, deepspeed: bool) -> tuple[Path | None, list[str]]:
    """(the newest checkpoint-N among ``names`` that can be resumed from, one line per newer one skipped and why)."""
    skipped = []
    for path in sorted((folder / n for n in names), key=_step, reverse=True):
        if _step(path) < 0 or not path.is_dir():
            continue
        problems = checkpoint_problems(path, deepspeed)
        if not problems:
            return path, skipped
        skipped.append(_("skipping {checkpoint}: {problems}").format(checkpoint=path, problems="; ".join(problems)))
    return None, skipped


def adapter_mismatch(checkpoint: Path, cfg: Config, targets: list[str], model_dir: Path) -> str | None:
    """The first LoRA setting in which the checkpoint's adapter differs from this run's, as one message; else None."""
    adapter = json.loads((checkpoint / "adapter_config.json").read_text(encoding="utf-8"))
    theirs_targets = adapter.get("target_modules") if isinstance(adapter, dict) else None
    theirs_targets = [theirs_targets] if isinstance(theirs_targets, str) else theirs_targets or []
    if not isinstance(adapter, dict) or not isinstance(theirs_targets, list) or not all(isinstance(t, str) for t in theirs_targets):
        return _("resume: {checkpoint}'s adapter_config.json is not a LoRA adapter's (target_modules: {value}); resume from "
                 "another checkpoint, or start over: overwrite_output_dir: true or another output_dir").format(
            checkpoint=checkpoint, value=json.dumps(adapter.get("target_modules") if isinstance(adapter, dict) else adapter)[:80])
    theirs_targets = sorted(theirs_targets)
    differences = [("r", adapter.get("r"), "lora_rank", cfg.finetune.lora_rank),
                   ("lora_alpha", adapter.get("lora_alpha"), "lora_alpha", cfg.lora_alpha),
                   ("target_modules", ",".join(theirs_targets), "lora_target", ",".join(sorted(targets)))]
    base = adapter.get("base_model_name_or_path")
    if base and not _same_model(str(base), cfg.model.model_name_or_path, model_dir):
        differences.append(("base_model_name_or_path", base, "model_name_or_path", cfg.model.model_name_or_path))
    for key, theirs, ours_key, ours in differences:
        if theirs != ours:
            return _("resume: {checkpoint} was trained with {key}: {theirs} (adapter_config.json), but this run has "
                     "{ours_key}: {ours}; resume with the same setting, or start over: overwrite_output_dir: true or "
                     "another output_dir").format(checkpoint=checkpoint, key=key, theirs=theirs, ours_key=ours_key, ours=ours)
    return None


def _same_model(base: str, given: str | None, model_dir: Path) -> bool:
    """Same string or folder, or the same model name: a moved folder or a hub id resolved to a cache still matches.

    ModelScope's cache spells a dot in a name as ___ (Qwen1___5-7B for Qwen1.5-7B).
    """
    def name(value: str) -> str:
        return Path(value.rstrip("/")).name.replace("___", ".").lower()

    if base in (given, str(model_dir)) or (Path(base).exists() and Path(base).resolve() == model_dir.resolve()):
        return True
    return name(base) in {name(given or ""), name(str(model_dir))}


# ---------------------------------------------------------------- output_dir: the rules

def check_output_path(out: Path) -> None:
    """output_dir can be created and written, as the operating system will answer; checked before anything is loaded."""
    def refuse(message: str) -> None:
        raise ConfigError([message])

    path = repr(str(out))
    if out.is_symlink() and not out.exists():
        refuse(_("output_dir: {path} is a link to {target}, which does not exist; give a folder, or create the link's "
                 "target").format(path=path, target=repr(os.readlink(out))))
    if out.exists() and not out.is_dir():
        refuse(_("output_dir: {path} is a file, not a folder; give the path of a folder (a new one, or an earlier "
                 "run's)").format(path=path))
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK | os.R_OK):
            refuse(_("output_dir: {path} cannot be written by you (permission denied or a read-only file system); "
                     "choose another output_dir, or fix its permissions (ls -ld {path})").format(path=path))
        return
    parent = out.absolute()
    while not parent.exists():
        if parent.is_symlink():
            refuse(_("output_dir: {path} cannot be created: {link} is a link to {target}, which does not exist").format(
                path=path, link=repr(str(parent)), target=repr(os.readlink(parent))))
        parent = parent.parent
    if not parent.is_dir():
        refuse(_("output_dir: {path} cannot be created: {file} is a file, not a folder; choose a path whose parent "
                 "folders are folders").format(path=path, file=repr(str(parent))))
    if not os.access(parent, os.W_OK | os.X_OK):
        refuse(_("output_dir: {path} cannot be created: you may not write in {folder} (permission denied or a read-only "
                 "file system); choose a folder you can write to").format(path=path, folder=repr(str(parent))))


def _listing(out: Path) -> list[str]:
    try:
        return sorted(p.name for p in out.iterdir() if not is_manifest_file(p.name)) if out.is_dir() else []
    except OSError as exc:
        raise ConfigError([_("output_dir: {path} cannot be read ({error})").format(path=repr(str(out)), error=exc)]) from None


def _refuse_clashes(out: Path, foreign: list[str], cfg: Config, has_manifest: bool, from_step: int = -1) -> None:
    """Refuse when the run would write over, or the Trainer's checkpoint rotation delete, what the kit did not write.

    Another tool's checkpoint-N is safe only in its own folder (no manifest), at or below the step the
    run resumes from (the run writes only later steps), and without save_total_limit (rotation deletes
    checkpoint-* folders whoever wrote them).
    """
    def clashes_with(name: str) -> bool:
        if _step(out / name) >= 0:
            return has_manifest or cfg.train.save_total_limit is not None or _step(out / name) > from_step
        return _run_may_write(name, cfg)

    clashes = [n for n in foreign if clashes_with(n)]
    if clashes:
        raise ConfigError([_("output_dir: {path} holds {names}, which the kit did not write (they are not in its {manifest}) "
                             "and which this run would write over, or delete when it keeps only save_total_limit "
                             "checkpoints; move them away, or choose another output_dir").format(
            path=repr(str(out)), names=_few(clashes), manifest=MANIFEST)])


def decide_output(cfg: Config) -> OutputDecision:
    """The output_dir rules, each said in one line. What the kit wrote is what its manifest lists.

    - empty or missing: train from scratch;
    - ``resume_from_checkpoint``: a checkpoint folder, or true / latest for the newest in output_dir;
    - a kit run (kit_run.json) with checkpoints and ``overwrite_output_dir`` false: resume from the newest
      one that can be resumed from (as LLaMA-Factory does, so rerunning a stopped command continues it);
    - a kit run and ``overwrite_output_dir: true``: what its manifest lists is removed when training
      starts; a person's other files stay;
    - no kit run there (no kit_run.json): never cleared; resumed from only when it holds another tool's
      complete checkpoint-N and nothing this run would write over;
    - otherwise refused, naming what is there and the way out.
    Damaged checkpoints are skipped for the newest complete one, each said in one line.
    """
    out = Path(cfg.train.output_dir)
    check_output_path(out)
    deepspeed = bool(cfg.train.deepspeed)
    try:
        manifest = Manifest.read(out) if out.is_dir() else None
    except (OSError, ValueError) as exc:
        raise ConfigError([_("output_dir: {path} has a {manifest} the kit cannot read ({error}), so it cannot tell its "
                             "files from yours; clear the folder yourself, or choose another output_dir").format(
            path=repr(str(out)), manifest=MANIFEST, error=exc)]) from None
    names = _listing(out)
    ours = manifest.existing() if manifest else []
    foreign = [n for n in names if n not in ours]
    resume = cfg.train.resume_from_checkpoint
    if resume:
        if resume.strip().lower() in ("true", "latest", "last"):
            if manifest is None:  # another tool's run, or nothing: its newest checkpoint, when that is safe
                return _decide_without_manifest(cfg, out, names, deepspeed, resume)
            found, skipped = newest_usable_checkpoint(out, ours, deepspeed)
            if found is None:
                raise ConfigError([_("resume_from_checkpoint: {value} but {path} holds no checkpoint-* folder that can be "
                                     "resumed from").format(value=resume, path=repr(str(out)))] + skipped)
            line = _("resuming from {checkpoint} (resume_from_checkpoint: {value})").format(checkpoint=found, value=resume)
        else:
            found, skipped = Path(resume), []
            problems = checkpoint_problems(found, deepspeed)
            if problems:
                raise ConfigError([_("resume_from_checkpoint: {value} cannot be resumed from: {problems}; give a complete "
                                     "checkpoint-N folder of an earlier run, or true for the newest in output_dir").format(
                    value=repr(resume), problems="; ".join(problems))])
            if manifest is None and names and not _is_within(found, out):
                raise ConfigError([_not_empty(out, names)])
            line = _("resuming from {checkpoint} (resume_from_checkpoint)").format(checkpoint=resume)
        _refuse_clashes(out, foreign, cfg, manifest is not None, _step(found))
        return OutputDecision(str(found), keep=tuple(foreign), message="\n".join(skipped + [line]))
    if not names:
        return OutputDecision(None)
    if manifest is None:
        return _decide_without_manifest(cfg, out, names, deepspeed)
    _refuse_clashes(out, foreign, cfg, True)
    if cfg.train.overwrite_output_dir:
        inside = manifest.foreign_inside()
        if inside:
            listed = [f"{folder}/{name}" for folder, names in sorted(inside.items()) for name in names]
            raise ConfigError([_("overwrite_output_dir: {names} inside the last kit run's folders {folders} were not written "
                                 "by the kit, and clearing the run would delete them; move them out of {path} (or choose "
                                 "another output_dir), then run again").format(
                names=_few(listed), folders=", ".join(sorted(inside)), path=repr(str(out)))])
        message = _("overwrite_output_dir: removing the last kit run's {count} entries in {folder} (as its {manifest} "
                    "lists them) before training").format(count=len(ours), folder=out, manifest=MANIFEST)
        if foreign:
            message += _("; keeping {count} other file(s): {names}").format(count=len(foreign), names=_few(foreign))
        return OutputDecision(None, tuple(out / n for n in ours), tuple(foreign), message)
    found, skipped = newest_usable_checkpoint(out, ours, deepspeed)
    if found is not None:
        return OutputDecision(str(found), keep=tuple(foreign), message="\n".join(skipped + [_(
            "resuming from {checkpoint}: {folder} holds an earlier run's checkpoint and overwrite_output_dir is false "
            "(as LLaMA-Factory does; set overwrite_output_dir: true to start over, or choose another output_dir)").format(
            checkpoint=found, folder=out)]))
    if skipped:
        raise ConfigError([_("output_dir: {path} holds no checkpoint that can be resumed from; set overwrite_output_dir: "
                             "true to start over, or choose another output_dir").format(path=repr(str(out)))] + skipped)
    raise ConfigError([_("output_dir: {path} exists and is not empty (and holds no checkpoint to resume from); "
                         "choose another output_dir, or set overwrite_output_dir: true to replace the last run's files in it"
                         ).format(path=repr(str(out)))])


def _not_empty(out: Path, names: list[str]) -> str:
    line = _("output_dir: {path} holds {names} and no kit run (no {manifest}), so the kit will not clear it or write into "
             "it; choose another output_dir, or move these away").format(path=repr(str(out)), names=_few(names), manifest=MANIFEST)
    if "training_args.yaml" in names:
        line += _(" (if it is a run of a kit version from before {manifest}, delete the folder yourself)").format(manifest=MANIFEST)
    return line


def _decide_without_manifest(cfg: Config, out: Path, names: list[str], deepspeed: bool,
                             resume: str | None = None) -> OutputDecision:
    """A folder no kit run wrote: never cleared; another tool's stopped run is resumed from only when that is safe.

    LLaMA-Factory resumes from output_dir's newest checkpoint; so does the kit, when that checkpoint is
    complete (resuming only reads it) and nothing at the top would be written over.
    """
    checkpoints = sorted((n for n in names if _step(out / n) >= 0 and (out / n).is_dir()), key=lambda n: _step(out / n))
    if resume and not checkpoints:
        raise ConfigError([_("resume_from_checkpoint: {value} but {path} holds no checkpoint-* folder that can be "
                             "resumed from").format(value=resume, path=repr(str(out)))])
    if (cfg.train.overwrite_output_dir and not resume) or not checkpoints:
        raise ConfigError([_not_empty(out, names)])
    newest = out / checkpoints[-1]
    problems = checkpoint_problems(newest, deepspeed)
    if problems:
        raise ConfigError([_("output_dir: {path} holds another tool's run (no {manifest}) whose newest checkpoint {checkpoint} "
                             "cannot be resumed from: {problems}; choose another output_dir (with resume_from_checkpoint: "
                             "an older checkpoint-N of it, if you want to continue that run)").format(
            path=repr(str(out)), manifest=MANIFEST, checkpoint=newest.name, problems="; ".join(problems))])
    _refuse_clashes(out, names, cfg, False, _step(newest))
    return OutputDecision(str(newest), keep=tuple(names), message=_(
        "resuming from {checkpoint}: {folder} holds another tool's run (no {manifest}) and overwrite_output_dir is false; "
        "the kit adds its own files there and removes none of these").format(checkpoint=newest, folder=out, manifest=MANIFEST))


def _is_within(inner: Path, outer: Path) -> bool:
    try:
        inner.resolve().relative_to(outer.resolve())
        return True
    except ValueError:
        return False


def check_output_place(cfg: Config, model_dir: Path | None, dataset_dir: Path | None) -> None:
    """Refuse an output_dir that would write into the base model, a dataset, the working or home folder."""
    out = Path(cfg.train.output_dir)
    protected = {_("the working directory"): Path.cwd(), _("the home directory"): Path.home(),
                 _("the filesystem root"): Path("/")}
    for what, place in protected.items():
        if out.resolve() == place.resolve():
            raise ConfigError([_("output_dir: {path} is {what}; training writes adapter, tokenizer and checkpoint files "
                                 "there. Give a folder of its own, e.g. saves/qwen/lora/sft").format(path=repr(str(out)), what=what)])
    for what, place in ((_("the model folder"), model_dir), (_("the dataset folder"), dataset_dir)):
        if place is not None and _is_within(place, out):
            raise ConfigError([_("output_dir: {path} is or contains {what} {place}; training would write tokenizer files "
                                 "and checkpoints into it. Give a folder of its own, e.g. saves/qwen/lora/sft").format(
                path=repr(str(out)), what=what, place=repr(str(place)))])


def prepare_output(cfg: Config, decision: OutputDecision, say: bool = True) -> None:
    """Apply the output decision (rank 0 only): remove what the last kit run's manifest lists, create the folder, and
    start this run's manifest (a resumed run keeps adding to the one it continues). ``say``: log the decision's
    line (false where the caller has shown it already)."""
    out = Path(cfg.train.output_dir)
    if decision.message and say:
        logger.info(decision.message)
    try:
        manifest = None if decision.remove else Manifest.read(out) if out.is_dir() else None
        for p in decision.remove:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        out.mkdir(parents=True, exist_ok=True)
        for p in out.glob(f".{MANIFEST}.*.tmp"):  # left by a run killed while it replaced its manifest
            p.unlink()
        manifest = manifest or Manifest(out)
        manifest.entries = set(manifest.existing())
        manifest.write()
    except (OSError, ValueError) as exc:  # a full disk, a permission changed since the checks, a manifest changed meanwhile
        raise ConfigError([_("output_dir: {path} could not be prepared ({error})").format(path=repr(str(out)), error=exc)]) from None
