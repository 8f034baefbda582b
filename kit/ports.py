"""A free TCP port, for an in-process DeepSpeed run's MASTER_PORT and for test servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    The port is released before the caller binds it, so another process could take it in between;
    ``kit train`` therefore lets torchrun pick and hold its own port (``--standalone``) and uses
    this only where no launcher is involved.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
