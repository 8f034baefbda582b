"""Dataset files found and read: where a ``file_name`` leads, what is there, and its text as JSON records.

``file_name`` is joined to the dataset folder as LLaMA-Factory joins it, so ``..``, an absolute
path and symbolic links are followed: a person may keep a big file elsewhere and link to it, and
LLaMA-Factory reads such files too. The kit reads them as well, but never unseen: every file read
from outside the dataset folder is named, with its real path, on the same logger as the run's data
line (``announce``). What is not a regular file is refused before it is opened (a FIFO blocks the
open, /dev/zero or /dev/urandom never end), and a folder is read as LLaMA-Factory reads one: its
files, here its ``.json`` and ``.jsonl`` files, the others named as skipped.

Parsing has limits a person can hit: a file larger than the memory it needs, JSON nested deeper
than Python's recursion limit, a number too long to convert, bytes that are not UTF-8, a JSON Lines
line that is not an object. Each is a DataError naming the dataset, the file and, where known, the
line or example.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from kit.data.errors import DataError, a_kind
from kit.fmt import size as fmt_size
from kit.i18n import _
from kit.library_text import json_problem

# The run's data line is logged on kit.run.plan (kit train, kit preprocess and the notebooks all show
# that logger), so the lines saying which files were read from where go to the same place.
notice = logging.getLogger("kit.run.plan")

FILE_SUFFIXES = (".json", ".jsonl")
# Reading a file needs at least its bytes and its decoded text in memory at once; the records
# parsed from it need more. A file whose size times this exceeds the available memory cannot be read.
MEMORY_FACTOR = 2


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in a person's words."""
    if stat.S_ISDIR(mode):
        return _("a folder")
    if stat.S_ISFIFO(mode):
        return _("a named pipe (FIFO)")
    if stat.S_ISCHR(mode):
        return _("a character device")
    if stat.S_ISBLK(mode):
        return _("a block device")
    if stat.S_ISSOCK(mode):
        return _("a socket")
    return _("not a regular file")


def _not_regular(what: str, path: Path, mode: int) -> DataError:
    return DataError(_("{what}: {path} is {kind}, not a regular file; the kit reads only regular files (JSON or JSONL), "
                       "so check file_name in dataset_info.json").format(what=what, path=path, kind=_kind(mode)))


def _stat(what: str, path: Path, registry: Path | None = None) -> os.stat_result:
    """``os.stat`` (links followed) of a path a person named, its failures as DataError."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        where = _(" (file_name in {registry})").format(registry=registry) if registry is not None else ""
        if os.path.islink(path):
            raise DataError(_("{what}: {path} is a symbolic link to {target}, which does not exist{where}").format(
                what=what, path=path, target=os.readlink(path), where=where)) from None
        raise DataError(_("{what}: file {path} does not exist{where}").format(what=what, path=path, where=where)) from None
    except OSError as exc:  # permission denied, a loop of links, a name too long
        raise DataError(_("{what}: {path} cannot be read ({error})").format(what=what, path=path, error=exc.strerror or exc)) from None


@dataclass(frozen=True)
class DatasetFiles:
    """Where a dataset's ``file_name`` leads: the files that will be read, and what a person should be told."""

    name: str
    path: Path  # dataset_dir / file_name, as LLaMA-Factory joins them
    files: tuple[Path, ...]  # one file, or a folder's .json and .jsonl files
    skipped: tuple[str, ...] = ()  # a folder's entries that are not .json or .jsonl files
    outside: tuple[tuple[Path, Path], ...] = ()  # (path, real path) of each file read from outside dataset_dir


def _outside(path: Path, base: Path) -> Path | None:
    """The real path of ``path`` when it is not inside ``base`` (already resolved); None when inside."""
    real = path.resolve()
    return None if real == base or base in real.parents else real


