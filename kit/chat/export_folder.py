"""Where ``kit export`` writes: checks made before any work, the marker listing what an export wrote, the swap.

The promise: an export never overwrites or removes a file it did not write. A new or empty folder is
written; an earlier export of the kit's is replaced only when it still holds nothing but the files
its marker (kit_export.json) lists; anything else is refused with the names of the files in the way.
The operating system's refusals (a path through a file, no permission, a full disk) become one
ExportError naming the path and what to do, and the staging folder is removed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.i18n import _

logger = logging.getLogger("kit.export")

# Written into every export, listing the files the export wrote: the only files the kit ever replaces.
EXPORT_MARKER = "kit_export.json"
_SHOWN = 8  # foreign files named in a refusal; the rest are counted


class ExportError(KitError):
    pass


def _files(folder: Path) -> list[str]:
    """Every file and link under ``folder`` as a relative POSIX path (empty folders too, as ``name/``)."""
    out: list[str] = []
    for root, dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out += [(rel / n).as_posix() for n in names]
        out += [(rel / d).as_posix() for d in dirs if Path(root, d).is_symlink()]  # a link is not walked into
        if not dirs and not names and root != str(folder):
            out.append(rel.as_posix() + "/")
    return sorted(out)


def _listed_files(export_dir: Path) -> list[str] | None:
    """The files an earlier export's marker says it wrote, or None when the marker does not say."""
    try:
        data = json.loads((export_dir / EXPORT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) and _inside(f) for f in files):
        return None  # an entry such as "../x" or "/home/x" (edited, or a copied marker) would reach outside the folder
    return files


def _inside(rel: str) -> bool:
    """A path the marker may list: relative, and staying inside the export folder (a trailing / marks a folder)."""
    parts = rel.rstrip("/").split("/")
    return bool(rel.rstrip("/")) and "\\" not in rel and "\0" not in rel and all(p not in ("", ".", "..") for p in parts)


