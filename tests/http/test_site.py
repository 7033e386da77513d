"""asud's ``Site``: bodies over the limit are not kept, and the access log (off by default) when asked for."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

from asud.http.root import make_resource
from asud.http.site import BoundedRequest, make_site
from asud.http.state import AsudApp
from tests.http.client import TreqClient


async def _serve_once(site: object, path: str, content: bytes | None = None) -> int:
    port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
    try:
        client = TreqClient(f"http://127.0.0.1:{port.getHost().port}")
        answer = await (client.post(path, content=content) if content is not None else client.get(path))
        return answer.status_code
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_body_over_the_limit_is_dropped_and_answered_413(bare_app: AsudApp) -> None:
    seen: list[tuple[bool, bytes]] = []

    class Recording(BoundedRequest):
        def process(self) -> None:
            seen.append((self.body_too_large, self.content.read()))
            self.content.seek(0)
            super().process()

    site = make_site(make_resource(bare_app), max_body_bytes=100, timeout=None)
    site.requestFactory = Recording
    assert await _serve_once(site, "/api/v1/build", b"x" * 101) == 413
    assert seen[-1] == (True, b"")
    assert await _serve_once(site, "/api/v1/build", b"x" * 100) == 400  # kept, and refused as not JSON


@pytest_twisted.ensureDeferred
async def test_access_log_only_when_asked_for(bare_app: AsudApp, tmp_path: Path) -> None:
    quiet = make_site(make_resource(bare_app), max_body_bytes=100, timeout=None,
                      logPath=str(tmp_path / "quiet.log"))
    port = reactor.listenTCP(0, quiet, interface="127.0.0.1")  # type: ignore[attr-defined]
    try:
        timers = [call for call in reactor.getDelayedCalls()  # type: ignore[attr-defined]
                  if getattr(call.func, "__self__", None) is quiet]
        assert timers == []  # no per-second timer for the log's date without a log
    finally:
        await port.stopListening()

    logged = make_site(make_resource(bare_app), max_body_bytes=100, timeout=None, access_log=True,
                       logPath=str(tmp_path / "access.log"))
    assert await _serve_once(logged, "/docs") == 200
    assert '"GET /docs HTTP/1.1" 200' in (tmp_path / "access.log").read_text()
    assert await _serve_once(quiet, "/docs") == 200
    assert not (tmp_path / "quiet.log").exists() or (tmp_path / "quiet.log").read_text() == ""
