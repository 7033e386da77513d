"""``/json/v1`` documents over the demo catalog."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted

from tests.http.client import StubClient
from tests.http.helpers import assert_error
from tests.support.upstream import DemoTree


@pytest_twisted.ensureDeferred
async def test_overview_has_what_luci_owut_and_auc_read(client: StubClient, demo_upstream_url: str) -> None:
    overview = (await client.get("/json/v1/overview.json?1700000000")).json()
    assert overview["upstream_url"] == demo_upstream_url
    assert overview["latest"] and all(isinstance(version, str) for version in overview["latest"])
    assert {"24.10", "25.12", "SNAPSHOT"} <= set(overview["branches"])
    for name, branch in overview["branches"].items():
        assert branch["name"] == name
        assert branch["versions"] and branch["targets"]
        assert isinstance(branch["package_changes"], list)
        assert branch["path_packages"]
        assert "{version}" in branch["path"] or branch["path"] == "snapshots"
    assert overview["branches"]["24.10"]["targets"]["x86/64"] == "x86_64"
    server = overview["server"]
    for key in (
        "max_custom_rootfs_size_mb",
        "max_defaults_length",
        "allow_defaults",
        "repository_allow_list",
    ):
        assert key in server


@pytest_twisted.ensureDeferred
async def test_branches_is_the_list_of_branch_objects(client: StubClient) -> None:
    overview = (await client.get("/json/v1/overview.json")).json()
    branches = (await client.get("/json/v1/branches.json")).json()
    assert branches == list(overview["branches"].values())


@pytest_twisted.ensureDeferred
async def test_latest(client: StubClient) -> None:
    assert (await client.get("/json/v1/latest.json")).json()["latest"][0] == "25.12.1"


@pytest_twisted.ensureDeferred
async def test_profile_document_for_auc(client: StubClient, demo_tree: DemoTree) -> None:
    info: Any = demo_tree[0]
    profiles = json.loads((info.root / "releases/24.10.4/targets/ath79/generic/profiles.json").read_text())
    # auc asks with the board name, ',' → '_' already applied; LuCI-style commas work too.
    for name in ("tplink_archer-c7-v5", "tplink,archer-c7-v5"):
        response = await client.get(f"/json/v1/releases/24.10.4/targets/ath79/generic/{name}.json")
        assert response.status_code == 200, response.text
        document = response.json()
        assert document["metadata_version"] == 1
        assert document["id"] == "tplink_archer-c7-v5"
        assert document["arch_packages"] == "mips_24kc"
        assert document["target"] == "ath79/generic"
        assert document["version_code"] == profiles["version_code"]
        assert document["version_number"] == "24.10.4"
        assert document["images"] == profiles["profiles"]["tplink_archer-c7-v5"]["images"]
        assert document["build_at"].endswith("Z") and "profiles" not in document


@pytest_twisted.ensureDeferred
async def test_unknown_profile_or_path_is_404_json(client: StubClient) -> None:
    assert_error(await client.get("/json/v1/releases/24.10.4/targets/ath79/generic/nosuch.json"), 404)
    assert_error(await client.get("/json/v1/releases/1.0/targets/ath79/generic/generic.json"), 404)
    assert_error(await client.get("/json/v1/releases/24.10.4/packages/nosuch-index.json"), 404)


@pytest_twisted.ensureDeferred
async def test_target_index(client: StubClient) -> None:
    for path in ("releases/24.10.4", "snapshots"):
        index = (await client.get(f"/json/v1/{path}/targets/x86/64/index.json?1700000000")).json()
        assert index["architecture"] == "x86_64"
        assert index["packages"] and all(isinstance(v, str) for v in index["packages"].values())
        assert any(name.startswith("kmod-") for name in index["packages"])


@pytest_twisted.ensureDeferred
async def test_arch_index_is_flat(client: StubClient) -> None:
    index = (await client.get("/json/v1/releases/24.10.4/packages/x86_64-index.json")).json()
    assert len(index) >= 80
    assert all(isinstance(name, str) and isinstance(version, str) for name, version in index.items())


@pytest_twisted.ensureDeferred
async def test_documents_are_served_with_cors_and_head(client: StubClient) -> None:
    answer = await client.get("/json/v1/overview.json", headers={"Origin": "http://192.168.1.1"})
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["content-type"] == "application/json"
    head = await client.head("/json/v1/overview.json")
    assert head.status_code == 200 and head.content == b""
