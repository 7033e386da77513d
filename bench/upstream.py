"""The demo download server: ``python -m asud demo-upstream serve DIR --listen tcp:0:…`` in its own process.

It listens first (on a free port it picks itself, printed as ``serving DIR at URL``); the tree is then
generated with that URL, which the miniature ImageBuilders write into their repositories.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.processes import Child, start_child

__all__ = ["Upstream", "serve_upstream"]

_SERVING = re.compile(r"^serving .* at (http://\S+)$", re.MULTILINE)


class Upstream:
    """A running demo download server; ``url`` is its base URL."""

    def __init__(self, child: Child, url: str) -> None:
        self.child = child
        self.url = url

    def stop(self) -> None:
        self.child.stop()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_upstream(root: Path, log: Path, timeout: float = 30.0) -> Upstream:
    """Serve ``root`` (created empty if missing) on a free port of 127.0.0.1."""
    root.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "asud",
        "demo-upstream",
        "serve",
        str(root),
        "--listen",
        "tcp:0:interface=127.0.0.1",
    ]
    child = start_child(argv, log=log)
    found = child.wait_for(_SERVING.search, timeout=timeout, what="asud demo-upstream serve")
    assert isinstance(found, re.Match)
    return Upstream(child, found.group(1))
