"""One place that turns every error into the JSON clients understand: ``{"status": int, "detail": str}``.

* ``AsudError`` → its ``status_code``; ``Overloaded``, ``RateLimited`` and ``Unavailable`` add
  ``Retry-After``; a ``BuildError`` raised while answering carries its ``stdout``/``stderr``.
* Routing errors (unknown path 404, wrong method 405) get the same shape, not Werkzeug's HTML page.
* Anything else is a 500 with the same shape, and the traceback goes to the log, not to the client.

:func:`json_app` makes the Klein app of a v1 surface with these handlers registered; a surface with
another error shape (the 2017 API) registers its own handlers before calling :func:`add_error_handling`.
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from asud.errors import AsudError, BuildError, Overloaded, RateLimited, Unavailable
from asud.http.responses import error_answer

__all__ = [
    "RETRY_AFTER_SECONDS",
    "UNAVAILABLE_RETRY",
    "add_error_handling",
    "answer_error",
    "error_headers",
    "json_app",
]

log = Logger()

#: Seconds a client is asked to wait when the queue is over its limit.
RETRY_AFTER_SECONDS = 60
#: Seconds a client is asked to wait while Redis (or another dependency) is unreachable.
UNAVAILABLE_RETRY = 5


def error_headers(error: AsudError) -> dict[str, str]:
    """``Retry-After`` for the errors a client should retry later."""
    if isinstance(error, Overloaded):
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if isinstance(error, Unavailable):
        return {"Retry-After": str(UNAVAILABLE_RETRY)}
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    return {}


def answer_error(request: IRequest, error: AsudError) -> bytes:
    """The v1 answer for ``error``."""
    extra: dict[str, Any] = {}
    if isinstance(error, BuildError):
        extra = {"imagebuilder_status": "failed", "stdout": error.stdout, "stderr": error.stderr}
    return error_answer(request, error.status_code, error.detail, error_headers(error), **extra)


def _request_and_failure(args: tuple[Any, ...]) -> tuple[IRequest, Failure]:
    request, failure = args[-2:]
    return request, failure


# Handlers take ``*args``: Klein passes the surface instance first when the app is bound to one.
def _asud_error(*args: Any) -> bytes:
    request, failure = _request_and_failure(args)
    error = failure.value
    assert isinstance(error, AsudError)
    if isinstance(error, Unavailable):
        log.warn("{method} {path}: {detail}", method=request.method, path=request.path, detail=error.detail)
    return answer_error(request, error)


def _routing_error(*args: Any) -> bytes:
    request, failure = _request_and_failure(args)
    error = failure.value
    assert isinstance(error, HTTPException)
    code = error.code or 500
    if isinstance(error, MethodNotAllowed):
        allowed = ", ".join(sorted(error.valid_methods or ()))
        return error_answer(request, 405, "Method Not Allowed", {"Allow": allowed} if allowed else None)
    if 300 <= code < 400:  # a Werkzeug slash redirect: never send a client elsewhere, the path is unknown
        code = 404
    return error_answer(request, code, error.name if code == error.code else "Not Found")


def _unexpected(*args: Any) -> bytes:
    request, failure = _request_and_failure(args)
    log.failure("{method} {path} failed", failure, method=request.method, path=request.path)
    return error_answer(request, 500, "Internal Server Error")


def add_error_handling(app: Klein) -> None:
    """Register the handlers above on ``app`` (in this order: ours, routing, anything else)."""
    app.handle_errors(AsudError)(_asud_error)
    app.handle_errors(HTTPException)(_routing_error)
    app.handle_errors(Exception)(_unexpected)


def json_app() -> Klein:
    """A Klein app for a v1 surface: JSON errors, and no Werkzeug slash merging (``/a//b`` is not ``/a/b``:
    a merge would answer with a redirect to a path the client never asked for)."""
    app = Klein()
    app.url_map.merge_slashes = False
    add_error_handling(app)
    return app