def locate(name: str, file_name: str, dataset_dir: Path) -> DatasetFiles:
    """The files dataset ``name`` reads; DataError for what cannot be read (nothing is opened here).

    A folder gives its ``.json`` / ``.jsonl`` entries, in name order; each must be a regular file.
    """
    what = _("dataset {name!r}").format(name=name)
    registry = dataset_dir / "dataset_info.json"
    path = dataset_dir / file_name
    mode = _stat(what, path, registry).st_mode
    base = dataset_dir.resolve()
    if path.resolve() == base:
        # file_name "" or "." would read the dataset folder itself, dataset_info.json included, as data.
        raise DataError(_("{what}: file_name {file_name!r} in {registry} names the dataset folder itself; "
                          "give the name of the data file").format(what=what, file_name=file_name, registry=registry))
    skipped: list[str] = []
    if stat.S_ISDIR(mode):
        try:
            entries = sorted(path.iterdir())
        except OSError as exc:
            raise DataError(_("{what}: {path} cannot be read ({error})").format(what=what, path=path, error=exc.strerror or exc)) from None
        files = [p for p in entries if p.suffix in FILE_SUFFIXES]
        skipped = [p.name for p in entries if p.suffix not in FILE_SUFFIXES]
        if not files:
            raise DataError(_("dataset {name!r}: folder {path} has no .json or .jsonl files").format(name=name, path=path))
        for f in files:
            f_mode = _stat(what, f).st_mode
            if not stat.S_ISREG(f_mode):
                raise _not_regular(what, f, f_mode)
    elif stat.S_ISREG(mode):
        if path.suffix not in FILE_SUFFIXES:
            raise DataError(_("dataset {name!r}: {path} is not a .json or .jsonl file (the kit reads JSON and JSONL)").format(
                name=name, path=path))
        files = [path]
    else:
        raise _not_regular(what, path, mode)
    outside = tuple((f, real) for f in files if (real := _outside(f, base)) is not None)
    return DatasetFiles(name, path, tuple(files), tuple(skipped), outside)


def announce(found: DatasetFiles, dataset_dir: Path) -> None:
    """Say which files are read from outside the dataset folder, and which folder entries are skipped."""
    for path, real in found.outside:
        notice.warning(_("dataset {name!r}: reading {real}, outside the dataset folder {folder} (file_name leads to {path})").format(
            name=found.name, real=real, folder=dataset_dir.resolve(), path=path))
    if found.skipped:
        notice.warning(_("dataset {name!r}: folder {path}: reading {files}; skipping {skipped} (not .json or .jsonl)").format(
            name=found.name, path=found.path, files=", ".join(f.name for f in found.files), skipped=", ".join(found.skipped)))


def read_bytes(what: str, path: Path) -> bytes:
    """A regular file's bytes; DataError for anything else, or for a file larger than the memory it needs.

    Checked with ``stat`` before opening (opening a device can have effects), then opened without
    blocking (a FIFO swapped in meanwhile would otherwise block the open) and checked again.
    """
    mode = _stat(what, path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_regular(what, path, mode)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DataError(_("{what}: {path} cannot be read ({error})").format(what=what, path=path, error=exc.strerror or exc)) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(what, path, st.st_mode)
        available = available_memory()
        if available is not None and st.st_size * MEMORY_FACTOR > available:
            raise DataError(_("{what}: {path} is {size}; reading it needs at least {needed} of memory and {available} is "
                              "available. Use a smaller file (e.g. its first lines: head -n 100000 big.jsonl > part.jsonl) "
                              "or a machine with more memory").format(
                what=what, path=path, size=fmt_size(st.st_size), needed=fmt_size(st.st_size * MEMORY_FACTOR),
                available=fmt_size(available)))
        try:
            return fh.read()
        except MemoryError:
            raise DataError(_("{what}: {path} ({size}) does not fit in memory; use a smaller file").format(
                what=what, path=path, size=fmt_size(st.st_size))) from None


def decode(raw: bytes, path: Path, what: str) -> str:
    """UTF-8 text; a byte-order mark (which Windows editors write) is dropped, as JSON wants."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(_("{what}: {path} is UTF-16 text, not UTF-8; save it as UTF-8 (in most editors: Save As, "
                          "encoding UTF-8) and run again").format(what=what, path=path))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(_("{what}: {path} is not UTF-8 text (byte {byte}, line {line}: {value!r}); save it as UTF-8 "
                          "(e.g. iconv -f GBK -t UTF-8 in.json > out.json for a GBK file) and run again").format(
                            what=what, path=path, byte=exc.start, line=line, value=raw[exc.start:exc.start + 1])) from None


def read_text(path: Path, what: str) -> str:
    return decode(read_bytes(what, path), path, what)


def parse_json(text: str, path: Path, what: str, line: int | None = None) -> Any:
    """``json.loads``, every way it can fail as a DataError naming the file (and the line, for JSON Lines).

    Besides invalid JSON: nesting deeper than the recursion limit (RecursionError), an integer of
    more than 4300 digits (ValueError since Python 3.11), and running out of memory.
    """
    at = _(" line {line}").format(line=line) if line is not None else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if line is not None:
            raise DataError(_("{what}: {path} line {line} is not valid JSON ({error})").format(
                what=what, path=path, line=line, error=json_problem(exc, position=False))) from None
        raise DataError(_("{what}: {path} is not valid JSON (line {line}, column {column}: {error})").format(
            what=what, path=path, line=exc.lineno, column=exc.colno, error=json_problem(exc, position=False))) from None
    except RecursionError:
        raise DataError(_("{what}: {path}{at} nests lists or objects too deeply to be read (more than about {depth} levels); "
                          "an example is an object of text columns, so the file is damaged or not a dataset").format(
            what=what, path=path, at=at, depth=1000)) from None
    except MemoryError:
        raise DataError(_("{what}: {path}{at} does not fit in memory once parsed; use a smaller file").format(
            what=what, path=path, at=at)) from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise DataError(_("{what}: {path}{at} cannot be read as JSON ({error})").format(
            what=what, path=path, at=at, error=str(exc)[:200])) from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines of JSON Lines text, split at "\\n" only, one at a time.

    Not ``str.splitlines``: that also splits at U+2028, U+2029 and U+0085, which JSON allows raw inside
    a string, so a valid line holding one would be cut in two (the ``datasets`` reader splits at "\\n").
    One line at a time, so a big file's text is not held twice (once whole, once as a list of lines).
    """
    start, n = 0, 1
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end]
        if line.strip():
            yield n, line
        start, n = end + 1, n + 1


