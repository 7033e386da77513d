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


def _wait_for_build(url: str, request_hash: str, until: Any, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = _request(f"{url}/api/v1/build/{request_hash}")
        answer = json.loads(body)
        if until(status, answer):
            return dict(answer)
        assert status in (200, 202) and time.monotonic() < deadline, (status, answer)
        time.sleep(0.2)


def _image_hashes(url: str, result: dict[str, Any]) -> dict[str, str]:
    """name → sha256 of every image as downloaded (checked against what the build says)."""
    hashes = {}
    for image in result["images"]:
        status, _, data = _request(f"{url}/store/{result['bin_dir']}/{image['name']}")
        assert status == 200, image
        hashes[image["name"]] = hashlib.sha256(data).hexdigest()
        assert hashes[image["name"]] == image["sha256"]
    return hashes


@pytest.mark.slow
def test_sigterm_mid_build_hands_it_back_and_a_restart_builds_the_same_bytes(demo_tree: DemoTree,
                                                                            tmp_path: Path) -> None:
    require_executable("redis-server")
    require_executable("bwrap", "bubblewrap")
    request = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink_archer-c7-v5",
               "packages": ["luci", "-ppp-mod-pppoe", "-ppp"]}
    first = DaemonProcess(tmp_path / "first", daemon_settings(demo_tree, tmp_path / "first" / "data"))
    try:
        first.start()
        status, _, body = _request(f"{first.url}/api/v1/build", request)
        assert status == 202, body
        request_hash = json.loads(body)["request_hash"]
        _wait_for_build(first.url, request_hash, lambda status, answer: answer.get("detail") == "started")
        stopping = time.monotonic()
        first.signal(signal.SIGTERM)
        assert first.wait(60) == -signal.SIGTERM, first.log_text()[-3000:]  # twist re-raises: a clean stop
        assert time.monotonic() - stopping < 30, "stopped well within the unit's TimeoutStopSec=90"
        log = first.log_text()
        assert "handed back to the queue" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]

        first.start()  # the same data_dir and Redis data: the build is queued again and finished
        result = _wait_for_build(first.url, request_hash, lambda status, answer: status == 200)
        resumed = _image_hashes(first.url, result)
    finally:
        first.stop()

    fresh = DaemonProcess(tmp_path / "fresh", daemon_settings(demo_tree, tmp_path / "fresh" / "data"))
    try:
        fresh.start()
        status, _, body = _request(f"{fresh.url}/api/v1/build", request)
        assert status in (200, 202) and json.loads(body)["request_hash"] == request_hash, body
        uninterrupted = _image_hashes(
            fresh.url, _wait_for_build(fresh.url, request_hash, lambda status, answer: status == 200))
    finally:
        fresh.stop()
    assert resumed and resumed == uninterrupted
