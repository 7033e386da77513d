"""Session fixtures: the demo download tree, generated once and served on 127.0.0.1.

Use in a conftest (or a test module): ``from tests.support.upstream import demo_tree, demo_upstream_url``.
``demo_tree`` yields ``(TreeInfo, base_url)``; the tree's ImageBuilders point their repositories at
``base_url``. The tree is generated once per test process even when several modules import the
fixtures, and is shared: tests must treat it as read-only.
"""

from __future__ import annotations

import atexit
import socket
from contextlib import ExitStack
from pathlib import Path

import pytest

from asud.demo.generator import TreeInfo, generate_tree
from sysup.demo_upstream.server import running_upstream

__all__ = ["DemoTree", "demo_tree", "demo_upstream_url"]

DemoTree = tuple[TreeInfo, str]

# Every module that imports the fixtures registers its own copy of them, so the tree and its server are
# kept here, once per process, and stopped when the process exits.
_shared: dict[str, DemoTree] = {}
_servers = ExitStack()
atexit.register(_servers.close)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _serve_demo_tree(root: Path) -> DemoTree:
    port = _free_port()
    info = generate_tree(root, seed=1, base_url=f"http://127.0.0.1:{port}")
    url = _servers.enter_context(running_upstream(root, port=port))
    return info, url


@pytest.fixture(scope="session")
def demo_tree(tmp_path_factory: pytest.TempPathFactory) -> DemoTree:
    """The demo tree (seed 1, with ImageBuilders) and the URL it is served at."""
    if "demo" not in _shared:
        _shared["demo"] = _serve_demo_tree(tmp_path_factory.mktemp("demo-upstream") / "tree")
    return _shared["demo"]


@pytest.fixture(scope="session")
def demo_upstream_url(demo_tree: DemoTree) -> str:
    """Base URL of the served demo tree (no trailing slash)."""
    return demo_tree[1]
