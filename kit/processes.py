"""Children that end with the process that started them (Linux): the doctor's probes, the notebook's API server.

A child started in a session of its own (so a hang can be stopped with its whole group, and Ctrl+C in a terminal
reaches only the parent) is not stopped by anything when its parent dies without cleaning up: a crash, SIGKILL, a
kernel killed from outside. The kernel's parent-death signal covers that: asked for in the child before it runs
the program, it is sent when the thread that started the child ends.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, Callable


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], Any] | None:
    """A ``preexec_fn`` asking for ``sig`` when the starting thread ends; None where the system has no prctl.

    prctl is looked up here, in the parent: the child of a threaded process must not import or take locks before
    exec, and calling an already loaded C function does neither.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, number = 1, int(sig)
    return lambda: prctl(pr_set_pdeathsig, number)
