"""A ``BuildView`` as the HTTP answer clients expect (clients-contract §6.3 to 6.5).

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

from dataclasses import dataclass
from typing import Any

from asud.build.stages import BuildStatus
from sysup.api.responses import render_json
from sysup.builds.service import BuildView

#: The body of a GET/HEAD for a hash nobody asked for (as the reference server words it).
NOT_FOUND_BODY = {"status": 404, "title": "Not Found", "detail": "could not find provided request hash"}


@dataclass(frozen=True, slots=True)
class RenderedBuild:
    """Status code, JSON bytes and headers of one build answer; cheap to keep in a cache."""

    status_code: int
    body: bytes
    headers: dict[str, str]


def _headers(status: str, queue_position: int) -> dict[str, str]:
    return {"X-Imagebuilder-Status": status, "X-Queue-Position": str(queue_position)}


def build_body(view: BuildView) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status_code, body, headers)`` for ``view``."""
    enqueued_at = view.enqueued_at.isoformat()
    common = {"request_hash": view.request_hash, "enqueued_at": enqueued_at}
    if view.status is BuildStatus.DONE:
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
    if view.status is BuildStatus.QUEUED:
        position = view.queue_position or 0
        body = {"status": 202, "detail": "queued", "queue_position": position, **common}
        return 202, body, _headers("queued", position)
    if view.status is BuildStatus.STARTED:
        shown = view.stage.client_status
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
    if view.error_kind:
        body["error_kind"] = view.error_kind
    return 500, body, _headers("failed", 0)


def render_build(view: BuildView) -> RenderedBuild:
    status_code, body, headers = build_body(view)
    return RenderedBuild(status_code, render_json(body), headers)
