"""The router client ``clients/openwrt/files/asud-upgrade`` under BusyBox in a fake router root, against a
live asud server over the demo upstream (a TP-Link Archer C7 v5 on 24.10.4; 24.10.5 is newer)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.clients.router import CLIENT, FakeRouter
from tests.support.daemon import http_call
from tests.support.requirements import require_executable

BOARD = "/recorded/ubus-call-system-board.json"


@pytest.fixture
def router(tmp_path: Path, building_url: str) -> FakeRouter:
    busybox = require_executable("busybox")
    bwrap = require_executable("bwrap")
    return FakeRouter(tmp_path / "root", "opkg-24.10.4", building_url, busybox, bwrap)


def as_device(router: FakeRouter, board_name: str, model: str) -> None:
    """Make the router another device of the same target (its recorded board answer)."""
    board = router.file(BOARD)
    answer = json.loads(board.read_text())
    answer.update(board_name=board_name, model=model)
    board.write_text(json.dumps(answer, indent="\t") + "\n")


def test_shellcheck_is_clean() -> None:
    shellcheck = require_executable("shellcheck")
    result = subprocess.run([shellcheck, "-s", "sh", str(CLIENT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_check_reports_newer_release_and_package_upgrades(router: FakeRouter, building_url: str) -> None:
    result = router.run("check")
    assert result.returncode == 0, result.stderr
    assert "Installed: 24.10.4 r28959-29397011cc" in result.stdout
    assert "Available: 24.10.5 r29087-d9c5716d1d" in result.stdout
    assert "luci 25.210.62431~e7f6f1e -> 25.300.71234~a91f3c0" in result.stdout
    assert "dnsmasq 2.90-r4 -> 2.91-r1" in result.stdout
    # what it sent: the board's release and the top-level packages from /usr/lib/opkg/status
    (post,) = [call for call in router.calls("uclient-fetch") if call["post_data"]]
    assert post["argv"][-1] == f"{building_url}/api/v1/upgrade-check?status_in_body=1"
    sent = json.loads(post["post_data"])
    assert sent["version"] == "24.10.4" and sent["target"] == "ath79/generic"
    assert sent["revision"] == "r28959-29397011cc"
    assert sent["packages"]["luci"] == "25.210.62431~e7f6f1e"
    assert "luci-base" not in sent["packages"]  # Auto-Installed: yes
    assert "libc" not in sent["packages"] and "kernel" not in sent["packages"]
    assert router.calls("sysupgrade") == []


def test_upgrade_requests_polls_downloads_verifies_and_flashes(router: FakeRouter, building_url: str) -> None:
    result = router.run("upgrade", "-y", "--poll", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Requesting openwrt 24.10.5 for tplink_archer-c7-v5" in result.stdout
    assert "] done" in result.stdout and "Verified sha256" in result.stdout

    posts = [call for call in router.calls("uclient-fetch") if call["post_data"]]
    build = json.loads(posts[-1]["post_data"])
    assert build["version"] == "24.10.5" and build["version_code"] == "r29087-d9c5716d1d"
    assert build["profile"] == "tplink_archer-c7-v5" and build["filesystem"] == "squashfs"
    assert "luci" in build["packages"] and build["diff_packages"] is True

    test_call, flash_call = router.calls("sysupgrade")
    assert test_call["argv"][0] == "--test"
    image = flash_call["argv"][-1]
    assert flash_call["argv"] == [image]  # settings kept: no -n
    assert image.endswith("-squashfs-sysupgrade.bin") and test_call["argv"][1] == image

    # the flashed file is the server's image, byte for byte
    urls = [call["argv"][-1] for call in router.calls("uclient-fetch")]
    status_url = [url for url in urls if "/api/v1/build/" in url][-1]
    answer = http_call(status_url.split("?")[0]).json()
    (chosen,) = [entry for entry in answer["images"] if entry["name"] == Path(image).name]
    flashed = hashlib.sha256(router.file(image).read_bytes()).hexdigest()
    assert flashed == chosen["sha256"] == flash_call["sha256"]


def test_download_only_and_no_flash_without_confirmation(router: FakeRouter) -> None:
    result = router.run("download", "--poll", "1", "-o", "/root/images")
    assert result.returncode == 0, result.stderr
    assert "Image: /root/images/" in result.stdout
    assert list(router.file("/root/images").glob("*-squashfs-sysupgrade.bin"))
    assert router.calls("sysupgrade") == []

    declined = router.run("upgrade", "--poll", "1", stdin="n\n")
    assert declined.returncode == 8 and "Not flashed" in declined.stdout
    assert [call["argv"][0] for call in router.calls("sysupgrade")] == ["--test"]


def test_unknown_package_is_rejected_with_the_servers_detail(router: FakeRouter) -> None:
    result = router.run("upgrade", "-y", "--add", "no-such-package")
    assert result.returncode == 4
    assert "rejected the request: Unknown package(s): no-such-package" in result.stderr
    assert router.calls("sysupgrade") == []


def test_unknown_installed_package_fails_the_check(router: FakeRouter) -> None:
    status = router.file("/usr/lib/opkg/status")
    status.write_text(
        status.read_text()
        + "\nPackage: my-own-tool\nVersion: 1.0-r1\nStatus: install user installed\nArchitecture: all\n"
    )
    result = router.run("check")
    assert result.returncode == 4
    assert "my-own-tool" in result.stderr and "rejected" in result.stderr


def test_failing_build_shows_detail_and_log(router: FakeRouter) -> None:
    # the TL-WR842N v3 has 640 KiB of flash: python3-light does not fit
    as_device(router, "tplink,tl-wr842n-v3", "TP-Link TL-WR842N/ND v3")
    result = router.run("upgrade", "-y", "--poll", "1", "--add", "python3-light")
    assert result.returncode == 5, result.stdout + result.stderr
    assert "the build failed: Error: Selected packages exceed device storage" in result.stderr
    assert "is too big" in result.stderr
    assert router.calls("sysupgrade") == []


def test_server_down_and_usage_errors(router: FakeRouter) -> None:
    router.set_server("http://127.0.0.1:9/")
    down = router.run("check")
    assert down.returncode == 3 and "cannot reach http://127.0.0.1:9" in down.stderr
    assert router.run("frobnicate").returncode == 1
    assert router.run().returncode == 1
    assert router.run("--help").returncode == 0


def test_wget_fallback_without_uclient_fetch(
    router: FakeRouter, building_url: str, demo_upstream_url: str
) -> None:
    router.use_wget()
    result = router.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Available: 24.10.5 r29087-d9c5716d1d" in result.stdout
    (post,) = [call for call in router.calls("wget") if call["post_data"]]
    assert post["argv"][-1] == f"{building_url}/api/v1/upgrade-check?status_in_body=1"
    assert json.loads(post["post_data"])["version"] == "24.10.4"
    assert router.calls("uclient-fetch") == []

    # BusyBox wget's "server returned error: HTTP/1.1 404 Not Found" gives the status of a non-asud server
    router.set_server(demo_upstream_url)
    foreign = router.run("check")
    assert foreign.returncode == 3
    assert (
        f"{demo_upstream_url} answered HTTP 4" in foreign.stderr and "is it an asud server?" in foreign.stderr
    )
    router.set_server("http://127.0.0.1:9/")
    down = router.run("check")
    assert (
        down.returncode == 3 and "can't connect to remote host (127.0.0.1): Connection refused" in down.stderr
    )
