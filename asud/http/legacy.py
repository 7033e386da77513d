"""The 2017 API's build side (``shared/reference/legacy-api.md``), and the one owner of its error answers.

``POST /api/upgrade-request`` and ``POST /api/build-request`` are mapped onto a v1 ``BuildRequest`` with
``diff_packages: true`` (the legacy ``packages`` list is the complete package list of the image) and go
through the same ``validate_request`` + ``BuildRecords.submit`` path as ``POST /api/v1/build``: a legacy and
a v1 request for the same image share one build and one stored result.

Answers keep the 2017 shapes: errors ``{"error", "detail"}`` (:func:`legacy_error`); 202 with
``X-Imagebuilder-Status`` (``queue`` | ``initialize`` | ``building``) and ``X-Build-Queue-Position`` (1 =
next to build, 0 = building); 204 + ``X-Request-Hash``; 413 too big; 420 ``defaults`` over
``[requests] legacy_max_defaults_length``; 422 + ``X-Unknown-Package``; 500 with a ``log`` URL; 501 no
sysupgrade image (upgrade-request only); 503 + ``Retry-After``. Hash paths take the full hash or an
unambiguous 12/15-character prefix.

204 on ``upgrade-request``: the device sent its installed ``revision`` and it is the revision the requested
version would be built from, so the image would be the firmware it already runs.

The read-only listings are ``asud.http.legacy_catalog``; upgrade-check is ``asud.http.upgrades``. This
surface is mounted on ``/api`` as a whole, so an unknown ``/api/...`` path gets its (v1-shaped) 404.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from klein import Klein
from twisted.internet.defer import ensureDeferred
from twisted.web.iweb import IRequest

from asud.build.request import BuildRequest, parse_build_request
from asud.build.resolutions import resolutions_of
from asud.build.stages import BuildStage, BuildStatus
from asud.build.validate import RequestLimits, validate_request
from asud.errors import AsudError, BadRequest, DefaultsRejected, NotFound, Overloaded, UnknownPackages
from asud.http.errors import add_error_handling, error_headers
from asud.http.rate_limit import limit_build_rate
from asud.http.responses import json_answer, mount_path
from asud.http.shield import shielded
from asud.http.state import AsudApp
from asud.store.stats_keys import manifest_hash
from asud.upgrades.request import (
    MissingField,
    body_text,
    normalise_version,
    read_target,
    required_text,
    resolve_distro,
)
from asud.upstream.records import ProfileEntry

__all__ = [
    "HASH_PATTERN",
    "DefaultsTooLong",
    "FailedBuild",
    "LegacyApi",
    "NoSysupgradeImage",
    "legacy_app",
    "legacy_error",
    "pick_sysupgrade",
    "profile_title",
    "read_json_body",
    "server_url",
    "titles_of",
]

Kind = Literal["upgrade-request", "build-request"]

#: Full hashes and the truncated forms the 2017 server issued.
HASH_PATTERN = re.compile(r"\A(?:[0-9a-f]{12}|[0-9a-f]{15}|[0-9a-f]{64})\Z")
#: Image types that count as "the sysupgrade image", best first (legacy-api.md).
SYSUPGRADE_TYPES = ("sysupgrade", "combined", "sdcard")
#: Stages shown as ``initialize`` (the ImageBuilder is being set up); later ones are ``building``.
_INITIALIZING = {BuildStage.INIT, BuildStage.DOWNLOAD_IMAGEBUILDER, BuildStage.UNPACK_IMAGEBUILDER}


class DefaultsTooLong(DefaultsRejected):
    """``defaults`` longer than the 2017 API's limit: 420, as its README promised."""

    status_code = 420


class NoSysupgradeImage(AsudError):
    status_code = 501


class FailedBuild(AsudError):
    """A finished, failed build as the 2017 API reports it: 500, or 413 when the image was too big."""

    def __init__(self, detail: str, *, too_big: bool) -> None:
        super().__init__(detail)
        self.status_code = 413 if too_big else 500


# -- the 2017 error answer (one owner) ---------------------------------------------------------------------


