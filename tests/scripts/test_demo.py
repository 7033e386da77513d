"""``asud demo``: its settings file, the daemon command, and the whole demo as a new user runs it — the
demo upstream, ``twist asud`` through the plugin answering with Twisted's ``Server`` header, a build from
the printed request, and Ctrl-C stopping both (issue 11 items 7 and 10)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from asud.config import load
from asud.scripts.demo import DEMO_REQUEST, daemon_command, write_demo_config
from tests.scripts.support import ASUD, clean_environment
from tests.support.requirements import require_executable

KEY = "untrusted comment: demo\nRWQIHIVi5zN4XQXCfGxfMRVqJDCl7CTSB0LEq2DKEe3khkiFpbJrlNl+\n"


def test_demo_settings_load_with_data_beside_them(tmp_path: Path) -> None:
    config = write_demo_config(
        tmp_path,
        upstream_url="http://127.0.0.1:8001",
        public_key=KEY,
        listen="tcp:8000:interface=127.0.0.1",
        public_url="http://127.0.0.1:8000",
    )
    settings = load(config, environ={})
    assert settings.data_dir == tmp_path / "data"
    assert settings.http.listen == ["tcp:8000:interface=127.0.0.1"]
    assert settings.build.sandbox == "bwrap" and settings.requests.allow_defaults
    openwrt = settings.distros["openwrt"]
    assert openwrt.upstream_url == "http://127.0.0.1:8001"
    assert openwrt.public_keys == ["RWQIHIVi5zN4XQXCfGxfMRVqJDCl7CTSB0LEq2DKEe3khkiFpbJrlNl+"]
    assert config.read_text().startswith(
        f"# Written by `asud demo`; safe to edit and reuse: twist asud --config {config}"
    )


def test_the_daemon_runs_through_the_twist_plugin(tmp_path: Path) -> None:
    command = daemon_command(tmp_path / "asud.toml")
    assert command[0] == str(Path(sys.executable).with_name("twist")) or command[1:3] == ["-m", "twisted"]
    assert "--log-format=text" in command
    assert command[command.index("asud") :] == ["asud", "--config", str(tmp_path / "asud.toml")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _wait_for(path: Path, pattern: str, process: subprocess.Popen[bytes], timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text(errors="replace"))
        if found:
            return found
        assert process.poll() is None, path.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} within {timeout} s:\n{path.read_text(errors='replace')}")


@pytest.mark.slow
def test_make_demo_serves_builds_and_stops(tmp_path: Path) -> None:
    for program, package in (("bwrap", "bubblewrap"), ("redis-server", "redis-server"),
                             ("mksquashfs", "squashfs-tools")):  # fmt: skip
        require_executable(program, package)
    port, upstream_port = _free_port(), _free_port()
    log = tmp_path / "demo.log"
    command = [*ASUD, "demo", "--dir", str(tmp_path / "demo-data"), "--port", str(port),
               "--upstream-port", str(upstream_port)]  # fmt: skip
    with log.open("wb") as output:
        demo = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=clean_environment(),
                                cwd=tmp_path)  # fmt: skip
    try:
        _wait_for(log, r"try a build:", demo, timeout=180)
        text = log.read_text()
        base = f"http://127.0.0.1:{port}"
        assert "twist asud --config demo-data/asud.toml" in text
        assert f"API documentation {base}/docs" in text
        assert (
            f"web builder       {base}/" in text
            and f"demo upstream URL http://127.0.0.1:{upstream_port}" in text
        )
        curl = next(line for line in text.splitlines() if line.strip().startswith("curl -s -H"))
        assert json.loads(curl.split("-d '", 1)[1].split("'", 1)[0]) == DEMO_REQUEST

        status, headers, _ = _get(f"{base}/json/v1/overview.json")
        assert status == 200 and headers["Server"].startswith("TwistedWeb")
        status, _, body = _get(f"{base}/api/v1/build", DEMO_REQUEST)
        answer = json.loads(body)
        deadline = time.monotonic() + 240
        while status == 202 and time.monotonic() < deadline:
            time.sleep(0.5)
            status, _, body = _get(f"{base}/api/v1/build/{answer['request_hash']}")
        answer = json.loads(body)
        assert status == 200, answer
        image = answer["images"][0]
        status, _, data = _get(f"{base}/store/{answer['bin_dir']}/{image['name']}")
        assert status == 200 and hashlib.sha256(data).hexdigest() == image["sha256"]
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/json/v1/overview.json")  # the daemon went with the demo
    assert not _pids_with(str(tmp_path / "demo-data" / "asud.toml")), "twist asud outlived the demo"


def _pids_with(text: str) -> list[int]:
    """Processes whose command line mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found
