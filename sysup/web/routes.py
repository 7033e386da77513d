"""The pages (``/``, ``/build/{request_hash}``, ``/stats``, ``/about``) and the small JSON endpoints they
call (``/web/api/...``); :func:`install_web` adds both and the static files (``/web/static``) to the app.

Pages are server-rendered Jinja2 with small ES modules; every asset comes from this server, and the
``Content-Security-Policy`` of each page lets the browser fetch nothing from anywhere else. Builds are
requested and polled through the public v1 API, exactly as the Firmware Selector does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from sysup import __version__
from sysup.api.hot_cache import HotCache
from sysup.api.responses import JsonResponse
from sysup.api.state import ApiState, api_state
from sysup.web.catalog_view import branch_summaries, device_details, device_index, version_choices
from sysup.web.devices import DeviceIndex
from sysup.web.packages import suggest_packages
from sysup.web.stats_page import stats_for
from sysup.web.validation import check_selection

# The templates and static files moved to asud.http (the web pages are asud's now); sysup reads them there
# until it is deleted.
HERE = Path(__file__).resolve().parents[2] / "asud" / "http"
STATIC_URL = "/web/static"
#: Device indexes kept per version, and for how long (seconds): a catalog sync is seen within this time.
DEVICE_INDEX_ENTRIES = 64
DEVICE_INDEX_SECONDS = 60.0
#: What the builder sends as ``client`` (shown in statistics beside ``ofs/…`` and ``luci/…``).
CLIENT_NAME = f"sysup-web/{__version__}"
#: Nothing but this server: scripts, styles, images, fetches. Inline scripts and styles are refused too.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

_HASH = re.compile(r"[0-9A-Za-z_-]{1,128}")

router = APIRouter(include_in_schema=False)
State = Annotated[ApiState, Depends(api_state)]


@dataclass
class WebState:
    """What the pages keep between requests (made by :func:`install_web`; holds no connections)."""

    devices: HotCache[tuple[str, str], DeviceIndex] = field(
        default_factory=lambda: HotCache(DEVICE_INDEX_ENTRIES, DEVICE_INDEX_SECONDS)
    )


def install_web(app: FastAPI) -> None:
    """Serve the pages, their JSON endpoints and ``/web/static`` from ``app``."""
    app.state.web = WebState()
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="web-static")


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    """The page templates (autoescaped); created on first use, not at import."""
    found = Jinja2Templates(directory=HERE / "templates")
    found.env.globals.update(static=STATIC_URL, sysup_version=__version__)
    return found


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response = templates().TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _limits(state: ApiState) -> dict[str, Any]:
    limits = state.limits
    return {
        "allow_defaults": limits.allow_defaults,
        "max_defaults_length": limits.max_defaults_length,
        "max_custom_rootfs_size_mb": limits.max_custom_rootfs_size_mb,
        "max_packages": limits.max_packages,
    }


def _upstream_url(state: ApiState) -> str:
    distro = state.settings.distros.get(state.settings.default_distro)
    return distro.upstream_url if distro is not None else ""


# -- pages ----------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def builder_page(request: Request, state: State) -> HTMLResponse:
    """The firmware builder: pick a device and a version, customise, request a build."""
    distro = state.settings.default_distro
    choices = await run_in_threadpool(version_choices, state.catalog, distro)
    config = {"distro": distro, "client": CLIENT_NAME, "limits": _limits(state)}
    return _page(request, "builder.html", {"versions": choices, "config": config, "page": "builder"})


@router.get("/build/{request_hash}", response_class=HTMLResponse)
async def build_page(request: Request, request_hash: str) -> HTMLResponse:
    """The progress of one build, then its result; the hash in the URL makes it reloadable and shareable."""
    if not _HASH.fullmatch(request_hash):
        return _page(request, "not_found.html", {"page": "build"}, status_code=404)
    return _page(request, "build.html", {"request_hash": request_hash, "page": "build"})


@router.get("/about", response_class=HTMLResponse)
async def about_page(request: Request, state: State) -> HTMLResponse:
    """What this server offers: versions, targets, limits, where the API is documented."""
    distro = state.settings.default_distro
    branches = await run_in_threadpool(branch_summaries, state.catalog, distro)
    context = {
        "branches": branches,
        "limits": _limits(state),
        "distro": distro,
        "upstream_url": _upstream_url(state),
        "contact": state.settings.server_contact,
        "page": "about",
    }
    return _page(request, "about.html", context)


@router.get("/stats", response_class=HTMLResponse)
async def stats_page(request: Request, state: State, period: str | None = None) -> HTMLResponse:
    """Charts of build requests, cache hits, builds and popular choices; ``?period=24h`` or ``30d``."""
    view = await run_in_threadpool(stats_for, state, period)
    return _page(request, "stats.html", {"view": view, "page": "stats"})


# -- JSON for the pages ---------------------------------------------------------------------------------


def _device_index(request: Request, state: ApiState, version: str) -> DeviceIndex:
    web: WebState = request.app.state.web
    key = (state.settings.default_distro, version)
    index = web.devices.get(key)
    if index is None:
        index = device_index(state.catalog, key[0], version)
        web.devices.put(key, index)
    return index


@router.get("/web/api/devices")
async def search_devices(
    request: Request,
    state: State,
    version: Annotated[str, Query(max_length=64)],
    q: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """Devices of ``version`` matching ``q`` (vendor, model, variant, board name; typos tolerated)."""

    def search() -> dict[str, Any]:
        index = _device_index(request, state, version)
        return {"total": len(index), "devices": [device.to_json() for device in index.search(q)]}

    return JsonResponse(await run_in_threadpool(search))


@router.get("/web/api/device")
async def get_device(
    state: State,
    version: Annotated[str, Query(max_length=64)],
    target: Annotated[str, Query(max_length=128)],
    id: Annotated[str, Query(max_length=128)],
) -> Response:
    """One device of one version: titles, stock downloads, default and device packages, build options."""
    details = await run_in_threadpool(
        device_details,
        state.catalog,
        state.settings.default_distro,
        version,
        target,
        id,
        upstream_url=_upstream_url(state),
    )
    if details is None:
        body = {"status": 404, "detail": f"No device {id} on {target} in {version}"}
        return JsonResponse(body, status_code=404)
    return JsonResponse(details)


@router.get("/web/api/packages")
async def package_suggestions(
    state: State,
    version: Annotated[str, Query(max_length=64)],
    target: Annotated[str, Query(max_length=128)],
    q: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """Package names for the "add a package" field."""

    def suggest() -> dict[str, Any]:
        index = state.catalog.package_index(state.settings.default_distro, version, target)
        return {"packages": [suggestion.to_json() for suggestion in suggest_packages(index, q)]}

    return JsonResponse(await run_in_threadpool(suggest))


@router.post("/web/api/validate")
async def validate_selection(state: State, body: Annotated[Any, Body()] = None) -> Response:
    """What ``POST /api/v1/build`` would say about this body, without queueing anything."""
    result = await run_in_threadpool(check_selection, body, state.catalog, state.limits)
    return JsonResponse(result)
