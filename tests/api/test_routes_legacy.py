"""The 2017 API's build side over real HTTP on 127.0.0.1.

Without a worker (``api_url``): every answer up to the queue — 202 with a real queue position, 204, 400,
420, 422, 503 — and the listings. With a worker (``libremesh_url``, marked slow): four real builds of the
demo's second distribution, which has its own download server and key, for 200, 413, 500 (+ log) and 501.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from sysup.config import DistroSettings, Settings
from tests.api.conftest import make_settings, migrate_and_sync
from tests.api.live_server import live_server
from tests.support.requirements import require_executable

ERROR_KEYS = {"error", "detail"}


def assert_legacy_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= ERROR_KEYS and isinstance(body["error"], str) and body["error"] == body["detail"]
    return dict(body)


def image_packages(url: str, distro: str, version: str, target: str, profile: str) -> list[str]:
    board, subtarget = target.split("/")
    response = httpx.get(
        f"{url}/api/packages_image",
        params={
            "distro": distro,
            "version": version,
            "target": board,
            "subtarget": subtarget,
            "profile": profile,
        },
    )
    assert response.status_code == 200, response.text
    return list(response.json()["packages"])


def ath79_body(url: str, *extra: str, **overrides: Any) -> dict[str, Any]:
    """An upgrade request of a TP-Link Archer C7 v5 (24.10.4) with its default packages plus ``extra``."""
    packages = image_packages(url, "openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5")
    body: dict[str, Any] = {
        "distro": "openwrt",
        "version": "24.10.4",
        "target": "ath79",
        "subtarget": "generic",
        "board": "tplink,archer-c7-v5",
        "packages": [*packages, *extra],
        "client": "legacy-tests/1",
    }
    body.update(overrides)
    return body


# -- without a worker -----------------------------------------------------------------------------------


def test_queued_answers_have_a_real_queue_position_and_polling_by_prefix(api_url: str) -> None:
    first = httpx.post(f"{api_url}/api/upgrade-request", json=ath79_body(api_url, "luci"))
    second = httpx.post(f"{api_url}/api/build-request", json=ath79_body(api_url, "luci", "curl"))
    for response in (first, second):
        assert response.status_code == 202, response.text
        assert response.headers["x-imagebuilder-status"] == "queue"
    position = int(first.headers["x-build-queue-position"])
    assert position >= 1
    assert int(second.headers["x-build-queue-position"]) == position + 1
    request_hash = first.json()["request_hash"]
    for prefix in (request_hash, request_hash[:12], request_hash[:15]):
        polled = httpx.get(f"{api_url}/api/upgrade-request/{prefix}")
        assert polled.status_code == 202 and polled.json() == {"request_hash": request_hash}
        assert polled.headers["x-build-queue-position"] == str(position)
    assert_legacy_error(httpx.get(f"{api_url}/api/upgrade-request/{'0' * 64}"), 404)
    assert_legacy_error(httpx.get(f"{api_url}/api/build-request/{request_hash[:13]}"), 404)


def test_legacy_and_v1_requests_for_the_same_image_share_the_request(api_url: str) -> None:
    packages = [*image_packages(api_url, "openwrt", "24.10.4", "x86/64", "generic"), "htop"]
    legacy = httpx.post(
        f"{api_url}/api/build-request",
        json={
            "distro": "OpenWrt",
            "version": "24.10.4",
            "target": "x86/64",
            "board": "qemu-standard-pc",
            "packages": packages,
        },
    )
    assert legacy.status_code == 202, legacy.text
    v1 = httpx.post(
        f"{api_url}/api/v1/build",
        json={
            "version": "24.10.4",
            "target": "x86/64",
            "profile": "generic",
            "packages": packages,
            "diff_packages": True,
        },
    )
    assert v1.status_code == 202, v1.text
    assert v1.json()["request_hash"] == legacy.json()["request_hash"]


def test_model_is_matched_when_the_board_is_unknown(api_url: str) -> None:
    body = ath79_body(
        api_url, "luci-app-attendedsysupgrade", board="unknown,board", model="tp-link archer a7 v5"
    )
    assert httpx.post(f"{api_url}/api/upgrade-request", json=body).status_code == 202
    unknown = assert_legacy_error(
        httpx.post(f"{api_url}/api/upgrade-request", json=ath79_body(api_url, board="no,such", model="Nope")),
        400,
    )
    assert "Unknown device" in unknown["error"]


def test_up_to_date_revision_is_204_with_the_request_hash(api_url: str) -> None:
    body = ath79_body(api_url, "luci", revision="r28959-29397011cc")
    response = httpx.post(f"{api_url}/api/upgrade-request", json=body)
    assert response.status_code == 204 and response.content == b""
    assert len(response.headers["x-request-hash"]) == 64
    newer = httpx.post(f"{api_url}/api/upgrade-request", json={**body, "revision": "r28000-0000000000"})
    assert newer.status_code == 202 and newer.json()["request_hash"] == response.headers["x-request-hash"]


def test_missing_and_unknown_fields_are_400(api_url: str) -> None:
    body = ath79_body(api_url)
    for field in ("version", "subtarget", "packages"):
        missing = {key: value for key, value in body.items() if key != field}
        response = httpx.post(f"{api_url}/api/build-request", json=missing)
        assert_legacy_error(response, 400)
        assert response.headers["x-missing-param"] == field
    error = assert_legacy_error(
        httpx.post(f"{api_url}/api/build-request", json={**body, "version": "9.9.9"}), 400
    )
    assert "9.9.9" in error["error"]
    assert_legacy_error(httpx.post(f"{api_url}/api/build-request", json={**body, "distro": "nope"}), 400)
    assert_legacy_error(httpx.post(f"{api_url}/api/build-request", content=b"{not json"), 400)


def test_defaults_over_the_legacy_limit_are_420(api_url: str, api_state: Any) -> None:
    limit = api_state.settings.legacy_max_defaults_length
    body = ath79_body(api_url, defaults="é" * (limit // 2 + 1))  # characters under, UTF-8 bytes over
    error = assert_legacy_error(httpx.post(f"{api_url}/api/build-request", json=body), 420)
    assert str(limit) in error["error"]
    # at the limit it is not a 420 (this server does not enable defaults at all: 400)
    assert_legacy_error(
        httpx.post(f"{api_url}/api/build-request", json=ath79_body(api_url, defaults="x" * limit)), 400
    )


def test_unknown_packages_are_422_naming_the_first(api_url: str) -> None:
    body = ath79_body(api_url, "no-such-package", "luci", "another-unknown")
    response = httpx.post(f"{api_url}/api/upgrade-request", json=body)
    error = assert_legacy_error(response, 422)
    assert response.headers["x-unknown-package"] == "no-such-package"
    assert error["unknown_packages"] == ["no-such-package", "another-unknown"]


def test_overload_is_503_with_retry_after(queued_settings: Settings, api_url: str) -> None:
    from sysup.api.app import create_app

    full = queued_settings.model_copy(update={"max_pending_jobs": 0})
    with live_server(create_app(full)) as url:
        response = httpx.post(f"{url}/api/upgrade-request", json=ath79_body(api_url, "luci", "nano"))
    assert_legacy_error(response, 503)
    assert int(response.headers["retry-after"]) > 0


def test_listings(api_url: str) -> None:
    distros = httpx.get(f"{api_url}/api/distros").json()
    assert distros == [{"name": "openwrt", "alias": "openwrt", "latest": "25.12.1", "description": ""}]
    versions = httpx.get(f"{api_url}/api/versions", params={"distro": "openwrt"}).json()
    names = [entry["version"] for entry in versions]
    assert {"24.10.4", "24.10.5", "25.12.1", "SNAPSHOT"} <= set(names)
    assert all(entry["distro"] == "openwrt" for entry in versions)
    assert next(e for e in versions if e["version"] == "SNAPSHOT")["snapshots"] is True
    assert_legacy_error(httpx.get(f"{api_url}/api/versions", params={"distro": "nope"}), 400)

    models = httpx.get(
        f"{api_url}/api/models",
        params={"distro": "openwrt", "version": "24.10.4", "model_search": "archer c7"},
    ).json()
    assert {(m["profile"], m["target"], m["subtarget"]) for m in models} == {
        ("tplink_archer-c7-v2", "ath79", "generic"),
        ("tplink_archer-c7-v5", "ath79", "generic"),
    }
    assert next(m for m in models if m["profile"] == "tplink_archer-c7-v5")["model"] == "TP-Link Archer C7 v5"
    missing = httpx.get(f"{api_url}/api/models", params={"distro": "openwrt", "model_search": "x"})
    assert_legacy_error(missing, 400)
    assert missing.headers["x-missing-param"] == "version"

    packages = image_packages(api_url, "openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5")
    assert "base-files" in packages and "kmod-ath10k-ct" in packages and packages == sorted(packages)
    by_board = image_packages(api_url, "openwrt", "24.10.4", "ath79/generic", "tplink,archer-c7-v5")
    assert by_board == packages
    params = {"distro": "openwrt", "version": "24.10.4", "target": "ath79", "subtarget": "generic"}
    assert_legacy_error(httpx.get(f"{api_url}/api/packages_image", params={**params, "profile": "nope"}), 404)
    assert_legacy_error(httpx.get(f"{api_url}/api/packages_image", params=params), 400)
    for path in (f"/api/image/{'a' * 64}", f"/api/manifest/{'b' * 64}", f"/api/files/{'c' * 64}"):
        assert_legacy_error(httpx.get(f"{api_url}{path}"), 404)


# -- with a worker: the second distribution ------------------------------------------------------------

BUILD_TIMEOUT = 240.0
STARTED_STATUSES = {"queue", "initialize", "building"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def libremesh_url(
    tmp_path_factory: pytest.TempPathFactory, demo_info: Any, demo_upstream_url: str
) -> Iterator[str]:
    """A server building openwrt (24.10 only) and libremesh, each from its own download server and key."""
    require_executable("bwrap")
    from asud.demo.generator import generate_tree
    from sysup.api.app import create_app
    from sysup.builds.queue import start_embedded_consumer
    from sysup.demo_upstream.server import running_upstream

    port = _free_port()
    tree = generate_tree(
        tmp_path_factory.mktemp("libremesh") / "tree",
        base_url=f"http://127.0.0.1:{port}",
        distribution="libremesh",
    )
    assert tree.public_key_text != demo_info.public_key_text
    with ExitStack() as stack:
        libremesh_upstream = stack.enter_context(running_upstream(tree.root, port=port))
        distros = {
            "openwrt": DistroSettings(
                upstream_url=demo_upstream_url,
                public_keys=[demo_info.public_key_text],
                branches=["24.10"],
                snapshots=False,
            ),
            "libremesh": DistroSettings(
                upstream_url=libremesh_upstream,
                public_keys=[tree.public_key_text],
                alias="LibreMesh",
                snapshots=False,
                description="mesh firmware",
            ),
        }
        settings = make_settings(
            tmp_path_factory.mktemp("api-libremesh"),
            demo_info,
            demo_upstream_url,
            distros=distros,
            sandbox="bwrap",
            workers=2,
        )
        migrate_and_sync(settings)
        consumer = start_embedded_consumer(settings)
        stack.callback(consumer.stop)
        yield stack.enter_context(live_server(create_app(settings)))


def wait(url: str, kind: str, body: dict[str, Any]) -> httpx.Response:
    """POST, then poll with the 12-character hash (as 2018 clients did) until the answer is final."""
    response = httpx.post(f"{url}/api/{kind}", json=body, timeout=30)
    deadline = time.monotonic() + BUILD_TIMEOUT
    while response.status_code == 202:
        assert response.headers["x-imagebuilder-status"] in STARTED_STATUSES
        assert int(response.headers["x-build-queue-position"]) >= 0
        assert time.monotonic() < deadline, "build not finished in time"
        time.sleep(0.3)
        response = httpx.get(f"{url}/api/{kind}/{response.json()['request_hash'][:12]}", timeout=30)
    return response


def libremesh_body(url: str, profile: str, board: str, *extra: str) -> dict[str, Any]:
    packages = image_packages(url, "libremesh", "2024.1", "ath79/generic", profile)
    return {
        "distro": "LibreMesh",
        "version": "2024.1",
        "target": "ath79/generic",
        "board": board,
        "packages": [*packages, *extra],
    }


@pytest.mark.slow
def test_second_distribution_builds_from_its_own_upstream(libremesh_url: str) -> None:
    url = libremesh_url
    distros = {entry["name"]: entry for entry in httpx.get(f"{url}/api/distros").json()}
    assert distros["libremesh"] == {
        "name": "libremesh",
        "alias": "LibreMesh",
        "latest": "2024.1",
        "description": "mesh firmware",
    }
    assert [
        e["version"] for e in httpx.get(f"{url}/api/versions", params={"distro": "libremesh"}).json()
    ] == ["2024.1"]
    overview = httpx.get(f"{url}/json/v1/overview.json").json()
    assert overview["distros"]["libremesh"]["latest"] == ["2024.1"]

    # 200: the sysupgrade image, its log, files, image and manifest
    body = libremesh_body(url, "tplink_tl-wr842n-v3", "tplink,tl-wr842n-v3")
    done = wait(url, "upgrade-request", body)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert re.fullmatch(
        rf"{url}/store/[0-9a-f]{{64}}/libremesh-2024\.1-[0-9a-f]{{12}}-ath79-generic-tplink_tl-wr842n-v3-"
        r"squashfs-sysupgrade\.bin",
        answer["sysupgrade"],
    )
    image = httpx.get(answer["sysupgrade"])
    assert image.status_code == 200 and len(image.content) > 256 * 1024
    assert "make image" in httpx.get(answer["log"]).text
    files = {entry["name"]: entry for entry in httpx.get(answer["files"]).json()}
    sysupgrade_name = answer["sysupgrade"].rsplit("/", 1)[1]
    assert files[sysupgrade_name]["sha256"] == hashlib.sha256(image.content).hexdigest()
    described = httpx.get(f"{url}/api/image/{answer['image_hash'][:12]}").json()
    assert described["distro"] == "libremesh" and described["sysupgrade"] == sysupgrade_name
    assert (
        described["model"] == "TP-Link TL-WR842N v3" and described["manifest_hash"] == answer["manifest_hash"]
    )
    manifest = httpx.get(f"{url}/api/manifest/{answer['manifest_hash']}").json()
    assert "base-files" in manifest and "kernel" in manifest
    lines = "".join(f"{name} - {version}\n" for name, version in sorted(manifest.items()))
    assert hashlib.sha256(lines.encode()).hexdigest() == answer["manifest_hash"]

    # 413: python3-light does not fit the small flash
    too_big = wait(url, "upgrade-request", {**body, "packages": [*body["packages"], "python3-light"]})
    error = assert_legacy_error(too_big, 413)
    assert "is too big" in httpx.get(error["log"]).text

    # 501 for upgrade-request, 200 for build-request: the same build, factory image only
    factory = libremesh_body(url, "tplink_cpe510-v1", "tplink,cpe510-v1")
    no_sysupgrade = wait(url, "upgrade-request", factory)
    assert_legacy_error(no_sysupgrade, 501)
    built = wait(url, "build-request", factory)
    assert built.status_code == 200, built.text
    assert "sysupgrade" not in built.json()
    assert built.json()["request_hash"] == no_sysupgrade.json()["request_hash"]
    assert any(name.endswith("squashfs-factory.bin") for name in built.json()["images"])

    # 500 with a log URL that serves the build log
    failed = wait(url, "build-request", libremesh_body(url, "ubnt_bullet-m-xw", "ubnt,bullet-m-xw"))
    error = assert_legacy_error(failed, 500)
    log = httpx.get(error["log"])
    assert log.status_code == 200 and "produced no images" in log.text

    stats = {entry["target"]: entry for entry in httpx.get(f"{url}/api/v1/stats/popular_targets").json()}
    assert stats["ath79"]["count"] == 5 and stats["ath79"]["build_seconds"] is not None
