"""The web pages (``/``, ``/build/{request_hash}``, ``/about``, ``/stats``), the small JSON endpoints they
call (``/web/api/...``) and their static files (``/web/static/...``): the :class:`WebPages` surface.

Pages are server-rendered Jinja2 with small ES modules; every asset comes from this server, and the
``Content-Security-Policy`` of each page lets the browser fetch nothing from anywhere else. Builds are
requested and polled through the public v1 API, exactly as the Firmware Selector does.

A host program may serve asud under a prefix (``/asud/``): every link a page writes, and every URL its
scripts fetch, starts with the path asud is mounted at (``root`` in the templates, ``data-root`` on
``<body>`` for the scripts), taken from the request, so the same pages work at ``/`` and below a prefix.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from klein.interfaces import IKleinRequest
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.threads import deferToThread
from twisted.web.iweb import IRequest

from asud import __version__
from asud.build.fields import FieldError, InvalidRequest, decode_json_body
from asud.build.validate import RequestLimits
from asud.catalog import Catalog
from asud.errors import NotFound
from asud.http.errors import json_app
from asud.http.files import send_file
from asud.http.hot_cache import HotCache
from asud.http.responses import json_answer
from asud.http.shield import shielded
from asud.http.state import AsudApp
from asud.http.stats_page import page_context
from asud.http.web_catalog import branch_summaries, device_details, device_index, version_choices
from asud.http.web_devices import DeviceIndex
from asud.http.web_packages import suggest_packages
from asud.http.web_validation import check_selection

__all__ = ["CLIENT_NAME", "CONTENT_SECURITY_POLICY", "STATIC_PATH", "WebPages", "mount_root"]

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
#: Where the static files are served, below the mount point.
STATIC_PATH = "/web/static"
#: Device indexes kept (one per catalog generation, distribution and version), and for how long (seconds).
DEVICE_INDEX_ENTRIES = 64
DEVICE_INDEX_SECONDS = 60.0
#: What the builder sends as ``client`` (shown in statistics beside ``ofs/…`` and ``luci/…``).
CLIENT_NAME = f"asud-web/{__version__}"
#: Nothing but this server: scripts, styles, images, fetches. Inline scripts and styles are refused too.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
#: Longest value of each query parameter of ``/web/api/*``.
VERSION_LENGTH = 64
NAME_LENGTH = 128

_HASH = re.compile(r"[0-9A-Za-z_-]{1,128}")
_CONTENT_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
}


def _static_files(directory: Path) -> dict[str, Path]:
    """Every file below ``directory`` by its relative path: the only paths ``/web/static`` answers, so no
    request can reach outside it."""
    return {
        path.relative_to(directory).as_posix(): path
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.suffix in _CONTENT_TYPES
    }


STATIC_FILES = _static_files(STATIC_DIR)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    """The page templates (autoescaped); made on first use, not at import."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined
    )
    environment.globals.update(asud_version=__version__)
    return environment


def template(name: str) -> Template:
    return _environment().get_template(name)


def mount_root(request: IRequest) -> str:
    """The path asud is mounted at, without a trailing slash: ``""`` at the top, ``"/asud"`` below a prefix
    (the ``SCRIPT_NAME`` Klein matched the route below)."""
    mapper = getattr(IKleinRequest(request), "mapper", None)
    script_name = str(getattr(mapper, "script_name", "") or "")
    return script_name.rstrip("/")


def _query(request: IRequest, spec: dict[str, tuple[int, str | None]]) -> dict[str, str]:
    """The query parameters of ``spec`` (name → (longest length, default; ``None``: required)), or
    ``InvalidRequest`` naming each missing or too long one, as the build route words schema errors."""
    values: dict[str, str] = {}
    errors: list[FieldError] = []
    args: dict[bytes, list[bytes]] = request.args or {}
    for name, (longest, default) in spec.items():
        given = args.get(name.encode("ascii"))
        if not given:
            if default is None:
                errors.append(FieldError(("query", name), "Field required"))
            else:
                values[name] = default
            continue
        value = given[0].decode("utf-8", "replace")
        if len(value) > longest:
            errors.append(FieldError(("query", name), f"String should have at most {longest} characters"))
        values[name] = value
    if errors:
        raise InvalidRequest(errors)
    return values


