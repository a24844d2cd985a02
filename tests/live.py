"""A real server on a loopback port: the app under uvicorn, configured as ``rcm serve`` configures it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from litestar import Litestar

from rcm.surface import server_config


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: Litestar, *, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` in a thread with its own event loop (lifespan on); yields the base URL. ``port``: one
    picked beforehand (an app whose settings name its own URL, as the browser login's redirect URI does)."""
    port = port or free_port()
    server = uvicorn.Server(
        server_config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    # uvicorn installs signal handlers only on the main thread, so running it in a thread is safe.
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
