"""``sysup request`` end to end: the real command in a subprocess, against a live server that builds."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sysup.client.cli import build_body, split_packages
from sysup.client.session import describe_detail

SYSUP = [sys.executable, "-m", "sysup.cli"]
DEVICE = ["--version", "24.10.5", "--target", "ath79/generic"]
C7 = [*DEVICE, "--profile", "tplink_archer-c7-v5"]


def sysup_request(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*SYSUP, "request", "--server", server, "--poll-interval", "0.5", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_success_downloads_verified_images_and_manifest(building_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = sysup_request(building_url, *C7, "--packages", "luci", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Built 24.10.5 r29087-d9c5716d1d" in result.stderr
    images = sorted(out.glob("*.bin"))
    assert [path.name.rsplit("-", 1)[-1] for path in images] == ["factory.bin", "sysupgrade.bin"]
    for image in images:
        line = next(line for line in result.stdout.splitlines() if line.startswith(str(image)))
        assert hashlib.sha256(image.read_bytes()).hexdigest() in line
    (manifest,) = out.glob("*.manifest")
    lines = manifest.read_text().splitlines()
    assert any(line.startswith("luci - 25.300.71234~a91f3c0") for line in lines)
    assert all(" - " in line for line in lines)

    # the same request again, for scripts: answered from the cache, one JSON object on stdout
    again = sysup_request(building_url, *C7, "--packages", "luci", "--out", str(tmp_path / "again"), "--json")
    assert again.returncode == 0, again.stderr
    answer = json.loads(again.stdout)
    assert answer["status"] == 200 and answer["version_code"] == "r29087-d9c5716d1d"
    assert {image["sha256"] for image in answer["images"]} == {
        hashlib.sha256(path.read_bytes()).hexdigest() for path in images
    }
    assert Path(answer["manifest"]).read_text() == manifest.read_text()


def test_rejected_request_exits_4_with_the_servers_detail(building_url: str, tmp_path: Path) -> None:
    result = sysup_request(building_url, *C7, "--packages", "luci no-such-package", "--out", str(tmp_path))
    assert result.returncode == 4
    assert "Unknown package(s): no-such-package" in result.stderr
    assert list(tmp_path.iterdir()) == []

    unknown = ["--version", "99.1.0", "--target", "ath79/generic", "--profile", "x"]
    as_json = sysup_request(building_url, *unknown, "--json", "--out", str(tmp_path))
    assert as_json.returncode == 4
    failure = json.loads(as_json.stdout)
    assert failure["error"] == "RequestRejected" and failure["status"] == 400
    assert "99.1.0" in failure["detail"]


def test_failed_build_exits_5_with_detail_and_log(building_url: str, tmp_path: Path) -> None:
    result = sysup_request(building_url, *DEVICE, "--profile", "tplink_tl-wr842n-v3", "--packages",
                           "luci,python3-light", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert "Selected packages exceed device storage" in result.stderr
    assert "is too big" in result.stderr
    assert not list(tmp_path.glob("*.bin"))


def test_server_down_exits_3(tmp_path: Path) -> None:
    result = sysup_request("http://127.0.0.1:9", *DEVICE, "--profile", "generic", "--out", str(tmp_path))
    assert result.returncode == 3
    assert "cannot reach http://127.0.0.1:9" in result.stderr


def test_unreadable_defaults_is_a_usage_error(tmp_path: Path) -> None:
    result = sysup_request("http://127.0.0.1:9", *DEVICE, "--profile", "generic",
                           "--defaults", str(tmp_path / "missing.sh"))  # fmt: skip
    assert result.returncode == 1 and "cannot read --defaults" in result.stderr


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("Unknown package(s): foo", "Unknown package(s): foo"),
        (  # FastAPI's 422 (the reference server answers schema errors this way)
            [{"type": "missing", "loc": ["body", "profile"], "msg": "Field required", "input": None}],
            "profile: Field required",
        ),
        (None, ""),
    ],
)
def test_describe_detail(detail: object, expected: str) -> None:
    assert describe_detail(detail) == expected


def test_request_body() -> None:
    assert split_packages(["luci curl", "-ppp,vim", ""]) == ["luci", "curl", "-ppp", "vim"]
    body = build_body(
        version="24.10.5",
        target="ath79/generic",
        profile="tplink_archer-c7-v5",
        packages=["luci"],
        defaults="uci set system.@system[0].hostname=ap\n",
        rootfs_size=128,
        version_code=None,
    )
    assert body["diff_packages"] is False and body["rootfs_size_mb"] == 128
    assert body["defaults"].startswith("uci set") and "version_code" not in body
    assert body["client"].startswith("sysup-request/")
