"""The sandbox's mpac-obs app served in-process by uvicorn, on a loopback port of 26500-26599.

Shared by the sandbox-app tests and the AWS obs tests (there it plays Grafana): a real HTTP
server, no test client. Not a test module.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

PORTS = range(26500, 26600)


def free_port() -> socket.socket:
    """A socket bound to a free loopback port of the block (handed to uvicorn as is)."""
    ports = list(PORTS)
    random.shuffle(ports)
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        return sock
    raise RuntimeError("no free port in 26500-26599")


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """``with serve(app) as url``: the app answers at ``url`` inside the block."""
    sock = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="obs-app"
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "obs app did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
