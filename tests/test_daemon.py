"""The daemon as users run it: ``twist asud --config FILE`` in its own process, a build end to end."""

from __future__ import annotations

import hashlib
import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess, daemon_settings
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]


def _request(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def daemon(demo_tree: DemoTree, tmp_path: Path) -> Any:
    require_executable("redis-server")
    require_executable("bwrap", "bubblewrap")
    process = DaemonProcess(tmp_path / "asud", daemon_settings(demo_tree, tmp_path / "asud" / "data"))
    process.start()
    yield process
    process.stop()


@pytest.mark.slow
def test_twist_asud_builds_and_serves_a_verified_image(daemon: DaemonProcess) -> None:
    request = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink_archer-c7-v5",
               "packages": ["luci", "-ppp-mod-pppoe", "-ppp"]}
    status, headers, body = _request(f"{daemon.url}/api/v1/build", request)
    assert status in (200, 202), body
    assert headers["Server"].startswith("TwistedWeb/")
    request_hash = json.loads(body)["request_hash"]
    deadline = time.monotonic() + 180
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        status, headers, body = _request(f"{daemon.url}/api/v1/build/{request_hash}")
        assert status in (200, 202), body
    assert status == 200, body
    result = json.loads(body)
    sysupgrade = next(image for image in result["images"] if image["type"] == "sysupgrade")
    status, _, image = _request(f"{daemon.url}/store/{result['bin_dir']}/{sysupgrade['name']}")
    assert status == 200
    assert hashlib.sha256(image).hexdigest() == sysupgrade["sha256"]
    assert "ppp" not in result["manifest"]
    assert "luci" in result["manifest"], sorted(result["manifest"])


def test_sigterm_stops_cleanly_and_its_redis_with_it(daemon: DaemonProcess, tmp_path: Path) -> None:
    status = daemon.stop()
    assert status == -signal.SIGTERM, daemon.log_text()[-3000:]  # twist re-raises SIGTERM: a clean stop
    log = daemon.log_text()
    assert "asud stopped" in log
    assert "Traceback" not in log, log[-3000:]
    assert not (tmp_path / "asud" / "data" / "redis" / "redis.sock").exists()
