"""The building server of the router client tests (``tests/clients``): the real asud daemon of
``building_daemon.py`` (``twist asud``, one per test process, shared with the desktop client's tests).

Kept under its old name and signature so ``tests/clients/conftest.py`` needs no change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.client.building_daemon import building_daemon_url

__all__ = ["building_server_url"]


def building_server_url(data_dir: Path, tree: Any, upstream_url: str) -> str:
    """Base URL of the shared daemon (created under ``data_dir`` the first time)."""
    return building_daemon_url(data_dir, (tree, upstream_url))
