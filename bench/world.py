"""The system under test, set up once per run: the demo download tree served on 127.0.0.1, a ``sysup.toml``
that trusts it, a synced catalog, and ``sysup serve`` processes started on demand.

Everything lives under one work directory (fresh per run unless ``--work-dir`` is given), so the first
build of the run is a cold one: its ImageBuilder is downloaded, verified and unpacked.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

from asud.demo.generator import TreeInfo, generate_tree
from bench.processes import Server, free_port, run_measured, start_server
from sysup.demo_upstream.demo import write_demo_config

#: Limits far above what the figures send, so no figure is answered 529.
_SERVER_ENV = {"SYSUP_MAX_PENDING_JOBS": "100000", "SYSUP_MAX_PENDING_PER_CLIENT": "100000"}


def sysup_command() -> str:
    """The ``sysup`` entry point of the interpreter running the bench (the project's virtualenv)."""
    beside = Path(sys.executable).parent / "sysup"
    return str(beside) if beside.exists() else shutil.which("sysup") or "sysup"


def upstream_server(root: Path, logs: Path, port: int | None = None) -> Server:
    """``sysup demo-upstream serve root`` on ``port`` (a free one by default)."""
    port = port or free_port()
    return start_server(
        [sysup_command(), "demo-upstream", "serve", str(root), "--port", str(port)],
        port=port,
        ready_path="/.versions.json",
        log=logs / f"upstream-{root.name}.log",
    )


@dataclass
class World:
    """The demo upstream, its served URL and a configured sysup data directory."""

    work: Path
    tree: TreeInfo
    upstream: Server
    config: Path
    sandbox: str
    servers: list[Server] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def data_dir(self) -> Path:
        return self.config.parent / "data"

    @property
    def env(self) -> dict[str, str]:
        return {"SYSUP_CONFIG": str(self.config), **_SERVER_ENV}

    def sync(self) -> float:
        """``sysup sync`` (migrates, then fills the catalog); its wall time in seconds."""
        finished = run_measured([sysup_command(), "sync"], log=self.logs / "sync.log", env=self.env)
        if finished.returncode != 0:
            raise RuntimeError(f"sysup sync failed; see {self.logs / 'sync.log'}")
        return finished.seconds

    def serve(self, *, workers: int = 1, name: str = "serve", access_log: bool = True) -> Server:
        """One ``sysup serve`` process (uvloop + httptools) with ``workers`` embedded build threads."""
        port = free_port()
        argv = [
            sysup_command(),
            "serve",
            "--port",
            str(port),
            "--config",
            str(self.config),
            "--workers",
            str(workers),
        ]
        if not access_log:
            argv.append("--no-access-log")
        server = start_server(
            argv,
            port=port,
            ready_path="/api/v1/build/ready-probe",
            log=self.logs / f"{name}.log",
            env=self.env,
        )
        self.servers.append(server)
        return server

    def database(self) -> sqlite3.Connection:
        """A read connection to the server's SQLite database (to count builds and watch their stages)."""
        connection = sqlite3.connect(f"file:{self.data_dir / 'sysup.db'}?mode=ro", uri=True, timeout=10)
        connection.execute("PRAGMA busy_timeout = 10000")
        return connection

    def count_builds(self) -> int:
        with self.database() as connection:
            return int(connection.execute("SELECT count(*) FROM builds").fetchone()[0])

    def imagebuilder_dir(self, version: str, target: str) -> Path:
        """The unpacked ImageBuilder of ``version``/``target`` in the server's cache (after a build)."""
        for info in sorted((self.data_dir / "imagebuilders" / "entries").glob("*/.targetinfo.json")):
            about = json.loads(info.read_text(encoding="utf-8"))
            if about.get("version_number") == version and about.get("target") == target:
                return info.parent
        raise FileNotFoundError(f"no unpacked ImageBuilder for {version} {target} under {self.data_dir}")

    def close(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        self.upstream.stop()


def build_world(work: Path) -> World:
    """Generate the demo tree, serve it, write the configuration and sync the catalog."""
    logs = work / "logs"
    port = free_port()
    tree = generate_tree(work / "upstream", seed=1, base_url=f"http://127.0.0.1:{port}")
    upstream = upstream_server(tree.root, logs, port)
    try:
        sandbox = "bwrap" if shutil.which("bwrap") else "none"
        (work / "sysup").mkdir(parents=True, exist_ok=True)
        config = write_demo_config(work / "sysup", upstream.url, tree.public_key_text, sandbox)
        world = World(work=work, tree=tree, upstream=upstream, config=config, sandbox=sandbox)
        world.sync()
    except BaseException:
        upstream.stop()
        raise
    return world