def _name_some(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown if len(names) <= _SHOWN else _("{shown} and {more} more").format(shown=shown, more=len(names) - _SHOWN)


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if os.path.lexists(parent):
            return parent
    return Path(path.anchor or ".")


def check_export_dir(export_dir: Path, replace_earlier_export: bool = False) -> list[str] | None:
    """None when ``export_dir`` is new or empty; an earlier export's files when it may replace them; else ExportError.

    Called before the model is loaded (so a folder that cannot be written costs seconds, not the
    minutes of a merge) and again just before the new export takes the folder's place.
    """
    path = str(export_dir)
    if export_dir.exists() and not export_dir.is_dir():
        raise ExportError(_("export_dir: {path!r} is a file; give a folder that does not exist yet").format(path=path))
    if not export_dir.exists():
        # The folders up to it are created, and the export is staged beside it: the nearest existing
        # folder must be a folder we may write in.
        ancestor = _existing_ancestor(export_dir)
        if not ancestor.is_dir():
            raise ExportError(_("export_dir: {path!r} runs through {file!r}, which is a file, not a folder; choose an "
                                "export_dir whose folders are folders (or move the file)").format(path=path, file=str(ancestor)))
    else:
        ancestor = export_dir.parent
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ExportError(_("export_dir: no permission to write in {folder!r} (the export is written there first, then "
                            "moved into {path!r}); choose an export_dir in a folder you can write").format(
            folder=str(ancestor), path=path))
    if not export_dir.is_dir() or not any(export_dir.iterdir()):
        return None
    if not (export_dir / EXPORT_MARKER).is_file():
        why = _(" (it is not an export the kit wrote: no kit_export.json in it)") if replace_earlier_export else ""
        raise ExportError(_("export_dir: {path!r} exists and is not empty{why}; choose a new folder "
                            "(the kit does not overwrite a folder it did not write)").format(path=path, why=why))
    if not replace_earlier_export:
        raise ExportError(_("export_dir: {path!r} holds an earlier kit export; choose a new folder, or pass "
                            "--replace_earlier_export to replace it").format(path=path))
    listed = _listed_files(export_dir)
    if listed is None:
        raise ExportError(_("export_dir: {path!r} has a kit_export.json that does not list the files the export wrote "
                            "(an older kit's, or edited), so the kit cannot tell its files from yours; choose a new folder, "
                            "or empty this one yourself").format(path=path))
    foreign = sorted(set(_files(export_dir)) - set(listed) - {EXPORT_MARKER})
    if foreign:
        raise ExportError(_("export_dir: {path!r} holds an earlier kit export, but also files the export did not write: "
                            "{names}. The kit replaces only what it wrote; move those files elsewhere, or choose a new "
                            "folder").format(path=path, names=_name_some(foreign)))
    return listed


def write_marker(staging: Path, info: dict[str, Any]) -> None:
    """The marker: where the export came from, and every file it wrote (what a later export may replace)."""
    (staging / EXPORT_MARKER).write_text(json.dumps({**info, "files": _files(staging)}, indent=1, ensure_ascii=False) + "\n",
                                         encoding="utf-8")


def put_in_place(staging: Path, export_dir: Path, earlier: list[str] | None) -> None:
    """Move the finished export from ``staging`` to ``export_dir``; remove only the earlier export's listed files."""
    if earlier is None:
        if export_dir.is_dir():
            export_dir.rmdir()  # empty, as just checked; fails rather than delete anything that arrived since
        os.replace(staging, export_dir)
        return
    # The earlier export steps aside whole, the new one takes its name: at no moment is the folder half of each.
    old_root = Path(_mkdtemp(export_dir, "old"))
    old = old_root / export_dir.name
    os.replace(export_dir, old)
    os.replace(staging, export_dir)
    _remove_listed(old, earlier + [EXPORT_MARKER], export_dir)
    try:
        old_root.rmdir()
    except OSError:
        logger.warning(_("files that appeared in {path} during the export were kept in {old}").format(
            path=export_dir, old=old))


def _remove_listed(old: Path, listed: list[str], export_dir: Path) -> None:
    """Delete the listed files of the earlier export; anything else (a file added meanwhile) goes back beside the new one."""
    for rel in listed:
        target = old / rel.rstrip("/")
        if rel.endswith("/") or not _inside(rel):
            continue
        parts = Path(rel).parts
        if any((old / Path(*parts[:i])).is_symlink() for i in range(1, len(parts))):
            continue  # a folder on the way was replaced by a link: what it points to is not the export's
        if target.is_symlink() or target.is_file():
            target.unlink()
    for root, dirs, _names in os.walk(old, topdown=False):
        for d in dirs:
            try:
                Path(root, d).rmdir()  # only empty ones: a person's file keeps its folder
            except OSError:
                pass
    for leftover in list(old.iterdir()):
        destination = export_dir / leftover.name
        if not os.path.lexists(destination):
            os.replace(leftover, destination)
    try:
        old.rmdir()
    except OSError:
        pass  # something could not go back (its name is taken by the new export): the caller says where it is


def _mkdtemp(export_dir: Path, kind: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=f".{export_dir.name}.{kind}-", dir=export_dir.parent)


def make_staging(export_dir: Path) -> Path:
    """A hidden folder beside ``export_dir`` (same disk, so the final rename is instant and atomic).

    It becomes the export folder, so it gets a folder's usual permissions (mkdtemp makes it private, 0700):
    others, a vLLM server's account say, read an exported model as they read any other folder there.
    """
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(_mkdtemp(export_dir, "partial"))
    mask = os.umask(0)
    os.umask(mask)
    staging.chmod(0o777 & ~mask)
    return staging


def remove_staging(staging: Path | None) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


def check_free_space(export_dir: Path, needed_bytes: int) -> None:
    """Refuse at once when the disk cannot hold the export (rather than fail after writing most of it)."""
    folder = export_dir if export_dir.is_dir() else _existing_ancestor(export_dir)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # unknown: the write itself will say
    if needed_bytes > free:
        raise ExportError(_("export_dir: the export needs about {needed} but the disk of {path!r} has {free} free; free "
                            "space there or choose an export_dir on another disk").format(
            needed=_gb(needed_bytes), free=_gb(free), path=str(export_dir)))


def _gb(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**27 else f"{n / 2**20:.1f} MB"


def os_error(exc: OSError, export_dir: Path, needed_bytes: int | None = None) -> ExportError:
    """One message for an OSError met while writing the export: the path, what happened, what to do."""
    path = str(export_dir)
    where = exc.filename or path
    if f".{export_dir.name}.partial-" in str(where):  # the hidden staging folder: name the folder a person chose
        where = export_dir.parent
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        need = _(" (it needs about {needed})").format(needed=_gb(needed_bytes)) if needed_bytes else ""
        return ExportError(_("export_dir: no space left on the disk of {path!r} while writing the export{need}; nothing "
                             "was left half-written. Free space there or choose an export_dir on another disk").format(
            path=path, need=need))
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ExportError(_("export_dir: permission denied writing {where!r}; nothing was written to {path!r}. Choose "
                             "an export_dir in a folder you can write").format(where=str(where), path=path))
    if exc.errno == errno.EROFS:
        return ExportError(_("export_dir: {where!r} is on a read-only file system; choose an export_dir on a disk you "
                             "can write").format(where=str(where)))
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return ExportError(_("export_dir: {where!r} is in the way of {path!r} (a file where a folder should be); choose "
                             "another export_dir").format(where=str(where), path=path))
    return ExportError(_("export_dir: could not write the export to {path!r}: {error}; nothing was left half-written").format(
        path=path, error=exc.strerror or exc))
