"""The kernels kit.tutorial.values.execute starts: several at once never meet on a port (kit batch, the tests)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from kit.tutorial import values


def _notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import kit.tutorial\nfrom ipykernel.kernelapp import IPKernelApp\n"
        "kit.tutorial.publish('transport', IPKernelApp.instance().transport)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.notebook
@pytest.mark.skipif(os.name != "posix", reason="Unix sockets only on Linux and macOS")
def test_kernels_started_together_each_listen_on_their_own_sockets(tmp_path):
    """On TCP, two kernels starting at once could pick the same free port and one died with "ZMQError: Address
    already in use"; on Unix sockets named after each kernel's own connection file they cannot meet."""
    nb = _notebook(tmp_path / "t.ipynb")
    # in processes of their own, as kit batch runs them (papermill is not made for threads)
    with ProcessPoolExecutor(4, mp_context=get_context("spawn")) as pool:
        got = list(pool.map(values.execute, [nb] * 4, [tmp_path / f"out{i}.ipynb" for i in range(4)]))
    assert got == [{"transport": "ipc"}] * 4


def test_a_deep_socket_folder_keeps_tcp(tmp_path):
    """A socket's name may have about 107 characters: in a folder too deep for them, TCP as before."""
    deep = tmp_path / ("x" * 100)
    assert values._kernel_config(deep).get("config", {}).get("KernelManager", {}).get("transport", "tcp") == "tcp"
    assert values._kernel_config().get("config", {}).get("KernelManager", {}).get("transport", "tcp") == "tcp"
    short = values._kernel_config(Path("/tmp/kit-kernel-x"))["config"]["KernelManager"]
    assert (short["transport"], short["ip"]) == ("ipc", "/tmp/kit-kernel-x/k")


def _raw_stderr_notebook(path: Path, source: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.notebook
def test_the_kernels_own_stderr_stays_off_the_terminal_unless_it_dies(tmp_path, capfd):
    """What the kernel process writes to its own standard error (ipykernel's "[IPKernelApp] ERROR | KeyboardInterrupt
    caught in kernel." when it is interrupted before shutdown, under kit demo now and then) is not the person's
    terminal; when the kernel dies, its last words are."""
    quiet = _raw_stderr_notebook(tmp_path / "q.ipynb", "import os\nos.write(2, b'RAW KERNEL STDERR\\n')\nprint('a cell output')")
    assert values.execute(quiet, tmp_path / "q.out.ipynb") == {}
    assert "RAW KERNEL STDERR" not in capfd.readouterr().err
    assert "a cell output" in (tmp_path / "q.out.ipynb").read_text(encoding="utf-8")  # cell output reaches the notebook

    dying = _raw_stderr_notebook(tmp_path / "d.ipynb", "import os\nos.write(2, b'LAST WORDS\\n')\nos._exit(3)")
    with pytest.raises(Exception, match="[Dd]ied"):
        values.execute(dying, tmp_path / "d.out.ipynb")
    err = capfd.readouterr().err
    assert "the notebook's kernel wrote:" in err and "LAST WORDS" in err