def legacy_error(request: IRequest, error: AsudError, **extra: Any) -> bytes:
    """``{"error", "detail"}`` with the 2017 API's status codes and headers: ``X-Missing-Param`` for a
    missing field, 422 + ``X-Unknown-Package`` (the first) for unknown packages, 503 + ``Retry-After`` when
    the queue is full (``Overloaded``, 529 in v1), and the v1 ``Retry-After`` of ``RateLimited`` (429) and
    ``Unavailable`` (503)."""
    status = error.status_code
    body: dict[str, Any] = {"error": error.detail, "detail": error.detail, **extra}
    headers = error_headers(error)
    if isinstance(error, MissingField):
        headers["X-Missing-Param"] = error.field
    elif isinstance(error, UnknownPackages):
        status = 422
        headers["X-Unknown-Package"] = error.names[0]
        body["unknown_packages"] = list(error.names)
    elif isinstance(error, Overloaded):  # 529 in v1; the 2017 API's "overloaded" is 503 (legacy-api.md)
        status = 503
    return json_answer(request, body, status, headers)


def _legacy_asud_error(*args: Any) -> bytes:
    request, failure = args[-2:]  # Klein passes the surface instance first
    return legacy_error(request, failure.value)


def legacy_app() -> Klein:
    """A Klein app whose ``AsudError`` answers have the 2017 shape; routing and unexpected errors keep the
    v1 shape (as the previous server answered them)."""
    app = Klein()
    app.url_map.merge_slashes = False
    app.handle_errors(AsudError)(_legacy_asud_error)
    add_error_handling(app)
    return app


def read_json_body(request: IRequest) -> Any:
    """The decoded JSON body; ``BadRequest`` when it is not JSON (or nested too deeply)."""
    try:
        return json.loads(request.content.read())
    except (ValueError, RecursionError):
        raise BadRequest("The request body is not valid JSON") from None


def server_url(state: AsudApp, request: IRequest) -> str:
    """``public_url``, else the scheme and ``Host`` the client used and the path asud is mounted at (links
    in answers are absolute)."""
    if state.config.public_url:
        return state.config.public_url.rstrip("/")
    host = request.getHeader(b"host")
    if not host:
        address = request.getHost()
        host = f"{address.host}:{address.port}".encode("ascii")
    scheme = "https" if request.isSecure() else "http"
    return f"{scheme}://{host.decode('latin-1')}".rstrip("/") + mount_path(request)


# -- profiles and images -----------------------------------------------------------------------------------


def titles_of(entry: ProfileEntry) -> list[str]:
    """Each title as one string (vendor + model + variant, or ``title``)."""
    names = []
    for title in entry.titles:
        text = title.get("title") or " ".join(
            part for part in (title.get("vendor"), title.get("model"), title.get("variant")) if part
        )
        names.append(text)
    return names


def profile_title(entry: ProfileEntry) -> str:
    """The first title as one string (``TP-Link Archer C7 v5``), else the profile id."""
    return titles_of(entry)[0] if entry.titles else entry.id


