"""The 2017 API's build side (``shared/reference/legacy-api.md``), except upgrade-check.

``POST /api/upgrade-request`` and ``POST /api/build-request`` are mapped onto a v1 ``BuildRequest`` with
``diff_packages: true`` (the legacy ``packages`` list is the complete package list of the image) and go
through the same ``validate_request`` + ``BuildService.submit`` path as ``POST /api/v1/build``: a legacy and
a v1 request for the same image share one build and one stored result.

Answers keep the 2017 shapes: errors ``{"error", "detail"}``; 202 with ``X-Imagebuilder-Status``
(``queue`` | ``initialize`` | ``building``) and ``X-Build-Queue-Position`` (1 = next to build, 0 = building);
204 + ``X-Request-Hash``; 413 too big; 420 ``defaults`` over ``legacy_max_defaults_length``; 422 +
``X-Unknown-Package``; 500 with a ``log`` URL; 501 no sysupgrade image (upgrade-request only); 503 +
``Retry-After``. Hash paths take the full hash or an unambiguous 12/15-character prefix.

204 on ``upgrade-request``: the device sent its installed ``revision`` and it is the revision the requested
version would be built from, so the image would be the firmware it already runs.

The read-only listings (images, manifests, files, distros, versions, models, packages_image) are in
``routes_legacy_catalog``; upgrade-check is ``routes_upgrade``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from asud.build.stages import BuildStage, BuildStatus
from asud.errors import AsudError, BadRequest, NotFound, Overloaded, UnknownPackages
from asud.upstream.records import ProfileEntry
from sysup.api.errors import RETRY_AFTER_SECONDS, describe_validation_errors
from sysup.api.rate_limit import limit_build_rate
from sysup.api.responses import JsonResponse
from sysup.api.state import ApiState, api_state
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.validate import validate_request
from sysup.builds.models import Build, BuildRequestRecord
from sysup.builds.service import BuildView
from sysup.database import session_factory
from sysup.stats import recorder_for
from sysup.stats.recorder import manifest_hash
from sysup.upgrades.request import MissingField, normalise_version, resolve_distro

router = APIRouter(tags=["legacy"])

State = Annotated[ApiState, Depends(api_state)]
Kind = Literal["upgrade-request", "build-request"]

#: Full hashes and the truncated forms the 2017 server issued.
HASH_PATTERN = re.compile(r"\A(?:[0-9a-f]{12}|[0-9a-f]{15}|[0-9a-f]{64})\Z")
#: Image types that count as "the sysupgrade image", best first (legacy-api.md).
SYSUPGRADE_TYPES = ("sysupgrade", "combined", "sdcard")
#: Stages shown as ``initialize`` (the ImageBuilder is being set up); later ones are ``building``.
_INITIALIZING = {BuildStage.INIT, BuildStage.DOWNLOAD_IMAGEBUILDER, BuildStage.UNPACK_IMAGEBUILDER}


class DefaultsTooLong(AsudError):
    """``defaults`` longer than the 2017 API's limit: 420, as its README promised."""

    status_code = 420


class NoSysupgradeImage(AsudError):
    status_code = 501


class FailedBuild(AsudError):
    """A finished, failed build as the 2017 API reports it: 500, or 413 when the image was too big."""

    def __init__(self, detail: str, *, too_big: bool) -> None:
        super().__init__(detail)
        self.status_code = 413 if too_big else 500


def legacy_error(error: AsudError, **extra: Any) -> Response:
    """``{"error", "detail"}`` with the 2017 API's status codes and headers."""
    status = error.status_code
    body: dict[str, Any] = {"error": error.detail, "detail": error.detail, **extra}
    headers: dict[str, str] = {}
    if isinstance(error, MissingField):
        headers["X-Missing-Param"] = error.field
    elif isinstance(error, UnknownPackages):
        status = 422
        headers["X-Unknown-Package"] = error.names[0]
        body["unknown_packages"] = list(error.names)
    elif isinstance(error, Overloaded):
        status = 503
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return JsonResponse(body, status_code=status, headers=headers)


def server_url(state: ApiState, request: Request) -> str:
    return (state.settings.public_url or str(request.base_url)).rstrip("/")


# -- reading a request -------------------------------------------------------------------------------------


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid parameter: {name} must be a string")
    return value.strip()


def _required(body: Mapping[str, Any], name: str) -> str:
    value = _text(body, name)
    if value is None:
        raise MissingField(name)
    return value


def read_target(body: Mapping[str, Any]) -> str:
    """``target`` + ``subtarget``, or a 2019 client's ``target: "ath79/generic"`` alone."""
    target = _required(body, "target")
    if "/" in target:
        return target
    return f"{target}/{_required(body, 'subtarget')}"


def profile_title(entry: ProfileEntry) -> str:
    """The first title as one string (``TP-Link Archer C7 v5``)."""
    return titles_of(entry)[0] if entry.titles else entry.id


