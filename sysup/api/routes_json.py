"""``/json/v1/*``: the overview, branches and latest documents, per-device profiles and package indexes.

``{path}`` is a branch path with its version filled in (``releases/24.10.4``, ``releases/24.10-SNAPSHOT``,
``snapshots``), as clients build it from ``overview.json``/``branches.json``. Documents are rendered once and
kept in process for a few seconds, so a burst of clients costs one catalog query.
An unknown path, target, profile or architecture is a 404 JSON answer; auc treats that as "no upgrade".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from asud.errors import NotFound
from sysup import __version__
from sysup.api.documents import overview_document, profile_document, version_paths
from sysup.api.responses import JsonResponse, render_json
from sysup.api.schemas import (
    ERROR_RESPONSES,
    BranchAnswer,
    LatestAnswer,
    OverviewAnswer,
    ProfileAnswer,
    TargetIndexAnswer,
)
from sysup.api.state import ApiState, api_state
from sysup.catalog.queries import TargetInfo

router = APIRouter(prefix="/json/v1", tags=["json"])

State = Annotated[ApiState, Depends(api_state)]


async def cached_document(state: ApiState, key: tuple[str, ...], compute: Callable[[], Any]) -> Response:
    """The rendered document under ``key``, computed in the threadpool on a miss (catalog reads block)."""
    body = state.documents.get(key)
    if body is None:
        body = render_json(await run_in_threadpool(compute))
        state.documents.put(key, body)
    return JsonResponse(body)


def server_info(state: ApiState) -> dict[str, Any]:
    """The ``server`` object of ``overview.json``: limits owut checks before it sends a request."""
    settings = state.settings
    return {
        "version": __version__,
        "contact": settings.server_contact,
        "allow_defaults": settings.allow_defaults,
        "repository_allow_list": list(settings.repository_allow_list),
        "max_custom_rootfs_size_mb": settings.max_custom_rootfs_size_mb,
        "max_defaults_length": settings.max_defaults_length,
    }


def build_overview(state: ApiState) -> dict[str, Any]:
    distro = state.settings.default_distro
    upstream = state.settings.distros.get(distro)
    document = overview_document(
        state.catalog.branches(distro),
        state.catalog.latest(distro),
        upstream_url=upstream.upstream_url if upstream else "",
        server=server_info(state),
    )
    # Every configured distribution (``branches`` above are the default one's; see /api/distros).
    document["distros"] = {
        name: {"alias": settings.alias or name, "latest": state.catalog.latest(name),
               "upstream_url": settings.upstream_url, "default": name == distro}
        for name, settings in state.settings.distros.items()
    }
    return document


def version_of_path(state: ApiState, path: str) -> str:
    """The version served under ``path``; ``NotFound`` when no branch has it."""
    paths = version_paths(state.catalog.branches(state.settings.default_distro).values())
    version = paths.get(path.strip("/"))
    if version is None:
        raise NotFound(f"Unsupported path: {path}")
    return version


@router.get("/overview.json", response_class=JsonResponse, response_model=OverviewAnswer)
async def overview(state: State) -> Response:
    """Branches with versions, targets and package changes, the latest releases, and the server's limits."""
    return await cached_document(state, ("overview",), lambda: build_overview(state))


@router.get("/branches.json", response_class=JsonResponse, response_model=list[BranchAnswer])
async def branches(state: State) -> Response:
    """The branch objects of ``overview.json`` as a list (what auc reads)."""
    return await cached_document(
        state, ("branches",), lambda: list(build_overview(state)["branches"].values())
    )


@router.get("/latest.json", response_class=JsonResponse, response_model=LatestAnswer)
async def latest(state: State) -> Response:
    """The newest release of each branch, newest first."""
    return await cached_document(
        state, ("latest",), lambda: {"latest": state.catalog.latest(state.settings.default_distro)}
    )


@router.get(
    "/{path:path}/targets/{target}/{subtarget}/index.json",
    response_class=JsonResponse,
    response_model=TargetIndexAnswer,
    responses=ERROR_RESPONSES,
)
async def target_index(path: str, target: str, subtarget: str, state: State) -> Response:
    """Target-specific packages (and kmods) with versions: ``{"architecture", "packages"}``."""

    def compute() -> Any:
        version = version_of_path(state, path)
        index = state.catalog.target_index(state.settings.default_distro, version, f"{target}/{subtarget}")
        if not index.get("architecture"):
            raise NotFound(f"Unsupported target: {target}/{subtarget}")
        return index

    return await cached_document(state, ("target-index", path, target, subtarget), compute)


@router.get(
    "/{path:path}/targets/{target}/{subtarget}/{profile}.json",
    response_class=JsonResponse,
    response_model=ProfileAnswer,
    responses=ERROR_RESPONSES,
)
async def profile(path: str, target: str, subtarget: str, profile: str, state: State) -> Response:
    """One device: ``profiles.json`` top level merged with the profile (board names with ``,`` work too)."""

    def compute() -> Any:
        distro = state.settings.default_distro
        version = version_of_path(state, path)
        full_target = f"{target}/{subtarget}"
        info = state.catalog.target(distro, version, full_target)
        if info is None:
            raise NotFound(f"Unsupported target: {full_target}")
        entry = state.catalog.profile(distro, version, full_target, profile)
        if entry is None:
            raise NotFound(f"Unsupported profile: {profile}")
        return profile_document(target_top_level(info), entry)

    return await cached_document(state, ("profile", path, target, subtarget, profile), compute)


@router.get(
    "/{path:path}/packages/{arch}-index.json",
    response_class=JsonResponse,
    response_model=dict[str, str],
    responses=ERROR_RESPONSES,
)
async def arch_index(path: str, arch: str, state: State) -> Response:
    """Every package of the architecture's feeds: a flat ``{"name": "version"}``."""

    def compute() -> Any:
        version = version_of_path(state, path)
        index = state.catalog.arch_index(state.settings.default_distro, version, arch)
        if not index:
            raise NotFound(f"Unsupported architecture: {arch}")
        return index

    return await cached_document(state, ("arch-index", path, arch), compute)


def target_top_level(info: TargetInfo) -> dict[str, Any]:
    """The top-level keys of the target's ``profiles.json``, with the ones auc requires always present."""
    top = dict(info.metadata)
    top.setdefault("metadata_version", 1)
    top.setdefault("target", info.target)
    top.setdefault("arch_packages", info.arch_packages)
    top.setdefault("version_code", info.version_code)
    top.setdefault("version_number", info.version)
    top.setdefault("source_date_epoch", info.source_date_epoch)
    return top
