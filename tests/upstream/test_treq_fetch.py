"""The treq fetcher against a real twisted.web server on 127.0.0.1 (in the test reactor) and real files."""

from __future__ import annotations

import hashlib
import os
import socket
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from asud.errors import SignatureError, UpstreamError
from asud.upstream.etag_cache import EtagCache, entry_key
from asud.upstream.fetch import Fetcher, UpstreamHTTPError, UpstreamNotFound

BODY = b'{"stable_version": "24.10.5"}\n'
BIG = bytes(range(256)) * 4096  # 1 MiB
ETAG = '"abc123"'
LAST_MODIFIED = "Tue, 01 Jul 2025 10:00:00 GMT"

Upstream = tuple[str, Counter[str], "_Upstream"]


class _Upstream(Resource):
    """The answers of a download server, some flaky, some slow."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.hits: Counter[str] = Counter()
        self.held: list[Request] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def _send(self, request: Request, status: int, body: bytes = b"",
              headers: dict[str, str] | None = None) -> bytes:
        request.setResponseCode(status)
        for key, value in (headers or {}).items():
            request.setHeader(key, value)
        request.setHeader("Content-Length", str(len(body)))
        return body

    def render_GET(self, request: Request) -> bytes | int:
        path = request.path.decode()
        self.hits[path] += 1
        count = self.hits[path]
        if path == "/.versions.json":
            if request.getHeader("If-None-Match") == ETAG:
                return self._send(request, 304, headers={"ETag": ETAG})
            if request.getHeader("If-Modified-Since") == LAST_MODIFIED:
                return self._send(request, 304)
            return self._send(request, 200, BODY, {"ETag": ETAG, "Last-Modified": LAST_MODIFIED})
        if path == "/flaky":
            return self._send(request, 503, b"busy") if count <= 2 else self._send(request, 200, BODY)
        if path == "/broken":
            return self._send(request, 500, b"always broken")
        if path == "/forbidden":
            return self._send(request, 403, b"no")
        if path == "/big.bin":
            return self._send(request, 200, BIG)
        if path == "/flaky-big.bin":
            return self._send(request, 502) if count == 1 else self._send(request, 200, BIG)
        if path == "/silent":  # never answers
            self.held.append(request)
            return NOT_DONE_YET
        if path == "/stalls.bin":  # promises 1 MiB, sends 10 bytes, then nothing
            request.setHeader("Content-Length", str(len(BIG)))
            request.write(BIG[:10])
            self.held.append(request)
            return NOT_DONE_YET
        if path.startswith("/held/"):  # answered when the test says so
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.held.append(request)
            return NOT_DONE_YET
        return self._send(request, 404, b"not here")

    def release(self) -> None:
        held, self.held = self.held, []
        for request in held:
            if not request.finished and not request._disconnected:
                self.in_flight -= 1
                request.setHeader("Content-Length", str(len(BODY)))
                request.write(BODY)
                request.finish()


@pytest_twisted.async_yield_fixture()
async def upstream() -> AsyncIterator[Upstream]:
    resource = _Upstream()
    port = reactor.listenTCP(0, Site(resource, timeout=None), interface="127.0.0.1")  # type: ignore[attr-defined]
    yield f"http://127.0.0.1:{port.getHost().port}", resource.hits, resource
    for request in resource.held:
        if not request.finished and not request._disconnected:
            request.channel.transport.abortConnection()  # type: ignore[union-attr]
    await port.stopListening()


@pytest_twisted.async_yield_fixture()
async def fetcher() -> AsyncIterator[Fetcher]:
    fetcher = Fetcher(timeout=5, retries=3, backoff=0.01)
    yield fetcher
    await fetcher.close()


async def _fails(deferred: Deferred[object], kind: type[BaseException]) -> BaseException:
    try:
        await deferred
    except kind as error:
        return error
    raise AssertionError(f"expected {kind.__name__}")


@pytest_twisted.ensureDeferred
async def test_fetch_then_conditional_fetch_is_304(upstream: Upstream, fetcher: Fetcher) -> None:
    base = upstream[0]
    first = await fetcher.fetch(f"{base}/.versions.json")
    assert (first.status, first.body, first.etag, first.not_modified) == (200, BODY, ETAG, False)
    assert first.last_modified == LAST_MODIFIED
    again = await fetcher.fetch(f"{base}/.versions.json", etag=first.etag)
    assert (again.status, again.body, again.not_modified, again.etag) == (304, None, True, ETAG)
    by_date = await fetcher.fetch(f"{base}/.versions.json", last_modified=LAST_MODIFIED)
    assert by_date.not_modified and by_date.last_modified == LAST_MODIFIED
    changed = await fetcher.fetch(f"{base}/.versions.json", etag='"old"')
    assert changed.body == BODY


@pytest_twisted.ensureDeferred
async def test_retries_5xx_then_succeeds(upstream: Upstream, fetcher: Fetcher) -> None:
    base, hits, _ = upstream
    assert (await fetcher.fetch(f"{base}/flaky")).body == BODY
    assert hits["/flaky"] == 3


@pytest_twisted.ensureDeferred
async def test_gives_up_after_retries(upstream: Upstream) -> None:
    base, hits, _ = upstream
    fetcher = Fetcher(retries=2, backoff=0.01)
    try:
        error = await _fails(fetcher.fetch(f"{base}/broken"), UpstreamHTTPError)
    finally:
        await fetcher.close()
    assert isinstance(error, UpstreamHTTPError) and error.upstream_status == 500
    assert hits["/broken"] == 3


@pytest_twisted.ensureDeferred
async def test_4xx_is_not_retried(upstream: Upstream, fetcher: Fetcher) -> None:
    base, hits, _ = upstream
    missing = await _fails(fetcher.fetch(f"{base}/releases/99.99.0/.targets.json"), UpstreamNotFound)
    assert isinstance(missing, UpstreamNotFound) and missing.upstream_status == 404
    assert isinstance(missing, UpstreamError) and missing.status_code == 502
    assert missing.detail == f"{base}/releases/99.99.0/.targets.json: not found upstream (404)"
    forbidden = await _fails(fetcher.fetch(f"{base}/forbidden"), UpstreamHTTPError)
    assert isinstance(forbidden, UpstreamHTTPError)
    assert forbidden.upstream_status == 403 and not isinstance(forbidden, UpstreamNotFound)
    assert hits["/releases/99.99.0/.targets.json"] == 1 and hits["/forbidden"] == 1


@pytest_twisted.ensureDeferred
async def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fetcher = Fetcher(retries=1, backoff=0.01)
    try:
        error = await _fails(fetcher.fetch(f"http://127.0.0.1:{port}/x"), UpstreamError)
    finally:
        await fetcher.close()
    assert "ConnectError" in str(error)


@pytest_twisted.ensureDeferred
async def test_max_bytes(upstream: Upstream, tmp_path: Path) -> None:
    base = upstream[0]
    fetcher = Fetcher(max_bytes=1000, backoff=0.01)
    try:
        assert "limit" in str(await _fails(fetcher.fetch(f"{base}/big.bin"), UpstreamError))
        assert "limit" in str(await _fails(fetcher.download(f"{base}/big.bin", tmp_path / "big.bin"),
                                           UpstreamError))
    finally:
        await fetcher.close()
    assert list(tmp_path.iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_download_checks_sha256(upstream: Upstream, fetcher: Fetcher, tmp_path: Path) -> None:
    base, hits, _ = upstream
    seen: list[tuple[int, int | None]] = []
    good = hashlib.sha256(BIG).hexdigest()
    result = await fetcher.download(f"{base}/flaky-big.bin", tmp_path / "ib.tar.zst",
                                    progress=lambda done, total: seen.append((done, total)),
                                    expected_sha256=good.upper())
    assert (tmp_path / "ib.tar.zst").read_bytes() == BIG
    assert (result.sha256, result.size, result.path) == (good, len(BIG), tmp_path / "ib.tar.zst")
    assert hits["/flaky-big.bin"] == 2
    assert seen[-1] == (len(BIG), len(BIG))
    assert (tmp_path / "ib.tar.zst").stat().st_mode & 0o777 == 0o644

    error = await _fails(fetcher.download(f"{base}/big.bin", tmp_path / "other.tar.zst",
                                          expected_sha256="0" * 64), SignatureError)
    assert "sha256" in str(error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ib.tar.zst"]  # no partial, no temp file

    await _fails(fetcher.download(f"{base}/missing.tar.zst", tmp_path / "ib.tar.zst"), UpstreamNotFound)
    assert (tmp_path / "ib.tar.zst").read_bytes() == BIG  # a failed download leaves the old file alone


@pytest_twisted.ensureDeferred
async def test_file_urls_and_plain_paths(tmp_path: Path, fetcher: Fetcher) -> None:
    source = tmp_path / "tree" / ".versions.json"
    source.parent.mkdir()
    source.write_bytes(BODY)
    os.utime(source, (1_700_000_000, 1_700_000_000))

    first = await fetcher.fetch(source.as_uri())
    assert (first.status, first.body, first.not_modified) == (200, BODY, False)
    assert first.etag and first.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert (await fetcher.fetch(str(source))).body == BODY

    assert (await fetcher.fetch(source.as_uri(), etag=first.etag)).not_modified
    assert (await fetcher.fetch(source.as_uri(), last_modified=first.last_modified)).not_modified

    source.write_bytes(BODY + b" ")
    changed = await fetcher.fetch(source.as_uri(), etag=first.etag)
    assert not changed.not_modified and changed.body == BODY + b" " and changed.etag != first.etag

    missing = await _fails(fetcher.fetch((tmp_path / "nope").as_uri()), UpstreamNotFound)
    assert isinstance(missing, UpstreamNotFound) and missing.upstream_status == 404

    copy = await fetcher.download(source.as_uri(), tmp_path / "out" / "copy.json",
                                  expected_sha256=hashlib.sha256(BODY + b" ").hexdigest())
    assert copy.path.read_bytes() == BODY + b" "
    await _fails(fetcher.download(str(source), tmp_path / "out" / "bad.json", expected_sha256="f" * 64),
                 SignatureError)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["copy.json"]
    assert await fetcher.fetch_bytes(source.as_uri()) == BODY + b" "


@pytest_twisted.ensureDeferred
async def test_fetch_bytes_answers_304s_from_the_disk_cache(upstream: Upstream, tmp_path: Path) -> None:
    base, hits, _ = upstream
    url = f"{base}/.versions.json"
    first = Fetcher(cache_dir=tmp_path / "cache", backoff=0.01)
    try:
        assert await first.fetch_bytes(url) == BODY
        again = await first.fetch_cached(url)
        assert (again.body, again.not_modified, again.transferred) == (BODY, True, 0)
    finally:
        await first.close()
    # A restarted daemon: a new fetcher on the same directory asks "changed since?" and gets 304.
    restarted = Fetcher(cache_dir=tmp_path / "cache", backoff=0.01)
    try:
        cached = await restarted.fetch_cached(url)
        assert (cached.body, cached.not_modified, cached.etag) == (BODY, True, ETAG)
    finally:
        await restarted.close()
    # A damaged body on disk is not served: the entry is ignored and the file fetched in full.
    damaged = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix != ".json"]
    assert len(damaged) == 1
    damaged[0].write_bytes(b"garbage")
    restarted = Fetcher(cache_dir=tmp_path / "cache", backoff=0.01)
    try:
        fresh = await restarted.fetch_cached(url)
        assert (fresh.body, fresh.not_modified) == (BODY, False)
        # No validators upstream: nothing is cached (and nothing is wrongly served later).
        assert await restarted.fetch_bytes(f"{base}/big.bin") == BIG
        assert not (await restarted.fetch_cached(f"{base}/big.bin")).not_modified
        await _fails(restarted.fetch_bytes(f"{base}/missing"), UpstreamNotFound)
    finally:
        await restarted.close()
    assert hits["/.versions.json"] == 4 and hits["/big.bin"] == 2


@pytest_twisted.ensureDeferred
async def test_a_silent_server_times_out_and_is_retried(upstream: Upstream) -> None:
    base, hits, _ = upstream
    fetcher = Fetcher(timeout=0.2, retries=1, backoff=0.01)
    try:
        error = await _fails(fetcher.fetch(f"{base}/silent"), UpstreamError)
    finally:
        await fetcher.close()
    assert str(error) == f"{base}/silent: TimeoutError: no answer within 0.2 s"
    assert hits["/silent"] == 2


@pytest_twisted.ensureDeferred
async def test_a_stalled_download_times_out_and_leaves_nothing(upstream: Upstream, tmp_path: Path) -> None:
    base = upstream[0]
    fetcher = Fetcher(timeout=0.2, retries=0)
    try:
        error = await _fails(fetcher.download(f"{base}/stalls.bin", tmp_path / "ib.tar.zst"), UpstreamError)
    finally:
        await fetcher.close()
    assert "TimeoutError" in str(error) and "stalls.bin" in str(error)
    assert list(tmp_path.iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_concurrent_requests_are_bounded(upstream: Upstream) -> None:
    base, _, server = upstream
    fetcher = Fetcher(max_concurrent=2, timeout=5)
    try:
        pending = [fetcher.fetch(f"{base}/held/{n}") for n in range(5)]
        while len(server.held) < 2:
            await _tick()
        for _ in range(5):
            await _tick()
        assert server.most_in_flight == 2
        while not all(d.called for d in pending):
            server.release()
            await _tick()
        assert [(await d).body for d in pending] == [BODY] * 5
        assert server.most_in_flight == 2
    finally:
        await fetcher.close()


@pytest_twisted.ensureDeferred
async def test_a_cancelled_fetch_is_not_retried(upstream: Upstream) -> None:
    base, hits, server = upstream
    fetcher = Fetcher(timeout=5, retries=3, backoff=0.01)
    try:
        pending = fetcher.fetch(f"{base}/held/cancel")
        while not server.held:
            await _tick()
        pending.cancel()
        await _fails(pending, CancelledError)
        for _ in range(5):
            await _tick()
        assert hits["/held/cancel"] == 1
    finally:
        await fetcher.close()


def _tick() -> Deferred[None]:
    from twisted.internet.task import deferLater

    return deferLater(reactor, 0.01, lambda: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["ftp://example.org/x"])
@pytest_twisted.ensureDeferred
async def test_unsupported_scheme_is_an_upstream_error(url: str, fetcher: Fetcher) -> None:
    error = await _fails(fetcher.fetch(url), UpstreamError)
    assert str(error) == f"{url}: only http, https and file URLs can be fetched"


@pytest_twisted.ensureDeferred
async def test_stale_ok_answers_from_the_cache_while_the_server_is_down(tmp_path: Path) -> None:
    resource = _Upstream()
    port = reactor.listenTCP(0, Site(resource, timeout=None), interface="127.0.0.1")  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port.getHost().port}"
    fetcher = Fetcher(cache_dir=tmp_path / "cache", retries=0)
    try:
        assert await fetcher.fetch_bytes(f"{base}/.versions.json") == BODY
        await _fails(fetcher.fetch_bytes(f"{base}/gone.json"), UpstreamNotFound)
    finally:
        await fetcher.close()
        await port.stopListening()
    fetcher = Fetcher(cache_dir=tmp_path / "cache", retries=0, persistent=False)
    error = await _fails(fetcher.fetch_bytes(f"{base}/.versions.json"), UpstreamError)
    assert "ConnectError" in str(error)  # without stale_ok an outage is an error
    stale = await fetcher.fetch_cached(f"{base}/.versions.json", stale_ok=True)
    assert (stale.body, stale.not_modified, stale.transferred) == (BODY, False, 0)
    assert stale.stale is not None and "ConnectError" in stale.stale
    # A file that was absent stays absent (not an outage); one never seen is the outage itself.
    absent = await _fails(fetcher.fetch_cached(f"{base}/gone.json", stale_ok=True), UpstreamNotFound)
    assert "404 when last asked" in str(absent)
    await _fails(fetcher.fetch_cached(f"{base}/never.json", stale_ok=True), UpstreamError)


def _entry_bytes(cache_dir: Path, url: str) -> int:
    key = entry_key(url)
    return sum(path.stat().st_size for path in (cache_dir / key[:2]).glob(f"{key}*"))


def _age(cache_dir: Path, url: str, mtime: float) -> None:
    key = entry_key(url)
    for path in (cache_dir / key[:2]).glob(f"{key}*"):
        os.utime(path, (mtime, mtime))


@pytest_twisted.ensureDeferred
async def test_the_disk_cache_is_bounded_and_keeps_what_this_run_asked_for(upstream: Upstream,
                                                                           tmp_path: Path) -> None:
    base, _, _ = upstream
    cache_dir = tmp_path / "cache"
    # A run before this one left entries of URLs this one never asks for (a release gone upstream) …
    earlier = EtagCache(cache_dir)
    gone = [f"{base}/gone-{number}" for number in range(3)]
    for number, url in enumerate(gone):
        earlier.put(url, bytes(1000), f'"{number}"', None)
        _age(cache_dir, url, 1_000_000 + number)  # gone-0 written longest ago
    # … and writes that a crash interrupted: an old one (garbage) and one as fresh as a write in progress.
    crashed = cache_dir / "00" / ".0011.crashed.part"
    crashed.parent.mkdir(exist_ok=True)
    crashed.write_bytes(b"half")
    os.utime(crashed, (1_000_000, 1_000_000))
    writing = cache_dir / "00" / ".0022.writing.part"
    writing.write_bytes(b"half")

    versions = f"{base}/.versions.json"
    fetcher = Fetcher(cache_dir=cache_dir, backoff=0.01)
    try:
        assert await fetcher.fetch_bytes(versions) == BODY
    finally:
        await fetcher.close()  # the cache's writes are on disk now
    _age(cache_dir, versions, 1)  # older than everything: only being in use keeps it
    entries = sum(_entry_bytes(cache_dir, url) for url in [*gone, versions])
    budget = entries - _entry_bytes(cache_dir, gone[0]) - _entry_bytes(cache_dir, gone[1]) // 2

    assert await fetcher.prune_cache(budget) == 2  # the two oldest unused entries, no more
    cache = EtagCache(cache_dir)
    assert [cache.get(url) is not None for url in gone] == [False, False, True]
    cached = cache.get(versions)
    assert cached is not None and cached.body == BODY
    assert not crashed.exists() and writing.exists()
    assert await fetcher.prune_cache(budget) == 0  # within the budget now

    # A restarted daemon has asked for nothing yet: its oldest entry goes first, whatever it is.
    restarted = Fetcher(cache_dir=cache_dir, backoff=0.01)
    try:
        assert await restarted.prune_cache(_entry_bytes(cache_dir, gone[2])) == 1
        assert cache.get(versions) is None and cache.get(gone[2]) is not None
    finally:
        await restarted.close()
    assert await Fetcher(backoff=0.01).prune_cache(0) == 0  # no disk cache, nothing to prune
