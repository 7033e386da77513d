"""Refuse request bodies over a fixed size with 413, before any route reads them.

The largest honest body is a build request: ``max_packages`` names, a ``defaults`` script of at most
``max_defaults_length`` bytes and a few repositories — well under 1 MiB. Without a bound, one client could
make a worker thread buffer and parse gigabytes of JSON. A declared ``Content-Length`` over the limit is
refused at once; a chunked body is counted as it arrives and cut off when it passes the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sysup.api.errors import error_response

#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 1024 * 1024


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 ``{"status": 413, "detail": …}`` for bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked:
            # No body, or one whose declared length was checked above (the HTTP parser delivers no more
            # than that): nothing to count, and the hot GETs skip two wrappers.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, f"Request body too large (limit {self.max_bytes} bytes)",
                                  headers={"Connection": "close"})
        await response(scope, receive, send)
