"""Free TCP ports for the tests' servers that no other pytest-xdist worker can be handed at the same time."""
from __future__ import annotations

import itertools
import os
import socket
import threading

# Below Linux's ephemeral range (32768-60999), so no bind to port 0 and no outgoing connection lands on one of these
# between our check and the server's own bind; each xdist worker owns its own slice, so workers never race either
# (chatline.procfile.free_port asks the kernel for port 0, which any other process may be handed next).
FIRST_PORT, SLICE = 20000, 1000
_lock = threading.Lock()


def _worker_index() -> int:
    """0 without xdist; n for worker "gwn"."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker[2:].isdigit() else 0


_start = FIRST_PORT + SLICE * (_worker_index() % 12)
_ports = itertools.cycle(range(_start, _start + SLICE))


def free_port() -> int:
    """The next port of this worker's slice that nothing listens on right now."""
    with _lock:
        for _ in range(SLICE):
            port = next(_ports)
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port in {_start}-{_start + SLICE - 1}")
