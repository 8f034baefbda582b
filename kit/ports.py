"""TCP ports: a free one (an in-process DeepSpeed run's MASTER_PORT, test servers), and whether a given one is free."""

from __future__ import annotations

import errno
import socket

from kit.errors import KitError
from kit.i18n import _


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    The port is released before the caller binds it, so another process could take it in between;
    ``kit train`` therefore lets torchrun pick and hold its own port (``--standalone``) and uses
    this only where no launcher is involved.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bind_error(port: int, host: str = "") -> OSError | None:
    """Why a server could not listen on ``port`` here now (None: it could), found by binding it for a moment.

    SO_REUSEADDR as torch's TCPStore sets it, so a port a finished run left in TIME_WAIT counts as free;
    binding every address ("") fails when any process listens on the port, on loopback or elsewhere.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def in_use(error: OSError) -> bool:
    return error.errno == errno.EADDRINUSE


class PortUnavailable(KitError):
    """MASTER_PORT, as the person gave it, cannot be listened on here."""


def require_free_port(port: int) -> None:
    """Refuse a MASTER_PORT this machine cannot listen on, naming it, before torchrun or DeepSpeed fail on it."""
    error = bind_error(port)
    if error is None:
        return
    if in_use(error):
        raise PortUnavailable(_("MASTER_PORT={port} is already in use on this machine (another training run or program "
                                "listens on it); set MASTER_PORT to a free port, e.g. {free}, or leave it unset on a single "
                                "node and a free one is picked").format(port=port, free=free_port()))
    raise PortUnavailable(_("MASTER_PORT={port} cannot be listened on here ({error}); set MASTER_PORT to a free port "
                            "above 1024, e.g. {free}").format(port=port, error=error.strerror or error, free=free_port()))
