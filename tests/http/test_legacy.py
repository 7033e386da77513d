"""The 2017 API's build side through the daemon's resource, without a build pool.

Every answer up to the queue — 202 with a real queue position, 204, 400, 420, 422, 503 — as before; the
finished answers (200, 413, 500 + log, 501) by finishing the queued build through ``BuildRecords`` the way
the pool does. Real builds of the second distribution are ``test_legacy_builds.py``.
"""

from __future__ import annotations

import hashlib

import pytest_twisted

from asud.errors import BuildError, ImageTooBig
from asud.http.state import AsudApp
from asud.store.records import BuildRecords
from tests.http.client import StubClient
from tests.http.legacy_bodies import NODE, assert_legacy_error, ath79_body, image, image_packages, start

# -- up to the queue ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_queued_answers_have_a_real_queue_position_and_polling_by_prefix(client: StubClient) -> None:
    first = await client.post("/api/upgrade-request", json=await ath79_body(client, "luci"))
    second = await client.post("/api/build-request", json=await ath79_body(client, "luci", "curl"))
    for response in (first, second):
        assert response.status_code == 202, response.text
        assert response.headers["x-imagebuilder-status"] == "queue"
    position = int(first.headers["x-build-queue-position"])
    assert position >= 1
    assert int(second.headers["x-build-queue-position"]) == position + 1
    request_hash = first.json()["request_hash"]
    for prefix in (request_hash, request_hash[:12], request_hash[:15]):
        polled = await client.get(f"/api/upgrade-request/{prefix}")
        assert polled.status_code == 202 and polled.json() == {"request_hash": request_hash}
        assert polled.headers["x-build-queue-position"] == str(position)
    assert_legacy_error(await client.get(f"/api/upgrade-request/{'0' * 64}"), 404)
    assert_legacy_error(await client.get(f"/api/build-request/{request_hash[:13]}"), 404)