def titles_of(entry: ProfileEntry) -> list[str]:
    names = []
    for title in entry.titles:
        text = title.get("title") or " ".join(
            part for part in (title.get("vendor"), title.get("model"), title.get("variant")) if part
        )
        names.append(text)
    return names


def resolve_profile(
    state: ApiState, distro: str, version: str, target: str, board: str | None, model: str | None
) -> str:
    """``board`` (``,``→``_``, ``supported_devices``), then ``model`` against titles (case-insensitive),
    then ``generic`` on a single-profile target; ``BadRequest`` naming what is unknown."""
    catalog = state.catalog
    if catalog.version(distro, version) is None:
        raise BadRequest(f"Unsupported version: {version}")
    info = catalog.target(distro, version, target)
    if info is None:
        raise BadRequest(f"Unsupported target: {target}")
    if board:
        entry = catalog.profile(distro, version, target, board)
        if entry is not None:
            return entry.id
    if model:
        wanted = model.strip().lower()
        for entry in info.profiles.values():
            if wanted in (title.lower() for title in titles_of(entry)):
                return entry.id
    if len(info.profiles) == 1 and "generic" in info.profiles:
        return "generic"
    raise BadRequest(f"Unknown device: board {board or '-'}, model {model or '-'}")


def to_build_request(state: ApiState, body: Any, client: str) -> tuple[BuildRequest, str | None]:
    """The v1 request a legacy body means, and the installed ``revision`` it named (if any)."""
    if not isinstance(body, Mapping):
        raise BadRequest("The request body must be a JSON object")
    settings = state.settings
    distro = resolve_distro(_text(body, "distro"), settings.distros, settings.default_distro)
    version = normalise_version(_required(body, "version"))
    target = read_target(body)
    board, model = _text(body, "board"), _text(body, "model")
    packages = body.get("packages")
    if packages is None:
        raise MissingField("packages")
    if not isinstance(packages, list) or not all(isinstance(name, str) for name in packages):
        raise BadRequest("Invalid parameter: packages must be a list of package names")
    defaults = body.get("defaults")
    if defaults is not None and not isinstance(defaults, str):
        raise BadRequest("Invalid parameter: defaults must be a string")
    limit = settings.legacy_max_defaults_length
    if defaults and len(defaults.encode("utf-8")) > limit:
        raise DefaultsTooLong(f"`defaults` exceeds the maximum length of {limit} bytes")
    profile = resolve_profile(state, distro, version, target, board, model)
    try:
        request = BuildRequest(
            distro=distro,
            version=version,
            target=target,
            profile=profile,
            packages=[name.strip() for name in packages if name.strip()],
            diff_packages=True,
            defaults=defaults or None,
            client=client[:256] or None,
        )
    except ValidationError as error:
        raise BadRequest(describe_validation_errors(error.errors())) from None
    return request, _text(body, "revision")


def client_of(body: Any, request: Request) -> str:
    """``client`` from the body, else the User-Agent, else ``unknown``."""
    named = body.get("client") if isinstance(body, Mapping) else None
    if isinstance(named, str) and named.strip() and named.isprintable():
        return named.strip()
    agent = request.headers.get("user-agent", "").strip()
    return agent if agent and agent.isprintable() else "unknown"


# -- answering ---------------------------------------------------------------------------------------------


