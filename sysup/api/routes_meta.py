"""Small routes around the build API: overview/latest redirects, the revision check LuCI makes, stats.

``/api/overview`` and ``/api/latest`` are the paths LuCI ≤ 24.10 (2024) still uses; the reference server
dropped them in 2024, so those devices cannot search for upgrades there (clients-contract §2.4).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from asud.errors import BadRequest, NotFound
from sysup.api.responses import JsonResponse
from sysup.api.schemas import ERROR_RESPONSES, RevisionAnswer, StatsAnswer
from sysup.api.state import ApiState, api_state

router = APIRouter(tags=["meta"])

State = Annotated[ApiState, Depends(api_state)]

OVERVIEW_JSON = "/json/v1/overview.json"
LATEST_JSON = "/json/v1/latest.json"


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=301)


@router.get("/api/v1/overview", status_code=301, response_class=RedirectResponse)
@router.get("/api/overview", status_code=301, response_class=RedirectResponse, include_in_schema=False)
@router.get("/overview", status_code=301, response_class=RedirectResponse, include_in_schema=False)
async def overview_redirect() -> RedirectResponse:
    """301 to ``/json/v1/overview.json`` (new LuCI uses ``/api/v1/overview``, old LuCI ``/api/overview``)."""
    return _redirect(OVERVIEW_JSON)


@router.get("/api/v1/latest", status_code=301, response_class=RedirectResponse)
@router.get("/api/latest", status_code=301, response_class=RedirectResponse, include_in_schema=False)
async def latest_redirect() -> RedirectResponse:
    """301 to ``/json/v1/latest.json``."""
    return _redirect(LATEST_JSON)


def revision_of(state: ApiState, version: str, target: str) -> str:
    """``version_code`` of the target's ``profiles.json``, for releases and snapshots alike."""
    distro = state.settings.default_distro
    if state.catalog.version(distro, version) is None:
        raise BadRequest(f"Unsupported version: {version}")
    info = state.catalog.target(distro, version, target)
    if info is None:
        raise NotFound(f"Failed to fetch revision for {version}/{target}")
    return str(info.version_code)


@router.get(
    "/api/v1/revision/{version}/{target}/{subtarget}",
    response_class=JsonResponse,
    response_model=RevisionAnswer,
    responses=ERROR_RESPONSES,
)
async def revision(version: str, target: str, subtarget: str, state: State) -> Response:
    """The revision a build of this version and target would have: ``{"revision": "r28427-6df0e3d02a"}``."""
    key = ("revision", version, target, subtarget)
    body = state.documents.get(key)
    if body is None:
        code = await run_in_threadpool(revision_of, state, version, f"{target}/{subtarget}")
        body = JsonResponse({"revision": code}).body
        state.documents.put(key, body)
    return JsonResponse(body)


@router.get("/api/v1/stats", response_class=JsonResponse, response_model=StatsAnswer)
def stats(state: State) -> Response:
    """How many builds are waiting in the queue."""
    return JsonResponse({"queue_length": state.builds.queue_length()})