def pick_sysupgrade(images: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The image a device flashes with sysupgrade: type ``sysupgrade``, else ``combined``, else ``sdcard``;
    squashfs first."""
    for kind in SYSUPGRADE_TYPES:
        candidates = [image for image in images if image.get("type") == kind]
        candidates.sort(key=lambda image: image.get("filesystem") != "squashfs")
        if candidates:
            return candidates[0]
    return None


def resolve_profile(
    catalog: Any, distro: str, version: str, target: str, board: str | None, model: str | None
) -> str:
    """``board`` (``,``→``_``, ``supported_devices``), then ``model`` against titles (case-insensitive),
    then ``generic`` on a single-profile target; ``BadRequest`` naming what is unknown."""
    if catalog.version(distro, version) is None:
        raise BadRequest(f"Unsupported version: {version}")
    info = catalog.target(distro, version, target)
    if info is None:
        raise BadRequest(f"Unsupported target: {target}")
    if board:
        entry = catalog.profile(distro, version, target, board)
        if entry is not None:
            return str(entry.id)
    if model:
        wanted = model.strip().lower()
        for entry in info.profiles.values():
            if wanted in (title.lower() for title in titles_of(entry)):
                return str(entry.id)
    if len(info.profiles) == 1 and "generic" in info.profiles:
        return "generic"
    raise BadRequest(f"Unknown device: board {board or '-'}, model {model or '-'}")


# -- reading a request -------------------------------------------------------------------------------------


def to_build_request(state: AsudApp, body: Any, client: str) -> tuple[BuildRequest, str | None]:
    """The v1 request a legacy body means, and the installed ``revision`` it named (if any)."""
    if not isinstance(body, Mapping):
        raise BadRequest("The request body must be a JSON object")
    config = state.config
    distro = resolve_distro(body_text(body, "distro"), config.distros, config.default_distro)
    version = normalise_version(required_text(body, "version"))
    target = read_target(body)
    board, model = body_text(body, "board"), body_text(body, "model")
    packages = body.get("packages")
    if packages is None:
        raise MissingField("packages")
    if not isinstance(packages, list) or not all(isinstance(name, str) for name in packages):
        raise BadRequest("Invalid parameter: packages must be a list of package names")
    defaults = body.get("defaults")
    if defaults is not None and not isinstance(defaults, str):
        raise BadRequest("Invalid parameter: defaults must be a string")
    limit = config.requests.legacy_max_defaults_length
    if defaults and len(defaults.encode("utf-8")) > limit:
        raise DefaultsTooLong(f"`defaults` exceeds the maximum length of {limit} bytes")
    profile = resolve_profile(state.current_catalog(), distro, version, target, board, model)
    request = parse_build_request({
        "distro": distro,
        "version": version,
        "target": target,
        "profile": profile,
        "packages": [name.strip() for name in packages if name.strip()],
        "diff_packages": True,
        "defaults": defaults or None,
        "client": client[:256] or None,
    })
    return request, body_text(body, "revision")


def client_of(body: Any, request: IRequest) -> str:
    """``client`` from the body, else the User-Agent, else ``unknown``."""
    named = body.get("client") if isinstance(body, Mapping) else None
    if isinstance(named, str) and named.strip() and named.isprintable():
        return named.strip()
    agent = (request.getHeader(b"user-agent") or b"").decode("latin-1").strip()
    return agent if agent and agent.isprintable() else "unknown"


# -- answering ---------------------------------------------------------------------------------------------


def render_view(request: IRequest, view: Any, kind: Kind, base: str, *, log_dir: str | None = None) -> bytes:
    """A build's state (a ``BuildView``) as the 2017 API answers it; ``log_dir`` is the ``bin_dir`` that
    holds a failed build's log (default: the request hash)."""
    common = {"request_hash": view.request_hash}
    status = BuildStatus(view.status)
    if status is BuildStatus.QUEUED:
        position = (view.queue_position or 0) + 1
        headers = {"X-Imagebuilder-Status": "queue", "X-Build-Queue-Position": str(position)}
        return json_answer(request, common, 202, headers)
    if status is BuildStatus.STARTED:
        shown = "initialize" if view.stage in _INITIALIZING else "building"
        return json_answer(request, common, 202,
                           {"X-Imagebuilder-Status": shown, "X-Build-Queue-Position": "0"})
    if status is BuildStatus.FAILED:
        bin_dir = log_dir or view.bin_dir or view.request_hash
        detail = view.detail if view.detail not in ("", "failed") else "Build failed"
        error = FailedBuild(detail, too_big=view.error_kind == "ImageTooBig")
        return legacy_error(request, error, log=f"{base}/store/{bin_dir}/build.log", **common)
    result = view.result or {}
    bin_dir = view.bin_dir or str(result.get("bin_dir") or view.request_hash)
    images = list(result.get("images") or [])
    chosen = pick_sysupgrade(images)
    links = {"log": f"{base}/store/{bin_dir}/build.log", "files": f"{base}/api/files/{bin_dir}"}
    body: dict[str, Any] = {}
    if chosen is not None:
        body["sysupgrade"] = f"{base}/store/{bin_dir}/{chosen['name']}"
    elif kind == "upgrade-request":
        profile = (view.request or {}).get("profile")
        no_image = NoSysupgradeImage(f"The build for {profile} produced no sysupgrade image")
        return legacy_error(request, no_image, **links, **common)
    body.update(links)
    body.update(common)
    body["image_hash"] = view.image_key
    manifest = result.get("manifest")
    body["manifest_hash"] = manifest_hash(manifest) if isinstance(manifest, Mapping) else None
    if kind == "build-request":
        body["images"] = [image.get("name") for image in images]
    return json_answer(request, body)


class LegacyApi:
    """``POST /api/{upgrade,build}-request`` and ``GET /api/{upgrade,build}-request/{hash}``."""

    app = legacy_app()

    def __init__(self, state: AsudApp) -> None:
        self.state = state

    def resource(self) -> Any:
        return self.app.resource()

    def _limits(self) -> RequestLimits:
        if self.state.limits is None:
            self.state.limits = RequestLimits.from_config(self.state.config)
        return self.state.limits  # type: ignore[no-any-return]

    async def _post(self, request: IRequest, kind: Kind) -> bytes:
        state = self.state
        body = read_json_body(request)
        identity = await limit_build_rate(state, request)  # 429 over the per-client rate
        client = client_of(body, request)
        build_request, revision = to_build_request(state, body, client)
        catalog = state.current_catalog()
        # The same per-catalog cache of resolutions as the v1 route: a router retrying a refused 2017
        # request is answered without a resolution in a thread.
        validated = await shielded(validate_request(build_request, catalog, self._limits(),
                                                    resolutions_of(catalog)))
        if kind == "upgrade-request" and revision and revision == validated.version_code:
            request.setResponseCode(204)
            request.setHeader(b"X-Request-Hash", validated.request_hash.encode("ascii"))
            return b""
        # A client that hangs up must not cut the submission (and its statistics) short.
        view = await shielded(ensureDeferred(self._submit(validated, kind, identity, client)))
        return await self._render(request, view, kind)

    async def _submit(self, validated: Any, kind: Kind, identity: str, client: str) -> Any:
        view = await self.state.build_records().submit(validated, client=identity or client)
        if self.state.stats is not None:  # not waited for: statistics never slow or fail an answer
            self.state.stats.record_validated(validated, api=kind, client=client,
                                              cache_hit=BuildStatus(view.status) is BuildStatus.DONE)
        return view

    async def _render(self, request: IRequest, view: Any, kind: Kind) -> bytes:
        """:func:`render_view`; a failed build's log is in its record's ``bin_dir`` (the request that
        created the build named it, which may not be this one)."""
        log_dir = None
        if BuildStatus(view.status) is BuildStatus.FAILED:
            record = await shielded(self.state.build_records().record(view.image_key))
            log_dir = record.bin_dir if record is not None else None
        return render_view(request, view, kind, server_url(self.state, request), log_dir=log_dir)

    async def _get(self, request: IRequest, prefix: str, kind: Kind) -> bytes:
        prefix = prefix.lower()
        if not HASH_PATTERN.match(prefix):
            raise NotFound(f"Unknown request hash: {prefix}")
        records = self.state.build_records()
        found = await shielded(records.find_request_hashes(prefix, limit=2))
        if len(found) != 1:
            raise NotFound(f"Ambiguous hash prefix: {prefix}" if found else f"Unknown request hash: {prefix}")
        view = await shielded(records.get(found[0]))
        if view is None:
            raise NotFound(f"Unknown request hash: {prefix}")
        return await self._render(request, view, kind)

    @app.route("/api/upgrade-request", methods=["POST"])
    async def post_upgrade_request(self, request: IRequest) -> bytes:
        """Build the sysupgrade image of a device. 501 when the profile has no sysupgrade image; 204
        (``X-Request-Hash``) when the sent ``revision`` is what would be built."""
        return await self._post(request, "upgrade-request")

    @app.route("/api/upgrade-request/<string:request_hash>", methods=["GET"])
    async def get_upgrade_request(self, request: IRequest, request_hash: str) -> bytes:
        return await self._get(request, request_hash, "upgrade-request")

    @app.route("/api/build-request", methods=["POST"])
    async def post_build_request(self, request: IRequest) -> bytes:
        """Build an image, with optional ``defaults``. Without a sysupgrade image the answer is still 200
        (factory images)."""
        return await self._post(request, "build-request")

    @app.route("/api/build-request/<string:request_hash>", methods=["GET"])
    async def get_build_request(self, request: IRequest, request_hash: str) -> bytes:
        return await self._get(request, request_hash, "build-request")
