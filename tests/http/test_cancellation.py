"""A client that hangs up never cuts a build submission short (Klein cancels the route's Deferred on
disconnect, for POST too)."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater

from asud.http.root import make_resource
from asud.http.state import AsudApp
from tests.http.client import _Collect, listening
from tests.http.helpers import build_body

#: How long the submission below takes (the client leaves long before).
SLOW = 0.3


class SlowRecords:
    """The real records, with a submission that takes :data:`SLOW` seconds to start (a slow Redis)."""

    def __init__(self, records: Any) -> None:
        self.records = records
        self.started: Deferred[None] = Deferred()
        self.submitted: Deferred[Any] = Deferred()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)

    def submit(self, validated: Any, *, client: str | None = None) -> Deferred[Any]:
        def go() -> Deferred[Any]:
            d = self.records.submit(validated, client=client)
            d.addBoth(lambda view: (self.submitted.called or self.submitted.callback(view), view)[1])
            return d

        if not self.started.called:
            self.started.callback(None)
        return deferLater(reactor, SLOW, go)


@pytest_twisted.ensureDeferred
async def test_a_client_leaving_mid_post_leaves_the_build_queued(asud_app: AsudApp) -> None:
    slow = SlowRecords(asud_app.records)
    asud_app.records = slow  # type: ignore[assignment]
    body = json.dumps(build_body()).encode()
    async with listening(make_resource(asud_app)) as live:
        protocol = _Collect()
        await connectProtocol(TCP4ClientEndpoint(reactor, live.host, live.port), protocol)
        protocol.transport.write(
            b"POST /api/v1/build HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await slow.started  # validated, submission under way
        protocol.transport.abortConnection()
        assert await protocol.done == b""  # no answer: the client left first
        view = await slow.submitted  # the submission ran to its end all the same
        assert view.status == "queued"
        assert await slow.records.queue_length() == 1
        again = await live.client.post("/api/v1/build", content=body,
                                       headers={"Content-Type": "application/json"})
        assert again.status_code == 202 and again.json()["request_hash"] == view.request_hash
