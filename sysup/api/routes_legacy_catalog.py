"""The 2017 API's read-only listings: images and manifests by hash, a build's files, distributions,
versions (honouring ``?distro=``), device search and a device's default packages.

Errors have the 2017 shape ``{"error", "detail"}`` (see ``routes_legacy``); hash paths take the full hash or
an unambiguous 12/15-character prefix, except images built with ``defaults``, which answer only to the full
hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from asud.build.stages import BuildStatus
from asud.errors import AsudError, BadRequest, NotFound
from asud.upstream.records import ProfileEntry
from asud.upstream.version_order import branch_of
from sysup.api.responses import JsonResponse
from sysup.api.routes_legacy import HASH_PATTERN, legacy_error, pick_sysupgrade, profile_title, titles_of
from sysup.api.state import ApiState, api_state
from sysup.builds.models import Build
from sysup.database import session_factory
from sysup.stats import recorder_for
from sysup.stats.models import BuildEvent
from sysup.stats.recorder import manifest_hash
from sysup.upgrades.request import MissingField, normalise_version, resolve_distro

router = APIRouter(tags=["legacy"])

State = Annotated[ApiState, Depends(api_state)]

#: Most entries ``/api/models`` answers.
MODELS_LIMIT = 50


# -- images, manifests, files ------------------------------------------------------------------------------


def _image(state: ApiState, prefix: str) -> dict[str, Any]:
    if not HASH_PATTERN.match(prefix):
        raise NotFound(f"Unknown image hash: {prefix}")
    with session_factory(state.engine)() as session:
        builds = session.scalars(
            select(Build)
            .where(
                Build.image_key.startswith(prefix, autoescape=True), Build.status == BuildStatus.DONE.value
            )
            .limit(2)
        ).all()
    if len(builds) != 1 or (builds[0].store_kind == "private" and builds[0].image_key != prefix):
        raise NotFound(f"Unknown image hash: {prefix}")
    build = builds[0]
    job, result = dict(build.job), dict(build.result or {})
    target, _, subtarget = str(job.get("target", "")).partition("/")
    images = list(result.get("images") or [])
    chosen = pick_sysupgrade(images)
    manifest = result.get("manifest")
    titles = result.get("titles") or []
    entry = ProfileEntry(id=str(job.get("profile", "")), titles=tuple(titles))
    seconds = (
        int((build.finished_at - build.started_at).total_seconds())
        if build.finished_at and build.started_at
        else None
    )
    defaults = job.get("defaults")
    return {
        "image_hash": build.image_key,
        "distro": job.get("distro"),
        "version": job.get("version"),
        "target": target,
        "subtarget": subtarget,
        "profile": job.get("profile"),
        "model": profile_title(entry),
        "manifest_hash": manifest_hash(manifest) if isinstance(manifest, Mapping) else None,
        "defaults_hash": hashlib.sha256(defaults.encode()).hexdigest() if defaults else None,
        "build_date": build.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ") if build.finished_at else None,
        "build_seconds": seconds,
        "sysupgrade": chosen["name"] if chosen else None,
        "files": [image.get("name") for image in images],
    }


@router.get("/api/image/{image_hash}", summary="What an image is (2017 API)")
async def get_image(image_hash: str, state: State) -> Response:
    """404 for unknown hashes; images built with `defaults` answer only to their full hash."""
    try:
        return JsonResponse(await run_in_threadpool(_image, state, image_hash.lower()))
    except AsudError as error:
        return legacy_error(error)


def _manifest(state: ApiState, digest: str) -> dict[str, str]:
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise NotFound(f"Unknown manifest hash: {digest}")
    recorder_for(state.engine).collect_builds(state.settings.stats_retention)
    with session_factory(state.engine)() as session:
        keys = session.scalars(
            select(BuildEvent.image_key)
            .where(BuildEvent.manifest_hash == digest)
            .order_by(BuildEvent.finished_at.desc())
        ).all()
        for key in keys:
            result = session.scalar(
                select(Build.result).where(Build.image_key == key, Build.status == BuildStatus.DONE.value)
            )
            manifest = (result or {}).get("manifest")
            if isinstance(manifest, Mapping) and manifest_hash(manifest) == digest:
                return dict(sorted(manifest.items()))
    raise NotFound(f"Unknown manifest hash: {digest}")


@router.get("/api/manifest/{manifest_hash}", summary="Every installed package of an image (2017 API)")
async def get_manifest(manifest_hash: str, state: State) -> Response:
    try:
        return JsonResponse(await run_in_threadpool(_manifest, state, manifest_hash.lower()))
    except AsudError as error:
        return legacy_error(error)


def _files(state: ApiState, bin_dir: str) -> list[dict[str, Any]]:
    listing = []
    for name, size in sorted(state.store.files(bin_dir).items()) if state.store.exists(bin_dir) else []:
        with state.store.resolve(bin_dir, name).open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        listing.append({"name": name, "size": size, "sha256": digest})
    if not listing:
        raise NotFound(f"Unknown build: {bin_dir}")
    return listing


@router.get("/api/files/{bin_dir}", summary="Every file of a build, with size and sha256 (2017 API)")
async def get_files(bin_dir: str, state: State) -> Response:
    try:
        return JsonResponse(await run_in_threadpool(_files, state, bin_dir))
    except AsudError as error:
        return legacy_error(error)


# -- catalog listings --------------------------------------------------------------------------------------


def _distros(state: ApiState) -> list[dict[str, Any]]:
    answer = []
    for name, distro in state.settings.distros.items():
        latest = state.catalog.latest(name)
        answer.append(
            {
                "name": name,
                "alias": distro.alias or name,
                "latest": latest[0] if latest else None,
                "description": distro.description,
            }
        )
    return answer


@router.get("/api/distros", summary="The distributions this server builds (2017 API)")
async def get_distros(state: State) -> Response:
    return JsonResponse(await run_in_threadpool(_distros, state))


def _versions(state: ApiState, distro: str | None) -> list[dict[str, Any]]:
    settings = state.settings
    names = (
        [resolve_distro(distro, settings.distros, settings.default_distro)]
        if distro
        else list(settings.distros)
    )
    answer = []
    for name in names:
        for branch in state.catalog.branches(name).values():
            if not branch.enabled:
                continue
            for version in branch.versions:
                answer.append(
                    {
                        "distro": name,
                        "version": version,
                        "alias": "",
                        "description": "",
                        "snapshots": "SNAPSHOT" in version.upper(),
                    }
                )
    return answer


@router.get("/api/versions", summary="Versions, optionally of one distribution (2017 API)")
async def get_versions(state: State, distro: str | None = None) -> Response:
    try:
        return JsonResponse(await run_in_threadpool(_versions, state, distro))
    except AsudError as error:
        return legacy_error(error)


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise MissingField(name)
    return value


def _models(state: ApiState, distro: str, version: str, search: str) -> list[dict[str, Any]]:
    distro = resolve_distro(distro, state.settings.distros, state.settings.default_distro)
    version = normalise_version(version)
    branch = state.catalog.branches(distro).get(branch_of(version))
    if branch is None or version not in branch.versions:
        raise BadRequest(f"Unsupported version: {version}")
    wanted = search.lower()
    found = []
    for target in branch.targets:
        info = state.catalog.target(distro, version, target)
        if info is None:
            continue
        for entry in info.profiles.values():
            if wanted in entry.id.lower() or any(wanted in title.lower() for title in titles_of(entry)):
                board, _, subtarget = target.partition("/")
                found.append(
                    {
                        "distro": distro,
                        "version": version,
                        "target": board,
                        "subtarget": subtarget,
                        "profile": entry.id,
                        "model": profile_title(entry),
                    }
                )
                if len(found) >= MODELS_LIMIT:
                    return found
    return found


@router.get("/api/models", summary="Search devices by title or profile (2017 API)")
async def get_models(request: Request, state: State) -> Response:
    """`?distro=&version=&model_search=`; at most 50 devices; 400 without distro or version."""
    try:
        distro, version = _query(request, "distro"), _query(request, "version")
        search = request.query_params.get("model_search", "")
        return JsonResponse(await run_in_threadpool(_models, state, distro, version, search))
    except AsudError as error:
        return legacy_error(error)


def image_packages(default_packages: tuple[str, ...], device_packages: tuple[str, ...]) -> list[str]:
    """Default packages plus the device's, with ``-name`` removals applied, sorted."""
    names = [*default_packages, *device_packages]
    removed = {name[1:] for name in names if name.startswith("-")}
    return sorted({name for name in names if not name.startswith("-") and name not in removed})


def _packages_image(state: ApiState, request: Request) -> dict[str, list[str]]:
    settings = state.settings
    distro = resolve_distro(_query(request, "distro"), settings.distros, settings.default_distro)
    version = normalise_version(_query(request, "version"))
    target = f"{_query(request, 'target')}/{_query(request, 'subtarget')}"
    profile = _query(request, "profile")
    info = state.catalog.target(distro, version, target)
    entry = state.catalog.profile(distro, version, target, profile) if info is not None else None
    if info is None or entry is None:
        raise NotFound(f"Unknown profile: {distro} {version} {target} {profile}")
    return {"packages": image_packages(info.default_packages, entry.device_packages)}


@router.get("/api/packages_image", summary="Packages of a device's default image (2017 API)")
async def get_packages_image(request: Request, state: State) -> Response:
    """`?distro=&version=&target=&subtarget=&profile=`; 400 on a missing parameter, 404 unknown profile."""
    try:
        return JsonResponse(await run_in_threadpool(_packages_image, state, request))
    except AsudError as error:
        return legacy_error(error)