class WebPages:
    """The pages, ``/web/api/*`` and ``/web/static/*``."""

    app = json_app()

    def __init__(self, state: AsudApp) -> None:
        self.state = state
        self.devices: HotCache[tuple[int, str, str], DeviceIndex] = HotCache(
            DEVICE_INDEX_ENTRIES, DEVICE_INDEX_SECONDS, state.clock
        )

    def resource(self) -> object:
        return self.app.resource()

    # -- shared ---------------------------------------------------------------------------------------
    def _catalog(self) -> Catalog | None:
        """The loaded catalog, or ``None`` while the first load runs (pages then show that nothing is
        available yet; the JSON endpoints answer 503)."""
        return getattr(self.state.catalog, "catalog", None)

    def _limits(self) -> RequestLimits:
        if self.state.limits is None:
            self.state.limits = RequestLimits.from_config(self.state.config)
        limits: RequestLimits = self.state.limits
        return limits

    def _limits_context(self) -> dict[str, Any]:
        limits = self._limits()
        return {
            "allow_defaults": limits.allow_defaults,
            "max_defaults_length": limits.max_defaults_length,
            "max_custom_rootfs_size_mb": limits.max_custom_rootfs_size_mb,
            "max_packages": limits.max_packages,
        }

    def _upstream_url(self) -> str:
        distro = self.state.config.distros.get(self.state.default_distro)
        return distro.upstream_url if distro is not None else ""

    def _page(self, request: IRequest, name: str, context: dict[str, Any], status: int = 200) -> bytes:
        root = mount_root(request)
        html = template(name).render({**context, "root": root, "static": root + STATIC_PATH})
        body = html.encode("utf-8")
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Content-Length", b"%d" % len(body))
        request.setHeader(b"Content-Security-Policy", CONTENT_SECURITY_POLICY.encode("ascii"))
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Referrer-Policy", b"same-origin")
        return body

    # -- pages ----------------------------------------------------------------------------------------
    @app.route("/", methods=["GET", "HEAD"])
    def builder_page(self, request: IRequest) -> bytes:
        """The firmware builder: pick a device and a version, customise, request a build."""
        distro = self.state.default_distro
        catalog = self._catalog()
        choices = version_choices(catalog, distro) if catalog is not None else []
        config = {"distro": distro, "client": CLIENT_NAME, "limits": self._limits_context()}
        return self._page(request, "builder.html", {"versions": choices, "config": config, "page": "builder"})

    @app.route("/build/<string:request_hash>", methods=["GET", "HEAD"])
    def build_page(self, request: IRequest, request_hash: str) -> bytes:
        """The progress of one build, then its result; the hash in the URL makes it reloadable and
        shareable."""
        if not _HASH.fullmatch(request_hash):
            return self._page(request, "not_found.html", {"page": "build"}, status=404)
        return self._page(request, "build.html", {"request_hash": request_hash, "page": "build"})

    @app.route("/about", methods=["GET", "HEAD"])
    def about_page(self, request: IRequest) -> bytes:
        """What this server offers: versions, targets, limits, where the API is documented."""
        distro = self.state.default_distro
        catalog = self._catalog()
        context = {
            "branches": branch_summaries(catalog, distro) if catalog is not None else [],
            "limits": self._limits_context(),
            "distro": distro,
            "upstream_url": self._upstream_url(),
            "contact": self.state.config.server_contact,
            "page": "about",
        }
        return self._page(request, "about.html", context)

    @app.route("/stats", methods=["GET", "HEAD"])
    def stats_page(self, request: IRequest) -> Deferred[bytes]:
        """Charts of build requests, cache hits, builds and popular choices; ``?period=24h`` or ``30d``."""
        given = (request.args or {}).get(b"period")
        period = given[0].decode("utf-8", "replace") if given else None
        found = page_context(self.state, period)
        return found.addCallback(lambda context: self._page(request, "stats.html", context))

    # -- JSON for the pages ---------------------------------------------------------------------------
    def _device_index(self, catalog: Catalog, version: str) -> Deferred[DeviceIndex]:
        """The devices of ``version``, built in a thread once per catalog generation (and kept a while)."""
        key = (int(getattr(catalog, "generation", 0)), self.state.default_distro, version)
        index = self.devices.get(key)
        if index is not None:
            return succeed(index)

        def keep(made: DeviceIndex) -> DeviceIndex:
            self.devices.put(key, made)
            return made

        return deferToThread(device_index, catalog, key[1], version).addCallback(keep)

    @app.route("/web/api/devices", methods=["GET", "HEAD"])
    def search_devices(self, request: IRequest) -> Deferred[bytes]:
        """Devices of ``version`` matching ``q`` (vendor, model, variant, board name; typos tolerated)."""
        query = _query(request, {"version": (VERSION_LENGTH, None), "q": (NAME_LENGTH, "")})
        catalog = self.state.current_catalog()

        async def answer() -> bytes:
            index = await self._device_index(catalog, query["version"])
            found = await deferToThread(index.search, query["q"])
            devices = [device.to_json() for device in found]
            return json_answer(request, {"total": len(index), "devices": devices})

        return ensureDeferred(answer())

    @app.route("/web/api/device", methods=["GET", "HEAD"])
    def get_device(self, request: IRequest) -> bytes:
        """One device of one version: titles, stock downloads, default and device packages, build
        options."""
        query = _query(request, {"version": (VERSION_LENGTH, None), "target": (NAME_LENGTH, None),
                                 "id": (NAME_LENGTH, None)})
        version, target, profile = query["version"], query["target"], query["id"]
        details = device_details(self.state.current_catalog(), self.state.default_distro, version, target,
                                 profile, upstream_url=self._upstream_url())
        if details is None:
            body = {"status": 404, "detail": f"No device {profile} on {target} in {version}"}
            return json_answer(request, body, 404)
        return json_answer(request, details)

    @app.route("/web/api/packages", methods=["GET", "HEAD"])
    def package_suggestions(self, request: IRequest) -> Deferred[bytes]:
        """Package names for the "add a package" field."""
        query = _query(request, {"version": (VERSION_LENGTH, None), "target": (NAME_LENGTH, None),
                                 "q": (NAME_LENGTH, "")})
        catalog = self.state.current_catalog()

        async def answer() -> bytes:
            index = await shielded(catalog.package_index(self.state.default_distro, query["version"],
                                                         query["target"]))
            found = await deferToThread(suggest_packages, index, query["q"])
            return json_answer(request, {"packages": [suggestion.to_json() for suggestion in found]})

        return ensureDeferred(answer())

    @app.route("/web/api/validate", methods=["POST"])
    def validate_selection(self, request: IRequest) -> Deferred[bytes]:
        """What ``POST /api/v1/build`` would say about this body, without queueing anything."""
        data = request.content.read() if request.content is not None else b""
        body = decode_json_body(data) if data else None  # not JSON: 400, as the build route answers
        found = check_selection(body, self.state.current_catalog(), self._limits())
        return found.addCallback(lambda result: json_answer(request, result))

    # -- static files ---------------------------------------------------------------------------------
    @app.route("/web/static/<path:name>", methods=["GET", "HEAD"])
    def static_file(self, request: IRequest, name: str) -> bytes | Deferred[bytes]:
        """The pages' scripts, stylesheet and icon (only the files shipped in ``asud/http/static``)."""
        path = STATIC_FILES.get(name)
        if path is None:
            raise NotFound("Not Found")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        return send_file(request, path, _CONTENT_TYPES[path.suffix])