@pytest_twisted.ensureDeferred
async def test_legacy_and_v1_requests_for_the_same_image_share_the_request(client: StubClient) -> None:
    packages = [*await image_packages(client, "openwrt", "24.10.4", "x86/64", "generic"), "htop"]
    legacy = await client.post(
        "/api/build-request",
        json={
            "distro": "OpenWrt",
            "version": "24.10.4",
            "target": "x86/64",
            "board": "qemu-standard-pc",
            "packages": packages,
        },
    )
    assert legacy.status_code == 202, legacy.text
    v1 = await client.post(
        "/api/v1/build",
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


@pytest_twisted.ensureDeferred
async def test_model_is_matched_when_the_board_is_unknown(client: StubClient) -> None:
    body = await ath79_body(
        client, "luci-app-attendedsysupgrade", board="unknown,board", model="tp-link archer a7 v5"
    )
    assert (await client.post("/api/upgrade-request", json=body)).status_code == 202
    nobody = await ath79_body(client, board="no,such", model="Nope")
    unknown = assert_legacy_error(await client.post("/api/upgrade-request", json=nobody), 400)
    assert "Unknown device" in unknown["error"]


@pytest_twisted.ensureDeferred
async def test_up_to_date_revision_is_204_with_the_request_hash(client: StubClient) -> None:
    body = await ath79_body(client, "luci", revision="r28959-29397011cc")
    response = await client.post("/api/upgrade-request", json=body)
    assert response.status_code == 204 and response.content == b""
    assert len(response.headers["x-request-hash"]) == 64
    newer = await client.post("/api/upgrade-request", json={**body, "revision": "r28000-0000000000"})
    assert newer.status_code == 202 and newer.json()["request_hash"] == response.headers["x-request-hash"]


@pytest_twisted.ensureDeferred
async def test_missing_and_unknown_fields_are_400(client: StubClient) -> None:
    body = await ath79_body(client)
    for field in ("version", "subtarget", "packages"):
        missing = {key: value for key, value in body.items() if key != field}
        response = await client.post("/api/build-request", json=missing)
        assert_legacy_error(response, 400)
        assert response.headers["x-missing-param"] == field
    error = assert_legacy_error(
        await client.post("/api/build-request", json={**body, "version": "9.9.9"}), 400
    )
    assert "9.9.9" in error["error"]
    assert_legacy_error(await client.post("/api/build-request", json={**body, "distro": "nope"}), 400)
    assert_legacy_error(await client.post("/api/build-request", content=b"{not json"), 400)


@pytest_twisted.ensureDeferred
async def test_defaults_over_the_legacy_limit_are_420(client: StubClient, asud_app: AsudApp) -> None:
    limit = asud_app.config.requests.legacy_max_defaults_length
    body = await ath79_body(client, defaults="é" * (limit // 2 + 1))  # characters under, UTF-8 bytes over
    error = assert_legacy_error(await client.post("/api/build-request", json=body), 420)
    assert str(limit) in error["error"]
    # at the limit it is not a 420 (this server does not enable defaults at all: 400)
    at_limit = await ath79_body(client, defaults="x" * limit)
    assert_legacy_error(await client.post("/api/build-request", json=at_limit), 400)


@pytest_twisted.ensureDeferred
async def test_unknown_packages_are_422_naming_the_first(client: StubClient) -> None:
    body = await ath79_body(client, "no-such-package", "luci", "another-unknown")
    response = await client.post("/api/upgrade-request", json=body)
    error = assert_legacy_error(response, 422)
    assert response.headers["x-unknown-package"] == "no-such-package"
    assert error["unknown_packages"] == ["no-such-package", "another-unknown"]


@pytest_twisted.ensureDeferred
async def test_overload_is_503_with_retry_after(client: StubClient, asud_app: AsudApp) -> None:
    assert asud_app.records is not None
    asud_app.records = BuildRecords(asud_app.records.redis, max_pending_jobs=0)  # the queue is full
    response = await client.post("/api/upgrade-request", json=await ath79_body(client, "luci", "nano"))
    assert_legacy_error(response, 503)
    assert int(response.headers["retry-after"]) > 0


# -- finished builds (the pool's side played through BuildRecords) -----------------------------------------


@pytest_twisted.ensureDeferred
async def test_started_build_is_202_initialize_then_building(client: StubClient, asud_app: AsudApp) -> None:
    from asud.build.stages import BuildStage

    request_hash, job = await start(asud_app, client, "upgrade-request", await ath79_body(client, "htop"))
    polled = await client.get(f"/api/upgrade-request/{request_hash[:12]}")
    assert polled.status_code == 202 and polled.json() == {"request_hash": request_hash}
    assert polled.headers["x-imagebuilder-status"] == "initialize"
    assert polled.headers["x-build-queue-position"] == "0"
    await asud_app.build_records().stage(job["image_key"], BuildStage.BUILDING_IMAGE, node=NODE)
    polled = await client.get(f"/api/upgrade-request/{request_hash[:15]}")
    assert polled.headers["x-imagebuilder-status"] == "building"


@pytest_twisted.ensureDeferred
async def test_done_build_links_the_sysupgrade_image_log_and_files(client: StubClient,
                                                                   asud_app: AsudApp) -> None:
    request_hash, job = await start(asud_app, client, "upgrade-request", await ath79_body(client, "nano"))
    images = [
        image("a-squashfs-factory.bin", "factory"),
        image("a-ext4-sysupgrade.bin", "sysupgrade", "ext4"),
        image("a-squashfs-sysupgrade.bin", "sysupgrade"),
    ]
    result = {"images": images, "manifest": {"busybox": "1.36.1-r2", "base-files": "1647"}}
    await asud_app.build_records().done(job["image_key"], result, job["bin_dir"], "out", "", node=NODE)
    done = await client.get(f"/api/upgrade-request/{request_hash[:12]}")
    assert done.status_code == 200, done.text
    base = f"http://asud.test/store/{job['bin_dir']}"
    assert done.json() == {
        "sysupgrade": f"{base}/a-squashfs-sysupgrade.bin",
        "log": f"{base}/build.log",
        "files": f"http://asud.test/api/files/{job['bin_dir']}",
        "request_hash": request_hash,
        "image_hash": job["image_key"],
        "manifest_hash": hashlib.sha256(b"base-files - 1647\nbusybox - 1.36.1-r2\n").hexdigest(),
    }
    # the same image asked again is answered 200 at once (a cache hit)
    again = await client.post("/api/upgrade-request", json=await ath79_body(client, "nano"))
    assert again.status_code == 200 and again.json() == done.json()


@pytest_twisted.ensureDeferred
async def test_no_sysupgrade_image_is_501_for_upgrade_request_and_200_for_build_request(
    client: StubClient, asud_app: AsudApp
) -> None:
    body = await ath79_body(client, "tcpdump")
    request_hash, job = await start(asud_app, client, "upgrade-request", body)
    result = {"images": [image("b-squashfs-factory.bin", "factory")], "manifest": {}}
    await asud_app.build_records().done(job["image_key"], result, job["bin_dir"], "", "", node=NODE)
    error = assert_legacy_error(await client.get(f"/api/upgrade-request/{request_hash}"), 501)
    assert error["request_hash"] == request_hash
    assert error["log"].endswith(f"/store/{job['bin_dir']}/build.log")
    built = await client.post("/api/build-request", json=body)
    assert built.status_code == 200, built.text
    answer = built.json()
    assert "sysupgrade" not in answer and answer["images"] == ["b-squashfs-factory.bin"]
    assert answer["request_hash"] == request_hash


@pytest_twisted.ensureDeferred
async def test_failed_build_is_500_with_the_log_url_and_too_big_is_413(client: StubClient,
                                                                       asud_app: AsudApp) -> None:
    records = asud_app.build_records()
    request_hash, job = await start(asud_app, client, "build-request", await ath79_body(client, "iperf3"))
    await records.failed(job["image_key"], BuildError("Error: produced no images", "", "boom"), node=NODE)
    error = assert_legacy_error(await client.get(f"/api/build-request/{request_hash[:12]}"), 500)
    assert error["error"] == "Error: produced no images" and error["request_hash"] == request_hash
    assert error["log"] == f"http://asud.test/store/{job['bin_dir']}/build.log"

    request_hash, job = await start(asud_app, client, "upgrade-request", await ath79_body(client, "curl"))
    too_big = ImageTooBig("Error: Selected packages exceed device storage")
    await records.failed(job["image_key"], too_big, node=NODE)
    error = assert_legacy_error(await client.get(f"/api/upgrade-request/{request_hash}"), 413)
    assert error["log"].endswith("/build.log")


@pytest_twisted.ensureDeferred
async def test_links_use_public_url_when_configured(client: StubClient, asud_app: AsudApp) -> None:
    asud_app.config = asud_app.config.with_changes(public_url="https://sysupgrade.example.org/")
    request_hash, job = await start(asud_app, client, "build-request", await ath79_body(client, "luci"))
    await asud_app.build_records().failed(job["image_key"], BuildError("Build failed"), node=NODE)
    error = assert_legacy_error(await client.get(f"/api/build-request/{request_hash}"), 500)
    assert error["log"] == f"https://sysupgrade.example.org/store/{job['bin_dir']}/build.log"
