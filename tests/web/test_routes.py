"""The pages and ``/web/api/*`` over real HTTP, against the API's test server (no build worker) over the
synced demo catalog."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from sysup.web.routes import CONTENT_SECURITY_POLICY

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


@pytest.mark.parametrize("path", ["/", "/about", "/build/0123abcd"])
def test_pages_are_html_with_a_strict_policy(api_url: str, path: str) -> None:
    response = httpx.get(api_url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    # Every asset a page names is served by sysup itself.
    assets = re.findall(r'(?:src|href)="(/web/static/[^"?]+)', response.text)
    assert assets
    for asset in assets:
        assert httpx.get(api_url + asset).status_code == 200, asset
    assert not re.search(r'(?:src|href)="(?:https?:)?//', response.text)


def test_javascript_modules_and_their_imports_are_served(api_url: str) -> None:
    for module in ("builder", "progress", "combobox", "http"):
        response = httpx.get(f"{api_url}/web/static/js/{module}.js")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        for imported in re.findall(r'from "\./([\w-]+\.js)"', response.text):
            assert httpx.get(f"{api_url}/web/static/js/{imported}").status_code == 200


def test_builder_lists_stable_releases_first_and_marks_snapshots(api_url: str) -> None:
    html = httpx.get(api_url + "/").text
    versions = re.findall(r'<option value="([^"]+)" data-kind="(\w+)"', html)
    assert versions[0] == ("25.12.1", "stable")
    kinds = [kind for _, kind in versions]
    assert kinds == sorted(kinds, key=["stable", "release", "snapshot"].index)
    assert ("SNAPSHOT", "snapshot") in versions
    assert "SNAPSHOT (development snapshot)" in html
    # This server refuses first-boot scripts, so the builder does not offer one.
    assert 'id="defaults"' not in html


def test_bad_build_address_is_404(api_url: str) -> None:
    response = httpx.get(api_url + "/build/not%20a%20hash")
    assert response.status_code == 404 and "Not found" in response.text


def test_about_page_names_versions_targets_limits_and_docs(api_url: str) -> None:
    html = httpx.get(api_url + "/about").text
    for text in ("25.12.1", "24.10.4", "SNAPSHOT", "mediatek/filogic", "x86/64", "1024 MB", 'href="/docs"'):
        assert text in html, text
    assert "not allowed on this server" in html


def test_device_search_is_typo_tolerant(api_url: str) -> None:
    answer = httpx.get(f"{api_url}/web/api/devices", params={"version": "24.10.5", "q": "archr c7 v5"}).json()
    assert answer["total"] >= 13
    first = answer["devices"][0]
    assert (first["target"], first["id"], first["title"]) == (
        "ath79/generic",
        "tplink_archer-c7-v5",
        "TP-Link Archer C7 v5",
    )
    by_board = httpx.get(f"{api_url}/web/api/devices", params={"version": "SNAPSHOT", "q": "bananapi,bpi-r3"})
    assert by_board.json()["devices"][0]["id"] == "bananapi_bpi-r3"
    unknown = httpx.get(f"{api_url}/web/api/devices", params={"version": "9.9.9", "q": "archer"}).json()
    assert unknown == {"total": 0, "devices": []}


def test_device_details(api_url: str, demo_upstream_url: str) -> None:
    archer = httpx.get(f"{api_url}/web/api/device", params=ARCHER).json()
    assert archer["titles"] == ["TP-Link Archer C7 v5", "TP-Link Archer A7 v5"]
    assert "base-files" in archer["default_packages"] and "kmod-ath10k-ct" in archer["device_packages"]
    assert {image["type"] for image in archer["images"]} == {"sysupgrade", "factory"}
    stock = f"{demo_upstream_url}/releases/24.10.5/targets/ath79/generic/"
    assert archer["images"][0]["url"].startswith(stock)
    assert archer["supports_rootfs_size"] is False and archer["filesystems"] == ["squashfs"]
    assert archer["package_manager"] == "opkg" and archer["snapshot"] is False

    x86 = httpx.get(
        f"{api_url}/web/api/device", params={"version": "SNAPSHOT", "target": "x86/64", "id": "generic"}
    ).json()
    assert x86["supports_rootfs_size"] is True and x86["filesystems"] == ["ext4", "squashfs"]
    assert x86["snapshot"] is True and x86["package_manager"] == "apk"

    missing = httpx.get(f"{api_url}/web/api/device", params={**ARCHER, "id": "nope"})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_package_suggestions(api_url: str) -> None:
    params = {"version": "24.10.5", "target": "ath79/generic", "q": "luci-app-adb"}
    answer = httpx.get(f"{api_url}/web/api/packages", params=params).json()
    assert answer["packages"][0]["name"] == "luci-app-adblock"
    assert answer["packages"][0]["version"]
    kmods = httpx.get(f"{api_url}/web/api/packages", params={**params, "q": "kmod-usb"}).json()["packages"]
    # Names starting with what was typed come first, shortest first.
    assert [item["name"] for item in kmods[:3]] == ["kmod-usb2", "kmod-usb3", "kmod-usb-core"]


def test_validation_flags_unknown_names_with_suggestions(api_url: str) -> None:
    answer = httpx.post(f"{api_url}/web/api/validate", json=build_body(packages=["luci-app-adblok"])).json()
    assert answer["ok"] is False and answer["kind"] == "unknown"
    assert answer["unknown"] == ["luci-app-adblok"]
    assert answer["suggestions"]["luci-app-adblok"] == ["luci-app-adblock"]
    # The same words the build route answers with.
    posted = httpx.post(f"{api_url}/api/v1/build", json=build_body(packages=["luci-app-adblok"]))
    assert posted.status_code == 400 and posted.json()["detail"] == answer["detail"]


def test_validation_reports_conflicts_from_the_resolver(api_url: str) -> None:
    body = build_body(packages=["ip-tiny", "ip-full"])
    answer = httpx.post(f"{api_url}/web/api/validate", json=body).json()
    assert answer["ok"] is False and answer["kind"] == "conflict"
    assert "conflicts with" in answer["detail"]


def test_validation_refuses_what_the_build_route_refuses(api_url: str) -> None:
    defaults = httpx.post(f"{api_url}/web/api/validate", json=build_body(defaults="echo hi")).json()
    assert defaults == {"ok": False, "kind": "invalid", "detail": "Handling `defaults` not enabled on server"}
    schema = httpx.post(f"{api_url}/web/api/validate", json=build_body(profile="bad profile!")).json()
    assert schema["kind"] == "invalid" and schema["detail"].startswith("Invalid request: profile")
    too_big = httpx.post(f"{api_url}/web/api/validate", json=build_body(rootfs_size_mb=5000)).json()
    assert too_big["kind"] == "invalid" and "1024" in too_big["detail"]
    nothing = httpx.post(f"{api_url}/web/api/validate", json=None).json()
    assert nothing["ok"] is False and nothing["kind"] == "invalid"


def test_a_valid_selection_is_checked_without_being_queued(api_url: str) -> None:
    queued = httpx.get(f"{api_url}/api/v1/stats").json()["queue_length"]
    body = build_body(packages=["luci-app-adblock", "-ppp-mod-pppoe"], client="test/validate")
    answer = httpx.post(f"{api_url}/web/api/validate", json=body).json()
    assert answer["ok"] is True and answer["resolved"] is True
    assert "adblock" in answer["manifest"] and "ppp-mod-pppoe" not in answer["manifest"]
    assert httpx.get(f"{api_url}/api/v1/stats").json()["queue_length"] == queued
    # The hash the page would get is the one the build route gives.
    posted = httpx.post(f"{api_url}/api/v1/build", json=body)
    assert posted.status_code == 202 and posted.json()["request_hash"] == answer["request_hash"]
