"""HTTP clients for the tests: StubTreq against a resource (no socket), treq and raw bytes over a real one.

Every call returns an :class:`Answer` (status, headers, body) once the whole answer is in, so tests read
like the old httpx ones. Nothing here leaves a timer or a connection behind: StubTreq runs on its own
memory reactor, the treq pool is not persistent, and the servers of :func:`listening` have no idle timeout.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import treq
from treq.client import HTTPClient
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource

from asud.http.site import make_site

__all__ = ["Answer", "LiveServer", "StubClient", "TreqClient", "listening", "raw_request"]


@attrs.frozen
class Answer:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def _headers(headers: Headers) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
        for name, values in headers.getAllRawHeaders()
    }


def _request_kwargs(
    json_body: Any, content: bytes | None, headers: Mapping[str, str] | None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"headers": dict(headers or {})}
    if json_body is not None:
        kwargs["data"] = json.dumps(json_body).encode()
        kwargs["headers"].setdefault("Content-Type", "application/json")
    elif content is not None:
        kwargs["data"] = content
    return kwargs


class StubClient:
    """StubTreq over ``resource``; pumps until the answer is complete (routes may wait on real Redis)."""

    def __init__(self, resource: IResource, base: str = "http://asud.test") -> None:
        self.stub = StubTreq(resource)
        self.base = base

    async def _settle(self, deferred: Deferred[Any]) -> Any:
        results: list[Any] = []
        deferred.addBoth(results.append)
        while not results:
            self.stub.flush()
            if not results:
                await deferLater(reactor, 0.002, lambda: None)  # let the real reactor run (Redis)
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    async def request(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> Answer:
        kwargs = _request_kwargs(json, content, headers)
        response = await self._settle(self.stub.request(method, self.base + path, **kwargs))
        body = await self._settle(self.stub.content(response))
        return Answer(response.code, _headers(response.headers), body)

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("GET", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("HEAD", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("POST", path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("OPTIONS", path, **kwargs)


class TreqClient:
    """treq over real sockets to ``base`` (``http://127.0.0.1:PORT``); one connection per request."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.client = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))

    async def request(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None, follow_redirects: bool = False) -> Answer:
        kwargs = _request_kwargs(json, content, headers)
        kwargs["allow_redirects"] = follow_redirects
        url = path if path.startswith("http") else self.base + path
        response = await self.client.request(method, url.encode("latin-1"), **kwargs)
        body = await treq.content(response)
        headers = _headers(response.headers)
        if isinstance(response.length, int):  # the Agent moves Content-Length out of the headers
            headers.setdefault("content-length", str(response.length))
        return Answer(response.code, headers, body)

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("GET", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("HEAD", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("POST", path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("OPTIONS", path, **kwargs)


@attrs.define
class LiveServer:
    url: str
    host: str
    port: int
    client: TreqClient


@asynccontextmanager
async def listening(resource: IResource, *, max_body_bytes: int = 1024 * 1024) -> AsyncIterator[LiveServer]:
    """``resource`` served by asud's ``Site`` on 127.0.0.1 (a free port) until the block ends."""
    site = make_site(resource, max_body_bytes=max_body_bytes, timeout=None)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
    number = port.getHost().port
    url = f"http://127.0.0.1:{number}"
    try:
        yield LiveServer(url, "127.0.0.1", number, TreqClient(url))
    finally:
        await port.stopListening()


class _Collect(Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.done.callback(self.data)


async def raw_request(server: LiveServer, method: str, target: str,
                      headers: Mapping[str, str] | None = None) -> tuple[int, bytes, str]:
    """Send ``method target`` byte for byte (no client-side normalisation of ``..`` or ``%2e``);
    ``(status, body, head)`` with the head lower-cased."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {server.host}:{server.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    protocol = _Collect()
    await connectProtocol(TCP4ClientEndpoint(reactor, server.host, server.port), protocol)
    protocol.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    answer = await protocol.done
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body, head.decode("latin-1").lower()


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out
