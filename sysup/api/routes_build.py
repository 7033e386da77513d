"""``POST /api/v1/build`` and ``GET``/``HEAD /api/v1/build/{request_hash}``.

The POST validates against the catalog and enqueues; it never builds inline (auc gives up after 15 s), and a
request whose image is already built is answered 200 at once. The GET of a finished build is the hot path:
its rendered answer is kept in process and served from the event loop without a database query; so is the
POST of a request answered 200 moments ago (the cache hit), whose statistics row is written in a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from asud.build.stages import BuildStatus
from sysup.api.build_responses import NOT_FOUND_BODY, RenderedBuild, render_build
from sysup.api.rate_limit import limit_build_rate
from sysup.api.responses import JsonResponse
from sysup.api.schemas import ERROR_RESPONSES, BuildDone, BuildFailed, BuildQueued, BuildStarted, ErrorAnswer
from sysup.api.state import ApiState, api_state, state_of
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.validate import validate_request
from sysup.builds.service import BuildView
from sysup.stats import recorder_for
from sysup.stats.buffer import buffer_for

router = APIRouter(prefix="/api/v1", tags=["build"])

JSON = "application/json"

#: What a request hash can look like; anything else is answered 404 without asking the database.
_HASH = re.compile(r"[0-9A-Za-z_-]{1,128}")
#: Queue URLs whose rate limiter is Redis (``rate_limit.create_rate_limiter``), a network round trip.
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

_BUILD_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": BuildDone, "description": "Built; images are under /store/{bin_dir}/"},
    202: {"model": BuildQueued | BuildStarted, "description": "Queued (with queue_position) or started"},
    429: {"model": ErrorAnswer, "description": "This client sent too many build requests; see Retry-After"},
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
    if head:  # the same headers as the GET (Content-Type included), without the body
        return Response(status_code=rendered.status_code, headers=rendered.headers, media_type=JSON)
    return JsonResponse(rendered.body, status_code=rendered.status_code, headers=rendered.headers)


async def build_rate_limit(request: Request) -> str:
    """``limit_build_rate`` on the event loop when it only touches memory (no limit, or the in-process
    limiter), in the thread pool when it talks to Redis: a thread hop costs more than the cache-hit answer."""
    settings = state_of(request).settings
    if settings.rate_limit_per_minute > 0 and (settings.queue_url or "").startswith(_REDIS_SCHEMES):
        return await run_in_threadpool(limit_build_rate, request)
    return limit_build_rate(request)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What a cache-hit POST needs besides the finished answer: its hash and its statistics fields."""

    request_hash: str
    stats: dict[str, Any]


def _stats_client(client: str, user_agent: str | None) -> str:
    return (user_agent or client) if client == "unknown" else client


@router.post("/build", response_class=JsonResponse, responses={**ERROR_RESPONSES, **_BUILD_RESPONSES})
async def post_build(
    build_request: BuildRequest,
    state: Annotated[ApiState, Depends(api_state)],
    identity: Annotated[str, Depends(build_rate_limit)],
    user_agent: Annotated[str | None, Header()] = None,
) -> Response:
    """Ask for an image: 200 when it is built already, 202 while it is queued or building, 4xx at once when
    the request cannot be built (unknown version, target, profile or package), 429 when this client sent
    too many build requests (``rate_limit_per_minute``) or has too many builds queued."""
    # The cache hit, answered on the event loop: the same request (client aside) was answered 200 less than
    # FINISHED_CACHE_SECONDS ago, so its finished answer is still in memory. Everything else (validation,
    # database) runs in the thread pool.
    replay_key = replay_key_of(build_request)
    rendered = answer_cache_hit(state, build_request, replay_key, user_agent)
    if rendered is not None:
        return _as_response(rendered, head=False)
    return await run_in_threadpool(_submit, build_request, state, identity, user_agent, replay_key)


def replay_key_of(build_request: BuildRequest) -> str:
    """Requests equal but for ``client`` share their answer."""
    return build_request.model_dump_json(exclude={"client"})


def answer_cache_hit(
    state: ApiState, build_request: BuildRequest, replay_key: str, user_agent: str | None
) -> RenderedBuild | None:
    """The finished answer of a request answered 200 less than FINISHED_CACHE_SECONDS ago, counted in the
    statistics (written in batches by ``sysup.stats.buffer``); ``None`` when it must go the full way."""
    accepted = state.accepted.get(replay_key)
    rendered = state.finished.get(accepted.request_hash) if accepted is not None else None
    if accepted is None or rendered is None:
        return None
    client = client_name(build_request.client, user_agent)
    buffer_for(state.engine).add(
        api="v1", client=_stats_client(client, user_agent), request_hash=accepted.request_hash,
        cache_hit=True, **accepted.stats,
    )
    return rendered


def _submit(
    build_request: BuildRequest, state: ApiState, identity: str, user_agent: str | None, replay_key: str
) -> Response:
    """The full POST: validate against the catalog, submit, record statistics (blocking: thread pool)."""
    client = client_name(build_request.client, user_agent)
    if build_request.client != client:
        build_request = build_request.model_copy(update={"client": client})
    validated = validate_request(build_request, state.catalog, state.limits)
    view = state.builds.submit(validated, client=identity)  # per-client bound: docs/security.md
    recorder_for(state.engine).record_validated(  # statistics (sysup.stats); never raises
        validated, api="v1", client=_stats_client(client, user_agent),
        cache_hit=view.status is BuildStatus.DONE,
    )
    rendered = render_build(view)
    if view.status is BuildStatus.DONE:
        remember(state, view, rendered)
        request = validated.request
        state.accepted.put(replay_key, Accepted(validated.request_hash, {
            "distro": request.distro, "version": request.version, "target": request.target,
            "profile": validated.profile, "packages": tuple(request.packages),
            "has_defaults": validated.has_defaults,
        }))
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
async def get_build(request_hash: str, request: Request) -> Response:
    """The state of a build; ``HEAD`` answers the same status and ``X-Imagebuilder-Status`` /
    ``X-Queue-Position`` headers without a body (owut polls that way)."""
    state = state_of(request)  # not a dependency: resolving one costs a fifth of this hot path
    head = request.method == "HEAD"
    rendered = state.finished.get(request_hash)
    if rendered is None:
        view = (
            await run_in_threadpool(state.builds.get, request_hash) if _HASH.fullmatch(request_hash) else None
        )
        if view is None:
            if head:
                return Response(status_code=404, media_type=JSON)
            return JsonResponse(NOT_FOUND_BODY, status_code=404)
        rendered = render_build(view)
        if view.status is BuildStatus.DONE:
            remember(state, view, rendered)
    return _as_response(rendered, head=head)
