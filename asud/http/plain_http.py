"""``?status_in_body=1``: the v1 API for HTTP tools that can only read a 200 and only POST forms.

A stock OpenWrt image fetches with ``uclient-fetch`` (or BusyBox ``wget``). Both send ``--post-data`` as
``Content-Type: application/x-www-form-urlencoded`` and cannot set another type, and both throw the body of
any answer other than 200/204 away, printing only ``HTTP error 400``. Through them a router could neither
POST a v1 build request nor learn why a request failed or where it stands in the queue. The router client
(``clients/openwrt/``) therefore adds ``status_in_body=1`` to its ``/api/`` URLs; for those requests only:

* a form-typed body is read as the JSON it is (the API takes nothing but JSON);
* an answer with status 201 to 299 or ≥ 400 goes out as 200 with the same JSON body — every ``/api/v1`` body
  carries the real code in ``"status"`` — and the original code in ``X-Asud-Status``.

Every other request is left untouched, so existing clients see no difference.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from twisted.web.iweb import IRequest

__all__ = ["QUERY_KEY", "STATUS_HEADER", "apply_status_in_body", "wants_status_in_body"]

#: Query key that asks for the behaviour above.
QUERY_KEY = "status_in_body"
#: Header that keeps the original HTTP status of a rewritten answer.
STATUS_HEADER = b"X-Asud-Status"

_FORM = b"application/x-www-form-urlencoded"


def wants_status_in_body(request: IRequest, path: str) -> bool:
    """Whether ``path`` is under ``/api/`` and the query (not a form body) sets ``status_in_body``."""
    if not path.startswith("/api/"):
        return False
    _, _, query = request.uri.partition(b"?")
    if b"status_in_body" not in query:
        return False
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == QUERY_KEY and value.lower() not in ("0", "false", "no"):
            return True
    return False


def apply_status_in_body(request: IRequest) -> None:
    """Read a form-typed body as JSON and send every answer but 200/204/3xx as 200 + ``X-Asud-Status``."""
    content_type = request.requestHeaders.getRawHeaders(b"content-type") or []
    if content_type and content_type[0].startswith(_FORM):
        request.requestHeaders.setRawHeaders(b"content-type", [b"application/json"])
    set_code = request.setResponseCode

    def set_response_code(code: int, message: bytes | None = None) -> None:
        if code in (200, 204) or 300 <= code < 400:
            request.responseHeaders.removeHeader(STATUS_HEADER)
            set_code(code, message)
            return
        request.setHeader(STATUS_HEADER, b"%d" % code)
        set_code(200)

    request.setResponseCode = set_response_code  # type: ignore[method-assign]
