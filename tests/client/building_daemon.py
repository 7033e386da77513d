"""One real asud daemon that builds, shared by the client tests of this process: ``twist asud`` (the twistd
plugin) as a child process (``tests.support.daemon``), with its own ``redis-server``, bwrap builds and the
demo tree as upstream.

The router client tests (``tests/clients``) and the desktop client tests (``tests/client``) both build
ath79/generic 24.10.5 images, so they can share one daemon and one unpacked ImageBuilder: the machine is
small and builds are the slow part. Started on first use, stopped (SIGTERM, as systemd does) when the
process exits.
"""

from __future__ import annotations

import atexit
from pathlib import Path

from tests.support.daemon import DaemonProcess, daemon_settings
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree

__all__ = ["building_daemon_url"]

_daemons: list[DaemonProcess] = []
_shared: dict[str, str] = {}


@atexit.register
def _stop_daemons() -> None:
    for daemon in _daemons:
        daemon.stop()


def building_daemon_url(directory: Path, tree: DemoTree) -> str:
    """Base URL of the shared daemon (created under ``directory`` the first time)."""
    if "url" not in _shared:
        require_executable("bwrap", "bubblewrap")
        require_executable("redis-server", "redis-server")
        settings = daemon_settings(tree, directory / "data", build={"workers": 1, "sandbox": "bwrap"},
                                   requests={"allow_defaults": True})  # fmt: skip
        daemon = DaemonProcess(directory, settings)
        _daemons.append(daemon)
        _shared["url"] = daemon.start()
    return _shared["url"]
