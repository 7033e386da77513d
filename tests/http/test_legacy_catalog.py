"""The 2017 API's listings through the daemon's resource: distributions, versions, device search, default
packages, and images, manifests and files of a finished build (finished through ``BuildRecords`` and
counted by the ``StatsRecorder`` as the pool does)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest_twisted

from asud.http.state import AsudApp
from asud.store.records import BuildRecords, build_key
from tests.http.client import StubClient
from tests.http.legacy_bodies import NODE, assert_legacy_error, ath79_body, image_packages, start


@pytest_twisted.ensureDeferred
async def test_listings(client: StubClient) -> None:
    distros = (await client.get("/api/distros")).json()
    assert distros == [{"name": "openwrt", "alias": "openwrt", "latest": "25.12.1", "description": ""}]
    versions = (await client.get("/api/versions?distro=openwrt")).json()
    names = [entry["version"] for entry in versions]
    assert {"24.10.4", "24.10.5", "25.12.1", "SNAPSHOT"} <= set(names)
    assert all(entry["distro"] == "openwrt" for entry in versions)
    assert next(e for e in versions if e["version"] == "SNAPSHOT")["snapshots"] is True
    assert_legacy_error(await client.get("/api/versions?distro=nope"), 400)

    models = (await client.get("/api/models?distro=openwrt&version=24.10.4&model_search=archer%20c7")).json()
    assert {(m["profile"], m["target"], m["subtarget"]) for m in models} == {
        ("tplink_archer-c7-v2", "ath79", "generic"),
        ("tplink_archer-c7-v5", "ath79", "generic"),
    }
    assert next(m for m in models if m["profile"] == "tplink_archer-c7-v5")["model"] == "TP-Link Archer C7 v5"
    missing = await client.get("/api/models?distro=openwrt&model_search=x")
    assert_legacy_error(missing, 400)
    assert missing.headers["x-missing-param"] == "version"

    packages = await image_packages(client, "openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5")
    assert "base-files" in packages and "kmod-ath10k-ct" in packages and packages == sorted(packages)
    by_board = await image_packages(client, "openwrt", "24.10.4", "ath79/generic", "tplink,archer-c7-v5")
    assert by_board == packages
    params = "distro=openwrt&version=24.10.4&target=ath79&subtarget=generic"
    assert_legacy_error(await client.get(f"/api/packages_image?{params}&profile=nope"), 404)
    assert_legacy_error(await client.get(f"/api/packages_image?{params}"), 400)
    for path in (f"/api/image/{'a' * 64}", f"/api/manifest/{'b' * 64}", f"/api/files/{'c' * 64}"):
        assert_legacy_error(await client.get(path), 404)


@pytest_twisted.ensureDeferred
async def test_models_are_at_most_fifty_and_search_profile_ids(client: StubClient) -> None:
    everything = (await client.get("/api/models?distro=openwrt&version=24.10.4")).json()
    assert 0 < len(everything) <= 50
    by_id = (await client.get("/api/models?distro=openwrt&version=24.10.4&model_search=C7-V5")).json()
    assert [m["profile"] for m in by_id] == ["tplink_archer-c7-v5"]
    assert_legacy_error(await client.get("/api/models?distro=openwrt&version=9.9"), 400)


@pytest_twisted.ensureDeferred
async def test_image_manifest_and_files_of_a_finished_build(client: StubClient, asud_app: AsudApp) -> None:
    request_hash, job = await start(asud_app, client, "upgrade-request", await ath79_body(client, "nano"))
    bin_dir = job["bin_dir"]
    sysupgrade = b"firmware" * 1000
    asud_app.files.write_bytes(bin_dir, "x-squashfs-sysupgrade.bin", sysupgrade)
    asud_app.files.write_text(bin_dir, "build.log", "make image\n")
    manifest = {"kernel": "6.6.73-1", "busybox": "1.36.1-r2", "base-files": "1647~6df0e3d02a"}
    result = {
        "images": [{"name": "x-squashfs-sysupgrade.bin", "type": "sysupgrade", "filesystem": "squashfs"}],
        "manifest": manifest,
        "titles": [{"vendor": "TP-Link", "model": "Archer C7", "variant": "v5"}],
    }
    record = await asud_app.build_records().done(job["image_key"], result, bin_dir, "", "", node=NODE)
    assert record is not None
    assert asud_app.stats is not None
    assert await asud_app.stats.record_build(job["image_key"], outcome="done", job=job,
                                             started_at=record.started_at, finished_at=record.finished_at,
                                             result=result)
    answer = (await client.get(f"/api/upgrade-request/{request_hash}")).json()

    described = await client.get(f"/api/image/{job['image_key'][:12]}")
    assert described.status_code == 200, described.text
    body = described.json()
    assert body["image_hash"] == job["image_key"] and body["manifest_hash"] == answer["manifest_hash"]
    assert {key: body[key] for key in ("distro", "version", "target", "subtarget", "profile", "model")} == {
        "distro": "openwrt", "version": "24.10.4", "target": "ath79", "subtarget": "generic",
        "profile": "tplink_archer-c7-v5", "model": "TP-Link Archer C7 v5",
    }
    assert body["sysupgrade"] == "x-squashfs-sysupgrade.bin"
    assert body["files"] == ["x-squashfs-sysupgrade.bin"]
    assert body["defaults_hash"] is None and isinstance(body["build_seconds"], int)
    assert body["build_date"].endswith("Z")
    assert (await client.get(f"/api/image/{job['image_key'][:15]}")).json() == body

    listed = await client.get(f"/api/manifest/{answer['manifest_hash']}")
    assert listed.status_code == 200, listed.text
    assert listed.json() == manifest and list(listed.json()) == sorted(manifest)
    lines = "".join(f"{name} - {version}\n" for name, version in sorted(manifest.items()))
    assert hashlib.sha256(lines.encode()).hexdigest() == answer["manifest_hash"]

    files = await client.get(f"/api/files/{bin_dir}")
    assert files.status_code == 200, files.text
    by_name: dict[str, Any] = {entry["name"]: entry for entry in files.json()}
    assert set(by_name) == {"build.log", "x-squashfs-sysupgrade.bin"}
    assert by_name["x-squashfs-sysupgrade.bin"] == {
        "name": "x-squashfs-sysupgrade.bin",
        "size": len(sysupgrade),
        "sha256": hashlib.sha256(sysupgrade).hexdigest(),
    }
    assert_legacy_error(await client.get("/api/files/not-a-bin-dir"), 404)


@pytest_twisted.ensureDeferred
async def test_images_with_defaults_answer_only_to_the_full_hash(client: StubClient,
                                                                 asud_app: AsudApp) -> None:
    # a record stored as private (a ``defaults`` build): only the full image key finds it
    records = asud_app.build_records()
    assert isinstance(records, BuildRecords)
    _, job = await start(asud_app, client, "build-request", await ath79_body(client, "curl"))
    await records.redis.call("HSET", build_key(job["image_key"]), "store_kind", "private")
    result = {"images": [], "manifest": {}}
    await records.done(job["image_key"], result, job["bin_dir"], "", "", node=NODE)
    assert_legacy_error(await client.get(f"/api/image/{job['image_key'][:12]}"), 404)
    assert (await client.get(f"/api/image/{job['image_key']}")).status_code == 200
