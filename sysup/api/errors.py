"""One place that turns every error into the JSON clients understand: ``{"status": int, "detail": str}``.

* ``AsudError`` → its ``status_code``; ``Overloaded``, ``RateLimited`` and ``Unavailable`` add
  ``Retry-After``; a database that cannot be reached (SQLAlchemy ``OperationalError``) is 503
  ``Unavailable``; a ``BuildError`` raised while answering carries its ``stdout``/``stderr``.
* Schema errors → **400 with a string** ``detail``, not FastAPI's 422 list: the Firmware Selector calls
  ``detail.startsWith`` and crashes on a list, LuCI prints ``[object Object]``, and only 400/422/500 end
  LuCI's polling (clients-contract §6.5). The reference server answers 422 here; this is a deliberate change.
* Routing errors (unknown path 404, wrong method 405) get the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from asud.errors import AsudError, BuildError, Overloaded, RateLimited, Unavailable
from sysup.api.responses import JsonResponse

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait when the queue is over its limit.
RETRY_AFTER_SECONDS = 60

#: Seconds a client is asked to wait while the database is unreachable.
UNAVAILABLE_RETRY = 5

#: ``title`` added to bodies of these statuses, as the reference server does.
_TITLES = {
    404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests", 503: "Service Unavailable",
    529: "Server overloaded",
}


def error_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error answer."""
    body: dict[str, Any] = {"status": status, "detail": detail}
    if status in _TITLES:
        body["title"] = _TITLES[status]
    body.update(extra)
    return body


def error_response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    return JsonResponse(error_body(status, detail, **extra), status_code=status, headers=headers)


def describe_validation_errors(errors: Any) -> str:
    """One line naming each invalid field, e.g. ``profile: String should match pattern '^[\\w.,-]*$'``."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":  # its location is a character offset, not a field
            return "Invalid request: the body is not valid JSON"
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        where = ".".join(location) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) if parts else "Invalid request"


async def _sysup_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, AsudError)
    headers = None
    if isinstance(error, Overloaded):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    elif isinstance(error, Unavailable):
        headers = {"Retry-After": str(UNAVAILABLE_RETRY)}
    elif isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after)}
    extra: dict[str, Any] = {}
    if isinstance(error, BuildError):
        extra = {"imagebuilder_status": "failed", "stdout": error.stdout, "stderr": error.stderr}
    return error_response(error.status_code, error.detail, headers=headers, **extra)


async def _database_unavailable(request: Request, error: Exception) -> Response:
    """The database cannot be reached (``OperationalError``): 503 + ``Retry-After``, never a 500. The pool
    pings connections before use, so the next request after the database is back succeeds by itself."""
    log.warning("database unavailable for %s %s: %s", request.method, request.url.path,
                str(error).splitlines()[0] if str(error) else type(error).__name__)
    return await _sysup_error(request, Unavailable("Service temporarily unavailable (database), retry later"))


async def _validation_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return error_response(400, describe_validation_errors(error.errors()))


async def _http_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return error_response(error.status_code, str(error.detail), headers=error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(AsudError, _sysup_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
