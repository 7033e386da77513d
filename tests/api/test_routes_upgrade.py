"""``/api/upgrade-check`` (2017 API) and ``/api/v1/upgrade-check`` over real HTTP on 127.0.0.1.

The app is ``create_app`` with this router included (as the lead will), over a catalog synced from the
demo upstream; its policy moves one branch at a time (``app.state.upgrade_policy``), so 23.05.5 is offered
24.10.5.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysup.config import Settings, UpgradePolicySettings
from tests.api.live_server import live_server
from tests.support.upstream import DemoTree

LEGACY = "/api/upgrade-check"
V1 = "/api/v1/upgrade-check"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_tree: DemoTree) -> Iterator[str]:
    import sysup.builds.models  # noqa: F401  (the build tables, created with the rest below)
    from sysup.api.app import create_app
    from tests.upgrades.helpers import synced_sessions

    data_dir: Path = tmp_path_factory.mktemp("api-upgrades")
    url = f"sqlite:///{data_dir / 'sysup.db'}"
    sessions, distro = synced_sessions(url, demo_tree)
    sessions.kw["bind"].dispose()
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        distros={"openwrt": distro},
        sandbox="none",
        upgrade_policy=UpgradePolicySettings(next_branch_only=True),
    )
    app = create_app(settings)
    with live_server(app) as base_url:
        yield base_url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def installed(client: httpx.Client, version: str, names: list[str], target: str = "x86/64") -> dict[str, str]:
    """Versions as a device running ``version`` reports them, read from this server's ``/json/v1`` index."""
    path = "snapshots" if version == "SNAPSHOT" else f"releases/{version}"
    index: dict[str, str] = {}
    targets = client.get(f"/json/v1/{path}/targets/{target}/index.json")
    assert targets.status_code == 200, targets.text
    index.update(targets.json()["packages"])
    arch = targets.json()["architecture"]
    feeds = client.get(f"/json/v1/{path}/packages/{arch}-index.json")
    assert feeds.status_code == 200, feeds.text
    index.update(feeds.json())
    return {name: index[name] for name in names}


def legacy_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"distro": "openwrt", "target": "x86", "subtarget": "64"}
    body.update(fields)
    return body


def test_point_release(client: httpx.Client) -> None:
    packages = installed(client, "24.10.4", ["curl", "dnsmasq", "owut"])
    packages["vim"] = "99.0-r1"  # newer than the release has: must not be listed as an upgrade
    response = client.post(LEGACY, json=legacy_body(version="24.10.4", packages=packages))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == "24.10.5"
    assert body["upgrades"] == {"curl": ["8.14.1-r1", "8.12.1-r2"], "dnsmasq": ["2.91-r1", "2.90-r4"]}
    assert body["packages"] == ["curl", "dnsmasq", "owut", "vim"]
    assert len(body["request_hash"]) == 64
    assert set(body) == {"version", "upgrades", "packages", "request_hash"}


def test_next_branch_renames_auc_to_owut(client: httpx.Client) -> None:
    packages = installed(client, "23.05.5", ["auc", "curl", "luci-app-opkg"])
    # 2019 clients: ``installed``, ``revision``, ``LEDE``, and the target in one field
    body = {
        "distro": "LEDE",
        "version": "23.05.5",
        "target": "x86/64",
        "installed": packages,
        "revision": "r24106-10cc5fcd00",
    }
    response = client.post(LEGACY, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["version"] == "24.10.5"
    assert "owut" in answer["packages"] and "auc" not in answer["packages"]
    assert "luci-app-package-manager" in answer["packages"]
    assert answer["upgrades"]["curl"] == ["8.14.1-r1", "8.7.1-1"]


def test_latest_release_answers_204_with_the_hash(client: httpx.Client) -> None:
    packages = installed(client, "25.12.1", ["curl", "owut"])
    response = client.post(LEGACY, json=legacy_body(version="25.12.1", packages=packages))
    assert response.status_code == 204
    assert response.content == b""
    request_hash = response.headers["X-Request-Hash"]
    assert len(request_hash) == 64
    again = client.get(f"{LEGACY}/{request_hash}")
    assert again.status_code == 204
    assert again.headers["X-Request-Hash"] == request_hash


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"distro": "openwrt", "target": "x86", "subtarget": "64"}, "version"),
        ({"version": "24.10.4"}, "target"),
        ({"version": "24.10.4", "target": "x86"}, "subtarget"),
    ],
)
def test_missing_field(client: httpx.Client, body: dict[str, str], missing: str) -> None:
    response = client.post(LEGACY, json=body)
    assert response.status_code == 400
    assert response.headers["X-Missing-Param"] == missing
    answer = response.json()
    assert missing in answer["error"] and answer["detail"] == answer["error"]