def pick_sysupgrade(images: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The image a device flashes with sysupgrade: type ``sysupgrade``, else ``combined``, else ``sdcard``;
    squashfs first."""
    for kind in SYSUPGRADE_TYPES:
        candidates = [image for image in images if image.get("type") == kind]
        candidates.sort(key=lambda image: image.get("filesystem") != "squashfs")
        if candidates:
            return candidates[0]
    return None


def _job_bin_dir(state: ApiState, image_key: str) -> str | None:
    with session_factory(state.engine)() as session:
        job = session.scalar(select(Build.job).where(Build.image_key == image_key))
    return (job or {}).get("bin_dir")


def render_view(state: ApiState, view: BuildView, kind: Kind, base: str) -> Response:
    """A build's state as the 2017 API answers it."""
    common = {"request_hash": view.request_hash}
    if view.status is BuildStatus.QUEUED:
        position = (view.queue_position or 0) + 1
        headers = {"X-Imagebuilder-Status": "queue", "X-Build-Queue-Position": str(position)}
        return JsonResponse(common, status_code=202, headers=headers)
    if view.status is BuildStatus.STARTED:
        shown = "initialize" if view.stage in _INITIALIZING else "building"
        headers = {"X-Imagebuilder-Status": shown, "X-Build-Queue-Position": "0"}
        return JsonResponse(common, status_code=202, headers=headers)
    if view.status is BuildStatus.FAILED:
        bin_dir = _job_bin_dir(state, view.image_key) or view.request_hash
        detail = view.detail if view.detail not in ("", "failed") else "Build failed"
        error = FailedBuild(detail, too_big=view.error_kind == "ImageTooBig")
        return legacy_error(error, log=f"{base}/store/{bin_dir}/build.log", **common)
    result = view.result or {}
    bin_dir = view.bin_dir or str(result.get("bin_dir") or view.request_hash)
    images = list(result.get("images") or [])
    chosen = pick_sysupgrade(images)
    body: dict[str, Any] = {}
    links = {"log": f"{base}/store/{bin_dir}/build.log", "files": f"{base}/api/files/{bin_dir}"}
    if chosen is not None:
        body["sysupgrade"] = f"{base}/store/{bin_dir}/{chosen['name']}"
    elif kind == "upgrade-request":
        return legacy_error(
            NoSysupgradeImage(f"The build for {view.request.get('profile')} produced no sysupgrade image"),
            **links,
            **common,
        )
    body.update(links)
    body.update(common)
    body["image_hash"] = view.image_key
    manifest = result.get("manifest")
    body["manifest_hash"] = manifest_hash(manifest) if isinstance(manifest, Mapping) else None
    if kind == "build-request":
        body["images"] = [image.get("name") for image in images]
    return JsonResponse(body)


def _submit(
    state: ApiState, body: Any, client: str, kind: Kind, identity: str | None = None
) -> BuildView | str:
    """Validate and submit; the request hash alone when the answer is "no update" (204). ``identity`` is
    the client's address (``sysup.api.rate_limit``), which bounds its queued builds."""
    build_request, revision = to_build_request(state, body, client)
    validated = validate_request(build_request, state.catalog, state.limits)
    if kind == "upgrade-request" and revision and revision == validated.version_code:
        return validated.request_hash
    view = state.builds.submit(validated, client=identity or client)
    recorder_for(state.engine).record_validated(
        validated, api=kind, client=client, cache_hit=view.status is BuildStatus.DONE
    )
    return view


async def _post(request: Request, state: ApiState, kind: Kind) -> Response:
    try:
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
            raise BadRequest("The request body is not valid JSON") from None
        identity = await run_in_threadpool(limit_build_rate, request)  # 429 over the per-client rate
        outcome = await run_in_threadpool(_submit, state, body, client_of(body, request), kind, identity)
    except AsudError as error:
        return legacy_error(error)
    if isinstance(outcome, str):
        return Response(status_code=204, headers={"X-Request-Hash": outcome})
    return await run_in_threadpool(render_view, state, outcome, kind, server_url(state, request))


def find_request_hash(state: ApiState, prefix: str) -> str:
    """The full request hash ``prefix`` names; ``NotFound`` when none or several do."""
    if not HASH_PATTERN.match(prefix):
        raise NotFound(f"Unknown request hash: {prefix}")
    with session_factory(state.engine)() as session:
        found = session.scalars(
            select(BuildRequestRecord.request_hash)
            .where(BuildRequestRecord.request_hash.startswith(prefix, autoescape=True))
            .limit(2)
        ).all()
    if len(found) != 1:
        raise NotFound(f"Unknown request hash: {prefix}" if not found else f"Ambiguous hash prefix: {prefix}")
    return found[0]


def _status(state: ApiState, prefix: str, kind: Kind, base: str) -> Response:
    view = state.builds.get(find_request_hash(state, prefix))
    if view is None:
        raise NotFound(f"Unknown request hash: {prefix}")
    return render_view(state, view, kind, base)


async def _get(request: Request, state: ApiState, request_hash: str, kind: Kind) -> Response:
    try:
        return await run_in_threadpool(_status, state, request_hash.lower(), kind, server_url(state, request))
    except AsudError as error:
        return legacy_error(error)


_BUILD_DOC = (
    "202 while queued or building (`X-Imagebuilder-Status`, `X-Build-Queue-Position`); 200 when built; 413 "
    "too big; 420 `defaults` too long; 422 unknown package (`X-Unknown-Package`); 500 failed (`log`); 503 "
    "overloaded (`Retry-After`)."
)


@router.post(
    "/api/upgrade-request",
    summary="Build the sysupgrade image of a device (2017 API)",
    description=_BUILD_DOC + " 501 when the profile has no sysupgrade image; 204 "
    "(`X-Request-Hash`) when the sent `revision` is what would be built.",
)
async def post_upgrade_request(request: Request, state: State) -> Response:
    return await _post(request, state, "upgrade-request")


@router.get("/api/upgrade-request/{request_hash}", summary="Poll an upgrade request (2017 API)")
async def get_upgrade_request(request_hash: str, request: Request, state: State) -> Response:
    return await _get(request, state, request_hash, "upgrade-request")


@router.post(
    "/api/build-request",
    summary="Build an image, with optional `defaults` (2017 API)",
    description=_BUILD_DOC + " Without a sysupgrade image the answer is still 200 (factory images).",
)
async def post_build_request(request: Request, state: State) -> Response:
    return await _post(request, state, "build-request")


@router.get("/api/build-request/{request_hash}", summary="Poll a build request (2017 API)")
async def get_build_request(request_hash: str, request: Request, state: State) -> Response:
    return await _get(request, state, request_hash, "build-request")
