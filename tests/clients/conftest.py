"""Fixtures: the demo upstream, and the asud daemon the router client talks to.

The daemon is ``twist asud`` in a process of its own (``tests.support.daemon.DaemonProcess``, started by
``tests/client/building_daemon.py``): the client runs synchronously in BusyBox while the daemon answers
and builds. It is one daemon per test process, shared with the desktop client's tests (``tests/client``),
since both build the same ath79/generic images and builds are the slow part.
"""

from __future__ import annotations

import pytest

from tests.client.building_daemon import building_daemon_url
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["building_url", "demo_tree", "demo_upstream_url"]


@pytest.fixture(scope="session")
def building_url(tmp_path_factory: pytest.TempPathFactory, demo_tree: DemoTree) -> str:
    """Base URL of the running daemon (``http://127.0.0.1:PORT``)."""
    return building_daemon_url(tmp_path_factory.mktemp("client-server"), demo_tree)