def test_unknown_things_are_400(client: httpx.Client) -> None:
    for body in (legacy_body(version="19.07.10"), legacy_body(distro="debian", version="24.10.4")):
        response = client.post(LEGACY, json=body)
        assert response.status_code == 400
        assert set(response.json()) == {"error", "detail"}
    broken = client.post(LEGACY, content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400


def test_unknown_package_is_422(client: httpx.Client) -> None:
    packages = {"curl": "8.12.1-r2", "no-such-package": "1.0", "also-missing": "2", "kernel": "6.6"}
    response = client.post(LEGACY, json=legacy_body(version="24.10.4", packages=packages))
    assert response.status_code == 422
    assert response.headers["X-Unknown-Package"] == "no-such-package"
    body = response.json()
    assert body["unknown_packages"] == ["no-such-package", "also-missing"]
    assert "no-such-package" in body["error"] and "also-missing" in body["detail"]


def test_get_by_hash_and_prefix(client: httpx.Client) -> None:
    posted = client.post(LEGACY, json=legacy_body(version="24.10.4", packages={"curl": "8.12.1-r2"}))
    assert posted.status_code == 200
    request_hash = posted.json()["request_hash"]
    for key in (request_hash, request_hash[:12], request_hash[:15]):
        response = client.get(f"{LEGACY}/{key}")
        assert response.status_code == 200, key
        assert response.json() == posted.json()
    unknown = client.get(f"{LEGACY}/{'f' * 64}")
    assert unknown.status_code == 404
    assert set(unknown.json()) == {"error", "detail"}
    assert client.get(f"{LEGACY}/xyz").status_code == 404


def test_v1_upgrade(client: httpx.Client) -> None:
    packages = installed(client, "23.05.5", ["auc", "curl"])
    response = client.post(V1, json={"version": "23.05.5", "target": "x86/64", "packages": packages})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == 200 and body["upgrade"] is True
    assert body["version"] == "24.10.5"
    assert body["version_code"].startswith("r29087-")
    assert body["upgrades"]["curl"] == {"from": "8.7.1-1", "to": "8.14.1-r1"}
    assert body["packages"] == ["curl", "owut"]
    renames = {(c["source"], c.get("target"), c["revision"]) for c in body["package_changes"]}
    assert ("auc", "owut", 26792) in renames
    # the same request through the 2017 API has the same hash, and either GET reads it
    legacy = client.post(LEGACY, json={"version": "23.05.5", "target": "x86/64", "packages": packages})
    assert legacy.json()["request_hash"] == body["request_hash"]
    stored = client.get(f"{V1}/{body['request_hash'][:12]}")
    assert stored.status_code == 200 and stored.json() == body


def test_v1_up_to_date_and_errors(client: httpx.Client) -> None:
    response = client.post(V1, json={"version": "25.12.1", "target": "x86/64"})
    assert response.status_code == 200
    body = response.json()
    assert body["upgrade"] is False and len(body["request_hash"]) == 64
    unknown = client.post(V1, json={"version": "24.10.4", "target": "x86/64", "packages": {"nope": "1"}})
    assert unknown.status_code == 400
    assert "nope" in unknown.json()["detail"]
    no_subtarget = client.post(V1, json={"version": "24.10.4", "target": "x86"})
    assert no_subtarget.status_code == 400
    assert client.get(f"{V1}/{'e' * 64}").status_code == 404


def test_openapi_documents_both_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"204", "400", "422"} <= set(paths[LEGACY]["post"]["responses"])
    assert paths[V1]["post"]["summary"]
    assert "UpgradeCheckAnswer" in str(paths[V1]["post"]["responses"]["200"])
