"""The router client on an apk-era device: a TP-Link Archer C7 v5 on 25.12.1 (the newest demo release), its
packages in ``/etc/apk/world`` and ``/lib/apk/db/installed`` (template ``fake_router/apk-25.12.1``, written
by ``fake_router/record_apk_root.py``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.clients.router import FakeRouter
from tests.support.daemon import http_call
from tests.support.requirements import require_executable

REVISION = "r32175-4b3c52d1e9"


@pytest.fixture
def router(tmp_path: Path, building_url: str) -> FakeRouter:
    busybox = require_executable("busybox")
    bwrap = require_executable("bwrap")
    return FakeRouter(tmp_path / "root", "apk-25.12.1", building_url, busybox, bwrap)


def installed_versions(router: FakeRouter) -> dict[str, str]:
    """name → version of every package in the router's ``/lib/apk/db/installed``."""
    versions: dict[str, str] = {}
    for block in router.file("/lib/apk/db/installed").read_text().split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if line[1:2] == ":")
        if "P" in fields:
            versions[fields["P"]] = fields["V"]
    return versions


def test_check_on_the_newest_release_is_up_to_date(router: FakeRouter, building_url: str) -> None:
    result = router.run("check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"Installed: 25.12.1 {REVISION}" in result.stdout
    assert "Available: no newer version" in result.stdout
    assert "Package upgrades: none" in result.stdout and "Up to date." in result.stdout
    assert router.calls("opkg") == [] and not router.file("/bin/opkg").exists()

    (post,) = [call for call in router.calls("uclient-fetch") if call["post_data"]]
    assert post["argv"][-1] == f"{building_url}/api/v1/upgrade-check?status_in_body=1"
    sent = json.loads(post["post_data"])
    assert sent["version"] == "25.12.1" and sent["revision"] == REVISION and sent["target"] == "ath79/generic"
    versions = installed_versions(router)
    world = set(router.file("/etc/apk/world").read_text().split()) - {"kernel", "libc"}
    # the world file's names, nothing pulled in as a dependency; a provided name stands for its provider
    assert set(sent["packages"]) == world - {"nftables"} | {"nftables-json"}
    assert sent["packages"]["luci"] == versions["luci"]
    assert "luci-base" in versions and "luci-base" not in sent["packages"]
    assert sent["packages"]["nftables-json"] == versions["nftables-json"]
    # ... but an ABI-versioned library goes by the name without the ABI, as the server's index has it
    assert sent["packages"]["libustream-mbedtls"] == versions["libustream-mbedtls20201210"]
    assert "libc" not in sent["packages"] and "kernel" not in sent["packages"]


def test_download_and_upgrade_rebuild_the_installed_set(router: FakeRouter, building_url: str) -> None:
    # up to date: nothing to do without --version
    nothing = router.run("upgrade", "-y")
    assert nothing.returncode == 2 and "Up to date, nothing to do." in nothing.stdout
    assert router.calls("sysupgrade") == []

    download = router.run("download", "--version", "25.12.1", "--poll", "1", "-o", "/root/images")
    assert download.returncode == 0, download.stdout + download.stderr
    assert "Requesting openwrt 25.12.1 for tplink_archer-c7-v5" in download.stdout
    (downloaded,) = router.file("/root/images").glob("*-squashfs-sysupgrade.bin")
    assert router.calls("sysupgrade") == []

    result = router.run("upgrade", "-y", "--version", "25.12.1", "--poll", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verified sha256" in result.stdout
    posts = [call for call in router.calls("uclient-fetch") if call["post_data"]]
    build = json.loads(posts[-1]["post_data"])
    assert build["version"] == "25.12.1" and "version_code" not in build  # nothing newer was offered
    assert build["profile"] == "tplink_archer-c7-v5" and build["diff_packages"] is True
    world = set(router.file("/etc/apk/world").read_text().split()) - {"kernel", "libc"}
    assert set(build["packages"]) == world - {"nftables"} | {"nftables-json"}

    test_call, flash_call = router.calls("sysupgrade")
    image = flash_call["argv"][-1]
    assert test_call["argv"] == ["--test", image] and flash_call["argv"] == [image]
    # the flashed file is the server's image of that build (the same request, answered from its cache)
    answer = http_call(f"{building_url}/api/v1/build", build).json()
    (chosen,) = [entry for entry in answer["images"] if entry["name"] == Path(image).name]
    flashed = hashlib.sha256(router.file(image).read_bytes()).hexdigest()
    assert flashed == chosen["sha256"] == flash_call["sha256"]
    assert flashed == hashlib.sha256(downloaded.read_bytes()).hexdigest()