def _not_an_example(what: str, path: Path, where: str, value: Any) -> DataError:
    return DataError(_("{what}: {path} {where} is {a_kind}, not an object with columns; each example is an object "
                       "such as {{\"instruction\": ..., \"output\": ...}}").format(what=what, path=path, where=where, a_kind=a_kind(value)))


def read_file_records(path: Path, name: str) -> list[dict[str, Any]]:
    """The examples in one .json or .jsonl file, each checked to be an object."""
    what = _("dataset {name!r}").format(name=name)
    text = read_text(path, what)
    records: list[Any]
    if path.suffix == ".jsonl":
        records = []
        for n, line in _lines(text):
            record = parse_json(line, path, what, n)
            if not isinstance(record, dict):
                raise _not_an_example(what, path, _("line {line}").format(line=n), record)
            records.append(record)
        return records
    try:
        data = parse_json(text, path, what)
    except DataError as first:
        # LLaMA-Factory (through `datasets`) also accepts JSON Lines in a .json file.
        try:
            lines = [(n, json.loads(line)) for n, line in _lines(text)]
        except (ValueError, RecursionError, MemoryError):
            raise first from None
        for n, record in lines:
            if not isinstance(record, dict):
                raise _not_an_example(what, path, _("line {line}").format(line=n), record) from None
        return [record for _n, record in lines]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(_("dataset {name!r}: {path} must hold a list of examples").format(name=name, path=path))
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            raise _not_an_example(what, path, _("example {index}").format(index=i), record)
    return data


def read_records(path: Path, name: str) -> list[dict[str, Any]]:
    """Every example at ``path``: a .json / .jsonl file, or a folder of them read in name order."""
    if path.is_dir():
        entries = sorted(p for p in path.iterdir() if p.suffix in FILE_SUFFIXES)
        if not entries:
            raise DataError(_("dataset {name!r}: folder {path} has no .json or .jsonl files").format(name=name, path=path))
    else:
        entries = [path]
    records: list[dict[str, Any]] = []
    for f in entries:
        if f.suffix not in FILE_SUFFIXES:
            raise DataError(_("dataset {name!r}: {path} is not a .json or .jsonl file (the kit reads JSON and JSONL)").format(
                name=name, path=f))
        records.extend(read_file_records(f, name))
    return records
