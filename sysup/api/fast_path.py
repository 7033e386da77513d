"""The hot paths, answered before the middleware stack and the router: ``GET``/``HEAD
/api/v1/build/<hash>`` of a finished build, and a ``POST /api/v1/build`` repeating a request whose image is
built (a cache hit).

Clients poll a finished build again and again (every LuCI, owut and Firmware Selector download starts
with one), and routers re-POST the same request; the answers sit pre-rendered in :attr:`ApiState.finished`.
This outermost ASGI layer sends those bytes — with the CORS headers the other answers under ``/api/`` carry,
timed into the same latency histogram, a cache-hit POST counted in the statistics by the very function the
route uses — without the per-request cost of the stack. Anything else (a miss, a queued build, an invalid
body, ``?status_in_body=1``, rate limiting switched on) passes through untouched, with the body it read
handed on, so the behaviour is the route's in every case.
"""

from __future__ import annotations

import re
import time

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sysup.api.body_limit import MAX_BODY_BYTES
from sysup.api.build_responses import RenderedBuild
from sysup.api.cors import CORS_RESPONSE_HEADERS
from sysup.api.metrics import LatencyHistogram
from sysup.api.plain_http import wants_status_in_body
from sysup.api.routes_build import answer_cache_hit, replay_key_of
from sysup.build_requests.models import BuildRequest

#: The route templates the histogram files these answers under (the same as the routes').
ROUTE = "/api/v1/build/{request_hash}"
POST_ROUTE = "/api/v1/build"
_PATH = re.compile(r"/api/v1/build/([0-9a-f]{64})")
_JSON = (b"content-type", b"application/json")


class FinishedBuildFastPath:
    def __init__(self, app: ASGIApp, histogram: LatencyHistogram | None = None) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == POST_ROUTE:
            rendered, receive = await _cache_hit_post(scope, receive)
            route = POST_ROUTE
        else:
            rendered, route = _cached(scope), ROUTE
        if rendered is None:
            await self.app(scope, receive, send)
            return
        headers = [
            _JSON,
            (b"content-length", str(len(rendered.body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in rendered.headers.items()),
            *CORS_RESPONSE_HEADERS,
        ]
        body = b"" if scope["method"] == "HEAD" else rendered.body
        await send({"type": "http.response.start", "status": rendered.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if self.histogram is not None:
            elapsed = time.perf_counter() - started
            self.histogram.observe(scope["method"], route, rendered.status_code, elapsed)


def _cached(scope: Scope) -> RenderedBuild | None:
    """The cached finished answer this request asks for, if it is one the fast path may give."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return None
    match = _PATH.fullmatch(scope["path"])
    if match is None or wants_status_in_body(scope):
        return None
    state = getattr(scope["app"].state, "api", None)
    return None if state is None else state.finished.get(match.group(1))


async def _cache_hit_post(scope: Scope, receive: Receive) -> tuple[RenderedBuild | None, Receive]:
    """The finished answer of a repeated build POST, or ``None`` and a ``receive`` that replays the body."""
    state = getattr(scope["app"].state, "api", None)
    headers = dict(scope["headers"])
    if (
        state is None
        or state.settings.rate_limit_per_minute > 0  # the route's dependency must count this request
        or wants_status_in_body(scope)
        or not headers.get(b"content-type", b"").startswith(b"application/json")
    ):
        return None, receive
    messages, body = await _read_body(receive)
    replay = _replaying(messages, receive)
    if body is None:
        return None, replay
    try:
        build_request = BuildRequest.model_validate_json(body)
    except ValidationError:
        return None, replay
    user_agent = headers.get(b"user-agent")
    rendered = answer_cache_hit(
        state,
        build_request,
        replay_key_of(build_request),
        user_agent.decode("latin-1") if user_agent else None,
    )
    return rendered, replay


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message of the request body; the body is ``None`` when it is too large or the client left."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again before reading on."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
