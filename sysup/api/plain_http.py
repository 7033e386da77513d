"""``?status_in_body=1``: the v1 API for HTTP tools that can only read a 200 and only POST forms.

A stock OpenWrt image fetches with ``uclient-fetch`` (or BusyBox ``wget``). Both send ``--post-data`` as
``Content-Type: application/x-www-form-urlencoded`` and cannot set another type, and both throw the body of
any answer other than 200/204 away, printing only ``HTTP error 400``. Through them a router could neither
POST a v1 build request (the JSON body is refused as a form) nor learn why a request failed or where it
stands in the queue. The router client (``clients/openwrt/``) therefore adds ``status_in_body=1`` to its
``/api/`` URLs; for those requests only:

* a form-typed body is read as the JSON it is (the API takes nothing but JSON);
* an answer with status 201 to 299 or ≥ 400 goes out as 200 with the same JSON body — every ``/api/v1`` body
  carries the real code in ``"status"`` — and the original code in ``X-Sysup-Status``.

Every other request is passed through untouched, so existing clients see no difference.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Query key that asks for the behaviour above.
QUERY_KEY = b"status_in_body"
#: Header that keeps the original HTTP status of a rewritten answer.
STATUS_HEADER = "X-Sysup-Status"

_FORM = b"application/x-www-form-urlencoded"


def wants_status_in_body(scope: Scope) -> bool:
    """Whether this is an ``/api/`` request with ``status_in_body`` set to a true value."""
    if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
        return False
    for pair in scope.get("query_string", b"").split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == QUERY_KEY and value.lower() not in (b"0", b"false", b"no"):
            return True
    return False


class StatusInBodyMiddleware:
    """Applies ``?status_in_body=1`` (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not wants_status_in_body(scope):
            await self.app(scope, receive, send)
            return
        headers = [
            (name, b"application/json" if name == b"content-type" and value.startswith(_FORM) else value)
            for name, value in scope.get("headers", [])
        ]
        scope = dict(scope, headers=headers)

        async def send_as_200(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status != 200 and status != 204 and not 300 <= status < 400:
                    message = dict(message, status=200, headers=list(message.get("headers", [])))
                    MutableHeaders(scope=message).append(STATUS_HEADER, str(status))
            await send(message)

        await self.app(scope, receive, send_as_200)
