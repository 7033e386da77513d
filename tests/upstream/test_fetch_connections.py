"""A sync's many small requests share one keep-alive connection, 304s and 404s included."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sysup.upstream.fetch import Fetcher, UpstreamNotFound

ETAG = '"v1"'


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections open, as uvicorn and real mirrors do
    connections: list[int]

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != "/sha256sums":
            body = b"not here"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)  # no Content-Length, as uvicorn answers a 304
            self.send_header("ETag", ETAG)
            self.end_headers()
        else:
            body = b"0" * 64 + b" *profiles.json\n"
            self.send_response(200)
            self.send_header("ETag", ETAG)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture()
def server() -> Iterator[tuple[str, list[int]]]:
    connections: list[int] = []
    handler = type("Handler", (_KeepAlive,), {"connections": connections})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", connections
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_conditional_requests_and_404s_reuse_one_connection(server: tuple[str, list[int]]) -> None:
    url, connections = server
    with Fetcher(timeout=5, retries=0) as fetcher:
        first = fetcher.fetch(f"{url}/sha256sums")
        assert first.etag == ETAG and first.content
        for _ in range(20):
            assert fetcher.fetch(f"{url}/sha256sums", etag=ETAG).not_modified
        for _ in range(5):
            with pytest.raises(UpstreamNotFound):
                fetcher.fetch(f"{url}/missing")
    assert len(connections) == 1
