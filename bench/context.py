"""How big a run is (``Mode``) and what the figures share (``Context``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from asud.demo.generator import Scale
from bench.daemon import Daemon
from bench.world import World

__all__ = ["ADD_ONS", "FULL", "PROFILE", "TARGET", "TINY", "VERSION", "Context", "Mode"]


@dataclass(frozen=True)
class Mode:
    """Sizes of one run: ``FULL`` is what the targets are stated for, ``TINY`` keeps the suite alive."""

    name: str
    #: wrk duration and the number of alternating runs (daemon, ceiling) whose medians are quoted.
    wrk_seconds: float
    wrk_runs: int
    wrk_connections: int
    wrk_threads: int
    #: wrk duration of each run of the 30 MB download figure (GET and HEAD, daemon and ceiling).
    store_seconds: float
    store_mb: int
    #: The invalid-selection figure: wrk with this many connections for this long.
    invalid_seconds: float
    invalid_connections: int
    overhead_runs: int
    concurrent_requests: int
    queue_builds: int
    burst_builds: int
    catalog_scale: Scale


FULL = Mode(
    "full",
    wrk_seconds=10,
    wrk_runs=3,
    wrk_connections=32,
    wrk_threads=2,
    store_seconds=8,
    store_mb=30,
    invalid_seconds=10,
    invalid_connections=20,
    overhead_runs=3,
    concurrent_requests=100,
    queue_builds=20,
    burst_builds=20,
    catalog_scale="real",
)
TINY = Mode(
    "tiny",
    wrk_seconds=1,
    wrk_runs=1,
    wrk_connections=8,
    wrk_threads=2,
    store_seconds=1,
    store_mb=2,
    invalid_seconds=1,
    invalid_connections=4,
    overhead_runs=1,
    concurrent_requests=10,
    queue_builds=2,
    burst_builds=2,
    catalog_scale="demo",
)

#: The device every build of the suite is for (a real-looking opkg-era router of the demo tree).
VERSION = "24.10.5"
TARGET = "ath79/generic"
PROFILE = "tplink_archer-c7-v5"
#: Add-on packages that install together on that device; pairs of them make distinct images. None of them
#: is a default package of the device (``ppp`` and ``uboot-envtools`` are: with them two "new" selections
#: made one image, and a queue of 20 held 19 builds).
ADD_ONS = (
    "htop",
    "nano",
    "iperf3",
    "tcpdump",
    "curl",
    "wireguard-tools",
    "openssh-sftp-server",
    "owut",
    "adblock",
    "e2fsprogs",
    "iw",
    "luci-proto-wireguard",
    "luci-i18n-base-de",
    "luci-i18n-base-fr",
    "luci-app-adblock",
    "vim",
    "luci-proto-ipv6",
    "ca-certificates",
    "ip-full",
    "luci-light",
)


def _package_sets() -> Iterator[list[str]]:
    for pair in itertools.combinations(ADD_ONS, 2):
        yield list(pair)


@dataclass
class Context:
    """The world, the main daemon and what earlier figures leave for later ones."""

    mode: Mode
    world: World
    daemon: Daemon
    profile: bool = False
    #: Set by the cold-build figure: the request body and hash of a finished build.
    finished_body: dict[str, Any] | None = None
    finished_hash: str | None = None
    _sets: Iterator[list[str]] = field(default_factory=_package_sets)

    def fresh_packages(self) -> list[str]:
        """A package selection no earlier request of this run used (a new image, so a real build)."""
        return next(self._sets)
