"""``/store``: exact bytes with ``Content-Length``, HEAD, and no way out of the store."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from tests.api.live_server import raw_request

BIN_DIR = "ab" * 32
CONTENT = b"\x00firmware bytes\xff" * 1000


@pytest.fixture(scope="module")
def stored(bare_state: Any) -> str:
    bare_state.store.write_bytes(BIN_DIR, "openwrt-x86-64-generic-squashfs-combined.img.gz", CONTENT)
    return f"/store/{BIN_DIR}/openwrt-x86-64-generic-squashfs-combined.img.gz"


def test_download_has_exact_bytes_and_content_length(bare_url: str, stored: str) -> None:
    response = httpx.get(bare_url + stored + "?1700000000", headers={"Origin": "http://192.168.1.1"})
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(CONTENT).hexdigest()
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["access-control-allow-origin"] == "*"


def test_head_has_length_and_no_body(bare_url: str, stored: str) -> None:
    response = httpx.head(bare_url + stored)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(CONTENT))


def test_missing_file_is_404(bare_url: str) -> None:
    assert httpx.get(f"{bare_url}/store/{BIN_DIR}/nothing.bin").status_code == 404


@pytest.mark.parametrize(
    "target",
    [
        "/store/../sysup.db",
        f"/store/{BIN_DIR}/../../sysup.db",
        "/store/%2e%2e/sysup.db",
        f"/store/{BIN_DIR}/..%2f..%2fsysup.db",
        f"/store/{BIN_DIR}/%2e%2e%2f%2e%2e%2fsysup.db",
        f"/store/{BIN_DIR}/%252e%252e%252fsysup.db",
        "/store/%252e%252e/sysup.db",
        "/store//etc/passwd",
        f"/store/{BIN_DIR}//etc/passwd",
        f"/store/{BIN_DIR}/%2fetc%2fpasswd",
        "/store/objects/" + "0" * 64,
        "/store/tmp/x",
        f"/store/{BIN_DIR}/.",
        f"/store/{BIN_DIR}/%00",
    ],
)
def test_traversal_attempts_never_leave_the_store(bare_url: str, stored: str, target: str) -> None:
    status, body = raw_request(bare_url, "GET", target)
    assert 400 <= status < 500
    assert b"SQLite format" not in body and b"root:" not in body and CONTENT[:20] not in body
