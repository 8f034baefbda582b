"""Notebooks as the kit runs them: where its own are, publishing values, executing with papermill.

Also what the notebooks' results are judged by (``failed_checks``: the checks a notebook reported as
failed) and the folders a person names for them (``KitFolder``: the record of what the kit wrote there,
and the lock that keeps a second kit process out), used by kit batch, kit demo and notebook 20's own data.

``kit.tutorial`` is the face of this module for notebooks and people (with ``kit.tutorial.batch``); ``kit.tutorial.demo``
and ``kit.tutorial.sweep`` use it directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from kit.errors import KitError
from kit.fmt import jsonable
from kit.i18n import _
from kit.library_text import read_problem

MIME = "application/vnd.kit.published+json"


class NotebookError(KitError):
    """A cell failed: ``cell`` is its execution count, ``error`` the exception as ``Name: message``."""

    def __init__(self, message: str, cell: int | None = None, error: str | None = None):
        super().__init__(message)
        self.cell = cell
        self.error = error


def publish(name: str, value: Any, show: bool = True) -> Any:
    """Record ``value`` under ``name`` in this cell's output (and show it, unless ``show`` is False)."""
    from IPython.display import display

    data = {MIME: {name: jsonable(value)}}
    if show:
        data["text/plain"] = f"{name} = {value!r}"
    display(data, raw=True)
    return value


def read(path: str | Path) -> dict[str, Any]:
    """Every value published in an executed notebook, later cells overriding earlier ones."""
    nb = _load(Path(path), _("executed notebook"))
    values: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {})
            if MIME in data:
                payload = data[MIME]
                values.update(json.loads(payload) if isinstance(payload, str) else payload)
    return values


