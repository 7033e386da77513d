"""``POST /api/v1/build`` and ``GET``/``HEAD /api/v1/build/{request_hash}``.

The POST validates against the catalog and enqueues; it never builds inline (auc gives up after 15 s), and a
request whose image is already built is answered 200 at once. The GET of a finished build is the hot path:
its rendered answer is kept in process and served from the event loop without a database query.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sysup.api.build_responses import NOT_FOUND_BODY, RenderedBuild, render_build
from sysup.api.responses import JsonResponse
from sysup.api.schemas import ERROR_RESPONSES, BuildDone, BuildFailed, BuildQueued, BuildStarted, ErrorAnswer
from sysup.api.state import ApiState, api_state
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.validate import validate_request
from sysup.builds.service import BuildView
from sysup.builds.stages import BuildStatus

router = APIRouter(prefix="/api/v1", tags=["build"])

#: What a request hash can look like; anything else is answered 404 without asking the database.
_HASH = re.compile(r"[0-9A-Za-z_-]{1,128}")

_BUILD_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": BuildDone, "description": "Built; images are under /store/{bin_dir}/"},
    202: {"model": BuildQueued | BuildStarted, "description": "Queued (with queue_position) or started"},
    500: {"model": BuildFailed, "description": "The build failed"},
    529: {"model": ErrorAnswer, "description": "Too many queued builds; retry after Retry-After seconds"},
}


def client_name(client: str | None, user_agent: str | None) -> str:
    """The client named in the body, else auc's User-Agent (auc sends no ``client``), else ``unknown``."""
    if client:
        return client
    if user_agent and user_agent.lower().startswith("auc"):
        return user_agent
    return "unknown"


def remember(state: ApiState, view: BuildView, rendered: RenderedBuild) -> None:
    """Keep a finished answer in process, never past the moment the result expires."""
    max_age = None
    if view.expires_at is not None:
        expires_at = view.expires_at if view.expires_at.tzinfo else view.expires_at.replace(tzinfo=UTC)
        max_age = (expires_at - datetime.now(UTC)).total_seconds()
    state.finished.put(view.request_hash, rendered, max_age=max_age)


def _as_response(rendered: RenderedBuild, *, head: bool) -> Response:
    if head:
        return Response(status_code=rendered.status_code, headers=rendered.headers)
    return JsonResponse(rendered.body, status_code=rendered.status_code, headers=rendered.headers)


@router.post("/build", response_class=JsonResponse, responses={**ERROR_RESPONSES, **_BUILD_RESPONSES})
def post_build(
    build_request: BuildRequest,
    state: Annotated[ApiState, Depends(api_state)],
    user_agent: Annotated[str | None, Header()] = None,
) -> Response:
    """Ask for an image: 200 when it is built already, 202 while it is queued or building, 4xx at once when
    the request cannot be built (unknown version, target, profile or package)."""
    client = client_name(build_request.client, user_agent)
    if build_request.client != client:
        build_request = build_request.model_copy(update={"client": client})
    validated = validate_request(build_request, state.catalog, state.limits)
    view = state.builds.submit(validated, client=client)
    rendered = render_build(view)
    if view.status is BuildStatus.DONE:
        remember(state, view, rendered)
    else:
        state.finished.discard(view.request_hash)
    return _as_response(rendered, head=False)


_STATUS_RESPONSES: dict[int | str, dict[str, object]] = {
    **_BUILD_RESPONSES,
    404: {"model": ErrorAnswer, "description": "Unknown request hash"},
}


@router.get("/build/{request_hash}", response_class=JsonResponse, responses=_STATUS_RESPONSES)
@router.head(
    "/build/{request_hash}", response_class=Response, responses=_STATUS_RESPONSES, operation_id="head_build"
)
async def get_build(
    request_hash: str, request: Request, state: Annotated[ApiState, Depends(api_state)]
) -> Response:
    """The state of a build; ``HEAD`` answers the same status and ``X-Imagebuilder-Status`` /
    ``X-Queue-Position`` headers without a body (owut polls that way)."""
    head = request.method == "HEAD"
    rendered = state.finished.get(request_hash)
    if rendered is None:
        view = (
            await run_in_threadpool(state.builds.get, request_hash) if _HASH.fullmatch(request_hash) else None
        )
        if view is None:
            return Response(status_code=404) if head else JsonResponse(NOT_FOUND_BODY, status_code=404)
        rendered = render_build(view)
        if view.status is BuildStatus.DONE:
            remember(state, view, rendered)
    return _as_response(rendered, head=head)
