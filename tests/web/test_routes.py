"""The pages and ``/web/api/*`` of asud over the demo catalog and a private ``redis-server`` (no build pool),
through StubTreq; the mount-point links and static traversal on a real socket."""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_twisted
from twisted.web.resource import Resource

from asud.http.root import make_resource
from asud.http.state import AsudApp
from asud.http.web import CONTENT_SECURITY_POLICY
from tests.http.client import LiveServer, StubClient, listening, raw_request

ARCHER = {"version": "24.10.5", "target": "ath79/generic", "id": "tplink_archer-c7-v5"}


def build_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": "24.10.5",
        "target": "ath79/generic",
        "profile": "tplink_archer-c7-v5",
        "packages": [],
        "client": "test/1",
    }
    body.update(changes)
    return body


def query(path: str, **params: str) -> str:
    from urllib.parse import urlencode

    return f"{path}?{urlencode(params)}"


@pytest.mark.parametrize("path", ["/", "/about", "/build/0123abcd"])
@pytest_twisted.ensureDeferred
async def test_pages_are_html_with_a_strict_policy(client: StubClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    # Every asset a page names is served by asud itself.
    assets = re.findall(r'(?:src|href)="(/web/static/[^"?]+)', response.text)
    assert assets
    for asset in assets:
        assert (await client.get(asset)).status_code == 200, asset
    assert not re.search(r'(?:src|href)="(?:https?:)?//', response.text)


@pytest_twisted.ensureDeferred
async def test_javascript_modules_and_their_imports_are_served(client: StubClient) -> None:
    for module in ("builder", "progress", "combobox", "http"):
        response = await client.get(f"/web/static/js/{module}.js")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        for imported in re.findall(r'from "\./([\w-]+\.js)"', response.text):
            assert (await client.get(f"/web/static/js/{imported}")).status_code == 200


@pytest_twisted.ensureDeferred
async def test_builder_lists_stable_releases_first_and_marks_snapshots(client: StubClient) -> None:
    html = (await client.get("/")).text
    versions = re.findall(r'<option value="([^"]+)" data-kind="(\w+)"', html)
    assert versions[0] == ("25.12.1", "stable")
    kinds = [kind for _, kind in versions]
    assert kinds == sorted(kinds, key=["stable", "release", "snapshot"].index)
    assert ("SNAPSHOT", "snapshot") in versions
    assert "SNAPSHOT (development snapshot)" in html
    # This server refuses first-boot scripts, so the builder does not offer one.
    assert 'id="defaults"' not in html


@pytest_twisted.ensureDeferred
async def test_bad_build_address_is_404(client: StubClient) -> None:
    response = await client.get("/build/not%20a%20hash")
    assert response.status_code == 404 and "Not found" in response.text


@pytest_twisted.ensureDeferred
async def test_about_page_names_versions_targets_limits_and_docs(client: StubClient) -> None:
    html = (await client.get("/about")).text
    for text in ("25.12.1", "24.10.4", "SNAPSHOT", "mediatek/filogic", "x86/64", "1024 MB", 'href="/docs"'):
        assert text in html, text
    assert "not allowed on this server" in html


@pytest_twisted.ensureDeferred
async def test_device_search_is_typo_tolerant(client: StubClient) -> None:
    answer = (await client.get(query("/web/api/devices", version="24.10.5", q="archr c7 v5"))).json()
    assert answer["total"] >= 13
    first = answer["devices"][0]
    assert (first["target"], first["id"], first["title"]) == (
        "ath79/generic",
        "tplink_archer-c7-v5",
        "TP-Link Archer C7 v5",
    )
    by_board = await client.get(query("/web/api/devices", version="SNAPSHOT", q="bananapi,bpi-r3"))
    assert by_board.json()["devices"][0]["id"] == "bananapi_bpi-r3"
    unknown = (await client.get(query("/web/api/devices", version="9.9.9", q="archer"))).json()
    assert unknown == {"total": 0, "devices": []}


@pytest_twisted.ensureDeferred
async def test_device_details(client: StubClient, demo_upstream_url: str) -> None:
    archer = (await client.get(query("/web/api/device", **ARCHER))).json()
    assert archer["titles"] == ["TP-Link Archer C7 v5", "TP-Link Archer A7 v5"]
    assert "base-files" in archer["default_packages"] and "kmod-ath10k-ct" in archer["device_packages"]
    assert {image["type"] for image in archer["images"]} == {"sysupgrade", "factory"}
    stock = f"{demo_upstream_url}/releases/24.10.5/targets/ath79/generic/"
    assert archer["images"][0]["url"].startswith(stock)
    assert archer["supports_rootfs_size"] is False and archer["filesystems"] == ["squashfs"]
    assert archer["package_manager"] == "opkg" and archer["snapshot"] is False

    x86_query = query("/web/api/device", version="SNAPSHOT", target="x86/64", id="generic")
    x86 = (await client.get(x86_query)).json()
    assert x86["supports_rootfs_size"] is True and x86["filesystems"] == ["ext4", "squashfs"]
    assert x86["snapshot"] is True and x86["package_manager"] == "apk"

    missing = await client.get(query("/web/api/device", **{**ARCHER, "id": "nope"}))
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


@pytest_twisted.ensureDeferred
async def test_query_parameters_are_checked_as_the_build_route_checks_fields(client: StubClient) -> None:
    missing = await client.get(query("/web/api/device", version="24.10.5"))
    assert missing.status_code == 400
    assert missing.json()["detail"] == (
        "Invalid request: query.target: Field required; query.id: Field required"
    )
    long = await client.get(query("/web/api/devices", version="1" * 65))
    assert long.status_code == 400
    assert long.json()["detail"] == "Invalid request: query.version: String should have at most 64 characters"


@pytest_twisted.ensureDeferred
async def test_package_suggestions(client: StubClient) -> None:
    params = {"version": "24.10.5", "target": "ath79/generic", "q": "luci-app-adb"}
    answer = (await client.get(query("/web/api/packages", **params))).json()
    assert answer["packages"][0]["name"] == "luci-app-adblock"
    assert answer["packages"][0]["version"]
    kmods = (await client.get(query("/web/api/packages", **{**params, "q": "kmod-usb"}))).json()["packages"]
    # Names starting with what was typed come first, shortest first.
    assert [item["name"] for item in kmods[:3]] == ["kmod-usb2", "kmod-usb3", "kmod-usb-core"]


@pytest_twisted.ensureDeferred
async def test_validation_flags_unknown_names_with_suggestions(client: StubClient) -> None:
    answer = (await client.post("/web/api/validate", json=build_body(packages=["luci-app-adblok"]))).json()
    assert answer["ok"] is False and answer["kind"] == "unknown"
    assert answer["unknown"] == ["luci-app-adblok"]
    assert answer["suggestions"]["luci-app-adblok"] == ["luci-app-adblock"]
    # The same words the build route answers with.
    posted = await client.post("/api/v1/build", json=build_body(packages=["luci-app-adblok"]))
    assert posted.status_code == 400 and posted.json()["detail"] == answer["detail"]


@pytest_twisted.ensureDeferred
async def test_validation_reports_conflicts_from_the_resolver(client: StubClient) -> None:
    body = build_body(packages=["ip-tiny", "ip-full"])
    answer = (await client.post("/web/api/validate", json=body)).json()
    assert answer["ok"] is False and answer["kind"] == "conflict"
    assert "conflicts with" in answer["detail"]


@pytest_twisted.ensureDeferred
async def test_validation_refuses_what_the_build_route_refuses(client: StubClient) -> None:
    defaults = (await client.post("/web/api/validate", json=build_body(defaults="echo hi"))).json()
    assert defaults == {"ok": False, "kind": "invalid", "detail": "Handling `defaults` not enabled on server"}
    schema = (await client.post("/web/api/validate", json=build_body(profile="bad profile!"))).json()
    assert schema["kind"] == "invalid" and schema["detail"].startswith("Invalid request: profile")
    too_big = (await client.post("/web/api/validate", json=build_body(rootfs_size_mb=5000))).json()
    assert too_big["kind"] == "invalid" and "1024" in too_big["detail"]
    nothing = (await client.post("/web/api/validate")).json()
    assert nothing["ok"] is False and nothing["kind"] == "invalid"
    not_json = await client.post("/web/api/validate", content=b"{nope")
    assert not_json.status_code == 400
    assert not_json.json()["detail"] == "Invalid request: the body is not valid JSON"


@pytest_twisted.ensureDeferred
async def test_a_valid_selection_is_checked_without_being_queued(client: StubClient) -> None:
    queued = (await client.get("/api/v1/stats")).json()["queue_length"]
    body = build_body(packages=["luci-app-adblock", "-ppp-mod-pppoe"], client="test/validate")
    answer = (await client.post("/web/api/validate", json=body)).json()
    assert answer["ok"] is True and answer["resolved"] is True
    assert "adblock" in answer["manifest"] and "ppp-mod-pppoe" not in answer["manifest"]
    assert (await client.get("/api/v1/stats")).json()["queue_length"] == queued
    # The hash the page would get is the one the build route gives.
    posted = await client.post("/api/v1/build", json=body)
    assert posted.status_code == 202 and posted.json()["request_hash"] == answer["request_hash"]


@pytest_twisted.ensureDeferred
async def test_catalog_still_loading(asud_app: AsudApp) -> None:
    """Pages render (saying nothing is available yet); the JSON endpoints answer 503."""
    saved = asud_app.catalog.catalog
    asud_app.catalog.catalog = None
    try:
        client = StubClient(make_resource(asud_app))
        builder = await client.get("/")
        assert builder.status_code == 200 and "has not been synchronised" in builder.text
        assert "has not been synchronised" in (await client.get("/about")).text
        devices = await client.get(query("/web/api/devices", version="24.10.5", q="archer"))
        assert devices.status_code == 503
    finally:
        asud_app.catalog.catalog = saved


# -- on a real socket -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/web/static/../../../../etc/passwd",
    "/web/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/web/static/..%2f..%2f..%2fweb.py",
    "/web/static/js/../../web.py",
    "/web/static/js%2f..%2f..%2fweb.py",
    "/web/static/",
    "/web/static/js",
])
@pytest_twisted.ensureDeferred
async def test_static_files_stay_in_their_directory(server: LiveServer, target: str) -> None:
    status, body, _ = await raw_request(server, "GET", target)
    assert status in (301, 400, 404), (status, body[:200])
    assert b"root:" not in body and b"WebPages" not in body


@pytest_twisted.ensureDeferred
async def test_links_follow_the_mount_point(asud_app: AsudApp) -> None:
    """Below a prefix (a host program serving asud at ``/asud/``) every link and asset starts with it."""
    host = Resource()
    host.putChild(b"asud", make_resource(asud_app))  # type: ignore[arg-type]
    async with listening(host) as live:
        for path in ("/asud/", "/asud/about", "/asud/build/0123abcd", "/asud/stats"):
            answer = await live.client.get(path)
            assert answer.status_code == 200, (path, answer.text[:300])
            assert 'data-root="/asud"' in answer.text
            links = re.findall(r'(?:src|href)="(/[^"]*)"', answer.text)
            assert links and all(link.startswith("/asud/") for link in links), links
            for asset in (link for link in links if link.startswith("/asud/web/static/")):
                assert (await live.client.get(asset.split("?")[0])).status_code == 200, asset
        top = await live.client.get("/asud/")
        assert 'href="/asud/docs"' in top.text and 'href="/asud/stats"' in top.text
