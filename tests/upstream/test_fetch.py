"""The fetcher against a real HTTP server on 127.0.0.1 and real files."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asud.errors import SignatureError, UpstreamError
from sysup.upstream.fetch import Fetcher, UpstreamHTTPError, UpstreamNotFound

BODY = b'{"stable_version": "24.10.5"}\n'
BIG = bytes(range(256)) * 4096  # 1 MiB
ETAG = '"abc123"'
LAST_MODIFIED = "Tue, 01 Jul 2025 10:00:00 GMT"


class _Upstream(BaseHTTPRequestHandler):
    hits: Counter[str]

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        count = self.hits[self.path]
        if self.path == "/.versions.json":
            if self.headers.get("If-None-Match") == ETAG:
                self._send(304, headers={"ETag": ETAG})
            elif self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                self._send(304)
            else:
                self._send(200, BODY, {"ETag": ETAG, "Last-Modified": LAST_MODIFIED})
        elif self.path == "/flaky":
            self._send(503 if count <= 2 else 200, b"busy" if count <= 2 else BODY)
        elif self.path == "/broken":
            self._send(500, b"always broken")
        elif self.path == "/forbidden":
            self._send(403, b"no")
        elif self.path == "/big.bin":
            self._send(200, BIG)
        elif self.path == "/flaky-big.bin":
            self._send(502 if count == 1 else 200, b"" if count == 1 else BIG)
        else:
            self._send(404, b"not here")


@pytest.fixture()
def upstream() -> Iterator[tuple[str, Counter[str]]]:
    hits: Counter[str] = Counter()
    handler = type("Handler", (_Upstream,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(timeout=5, retries=3, backoff=0.01) as fetcher:
        yield fetcher


def test_fetch_then_conditional_fetch_is_304(upstream: tuple[str, Counter[str]], fetcher: Fetcher) -> None:
    base, _ = upstream
    first = fetcher.fetch(f"{base}/.versions.json")
    assert (first.status, first.content, first.etag, first.not_modified) == (200, BODY, ETAG, False)
    assert first.last_modified == LAST_MODIFIED
    again = fetcher.fetch(f"{base}/.versions.json", etag=first.etag)
    assert (again.status, again.content, again.not_modified, again.etag) == (304, None, True, ETAG)
    by_date = fetcher.fetch(f"{base}/.versions.json", last_modified=LAST_MODIFIED)
    assert by_date.not_modified and by_date.last_modified == LAST_MODIFIED
    changed = fetcher.fetch(f"{base}/.versions.json", etag='"old"')
    assert changed.content == BODY


def test_retries_5xx_then_succeeds(upstream: tuple[str, Counter[str]], fetcher: Fetcher) -> None:
    base, hits = upstream
    assert fetcher.fetch(f"{base}/flaky").content == BODY
    assert hits["/flaky"] == 3


def test_gives_up_after_retries(upstream: tuple[str, Counter[str]]) -> None:
    base, hits = upstream
    with Fetcher(retries=2, backoff=0.01) as fetcher, pytest.raises(UpstreamHTTPError) as caught:
        fetcher.fetch(f"{base}/broken")
    assert caught.value.upstream_status == 500
    assert hits["/broken"] == 3


def test_4xx_is_not_retried(upstream: tuple[str, Counter[str]], fetcher: Fetcher) -> None:
    base, hits = upstream
    with pytest.raises(UpstreamNotFound) as caught:
        fetcher.fetch(f"{base}/releases/99.99.0/.targets.json")
    assert caught.value.upstream_status == 404
    assert isinstance(caught.value, UpstreamError) and caught.value.status_code == 502
    with pytest.raises(UpstreamHTTPError) as forbidden:
        fetcher.fetch(f"{base}/forbidden")
    assert forbidden.value.upstream_status == 403 and not isinstance(forbidden.value, UpstreamNotFound)
    assert hits["/releases/99.99.0/.targets.json"] == 1 and hits["/forbidden"] == 1


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Fetcher(retries=1, backoff=0.01) as fetcher, pytest.raises(UpstreamError, match="ConnectError"):
        fetcher.fetch(f"http://127.0.0.1:{port}/x")


def test_max_bytes(upstream: tuple[str, Counter[str]], tmp_path: Path) -> None:
    base, _ = upstream
    with Fetcher(max_bytes=1000, backoff=0.01) as fetcher:
        with pytest.raises(UpstreamError, match="limit"):
            fetcher.fetch(f"{base}/big.bin")
        with pytest.raises(UpstreamError, match="limit"):
            fetcher.fetch_to_file(f"{base}/big.bin", tmp_path / "big.bin")
    assert list(tmp_path.iterdir()) == []


def test_fetch_to_file_checks_sha256(upstream: tuple[str, Counter[str]], fetcher: Fetcher,
                                     tmp_path: Path) -> None:
    base, hits = upstream
    seen: list[tuple[int, int | None]] = []
    good = hashlib.sha256(BIG).hexdigest()
    result = fetcher.fetch_to_file(f"{base}/flaky-big.bin", tmp_path / "ib.tar.zst",
                                   progress=lambda done, total: seen.append((done, total)),
                                   expected_sha256=good.upper())
    assert (tmp_path / "ib.tar.zst").read_bytes() == BIG
    assert (result.sha256, result.size) == (good, len(BIG))
    assert hits["/flaky-big.bin"] == 2
    assert seen[-1] == (len(BIG), len(BIG))

    with pytest.raises(SignatureError, match="sha256"):
        fetcher.fetch_to_file(f"{base}/big.bin", tmp_path / "other.tar.zst", expected_sha256="0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ib.tar.zst"]  # no partial, no temp file

    with pytest.raises(UpstreamNotFound):
        fetcher.fetch_to_file(f"{base}/missing.tar.zst", tmp_path / "ib.tar.zst")
    assert (tmp_path / "ib.tar.zst").read_bytes() == BIG  # a failed download leaves the old file alone


def test_file_urls_and_plain_paths(tmp_path: Path, fetcher: Fetcher) -> None:
    source = tmp_path / "tree" / ".versions.json"
    source.parent.mkdir()
    source.write_bytes(BODY)
    os.utime(source, (1_700_000_000, 1_700_000_000))

    first = fetcher.fetch(source.as_uri())
    assert (first.status, first.content, first.not_modified) == (200, BODY, False)
    assert first.etag and first.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert fetcher.fetch(str(source)).content == BODY

    assert fetcher.fetch(source.as_uri(), etag=first.etag).not_modified
    assert fetcher.fetch(source.as_uri(), last_modified=first.last_modified).not_modified

    source.write_bytes(BODY + b" ")
    changed = fetcher.fetch(source.as_uri(), etag=first.etag)
    assert not changed.not_modified and changed.content == BODY + b" " and changed.etag != first.etag

    with pytest.raises(UpstreamNotFound) as caught:
        fetcher.fetch((tmp_path / "nope").as_uri())
    assert caught.value.upstream_status == 404

    copy = fetcher.fetch_to_file(source.as_uri(), tmp_path / "out" / "copy.json",
                                 expected_sha256=hashlib.sha256(BODY + b" ").hexdigest())
    assert copy.path.read_bytes() == BODY + b" "
    with pytest.raises(SignatureError):
        fetcher.fetch_to_file(str(source), tmp_path / "out" / "bad.json", expected_sha256="f" * 64)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["copy.json"]
