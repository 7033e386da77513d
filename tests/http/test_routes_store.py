"""``/store``: exact bytes with ``Content-Length``, HEAD, and no way out of the store."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from asud.http.state import AsudApp
from tests.http.client import LiveServer, listening, raw_request

BIN_DIR = "ab" * 32
NAME = "openwrt-x86-64-generic-squashfs-combined.img.gz"
CONTENT = b"\x00firmware bytes\xff" * 1000
STORED = f"/store/{BIN_DIR}/{NAME}"


@pytest_twisted.async_yield_fixture
async def server(bare_app: AsudApp) -> AsyncIterator[LiveServer]:
    from asud.http.root import make_resource

    bare_app.files.write_bytes(BIN_DIR, NAME, CONTENT)
    (bare_app.config.data_dir / "secret.db").write_bytes(b"SQLite format 3")
    async with listening(make_resource(bare_app)) as live:
        yield live


@pytest_twisted.ensureDeferred
async def test_download_has_exact_bytes_and_content_length(server: LiveServer) -> None:
    response = await server.client.get(STORED + "?1700000000", headers={"Origin": "http://192.168.1.1"})
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(CONTENT).hexdigest()
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["access-control-allow-origin"] == "*"


@pytest_twisted.ensureDeferred
async def test_head_has_length_and_no_body(server: LiveServer) -> None:
    response = await server.client.head(STORED)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(CONTENT))


@pytest_twisted.ensureDeferred
async def test_large_file_goes_out_through_a_producer(bare_app: AsudApp) -> None:
    """A file bigger than any socket buffer arrives whole (a push producer, paced by the client)."""
    from asud.http.root import make_resource

    big = bytes(range(256)) * (40 * 1024)  # 10 MiB
    bare_app.files.write_bytes(BIN_DIR, "big.bin", big)
    async with listening(make_resource(bare_app)) as live:
        response = await live.client.get(f"/store/{BIN_DIR}/big.bin")
    assert response.status_code == 200 and response.content == big


@pytest_twisted.ensureDeferred
async def test_missing_file_is_404(server: LiveServer) -> None:
    response = await server.client.get(f"/store/{BIN_DIR}/nothing.bin")
    assert response.status_code == 404 and response.json()["status"] == 404


@pytest.mark.parametrize(
    "target",
    [
        "/store/../secret.db",
        f"/store/{BIN_DIR}/../../secret.db",
        "/store/%2e%2e/secret.db",
        f"/store/{BIN_DIR}/..%2f..%2fsecret.db",
        f"/store/{BIN_DIR}/%2e%2e%2f%2e%2e%2fsecret.db",
        f"/store/{BIN_DIR}/%252e%252e%252fsecret.db",
        "/store/%252e%252e/secret.db",
        "/store//etc/passwd",
        f"/store/{BIN_DIR}//etc/passwd",
        f"/store/{BIN_DIR}/%2fetc%2fpasswd",
        "/store/objects/" + "0" * 64,
        "/store/tmp/x",
        f"/store/{BIN_DIR}/.",
        f"/store/{BIN_DIR}/%00",
    ],
)
@pytest_twisted.ensureDeferred
async def test_traversal_attempts_never_leave_the_store(server: LiveServer, target: str) -> None:
    status, body, _ = await raw_request(server, "GET", target)
    assert 400 <= status < 500
    assert b"SQLite format" not in body and b"root:" not in body and CONTENT[:20] not in body


class _HangUp(Protocol):
    """Asks for a file, reads the first bytes of the answer, then closes the connection."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(f"GET {self.target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    def dataReceived(self, data: bytes) -> None:
        self.transport.abortConnection()

    def connectionLost(self, reason: object) -> None:
        self.closed.callback(None)


@pytest_twisted.ensureDeferred
async def test_a_client_leaving_mid_download_is_not_an_error(bare_app: AsudApp) -> None:
    """A router that loses power mid-download: the transfer stops, nothing is logged as an error."""
    from asud.http.root import make_resource

    big = os.urandom(1 << 20) * 8  # well over what the socket buffers take at once
    bare_app.files.write_bytes(BIN_DIR, "big.bin", big)
    errors: list[dict[str, object]] = []

    def observe(event: dict[str, object]) -> None:
        level = event.get("log_level")
        if level in (LogLevel.error, LogLevel.critical) or event.get("isError"):
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        async with listening(make_resource(bare_app)) as live:
            client = _HangUp(f"/store/{BIN_DIR}/big.bin")
            await connectProtocol(TCP4ClientEndpoint(reactor, live.host, live.port), client)
            await client.closed
            await deferLater(reactor, 0.2, lambda: None)
            response = await live.client.get(f"/store/{BIN_DIR}/big.bin")  # still serving, whole file
            assert response.status_code == 200 and len(response.content) == len(big)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert not errors, [formatEvent(event) for event in errors]
