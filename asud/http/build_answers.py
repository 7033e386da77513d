"""A build record (``BuildView``) as the HTTP answer clients expect (clients-contract §6.3 to 6.5).

==========  ======  =============================================================================
state       status  body
==========  ======  =============================================================================
done        200     the flattened result + ``request``, ``request_hash``, ``bin_dir``, ``enqueued_at``,
                    ``detail: "done"``, ``imagebuilder_status: "done"``, ``stdout``, ``stderr``
queued      202     ``detail: "queued"``, ``queue_position``, ``request_hash``, ``enqueued_at``
started     202     ``detail: "started"``, ``imagebuilder_status`` (known set only), ``request``, logs;
                    never ``queue_position`` (LuCI shows the queue when the key is present)
failed      500     string ``detail``, ``imagebuilder_status: "failed"``, ``request``, logs
==========  ======  =============================================================================

Every body carries ``status`` as an int (owut dispatches on it), and every answer the headers
``X-Imagebuilder-Status`` and ``X-Queue-Position`` (owut's HEAD polling reads only those).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from asud.build.stages import BuildStage, BuildStatus
from asud.http.responses import CORS_HEADERS, JSON_TYPE, json_bytes

__all__ = ["NOT_FOUND_BODY", "RenderedBuild", "build_body", "expires_in", "isoformat", "render_build"]

#: The body of a GET/HEAD for a hash nobody asked for (as the reference server words it).
NOT_FOUND_BODY = {"status": 404, "title": "Not Found", "detail": "could not find provided request hash"}


@attrs.frozen
class RenderedBuild:
    """Status code, JSON bytes and headers of one build answer; cheap to keep in a cache.

    ``wire_headers`` are every header of the answer under ``/api/`` (content type and length, ``headers``,
    CORS) encoded once, so the fast path that sends a cached answer thousands of times a second does not
    encode them again for each request."""

    status_code: int
    body: bytes
    headers: dict[str, str]
    wire_headers: tuple[tuple[bytes, bytes], ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        wire = (
            (b"Content-Type", JSON_TYPE),
            (b"Content-Length", b"%d" % len(self.body)),
            *((name.encode("latin-1"), value.encode("latin-1")) for name, value in self.headers.items()),
            *CORS_HEADERS,
        )
        object.__setattr__(self, "wire_headers", wire)


def isoformat(moment: datetime | float | str | None) -> str:
    """``enqueued_at`` as clients see it (ISO 8601), from a datetime or a Unix timestamp."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        return moment
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    return moment.isoformat()


def expires_in(view: Any, now: float) -> float | None:
    """Seconds until ``view``'s result expires (``None``: no expiry known)."""
    expires_at = getattr(view, "expires_at", None)
    if expires_at is None:
        return None
    if isinstance(expires_at, datetime):
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return float(expires_at.timestamp() - now)
    return float(expires_at) - now


def _headers(status: str, queue_position: int) -> dict[str, str]:
    return {"X-Imagebuilder-Status": status, "X-Queue-Position": str(queue_position)}


def build_body(view: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status_code, body, headers)`` for ``view`` (a ``BuildView``)."""
    common = {"request_hash": view.request_hash, "enqueued_at": isoformat(view.enqueued_at)}
    status = BuildStatus(view.status)
    if status is BuildStatus.DONE:
        body: dict[str, Any] = dict(view.result or {})
        body.update(
            common,
            status=200,
            detail="done",
            imagebuilder_status="done",
            bin_dir=view.bin_dir or body.get("bin_dir") or view.request_hash,
            request=view.request,
            stdout=view.stdout,
            stderr=view.stderr,
        )
        return 200, body, _headers("done", 0)
    if status is BuildStatus.QUEUED:
        position = view.queue_position or 0
        body = {"status": 202, "detail": "queued", "queue_position": position, **common}
        return 202, body, _headers("queued", position)
    if status is BuildStatus.STARTED:
        shown = BuildStage(view.stage).client_status
        body = {
            "status": 202,
            "detail": "started",
            "imagebuilder_status": shown,
            **common,
            "request": view.request,
            "stdout": view.stdout,
            "stderr": view.stderr,
        }
        return 202, body, _headers(shown, 0)
    detail = view.detail if view.detail and view.detail not in {"init", "failed"} else "Build failed"
    body = {
        "status": 500,
        "detail": detail,
        "imagebuilder_status": "failed",
        **common,
        "request": view.request,
        "stdout": view.stdout,
        "stderr": view.stderr,
    }
    if getattr(view, "error_kind", None):
        body["error_kind"] = view.error_kind
    return 500, body, _headers("failed", 0)


def render_build(view: Any) -> RenderedBuild:
    status_code, body, headers = build_body(view)
    return RenderedBuild(status_code, json_bytes(body), headers)
