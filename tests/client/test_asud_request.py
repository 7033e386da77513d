"""``asud request`` end to end: the real command in a child process (spawned on the reactor), against a
server that speaks the v1 build contract (``standin_server.py``: every exit code) and against the real
daemon (``building_daemon.py``: ``twist asud`` building with the miniature ImageBuilder).

Exit codes: 0 done, 1 usage, 3 unreachable, 4 rejected, 5 build failed, 6 busy or timeout, 7 sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue

from asud.client.body import build_body, split_packages
from asud.client.session import describe_detail
from tests.client.building_daemon import building_daemon_url
from tests.client.standin_server import StandIn, start_standin
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["demo_tree", "demo_upstream_url"]

ASUD = [sys.executable, "-m", "asud"]
DEVICE = ["--version", "24.10.5", "--target", "ath79/generic"]
C7 = [*DEVICE, "--profile", "tplink_archer-c7-v5"]


@attrs.frozen
class Run:
    returncode: int
    stdout: str
    stderr: str


async def asud(*args: str) -> Run:
    """``python -m asud ARGS`` without blocking the reactor (the server under test runs on it)."""
    out, err, code = await getProcessOutputAndValue(
        sys.executable, [*ASUD[1:], *args], env=dict(os.environ), reactor=reactor
    )
    return Run(code, out.decode(), err.decode())


async def asud_request(server: str, *args: str) -> Run:
    return await asud("request", "--server", server, "--poll-interval", "0.2", *args)


@pytest_twisted.async_yield_fixture
async def standin() -> AsyncIterator[StandIn]:
    state = await start_standin(reactor)
    yield state
    assert state.port is not None
    await state.port.stopListening()


async def check_success(server: str, tmp_path: Path) -> None:
    """A build downloaded and verified, then the same request again from the cache, as JSON."""
    out = tmp_path / "out"
    result = await asud_request(server, *C7, "--packages", "luci", "--out", str(out))
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
    again = await asud_request(server, *C7, "--packages", "luci", "--out", str(tmp_path / "again"), "--json")
    assert again.returncode == 0, again.stderr
    answer = json.loads(again.stdout)
    assert answer["status"] == 200 and answer["version_code"] == "r29087-d9c5716d1d"
    assert {image["sha256"] for image in answer["images"]} == {
        hashlib.sha256(path.read_bytes()).hexdigest() for path in images
    }
    assert Path(answer["manifest"]).read_text() == manifest.read_text()


async def check_rejected(server: str, tmp_path: Path) -> None:
    """A package the server does not know: exit 4 with its detail, nothing written."""
    result = await asud_request(server, *C7, "--packages", "luci no-such-package", "--out", str(tmp_path))
    assert result.returncode == 4
    assert "Unknown package(s): no-such-package" in result.stderr
    assert list(tmp_path.iterdir()) == []

    unknown = ["--version", "99.1.0", "--target", "ath79/generic", "--profile", "x"]
    as_json = await asud_request(server, *unknown, "--json", "--out", str(tmp_path))
    assert as_json.returncode == 4
    failure = json.loads(as_json.stdout)
    assert failure["error"] == "RequestRejected" and failure["status"] == 400
    assert "99.1.0" in failure["detail"]


async def check_failed(server: str, tmp_path: Path) -> None:
    """Too much for a 4 MiB flash: exit 5 with the detail and the end of the build log."""
    result = await asud_request(server, *DEVICE, "--profile", "tplink_tl-wr842n-v3", "--packages",
                                "luci,python3-light", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert "Selected packages exceed device storage" in result.stderr
    assert "is too big" in result.stderr
    assert not list(tmp_path.glob("*.bin"))


@pytest_twisted.ensureDeferred
async def test_success_downloads_verified_images_and_manifest(standin: StandIn, tmp_path: Path) -> None:
    await check_success(standin.url, tmp_path)
    # the server saw the client's name
    (build,) = standin.builds.values()
    assert build.body["client"].startswith("asud-request/") and build.body["diff_packages"] is False


@pytest_twisted.ensureDeferred
async def test_rejected_request_exits_4_with_the_servers_detail(standin: StandIn, tmp_path: Path) -> None:
    await check_rejected(standin.url, tmp_path)


@pytest_twisted.ensureDeferred
async def test_failed_build_exits_5_with_detail_and_log(standin: StandIn, tmp_path: Path) -> None:
    await check_failed(standin.url, tmp_path)


# -- the same against the real daemon: twist asud, bwrap builds of the miniature ImageBuilder -------------
@pytest.fixture(scope="session")
def daemon_url(tmp_path_factory: pytest.TempPathFactory, demo_tree: DemoTree) -> str:
    return building_daemon_url(tmp_path_factory.mktemp("client-daemon"), demo_tree)


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_daemon_success(daemon_url: str, tmp_path: Path) -> None:
    await check_success(daemon_url, tmp_path)


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_daemon_rejected(daemon_url: str, tmp_path: Path) -> None:
    await check_rejected(daemon_url, tmp_path)


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_daemon_failed_build(daemon_url: str, tmp_path: Path) -> None:
    await check_failed(daemon_url, tmp_path)


@pytest_twisted.ensureDeferred
async def test_server_down_exits_3(tmp_path: Path) -> None:
    result = await asud_request("http://127.0.0.1:9", *DEVICE, "--profile", "generic", "--out", str(tmp_path))
    assert result.returncode == 3
    assert "cannot reach http://127.0.0.1:9" in result.stderr


@pytest_twisted.ensureDeferred
async def test_busy_server_and_slow_build_exit_6(standin: StandIn, tmp_path: Path) -> None:
    standin.mode = "busy"
    busy = await asud_request(standin.url, *C7, "--out", str(tmp_path), "--json")
    assert busy.returncode == 6
    assert json.loads(busy.stdout) == {"status": 529, "error": "ServerBusy",
                                        "detail": "Server overloaded, try again later"}  # fmt: skip
    standin.mode = "never"
    slow = await asud_request(standin.url, *C7, "--out", str(tmp_path), "--timeout", "1")
    assert slow.returncode == 6
    assert "did not finish within 1 s" in slow.stderr


@pytest_twisted.ensureDeferred
async def test_sha256_mismatch_exits_7_and_deletes_the_file(standin: StandIn, tmp_path: Path) -> None:
    standin.mode = "corrupt"
    result = await asud_request(standin.url, *C7, "--out", str(tmp_path))
    assert result.returncode == 7, result.stderr
    assert "sha256 is" in result.stderr and "(deleted)" in result.stderr
    assert not list(tmp_path.glob("*.bin"))


@pytest_twisted.ensureDeferred
async def test_unreadable_defaults_is_a_usage_error(tmp_path: Path) -> None:
    result = await asud_request("http://127.0.0.1:9", *DEVICE, "--profile", "generic",
                                "--defaults", str(tmp_path / "missing.sh"))  # fmt: skip
    assert result.returncode == 1 and "cannot read --defaults" in result.stderr


@pytest_twisted.ensureDeferred
async def test_bad_options_are_usage_errors() -> None:
    missing = await asud("request", "--server", "http://127.0.0.1:9")
    assert missing.returncode == 1 and "missing --version, --target, --profile" in missing.stderr
    too_small = await asud("request", "--server", "http://x", *C7, "--rootfs-size", "0")
    assert too_small.returncode == 1 and "at least 1" in too_small.stderr


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("Unknown package(s): foo", "Unknown package(s): foo"),
        (  # a schema error as a list of {loc, msg} (FastAPI's 422; the reference server answers so)
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
    assert body["client"].startswith("asud-request/")


@pytest_twisted.ensureDeferred
async def test_request_build_as_a_library(standin: StandIn, tmp_path: Path) -> None:
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    from asud.client import BuildSession, request_build

    http = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
    session = BuildSession(standin.url + "/", http, reactor, poll_interval=0.05)
    statuses: list[str] = []
    progress: dict[str, tuple[int, int | None]] = {}
    body = build_body(version="24.10.5", target="ath79/generic", profile="generic", packages=["-dropbear"],
                      defaults=None, rootfs_size=None, version_code=None)  # fmt: skip
    result = await request_build(
        session, body, tmp_path,
        on_status=lambda answer, _elapsed: statuses.append(answer["detail"]),
        on_progress=lambda name, done, total: progress.__setitem__(name, (done, total)),
    )  # fmt: skip
    assert statuses == ["queued", "started"]
    assert {name: done for name, (done, _total) in progress.items()} == {
        image.name: image.size for image in result.images
    }
    assert all(done == total for done, total in progress.values())
    assert "dropbear" not in result.manifest.read_text() if result.manifest else False
    assert result.to_json()["profile"] == "generic"