def _load(path: Path, what: str) -> dict[str, Any]:
    """The notebook's JSON; a folder, an unreadable file or one that is no notebook is one message naming it."""
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.ipynb"))
        hint = _("; the notebooks in it: {names}").format(names=_few(inside)) if inside else _("; it holds no .ipynb file")
        raise NotebookError(_("{what} {path} is a folder, not a notebook: give the path of an .ipynb file").format(
            what=what, path=path) + hint)
    if path.exists() and not path.is_file():  # a FIFO would block the read below for ever
        raise NotebookError(_("{what} {path} is not a regular file (a device, a pipe or a socket); give an .ipynb file").format(
            what=what, path=path))
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotebookError(_("{what} {path} does not exist").format(what=what, path=path)) from None
    except OSError as exc:
        raise NotebookError(_("{what} {path} cannot be read ({error})").format(what=what, path=path, error=exc.strerror or exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(_("{what} {path} is not a Jupyter notebook (not notebook JSON: {error})").format(
            what=what, path=path, error=read_problem(exc))) from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(_("{what} {path} is not a Jupyter notebook (no list of cells)").format(what=what, path=path))
    return nb


def check_kernel(notebook: str | Path, kernel_name: str | None = None) -> str:
    """The Jupyter kernel papermill will start for ``notebook`` (``kernel_name``, else the notebook's own).

    Refused with one NotebookError, before anything runs, when the notebook names none or it is not
    installed here: papermill would fail every run of a sweep with NoSuchKernel, one traceback each.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    nb = _load(Path(notebook).expanduser(), _("notebook"))
    name = kernel_name or ((nb.get("metadata") or {}).get("kernelspec") or {}).get("name")
    manager = KernelSpecManager()
    installed = ", ".join(sorted(manager.find_kernel_specs())) or _("none")
    if not name:
        raise NotebookError(_("notebook {path} names no Jupyter kernel (no kernelspec in its metadata); choose one of the "
                              "kernels installed here: {names} (kit batch --kernel NAME)").format(path=notebook, names=installed))
    try:
        manager.get_kernel_spec(name)
    except NoSuchKernel:
        raise NotebookError(_("no Jupyter kernel named {name!r} is installed here (installed: {names}); choose one of them "
                              "(kit batch --kernel NAME), or install it").format(name=name, names=installed)) from None
    return name


def check_notebook(path: str | Path) -> Path:
    """``path`` when it is a notebook that can be read; else one NotebookError naming it (a folder, not JSON, ...)."""
    path = Path(path).expanduser()
    _load(path, _("notebook"))
    return path


def execute(notebook: str | Path, output: str | Path, parameters: Mapping[str, Any] | None = None,
            cwd: str | Path | None = None, kernel_name: str | None = None, timeout: int | None = None) -> dict[str, Any]:
    """Run ``notebook`` with papermill into ``output`` and return its published values.

    A failing cell raises NotebookError naming the notebook, the cell and the error; the executed
    notebook is kept at ``output`` for inspection.
    """
    import logging

    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.WARNING)  # its per-run INFO lines drown the kit's own
    output = Path(output).expanduser()
    check_notebook(notebook)
    check_kernel(notebook, kernel_name)
    if output.is_dir():
        raise NotebookError(_("output {path} is a folder; give the path of the executed notebook to write").format(path=output))
    if output.exists() and output.samefile(notebook):
        raise NotebookError(_("output {path} is the same file as the notebook: executing would replace it with its executed "
                              "copy; give another output path").format(path=output))
    check_folder(output.parent, _("output"))
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NotebookError(_("output {path} cannot be written ({error})").format(path=output, error=exc.strerror or exc)) from None
    try:
        with tempfile.TemporaryDirectory(prefix="kit-kernel-") as sockets, \
                open(Path(sockets) / "kernel.log", "w+b") as kernel_log:
            try:
                pm.execute_notebook(str(notebook), str(output), parameters=dict(parameters or {}),
                                    cwd=str(cwd) if cwd else None, kernel_name=kernel_name, progress_bar=False,
                                    execution_timeout=timeout, kernel_manager_class=_kernel_manager_class(kernel_log),
                                    **_kernel_config(Path(sockets)))
            except BaseException as exc:
                from kit.errors import Terminated

                # The kernel died or would not start: say what it said (not when a person stopped the run: the
                # kernel's log then holds only the interruption's own traceback).
                if not isinstance(exc, (pm.PapermillExecutionError, KeyboardInterrupt, Terminated)):
                    _show_tail(kernel_log)
                raise
    except pm.PapermillExecutionError as exc:
        raise NotebookError(_("{notebook}: cell {cell} failed with {error} (the executed notebook is kept at {output})").format(
            notebook=Path(notebook).name, cell=exc.exec_count, error=f"{exc.ename}: {exc.evalue}", output=output),
            exc.exec_count, f"{exc.ename}: {exc.evalue}") from None
    return read(output)


def _kernel_manager_class(log: Any) -> type:
    """nbclient's kernel manager, with the kernel's own standard error written to ``log`` instead of the terminal.

    A cell's output reaches the notebook either way (ipykernel sends it as messages). What the kernel process
    itself writes to its standard error does not: chiefly ipykernel's log, as "[IPKernelApp] ERROR |
    KeyboardInterrupt caught in kernel." when jupyter_client interrupts the idle kernel before shutting it down
    (now and then, under kit demo and kit batch), a line a person can do nothing about. ``execute`` shows the
    log's end when the kernel dies or does not start.
    """
    from jupyter_client import AsyncKernelManager

    class KernelManagerWithLog(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("stderr", log)
            await AsyncKernelManager.start_kernel(self, **kw)

    return KernelManagerWithLog


def _show_tail(log: Any, size: int = 4000) -> None:
    try:
        log.flush()
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - size))
        tail = log.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return
    if tail:
        print(_("the notebook's kernel wrote:") + "\n" + tail, file=sys.stderr)


def _kernel_config(sockets: Path | None = None) -> dict[str, Any]:
    """papermill's ``config`` keyword for the kernel it starts: its own socket files, and encrypted channels.

    Sockets: on TCP, jupyter_client picks five free ports and the kernel binds them a moment later; two notebooks
    starting at once (``kit batch`` on several cards, the tests' background runs) can pick the same port, and one
    kernel dies with "ZMQError: Address already in use". Given ``sockets``, a folder of this run's own, the kernel
    listens on Unix sockets in it instead (``transport = "ipc"``; Linux and macOS), so no two kernels can meet
    (jupyter_client's own default name for them, ``kernel-ipc-N`` in the current folder, is shared by every kernel
    started there). Where the folder's path would pass the 100-odd characters a socket's name may have, or on
    Windows, TCP as before.

    Encryption: a kernel on plain TCP says, on every start, "Kernel is running over TCP without encryption ...
    susceptible to eavesdropping" (ipykernel 7.4 here): on the kit's terminal, once per notebook. jupyter_client
    (8.10 here) provisions CurveZMQ keys when ``transport_encryption`` is "auto" and the kernelspec declares
    ``supported_encryption: curve`` (ipykernel's does). Older jupyter_client, or a pyzmq without CurveZMQ: as
    before (no config key another version would not know).
    """
    try:
        import zmq
        from jupyter_client.manager import KernelManager
        from traitlets.config import Config
    except ImportError:
        return {}
    settings: dict[str, Any] = {}
    if sockets is not None and os.name == "posix" and len(str(sockets.resolve())) + 8 < 104:  # <folder>/k-<n>: 107 allowed
        settings.update(transport="ipc", ip=str(sockets.resolve() / "k"))
    if KernelManager.class_traits().get("transport_encryption") and zmq.has("curve"):
        settings["transport_encryption"] = "auto"
    return {"config": Config({"KernelManager": settings})} if settings else {}


def notebook_dir() -> Path:
    """The notebooks ``kit demo`` runs (``en/``, ``zh/``).

    An installed wheel carries them as package data, ``kit/notebooks`` (setup.py maps the
    repository's ``notebooks/`` there, so git keeps one copy); an editable install or a checkout
    reads ``notebooks/`` at the repository root, next to the package.
    """
    packaged = Path(str(resources.files("kit") / "notebooks"))
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "notebooks"
    if checkout.is_dir():
        return checkout
    raise KitError(_("the tutorial notebooks are missing: neither {packaged} nor {checkout} exists; reinstall the kit").format(
        packaged=packaged, checkout=checkout))


# ---------------------------------------------------------------- checks a notebook reported

# The doctor's statuses (kit.doctor.report): a check that crashed is a "fail" there; "crashed" and "error"
# are read as failures too, for a notebook of a person's that says so in its own words.
CHECK_STATUSES = frozenset({"ok", "warn", "fail", "crashed", "error"})
FAILING = frozenset({"fail", "crashed", "error"})


def failed_checks(values: Mapping[str, Any]) -> list[str]:
    """What a notebook's published values say failed, one item per value: ``"cann_env, npu_smi (npu_steps)"``.

    The forms the kit's notebooks publish: a mapping of check name to status (notebook 10's ``npu_steps``),
    a doctor report as ``DoctorReport.to_dict()`` gives it, and a flag named ``*_ok`` (notebook 00's
    ``doctor_ok``), which is named itself, with the ``problems`` it published, only when no check is.
    A notebook that ran every cell but reported one of these did not do what it is for: kit batch
    counts the run as failed.
    """
    named: list[str] = []
    for name, value in values.items():
        if isinstance(value, Mapping) and isinstance(value.get("checks"), list):  # DoctorReport.to_dict()
            rows = [c for c in value["checks"] if isinstance(c, Mapping)]
            statuses = {str(c.get("name")): c.get("status") for c in rows}
        elif isinstance(value, Mapping) and value and all(isinstance(s, str) and s in CHECK_STATUSES for s in value.values()):
            statuses = dict(value)
        else:
            continue
        bad = [check for check, status in statuses.items() if status in FAILING]
        if bad:
            named.append(f"{', '.join(bad)} ({name})")
    if named:
        return named
    flags = [name for name, value in values.items() if name.endswith("_ok") and value is False]
    problems = values.get("problems")
    detail = _(" (problems: {names})").format(names=", ".join(map(str, problems))) if isinstance(problems, Mapping) and problems else ""
    return [_("{flag} is false").format(flag=flag) + detail for flag in flags]


# ---------------------------------------------------------------- a person's folder: what the kit wrote there

# A sweep's --out, notebook 20's own-data folder and a demo's run folder are folders a person names, and
# may hold their own files. The kit keeps a record there of what it wrote (a file's SHA-256, or a name
# whose content another writer fills: papermill's executed notebook, a run folder) and replaces only
# those, and only while they are as it left them; anything else is refused, naming it. One kit process
# at a time writes into such a folder (a lock file holding its pid), so two sweeps never run a run twice.
RECORD = "kit_files.json"
RECORD_FORMAT = 1
LOCK = ".kit_files.lock"
BY_NAME = ("dir", "file")  # a record entry without a hash: the kit's by name (another writer fills it)


class FolderError(KitError):
    """A folder a person named cannot be written as asked: what is wrong, which path, what to do."""


def _few(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (_(" and {n} more").format(n=len(names) - limit) if len(names) > limit else "")


def check_folder(path: str | Path, what: str) -> Path:
    """``path`` made absolute, refused before anything is written when no folder can be written there.

    A file at the path or on the way to it, a link to nothing, a folder this user may not write into:
    each is one message naming the path and what to do (the OS would raise FileExistsError,
    NotADirectoryError or PermissionError, part way through).
    """
    folder = Path(os.path.abspath(Path(path).expanduser()))
    if folder.exists() and not folder.is_dir():
        raise FolderError(_("{what}: {path} is a file, not a folder; give a folder (it is created when missing)").format(
            what=what, path=folder))
    if folder.is_symlink() and not folder.exists():
        raise FolderError(_("{what}: {path} is a link to {target}, which does not exist; give a folder").format(
            what=what, path=folder, target=os.readlink(folder)))
    nearest = folder
    while not nearest.exists() and nearest != nearest.parent:  # the part of the path that is there already
        nearest = nearest.parent
    if not nearest.is_dir():
        raise FolderError(_("{what}: {path} cannot be made: {file} is a file, not a folder; give a path made of folders").format(
            what=what, path=folder, file=nearest))
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise FolderError(_("{what}: {path} cannot be written: {folder} is not writable for this user; choose a folder you "
                            "can write to, or change its permissions").format(what=what, path=folder, folder=nearest))
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _relative(name: str) -> bool:
    """A record entry names something inside the folder, never a path that leads out of it."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and "\\" not in name and "\0" not in name and all(
        p not in ("", ".", "..") for p in parts) and name not in (RECORD, LOCK)


def _pid_in(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


class KitFolder:
    """A folder a person named, opened for the kit to write into: locked, with the record of what the kit wrote.

    ``with KitFolder.open(path, "--out") as folder:`` then ``folder.refuse_foreign([...])`` with every name
    the kit is about to write (before writing any), ``folder.write_files({name: text})``, ``folder.claim(name)``
    for what another writer fills. Names are relative paths with ``/``.
    """

    def __init__(self, path: Path, what: str, entries: dict[str, Any], lock_fd: int | None):
        self.path, self.what, self.entries, self._lock_fd = path, what, entries, lock_fd

    @classmethod
    def open(cls, path: str | Path, what: str, say: Callable[[str], None] = print, wait: float = 0.0) -> "KitFolder":
        """Create the folder if needed and lock it; ``wait`` seconds for another kit process to finish, else refused."""
        folder = check_folder(path, what)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FolderError(_("{what}: {path} cannot be created ({error}); choose another folder").format(
                what=what, path=folder, error=exc.strerror or exc)) from None
        fd = cls._lock(folder, what, say, wait)
        try:
            return cls(folder, what, cls._read_record(folder, what), fd)
        except BaseException:
            cls._unlock(folder, fd)
            raise

    # ------------------------------------------------------------ the lock
    @staticmethod
    def _lock(folder: Path, what: str, say: Callable[[str], None], wait: float) -> int:
        path = folder / LOCK
        deadline = time.monotonic() + wait
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as exc:
                raise FolderError(_("{what}: {path} cannot be written ({error}); choose a folder you can write to").format(
                    what=what, path=folder, error=exc.strerror or exc)) from None
            try:
                held = _flock(fd)
                holder = _pid_in(fd)
                if held is None:  # no flock on this filesystem: the pid in the file decides
                    held = not (holder and holder != os.getpid() and _alive(holder))
                # The holder may have removed the file between our open and our lock: lock the file that is there.
                if held and os.path.lexists(path) and os.fstat(fd).st_ino == os.lstat(path).st_ino:
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            if held:
                continue
            if time.monotonic() >= deadline:
                raise FolderError(_("{what}: another kit process (pid {pid}) is writing into {path} now; wait for it to "
                                    "finish, or choose another folder").format(what=what, pid=holder or "?", path=folder))
            time.sleep(0.2)
        if holder and holder != os.getpid():  # a clean end removes the file: this one's owner was killed
            say(_("{what}: taking over the lock in {path} left by process {pid}, which ended without releasing it").format(
                what=what, path=folder, pid=holder))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    @staticmethod
    def _unlock(folder: Path, fd: int | None) -> None:
        if fd is None:
            return
        # Removed before it is closed: a process waiting on this file then sees it gone and locks a new one.
        with contextlib.suppress(OSError):
            os.unlink(folder / LOCK)
        os.close(fd)

    def close(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        self._unlock(self.path, fd)

    def __enter__(self) -> "KitFolder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ the record
    @staticmethod
    def _read_record(folder: Path, what: str) -> dict[str, Any]:
        path = folder / RECORD
        if not os.path.lexists(path):
            return {}
        try:
            if path.is_symlink() or not path.is_file():
                raise ValueError(_("not a plain file"))
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data.get("entries") if isinstance(data, dict) else None
            if (not isinstance(data, dict) or data.get("kit_files") != RECORD_FORMAT or not isinstance(entries, dict)
                    or not all(_relative(k) and (v in BY_NAME or (isinstance(v, list) and all(isinstance(h, str) for h in v)))
                               for k, v in entries.items())):
                # A hand-edited entry such as "../x" would let the kit write outside the folder.
                raise ValueError(_("not a record of format {format} naming files inside the folder").format(format=RECORD_FORMAT))
        except (OSError, ValueError) as exc:
            raise FolderError(_("{what}: {path} has a {record} the kit cannot read ({error}), so it cannot tell which files there "
                                "are its own; choose another folder").format(what=what, path=folder, record=RECORD, error=exc)) from None
        return entries

    def _save_record(self) -> None:
        text = json.dumps({"kit_files": RECORD_FORMAT, "entries": dict(sorted(self.entries.items()))}, indent=1) + "\n"
        self._replace(RECORD, text.encode("utf-8"))

    def _replace(self, name: str, data: bytes) -> None:
        """Written whole under a temporary name, then renamed: a kill or a reader never sees half a file."""
        target = self.path / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a results table from the person's group
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise FolderError(_("{what}: {path} could not be written ({error})").format(
                what=self.what, path=target, error=exc.strerror or exc)) from None

    # ------------------------------------------------------------ what the kit may write
    def foreign(self, names: Iterable[str]) -> tuple[list[str], list[str]]:
        """(names there that the kit did not write, names it wrote that were changed since)."""
        theirs: list[str] = []
        changed: list[str] = []
        for name in names:
            parts = name.split("/")
            for i in range(1, len(parts)):  # a folder on the way must be a folder, not a file or a link out
                part = self.path.joinpath(*parts[:i])
                if os.path.lexists(part) and (part.is_symlink() or not part.is_dir()) and "/".join(parts[:i]) not in theirs:
                    theirs.append("/".join(parts[:i]))
            path = self.path / name
            if not os.path.lexists(path):
                continue
            kind = self.entries.get(name)
            if kind is None:
                theirs.append(name)
            elif path.is_symlink() or not (path.is_dir() if kind == "dir" else path.is_file()):
                changed.append(name)
            elif isinstance(kind, list) and _sha256(path) not in kind:
                changed.append(name)
        return theirs, changed

    def refuse_foreign(self, names: Iterable[str]) -> None:
        """Refuse, naming them, when any of ``names`` is there and is not as the kit wrote it; nothing is written."""
        theirs, changed = self.foreign(names)
        lines = []
        if theirs:
            lines.append(_("{what}: {path} holds {names}, which the kit did not write there (not in its {record}); it will not "
                           "replace them: move them away or choose another folder").format(
                what=self.what, path=self.path, names=_few(theirs), record=RECORD))
        if changed:
            lines.append(_("{what}: {names} in {path} changed since the kit wrote them; it will not replace your changes: move "
                           "them away or choose another folder (or delete them to let the kit write them again)").format(
                what=self.what, path=self.path, names=_few(changed)))
        if lines:
            raise FolderError("\n".join(lines))

    def claim(self, name: str, kind: str = "file") -> Path:
        """Record ``name`` as the kit's before another writer (papermill, a notebook) fills it; ``kind`` "dir" makes it."""
        if self.entries.get(name) != kind:
            self.entries[name] = kind
            self._save_record()
        path = self.path / name
        try:
            (path if kind == "dir" else path.parent).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FolderError(_("{what}: {path} could not be written ({error})").format(
                what=self.what, path=path, error=exc.strerror or exc)) from None
        return path

    def write_files(self, files: Mapping[str, str]) -> None:
        """Write (or replace) these files; the record names each before it is written, so a kill never orphans one."""
        data = {name: text.encode("utf-8") for name, text in files.items()}
        digests = {name: hashlib.sha256(raw).hexdigest() for name, raw in data.items()}
        for name, digest in digests.items():  # while writing, both the old and the new content are the kit's
            old = self.entries.get(name)
            self.entries[name] = (old[-1:] if isinstance(old, list) else []) + [digest]
        self._save_record()
        for name, raw in data.items():
            self._replace(name, raw)
            self.entries[name] = [digests[name]]
        self._save_record()


def _flock(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: this system or filesystem has no flock."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP: some network filesystems
        return None
    return True
