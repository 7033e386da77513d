"""Upgrade checks: ``POST /api/upgrade-check`` + ``GET /api/upgrade-check/{hash}`` (the 2017 API) and
``POST /api/v1/upgrade-check`` + ``GET /api/v1/upgrade-check/{hash}``.

Both flavours run :func:`sysup.upgrades.check_upgrade` and store the answer under the same request hash,
so any API process can answer the GET. The 2017 answers keep that API's shapes: errors are
``{"error", "detail"}``, a missing field is named in ``X-Missing-Param``, an unknown package is 422 with
``X-Unknown-Package``, and "up to date" is 204 whose request hash travels in ``X-Request-Hash`` (a 204 has
no body). The v1 answers use the v1 error shape and answer "up to date" with 200 ``"upgrade": false``, so a
JSON client never has to special-case an empty body.

The policy (which version to offer) is ``app.state.upgrade_policy`` when the app sets one, else the default
:class:`~sysup.upgrades.UpgradePolicy`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import Response

from asud.errors import AsudError, BadRequest, NotFound, UnknownPackages
from sysup.api.responses import JsonResponse
from sysup.api.schemas import ERROR_RESPONSES, ErrorAnswer
from sysup.api.state import ApiState, api_state
from sysup.database import session_factory
from sysup.upgrades import (
    MissingField,
    StoredCheck,
    UpgradeCheck,
    UpgradeCheckRequest,
    UpgradePolicy,
    check_upgrade,
    load_check,
    parse_legacy_request,
    resolve_distro,
    save_check,
)
from sysup.upgrades.request import normalise_version, parse_packages

router = APIRouter(tags=["upgrade"])

#: Used when the app sets no ``app.state.upgrade_policy``.
DEFAULT_POLICY = UpgradePolicy()


def upgrade_policy_of(connection: HTTPConnection) -> UpgradePolicy:
    """The policy of the app serving ``connection``."""
    policy = getattr(connection.app.state, "upgrade_policy", None)
    return policy if isinstance(policy, UpgradePolicy) else DEFAULT_POLICY


def _run_check(state: ApiState, request: UpgradeCheckRequest, policy: UpgradePolicy) -> UpgradeCheck | None:
    """Check and store (blocking: database and catalog)."""
    check = check_upgrade(
        state.catalog,
        distro=request.distro,
        version=request.version,
        target=request.target,
        packages=request.packages,
        revision=request.revision,
        policy=policy,
    )
    save_check(session_factory(state.engine), request, check)
    return check


def _load(state: ApiState, request_hash: str) -> StoredCheck | None:
    return load_check(session_factory(state.engine), request_hash)


# -- the 2017 API ---------------------------------------------------------------------------------------


class LegacyUpgradeCheckBody(BaseModel):
    """What 2017 to 2019 clients send (documentation only; the route reads the JSON itself)."""

    model_config = ConfigDict(extra="allow")

    distro: str = Field("openwrt", description="Case-insensitive; `LEDE` means openwrt")
    version: str = Field(examples=["24.10.4"])
    target: str = Field(examples=["ath79"], description="`ath79` with `subtarget`, or `ath79/generic` alone")
    subtarget: str | None = Field(None, examples=["generic"])
    packages: dict[str, str] | None = Field(None, description="Installed packages: name → version")
    installed: dict[str, str] | None = Field(None, description="2019 clients: same as `packages`")
    revision: str | None = Field(None, examples=["r28959-29397011cc"], description="Installed revision")


class LegacyUpgradeCheckAnswer(BaseModel):
    """200: a newer version (``version``) and/or newer packages (``upgrades``) exist."""

    model_config = ConfigDict(extra="allow")

    version: str | None = Field(None, description="Only when a newer version is offered")
    upgrades: dict[str, list[str]] = Field(description="name → [new_version, installed_version]")
    packages: list[str] = Field(description="The package list of the new image (package changes applied)")
    unavailable: dict[str, str] | None = Field(
        None, description="Installed packages the new version cannot install, with the reason"
    )
    request_hash: str


class LegacyError(BaseModel):
    error: str
    detail: str
    unknown_packages: list[str] | None = None


_LEGACY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": LegacyUpgradeCheckAnswer, "description": "An upgrade is available"},
    204: {"description": "Up to date; the request hash is in `X-Request-Hash`"},
    400: {"model": LegacyError, "description": "Missing (named in `X-Missing-Param`) or unknown field"},
    422: {"model": LegacyError, "description": "Unknown package (first one in `X-Unknown-Package`)"},
}


def legacy_error(error: AsudError) -> Response:
    """``{"error", "detail"}`` with the headers of the 2017 API."""
    body: dict[str, Any] = {"error": error.detail, "detail": error.detail}
    headers: dict[str, str] = {}
    status = error.status_code
    if isinstance(error, MissingField):
        headers["X-Missing-Param"] = error.field
    if isinstance(error, UnknownPackages):
        status = 422
        headers["X-Unknown-Package"] = error.names[0]
        body["unknown_packages"] = list(error.names)
    return JsonResponse(body, status_code=status, headers=headers)


def legacy_answer(request_hash: str, check: UpgradeCheck | None) -> Response:
    if check is None:
        return Response(status_code=204, headers={"X-Request-Hash": request_hash})
    body: dict[str, Any] = {}
    if check.version is not None:
        body["version"] = check.version
    body["upgrades"] = {name: list(pair) for name, pair in check.upgrades.items()}
    body["packages"] = check.packages
    if check.unavailable:
        body["unavailable"] = check.unavailable
    body["request_hash"] = request_hash
    return JsonResponse(body)


@router.post(
    "/api/upgrade-check",
    summary="Is there a newer version or newer packages? (2017 API)",
    response_class=JsonResponse,
    responses=_LEGACY_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LegacyUpgradeCheckBody.model_json_schema()}},
        }
    },
)
async def post_legacy_upgrade_check(
    request: Request, state: Annotated[ApiState, Depends(api_state)]
) -> Response:
    """Compare an installed system with the catalog. 200 with the offer; 204 (+ `X-Request-Hash`) when up
    to date; 400 + `X-Missing-Param`; 422 + `X-Unknown-Package` for packages the installed version does
    not know (`kernel`, `libc`, `base-files` excepted)."""
    try:
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("The request body is not valid JSON") from None
        check_request = parse_legacy_request(body, state.settings.distros, state.settings.default_distro)
        check = await run_in_threadpool(_run_check, state, check_request, upgrade_policy_of(request))
    except AsudError as error:
        return legacy_error(error)
    return legacy_answer(check_request.request_hash, check)


@router.get(
    "/api/upgrade-check/{request_hash}",
    summary="A stored upgrade-check answer (2017 API)",
    response_class=JsonResponse,
    responses={**_LEGACY_RESPONSES, 404: {"model": LegacyError, "description": "Unknown request hash"}},
)
async def get_legacy_upgrade_check(
    request_hash: str, state: Annotated[ApiState, Depends(api_state)]
) -> Response:
    """The answer stored by the POST, by full hash or an unambiguous 12/15-character prefix."""
    stored = await run_in_threadpool(_load, state, request_hash)
    if stored is None:
        return legacy_error(NotFound(f"Unknown request hash: {request_hash}"))
    return legacy_answer(stored.request_hash, stored.check)


# -- v1 -------------------------------------------------------------------------------------------------


class UpgradeCheckBody(BaseModel):
    """``POST /api/v1/upgrade-check``."""

    model_config = ConfigDict(extra="ignore")

    distro: str = Field("openwrt", description="Case-insensitive; configured aliases are accepted")
    version: str = Field(examples=["24.10.4"])
    target: str = Field(examples=["ath79/generic"], pattern=r"^[\w.-]+/[\w.-]+$")
    packages: dict[str, str] | list[str] | None = Field(
        None, description="Installed packages, name → version (a list of names: no package upgrades)"
    )
    revision: str | None = Field(None, examples=["r28959-29397011cc"], description="Installed revision")


class VersionPair(BaseModel):
    to: str = Field(alias="to", description="Version in the offered (or current) release")
    from_: str = Field(alias="from", description="Installed version")


class PackageChangeAnswer(BaseModel):
    source: str | None = None
    target: str | None = None
    revision: int
    mandatory: bool = False


class UpgradeCheckAnswer(BaseModel):
    """200. ``upgrade`` says whether anything is newer; the rest is present only when it is."""

    status: int = Field(200, examples=[200])
    upgrade: bool
    request_hash: str
    version: str | None = Field(None, description="Offered version, only when newer than the installed one")
    version_code: str | None = Field(None, description="Revision of the offered (or current) version")
    upgrades: dict[str, VersionPair] | None = Field(None, description="Packages with a newer version")
    packages: list[str] | None = Field(None, description="The package list of the new image")
    package_changes: list[PackageChangeAnswer] | None = Field(
        None, description="The renames/removals applied between the two versions"
    )
    unavailable: dict[str, str] | None = Field(None, description="Packages the new version cannot install")


def v1_answer(request_hash: str, check: UpgradeCheck | None) -> dict[str, Any]:
    if check is None:
        return {"status": 200, "upgrade": False, "request_hash": request_hash}
    body: dict[str, Any] = {"status": 200, "upgrade": True, "request_hash": request_hash}
    if check.version is not None:
        body["version"] = check.version
    body["version_code"] = check.version_code
    body["upgrades"] = {name: {"from": old, "to": new} for name, (new, old) in check.upgrades.items()}
    body["packages"] = check.packages
    body["package_changes"] = [change.model_dump(exclude_none=True) for change in check.package_changes]
    body["unavailable"] = check.unavailable
    return body


_V1_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    200: {"model": UpgradeCheckAnswer, "description": "The offer, or `upgrade: false` when up to date"},
}


@router.post(
    "/api/v1/upgrade-check",
    summary="Is there a newer version or newer packages?",
    response_class=JsonResponse,
    responses=_V1_RESPONSES,
)
async def post_upgrade_check(
    body: UpgradeCheckBody, request: Request, state: Annotated[ApiState, Depends(api_state)]
) -> Response:
    """Compare an installed system with the catalog. Always 200 on success: `upgrade: true` with
    `version` (when newer), `upgrades` (`{name: {from, to}}`), `packages` (the installed names as the new
    version calls them, after `package_changes`) and `unavailable`; `upgrade: false` when up to date.
    400 for an unknown version, target or package (the names are in `detail`)."""
    check_request = UpgradeCheckRequest(
        distro=resolve_distro(body.distro, state.settings.distros, state.settings.default_distro),
        version=normalise_version(body.version.strip()),
        target=body.target,
        packages=parse_packages(body.packages, "packages"),
        revision=body.revision or None,
    )
    check = await run_in_threadpool(_run_check, state, check_request, upgrade_policy_of(request))
    return JsonResponse(v1_answer(check_request.request_hash, check))


@router.get(
    "/api/v1/upgrade-check/{request_hash}",
    summary="A stored upgrade-check answer",
    response_class=JsonResponse,
    responses={**_V1_RESPONSES, 404: {"model": ErrorAnswer, "description": "Unknown request hash"}},
)
async def get_upgrade_check(request_hash: str, state: Annotated[ApiState, Depends(api_state)]) -> Response:
    """The answer stored by the POST (full hash or an unambiguous prefix of at least 12 characters)."""
    stored = await run_in_threadpool(_load, state, request_hash)
    if stored is None:
        raise NotFound(f"Unknown request hash: {request_hash}")
    return JsonResponse(v1_answer(stored.request_hash, stored.check))
