"""One live sysup server with an embedded build worker, shared by the client tests of this process.

The router client tests (``tests/clients``) and the desktop client tests (``tests/client``) both build
ath79/generic 24.10.5 images, so they share one server and one unpacked ImageBuilder: the machine is
small and builds are the slow part. Started on first use, stopped when the process exits.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.api.conftest import make_settings, migrate_and_sync
from tests.api.live_server import live_server
from tests.support.requirements import require_executable

__all__ = ["building_server_url"]

_servers = ExitStack()
atexit.register(_servers.close)
_shared: dict[str, str] = {}


def building_server_url(data_dir: Path, tree: Any, upstream_url: str) -> str:
    """Base URL of the shared server (created under ``data_dir`` the first time)."""
    if "url" not in _shared:
        require_executable("bwrap")
        from sysup.api.app import create_app
        from sysup.builds.queue import start_embedded_consumer

        settings = make_settings(data_dir, tree, upstream_url, sandbox="bwrap", workers=1)
        migrate_and_sync(settings)
        consumer = start_embedded_consumer(settings)
        _servers.callback(consumer.stop)
        _shared["url"] = _servers.enter_context(live_server(create_app(settings)))
    return _shared["url"]
