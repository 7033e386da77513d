"""What a run sets up once: the demo download tree served on 127.0.0.1 and one data directory for the
daemons of the build figures, started on demand.

Everything lives under one work directory (fresh per run unless ``--work-dir`` is given), so the first
build of the run is a cold one: its ImageBuilder is downloaded, verified and unpacked. Daemons of the
build figures share the data directory one after the other (never two at once: each runs its own
``redis-server`` there), so later ones find the ImageBuilder warm.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asud.demo.generator import TreeInfo, generate_tree
from bench.daemon import Daemon
from bench.redis_probe import RedisProbe
from bench.upstream import Upstream, serve_upstream

__all__ = ["World", "build_world", "daemon_settings"]

#: Limits far above what the figures send, so no figure is answered 529.
_LIMITS = {"max_pending_jobs": 100000, "max_pending_per_client": 100000}


def daemon_settings(
    data_dir: Path,
    upstream_url: str,
    public_key: str,
    *,
    workers: int,
    sandbox: str,
    **sections: dict[str, Any],
) -> dict[str, Any]:
    """Settings of a bench daemon (access log off, as behind a reverse proxy that logs)."""
    settings: dict[str, Any] = {
        "data_dir": str(data_dir),
        "http": {"access_log": False},
        "build": {"workers": workers, "sandbox": sandbox},
        "requests": dict(_LIMITS),
        "distros": {"openwrt": {"upstream_url": upstream_url, "public_keys": [public_key]}},
    }
    for name, section in sections.items():
        settings[name] = {**settings.get(name, {}), **section}
    return settings


@dataclass
class World:
    """The demo upstream, its URL and the daemons started on it."""

    work: Path
    tree: TreeInfo
    upstream: Upstream
    sandbox: str
    tree_seconds: float
    daemons: list[Daemon] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def data_dir(self) -> Path:
        return self.work / "asud" / "data"

    def start_daemon(self, *, workers: int = 1, name: str = "asud") -> Daemon:
        """A daemon on the shared data directory with ``workers`` build slots (started; stop it yourself
        or leave it to :meth:`close`)."""
        settings = daemon_settings(
            self.data_dir, self.upstream.url, self.tree.public_key_text, workers=workers, sandbox=self.sandbox
        )
        daemon = Daemon(self.work / "asud", settings, name=name)
        self.daemons.append(daemon)
        return daemon.start()

    def stop_daemon(self, daemon: Daemon) -> None:
        daemon.stop()
        if daemon in self.daemons:
            self.daemons.remove(daemon)

    def redis(self, daemon: Daemon) -> RedisProbe:
        return RedisProbe(daemon.redis_socket)

    def imagebuilder_dir(self, version: str, target: str) -> Path:
        """The unpacked ImageBuilder of ``version``/``target`` in the daemons' cache (after a build)."""
        wanted = f"-{version}-{target.replace('/', '-')}."
        entries = self.data_dir / "imagebuilders" / "entries"
        for meta in sorted(entries.glob("*.json")):
            about = json.loads(meta.read_text(encoding="utf-8"))
            if wanted in str(about.get("name", "")) and (entries / meta.stem).is_dir():
                return entries / meta.stem
        raise FileNotFoundError(f"no unpacked ImageBuilder for {version} {target} under {entries}")

    def close(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.stop()
        self.daemons.clear()
        self.upstream.stop()


def build_world(work: Path) -> World:
    """Serve an empty directory, then generate the demo tree into it with the server's URL."""
    logs = work / "logs"
    upstream = serve_upstream(work / "upstream", logs / "upstream.log")
    try:
        started = time.perf_counter()
        tree = generate_tree(work / "upstream", seed=1, base_url=upstream.url)
        seconds = time.perf_counter() - started
        sandbox = "bwrap" if shutil.which("bwrap") else "none"
    except BaseException:
        upstream.stop()
        raise
    return World(work=work, tree=tree, upstream=upstream, sandbox=sandbox, tree_seconds=seconds)
