"""Bodies, assertions and the pool's side of a build for the 2017 API tests (``test_legacy*.py``)."""

from __future__ import annotations

from typing import Any

from asud.http.state import AsudApp
from tests.http.client import Answer, StubClient, TreqClient

__all__ = ["ERROR_KEYS", "NODE", "assert_legacy_error", "ath79_body", "image", "image_packages", "start"]

ERROR_KEYS = {"error", "detail"}
NODE = "test-node"


def assert_legacy_error(response: Answer, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= ERROR_KEYS and isinstance(body["error"], str) and body["error"] == body["detail"]
    return dict(body)


async def image_packages(client: StubClient | TreqClient, distro: str, version: str, target: str, profile: str
                         ) -> list[str]:
    board, subtarget = target.split("/")
    query = f"distro={distro}&version={version}&target={board}&subtarget={subtarget}&profile={profile}"
    response = await client.get(f"/api/packages_image?{query}")
    assert response.status_code == 200, response.text
    return list(response.json()["packages"])


async def ath79_body(client: StubClient | TreqClient, *extra: str, **overrides: Any) -> dict[str, Any]:
    """An upgrade request of a TP-Link Archer C7 v5 (24.10.4) with its default packages plus ``extra``."""
    packages = await image_packages(client, "openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5")
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


async def start(asud_app: AsudApp, client: StubClient, kind: str, body: dict[str, Any]
                ) -> tuple[str, dict[str, Any]]:
    """POST ``body``, then start its build as a builder would: ``(request hash, job)``."""
    posted = await client.post(f"/api/{kind}", json=body)
    assert posted.status_code == 202, posted.text
    request_hash = posted.json()["request_hash"]
    records = asud_app.build_records()
    view = await records.get(request_hash)
    assert view is not None
    job = await records.started(view.image_key, NODE)
    assert job is not None
    return request_hash, job


def image(name: str, kind: str, filesystem: str = "squashfs") -> dict[str, str]:
    return {"name": name, "type": kind, "filesystem": filesystem, "sha256": "0" * 64}
