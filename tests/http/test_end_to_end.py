"""POST → 202 → 200 → download, for each era of the demo upstream, through the real daemon (``twist asud``
as a child process, ``tests.support.daemon``: two bwrap build slots, its own embedded Redis).

Covers clients-contract §6.7 items 2, 8 and 15, and re-checks 1, 3 and 4 on every answer seen while polling.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.http.client import Answer, TreqClient
from tests.support.daemon import DaemonProcess, daemon_settings
from tests.support.firmware import extract_rootfs
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree

pytestmark = pytest.mark.slow

KNOWN_STARTED = {"init", "calculate_packages_hash", "building_image"}
#: Longest wait for one build (the first build of an era downloads and unpacks its ImageBuilder).
BUILD_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def building(tmp_path_factory: pytest.TempPathFactory, demo_tree: DemoTree) -> Iterator[TreqClient]:
    require_executable("bwrap", "bubblewrap")
    require_executable("redis-server")
    directory = tmp_path_factory.mktemp("asud-e2e")
    settings = daemon_settings(demo_tree, directory / "data", build={"workers": 2, "sandbox": "bwrap"},
                               requests={"allow_defaults": True})
    daemon = DaemonProcess(directory, settings)
    daemon.start(timeout=120)
    try:
        yield TreqClient(daemon.url)
    finally:
        daemon.stop()


async def wait_for_build(client: TreqClient, body: dict[str, Any]) -> tuple[Answer, list[dict[str, Any]]]:
    """POST, then poll (HEAD and GET, as owut does) until the answer is final; returns it and each 202."""
    seen: list[dict[str, Any]] = []
    response = await client.post("/api/v1/build", json=body)
    deadline = time.monotonic() + BUILD_TIMEOUT
    while response.status_code == 202:
        seen.append(response.json())
        assert time.monotonic() < deadline, f"build not finished after {BUILD_TIMEOUT} s: {seen[-1]}"
        await deferLater(reactor, 0.3, lambda: None)
        status_url = f"/api/v1/build/{seen[-1]['request_hash']}?{int(time.time())}"
        head = await client.head(status_url)
        assert head.content == b"" and "x-imagebuilder-status" in head.headers
        assert "x-queue-position" in head.headers
        response = await client.get(status_url)
    for answer in seen:
        assert answer["status"] == 202
        if answer["detail"] == "started":
            assert "queue_position" not in answer
            assert answer["imagebuilder_status"] in KNOWN_STARTED
        else:
            assert answer["detail"] == "queued" and isinstance(answer["queue_position"], int)
    return response, seen


@pytest.mark.parametrize("version", ["23.05.5", "24.10.4", "25.12.1", "SNAPSHOT"])
@pytest_twisted.ensureDeferred
async def test_build_and_download(building: TreqClient, version: str) -> None:
    body = {"version": version, "target": "x86/64", "profile": "generic", "packages": [], "client": "e2e/1"}
    response, _ = await wait_for_build(building, body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == 200 and result["detail"] == "done"
    assert response.headers["x-imagebuilder-status"] == "done" and response.headers["x-queue-position"] == "0"
    # item 2: the request echo, as owut dereferences it
    assert result["request"]["version"] == version
    for key in ("version_code", "rootfs_size_mb", "defaults"):
        assert key in result["request"]
    for key in (
        "bin_dir",
        "images",
        "manifest",
        "version_code",
        "version_number",
        "build_at",
        "build_cmd",
        "titles",
    ):
        assert key in result, key
    # item 8: the served bytes are the ones images[].sha256 names, with Content-Length
    assert result["images"]
    for image in result["images"]:
        download = await building.get(f"/store/{result['bin_dir']}/{image['name']}?1700000000")
        assert download.status_code == 200
        assert download.headers["content-length"] == str(len(download.content))
        assert hashlib.sha256(download.content).hexdigest() == image["sha256"]
    # a second request for the same image is answered from the cache at once
    started = time.monotonic()
    again = await building.post("/api/v1/build", json={**body, "client": "e2e/2"})
    assert again.status_code == 200 and time.monotonic() - started < 2.0


@pytest_twisted.ensureDeferred
async def test_item_15_revision_mismatch_is_500_with_detail(building: TreqClient) -> None:
    body = {"version": "24.10.4", "version_code": "r1-deadbeef00", "target": "x86/64", "profile": "generic"}
    response, _ = await wait_for_build(building, body)
    assert response.status_code == 500, response.text
    failed = response.json()
    assert failed["status"] == 500 and failed["imagebuilder_status"] == "failed"
    assert "Received incorrect version" in failed["detail"] and "r1-deadbeef00" in failed["detail"]
    assert isinstance(failed["stdout"], str) and isinstance(failed["stderr"], str)
    assert failed["request"]["version_code"] == "r1-deadbeef00"
    assert response.headers["x-imagebuilder-status"] == "failed"


FIRST_BOOT = "#!/bin/sh\nuci set system.@system[0].hostname='asud-e2e'\nuci commit\n"


@pytest.mark.parametrize("version", ["23.05.5", "24.10.5", "25.12.1", "SNAPSHOT"])
@pytest_twisted.ensureDeferred
async def test_image_holds_what_was_asked(building: TreqClient, version: str, tmp_path: Path) -> None:
    """Inside the downloaded sysupgrade image: the added package, no removed ones, the first-boot script."""
    require_executable("unsquashfs", "squashfs-tools")
    body = {
        "version": version,
        "target": "ath79/generic",
        "profile": "tplink,archer-c7-v5",
        "packages": ["htop", "-ppp", "-ppp-mod-pppoe"],
        "defaults": FIRST_BOOT,
        "client": "e2e/contents",
    }
    response, _ = await wait_for_build(building, body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert "htop" in result["manifest"] and "libncurses" in result["manifest"]
    assert "ppp" not in result["manifest"] and "ppp-mod-pppoe" not in result["manifest"]
    assert result["bin_dir"] != result["request_hash"]  # images with a script live under the defaults hash
    image = next(i for i in result["images"] if i["type"] == "sysupgrade")
    download = await building.get(f"/store/{result['bin_dir']}/{image['name']}")
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == image["sha256"]
    (tmp_path / image["name"]).write_bytes(download.content)
    root = extract_rootfs(tmp_path / image["name"], tmp_path / "root")
    htop = (root / "usr/bin/htop").read_text()
    assert htop.startswith(f"htop {result['manifest']['htop']}\n")  # that very version is installed
    assert not (root / "usr/bin/ppp").exists() and not (root / "usr/bin/ppp-mod-pppoe").exists()
    assert (root / "etc/uci-defaults/99-asu-defaults").read_text() == FIRST_BOOT
    assert (root / "usr/bin/dropbear").exists()  # a default package kept
    assert not (root / ".PKGINFO").exists()  # package metadata stays out of the image
    if version in ("25.12.1", "SNAPSHOT"):  # apk: the world file names what was asked for
        assert "htop" in (root / "etc/apk/world").read_text().split()
    else:
        assert "Package: htop" in (root / "usr/lib/opkg/status").read_text()


@pytest_twisted.ensureDeferred
async def test_too_big_for_the_flash_is_the_storage_error(building: TreqClient) -> None:
    body = {
        "version": "24.10.5",
        "target": "ath79/generic",
        "profile": "tplink_tl-wr842n-v3",
        "packages": ["python3-light"],
        "client": "e2e/too-big",
    }
    response, _ = await wait_for_build(building, body)
    assert response.status_code == 500, response.text
    failed = response.json()
    assert failed["detail"] == "Error: Selected packages exceed device storage"
    assert "is too big" in failed["stderr"]
