"""``/store`` downloads answered before Klein (``asud.http.fastpath``) are the route's answers, byte for byte.

Three roots over the same files store: the daemon's (fast path, then the route), the route alone (no fast
path: how every download was answered before) and the fast path alone (no surfaces: a 200 can only come
from it). Same headers and bytes, the file closed when a client leaves mid-download, nothing outside the
store reachable through either way, and request observers see the route template.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.web.resource import IResource

from asud.http.fastpath import STORE_ROUTE
from asud.http.files import CHUNK_SIZE
from asud.http.root import make_resource
from asud.http.state import AsudApp
from tests.http.client import LiveServer, listening, raw_request

BIN_DIR = "ab" * 32
OTHER = "cd" * 32
THIRD = "ef" * 32
IMAGE = "openwrt-24.10.5-ath79-generic-tplink_archer-c7-v5-squashfs-sysupgrade.bin"
#: Not a multiple of the producer's chunk: the last read is a short one.
CONTENT = os.urandom(3 * CHUNK_SIZE + 12345)
SECRET = b"SQLite format 3\x00 secret outside the store"
ROOTS = ("daemon", "route", "fast")


def _roots(app: AsudApp) -> dict[str, IResource]:
    daemon = make_resource(app)
    route = make_resource(app)
    route.fast_path = None  # type: ignore[attr-defined]
    return {"daemon": daemon, "route": route, "fast": make_resource(app, mounts=())}


@pytest_twisted.async_yield_fixture
async def servers(bare_app: AsudApp) -> AsyncIterator[dict[str, LiveServer]]:
    files = bare_app.files
    files.write_bytes(BIN_DIR, IMAGE, CONTENT)
    files.write_bytes(BIN_DIR, "profiles.json", b'{"profiles":{}}')
    files.write_bytes(BIN_DIR, "empty.bin", b"")
    roots = _roots(bare_app)
    async with listening(roots["daemon"]) as daemon, listening(roots["route"]) as route, \
            listening(roots["fast"]) as fast:
        yield {"daemon": daemon, "route": route, "fast": fast}


def _headers(head: str) -> tuple[str, list[str]]:
    """The status line and the sorted header lines, without ``Date`` (the clock's)."""
    status, *lines = head.split("\r\n")
    return status, sorted(line for line in lines if not line.startswith("date:"))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("name", [IMAGE, "profiles.json", "empty.bin"])
@pytest_twisted.ensureDeferred
async def test_fast_path_answers_exactly_as_the_route(
    servers: dict[str, LiveServer], bare_app: AsudApp, method: str, name: str
) -> None:
    stored = (bare_app.files.root / BIN_DIR / name).read_bytes()
    target = f"/store/{BIN_DIR}/{name}?1700000000"  # LuCI's cache-busting query
    answers = {root: await raw_request(servers[root], method, target, {"Origin": "http://192.168.1.1"})
               for root in ROOTS}
    status, body, head = answers["fast"]
    assert status == 200
    assert f"content-length: {len(stored)}" in head.split("\r\n")
    assert "access-control-allow-origin: *" in head.split("\r\n")
    expected = b"" if method == "HEAD" else stored
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(expected).hexdigest()
    for root in ("daemon", "route"):
        other_status, other_body, other_head = answers[root]
        assert other_status == status and other_body == body, root
        assert _headers(other_head) == _headers(head), root


@pytest_twisted.ensureDeferred
async def test_content_types_are_the_routes(servers: dict[str, LiveServer]) -> None:
    for name, content_type in ((IMAGE, "application/octet-stream"), ("profiles.json", "application/json")):
        answer = await servers["fast"].client.head(f"/store/{BIN_DIR}/{name}")
        assert answer.headers["content-type"] == content_type


@pytest_twisted.ensureDeferred
async def test_a_missing_file_is_the_routes_404(servers: dict[str, LiveServer]) -> None:
    for root in ("daemon", "route"):
        missing = await servers[root].client.get(f"/store/{BIN_DIR}/nothing.bin")
        assert missing.status_code == 404
        assert missing.json() == {"status": 404, "title": "Not Found", "detail": "file not found"}
        assert missing.headers["access-control-allow-origin"] == "*"
    # The fast path never answers a miss itself (with no route behind it, the root's own 404).
    assert (await servers["fast"].client.get(f"/store/{BIN_DIR}/nothing.bin")).status_code == 404


def _plant_escapes(app: AsudApp) -> None:
    """Symlinks out of the store, and to another bin_dir, and a FIFO (opening one would block)."""
    data_dir = app.config.data_dir
    (data_dir / "secret.db").write_bytes(SECRET)
    outside = data_dir / "outside"
    outside.mkdir()
    (outside / "image.bin").write_bytes(SECRET)
    root = app.files.root
    os.symlink(data_dir / "secret.db", root / BIN_DIR / "escape.bin")
    os.symlink(outside, root / OTHER)
    app.files.write_bytes(THIRD, "neighbour.bin", SECRET)
    os.symlink(root / THIRD / "neighbour.bin", root / BIN_DIR / "neighbour.bin")
    os.mkfifo(root / BIN_DIR / "pipe.bin")


@pytest.mark.parametrize(
    "target",
    [
        f"/store/{BIN_DIR}/escape.bin",
        f"/store/{OTHER}/image.bin",
        f"/store/{BIN_DIR}/neighbour.bin",
        f"/store/{BIN_DIR}/pipe.bin",
        "/store/../secret.db",
        "/store/%2e%2e/secret.db",
        f"/store/{BIN_DIR}/..",
        f"/store/{BIN_DIR}/%2e%2e",
        f"/store/{BIN_DIR}/..%2f..%2fsecret.db",
        f"/store/{BIN_DIR}/%2e%2e%2f%2e%2e%2fsecret.db",
        f"/store/{BIN_DIR}%2f..%2f..%2fsecret.db/x",
        "/store/%2e%2e/%2e%2e",
        f"/store/{BIN_DIR.upper()}/{IMAGE}",
        f"/store/{BIN_DIR}/.{IMAGE}",
    ],
)
@pytest_twisted.ensureDeferred
async def test_nothing_outside_the_store_through_either_way(
    servers: dict[str, LiveServer], bare_app: AsudApp, target: str
) -> None:
    _plant_escapes(bare_app)
    for root in ROOTS:
        for method in ("GET", "HEAD"):
            status, body, _ = await raw_request(servers[root], method, target)
            assert status == 404, (root, method, target, status)
            assert SECRET not in body and CONTENT[:64] not in body


@pytest_twisted.ensureDeferred
async def test_a_symlink_inside_its_bin_dir_is_still_served_by_the_route(
    servers: dict[str, LiveServer], bare_app: AsudApp
) -> None:
    """The fast path opens nothing through a symlink; the route's own rule (a link that stays in its
    bin_dir) still applies, so the daemon answers as before."""
    os.symlink(IMAGE, bare_app.files.root / BIN_DIR / "latest.bin")
    served = await servers["daemon"].client.get(f"/store/{BIN_DIR}/latest.bin")
    assert served.status_code == 200 and served.content == CONTENT
    assert (await servers["fast"].client.get(f"/store/{BIN_DIR}/latest.bin")).status_code == 404


def _descriptors_of(path: Path) -> int:
    """How many of this process's open descriptors name ``path``."""
    count = 0
    for entry in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{entry}") == str(path):
                count += 1
        except OSError:
            continue  # closed while listing (the listing's own descriptor)
    return count


class _HangUp(Protocol):
    """Asks for a file, notes how many descriptors of it the server holds at the first bytes, hangs up."""

    def __init__(self, target: str, path: Path) -> None:
        self.target = target
        self.path = path
        self.open_while_sending: int | None = None
        self.closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(f"GET {self.target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    def dataReceived(self, data: bytes) -> None:
        if self.open_while_sending is None:
            self.open_while_sending = _descriptors_of(self.path)
            self.transport.abortConnection()

    def connectionLost(self, reason: object) -> None:
        self.closed.callback(None)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
@pytest.mark.parametrize("root", ["daemon", "route"])
@pytest_twisted.ensureDeferred
async def test_a_client_leaving_mid_download_closes_the_file(bare_app: AsudApp, root: str) -> None:
    big = os.urandom(1 << 20) * 16  # far more than the socket buffers hold
    bare_app.files.write_bytes(BIN_DIR, "big.bin", big)
    path = bare_app.files.root / BIN_DIR / "big.bin"
    seen: list[tuple[str, str, int]] = []
    bare_app.observers.append(lambda method, route, status, _seconds: seen.append((method, route, status)))
    errors: list[dict[str, object]] = []

    def observe(event: dict[str, object]) -> None:
        if event.get("log_level") in (LogLevel.error, LogLevel.critical) or event.get("isError"):
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        async with listening(_roots(bare_app)[root]) as live:
            client = _HangUp(f"/store/{BIN_DIR}/big.bin", path)
            await connectProtocol(TCP4ClientEndpoint(reactor, live.host, live.port), client)
            await client.closed
            for _ in range(100):
                if not _descriptors_of(path):
                    break
                await deferLater(reactor, 0.01, lambda: None)
            assert client.open_while_sending == 1  # the check sees the file while it is sent …
            assert _descriptors_of(path) == 0  # … and it is closed once the client is gone
            whole = await live.client.get(f"/store/{BIN_DIR}/big.bin")  # still serving
            assert whole.status_code == 200 and hashlib.sha256(whole.content).digest() == \
                hashlib.sha256(big).digest()
            assert _descriptors_of(path) == 0
    finally:
        globalLogPublisher.removeObserver(observe)
    assert not errors, [formatEvent(event) for event in errors]
    assert len(seen) == 2 and seen[-1] == ("GET", STORE_ROUTE, 200)  # the one that left is timed too


@pytest_twisted.ensureDeferred
async def test_observers_see_the_store_route_template(
    servers: dict[str, LiveServer], bare_app: AsudApp
) -> None:
    seen: list[tuple[str, str, int]] = []
    bare_app.observers.append(lambda method, route, status, _seconds: seen.append((method, route, status)))
    for root in ("daemon", "route"):
        client = servers[root].client
        await client.get(f"/store/{BIN_DIR}/{IMAGE}")
        await client.head(f"/store/{BIN_DIR}/{IMAGE}")
        await client.get(f"/store/{BIN_DIR}/nothing.bin")
        await client.get("/store/x")
    expected = [
        ("GET", STORE_ROUTE, 200),
        ("HEAD", STORE_ROUTE, 200),
        ("GET", STORE_ROUTE, 404),
        ("GET", "unmatched", 404),
    ]
    assert seen == expected * 2
