"""asud embedded in another Twisted program: ``examples/embed.py`` mounts it under ``/asud``.

Everything asud writes (redirects, the 2017 API's absolute image URLs, web page links) must honour the
mount path; ``stopService()`` fires only once running builds are back in the queue.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.resource import Resource
from twisted.web.server import Site

from asud.config import to_toml
from asud.service import makeService
from tests.catalog.helpers import demo_config
from tests.support.daemon import daemon_settings, http_call
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

ROOT = Path(__file__).resolve().parent.parent
BUILD = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink_archer-c7-v5",
         "packages": ["luci", "-ppp-mod-pppoe", "-ppp"]}
_PORT = re.compile(r"host listening on IPv4Address\(type='TCP', host='127\.0\.0\.1', port=(\d+)\)")


@pytest.fixture
def embedded(demo_tree: DemoTree, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``examples/embed.py`` as its own process; ``(base URL, process, log)``."""
    require_executable("redis-server")
    require_executable("bwrap", "bubblewrap")
    settings = daemon_settings(demo_tree, tmp_path / "data")
    settings["http"] = {"listen": ["tcp:1:interface=127.0.0.1"]}  # the example must override it with []
    config = tmp_path / "asud.toml"
    config.write_text(to_toml(settings))
    log = tmp_path / "embed.log"
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ASUD_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, str(ROOT / "examples" / "embed.py"), str(config),
                                    "tcp:0:interface=127.0.0.1"], stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=environ, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while (found := _PORT.search(log.read_text(errors="replace"))) is None:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        yield f"http://127.0.0.1:{found.group(1)}", process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _no_redirect(base: str, path: str) -> tuple[int, str | None]:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        return answer.status, answer.getheader("Location")
    finally:
        connection.close()


def _poll(url: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        answer = http_call(url)
        if answer.status == 200 or time.monotonic() > deadline:
            return answer
        assert answer.status == 202, answer
        time.sleep(0.3)


@pytest.mark.slow
def test_embedded_host_builds_through_asud_under_its_prefix(embedded: tuple[str, Any, Path]) -> None:
    base, process, log = embedded
    page = http_call(f"{base}/")
    assert page.status == 200 and b"My program" in page.body
    assert http_call(f"{base}/api/v1/build", BUILD).status == 404, "asud is not at the top"
    overview = http_call(f"{base}/asud/json/v1/overview.json")
    assert overview.status == 200 and "24.10" in overview.json()["branches"]
    assert _no_redirect(base, "/asud/api/v1/overview") == (301, "/asud/json/v1/overview.json")
    assert _no_redirect(base, "/asud//api/v1/revision/24.10.4/ath79/generic") == \
        (301, "/asud/api/v1/revision/24.10.4/ath79/generic")
    web = http_call(f"{base}/asud/")
    assert web.status == 200 and b'"/asud/' in web.body, web.body[:2000]

    posted = http_call(f"{base}/asud/api/v1/build", BUILD)
    assert posted.status in (200, 202), posted
    request_hash = posted.json()["request_hash"]
    answer = _poll(f"{base}/asud/api/v1/build/{request_hash}")
    assert answer.status == 200, answer
    result = answer.json()
    sysupgrade = next(image for image in result["images"] if image["type"] == "sysupgrade")
    image = http_call(f"{base}/asud/store/{result['bin_dir']}/{sysupgrade['name']}")
    assert image.status == 200
    assert hashlib.sha256(image.body).hexdigest() == sysupgrade["sha256"]

    # The 2017 API writes absolute URLs: they carry the mount path too.
    legacy = http_call(f"{base}/asud/api/upgrade-request",
                       {"distro": "openwrt", "version": "24.10.4", "target": "ath79/generic",
                        "board": "tplink_archer-c7-v5", "packages": ["luci", "-ppp-mod-pppoe", "-ppp"]})
    assert legacy.status in (200, 202), legacy
    legacy = _poll(f"{base}/asud/api/upgrade-request/{legacy.json()['request_hash']}")
    assert legacy.status == 200, legacy
    link = legacy.json()["sysupgrade"]
    assert link.startswith(f"{base}/asud/store/"), link
    assert legacy.json()["log"].startswith(f"{base}/asud/store/")
    # Verified against the build's own record (the 2017 request builds its own image).
    legacy_result = http_call(f"{base}/asud/api/v1/build/{legacy.json()['request_hash']}").json()
    expected = {image["name"]: image["sha256"] for image in legacy_result["images"]}
    downloaded = http_call(link)
    assert downloaded.status == 200
    assert hashlib.sha256(downloaded.body).hexdigest() == expected[link.rsplit("/", 1)[1]]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    assert "asud stopped" in log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest_twisted.ensureDeferred
async def test_embedded_stop_fires_once_running_builds_are_handed_back(demo_tree: DemoTree,
                                                                       tmp_path: Path) -> None:
    require_executable("redis-server")
    require_executable("bwrap", "bubblewrap")
    config = demo_config(demo_tree, data_dir=str(tmp_path / "data"), http={"listen": []},
                         build={"workers": 1})
    service = makeService(config)
    assert "http" not in [getattr(child, "name", None) for child in service]
    root = Resource()
    root.putChild(b"asud", service.resource)
    site = Site(root)
    handed_back: list[Deferred[Any]] = []
    records = service.app.records
    requeue = records.requeue

    def watched_requeue(*args: Any, **kwargs: Any) -> Deferred[Any]:
        handed_back.append(requeue(*args, **kwargs))
        return handed_back[-1]

    records.requeue = watched_requeue
    service.startService()
    await service.started
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        response = await treq.post(f"http://127.0.0.1:{port.getHost().port}/asud/api/v1/build", json=BUILD,
                                   persistent=False)
        body = json.loads(await response.content())
        assert response.code == 202, body
        pool = service.getServiceNamed("build-pool")
        waited = 0.0
        while not pool.builds:
            assert waited < 60
            await deferLater(reactor, 0.05, lambda: None)
            waited += 0.05
    finally:
        await port.stopListening()
    stopped = service.stopService()
    assert not stopped.called, "a running build is being handed back"
    await stopped
    assert handed_back and all(deferred.called for deferred in handed_back)
    assert not pool.builds
