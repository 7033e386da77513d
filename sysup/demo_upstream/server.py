"""Serve a generated tree over HTTP like a static mirror: ETag, Last-Modified and 304 on conditional requests.

``serve_tree`` blocks (the CLI); ``running_upstream`` runs the same server in a background thread and
yields its base URL (tests and the demo).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

__all__ = ["create_app", "running_upstream", "serve_tree"]

#: How long ``running_upstream`` waits for the server to accept connections.
STARTUP_TIMEOUT = 10.0


def create_app(root: Path) -> Starlette:
    """An ASGI app serving the files below ``root`` (dot files such as ``.versions.json`` included)."""
    return Starlette(routes=[Mount("/", app=StaticFiles(directory=Path(root), html=False))])


def _config(root: Path, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(root), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )


def serve_tree(root: Path, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve ``root`` until interrupted."""
    uvicorn.Server(_config(root, host, port)).run()


@contextmanager
def running_upstream(root: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``root`` in a background thread; yields ``http://host:port`` (``port=0``: a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(root, host, bound_port))
    # uvicorn only captures signals in the main thread, so this background server leaves them alone.
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"demo-upstream-{bound_port}"
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"demo upstream server did not start on {host}:{bound_port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        sock.close()
