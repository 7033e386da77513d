"""The daemon's one resource: the cross-route rules, then a path-prefix dispatch to each surface.

In the order a request meets them:

1. the fast path (``asud.http.fastpath``): a finished build's status and a cache-hit POST, pre-rendered;
2. ``//path``: GET and HEAD get a 301 to the collapsed path (LuCI and auc join a server URL ending in ``/``
   with ``/api/…``); other methods are served at the collapsed path (a redirected POST turns into a GET);
3. CORS under ``/api``, ``/json`` and ``/store``: the headers on every answer, ``OPTIONS`` answered 204
   here for any path under them (Klein would answer 405);
4. ``?status_in_body=1`` (``asud.http.plain_http``);
5. a stopping daemon (SIGTERM) answers build POSTs (:data:`BUILD_POSTS`) 503 with ``Retry-After``;
6. 413 for a body over ``[http] max_body_bytes`` (``asud.http.site`` stops keeping it early);
7. the surface whose prefix matches, longest first (:data:`MOUNTS`); it sees the whole path, no segment is
   consumed, so every surface writes its routes with their full paths. Nothing matches: 404 JSON.

Surfaces written by other parts of the port are imported when the resource is made; a module that does
not exist yet is left out (and logged), so the root never breaks on a surface still being written.

Request observers (the latency histogram of ``/metrics``) get the route template that answered, never the
raw path. The fast path names its own; a Klein surface names it as it dispatches (:func:`_name_routes`
wraps its app's ``execute_endpoint`` with a lookup from endpoint to template made once), so a finished
request costs an attribute read, not a second Werkzeug match. With no observer nothing is looked up.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Sequence
from typing import Any

import attrs
from klein import Klein
from klein.interfaces import IKleinRequest
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET

from asud.errors import AsudError, Unavailable
from asud.http.errors import answer_error
from asud.http.plain_http import apply_status_in_body, wants_status_in_body
from asud.http.responses import (
    CORS_HEADERS,
    PREFLIGHT_MAX_AGE,
    add_cors_headers,
    error_answer,
    redirect,
    wants_cors,
)
from asud.http.state import AsudApp

__all__ = ["BUILD_POSTS", "MOUNTS", "Mount", "Root", "make_resource"]

log = Logger()


@attrs.frozen
class Mount:
    """``prefix`` → the surface class ``module:name``; ``exact`` matches the prefix alone."""

    prefix: str
    module: str
    name: str
    exact: bool = False

    def matches(self, path: str) -> bool:
        if self.exact:
            return path == self.prefix
        if self.prefix.endswith("/"):
            return path.startswith(self.prefix)
        return path == self.prefix or path.startswith(self.prefix + "/")


#: Which surface answers which paths (the longest matching prefix wins).
MOUNTS: tuple[Mount, ...] = (
    # the v1 API, /json/v1, downloads, docs (helper HTTP)
    Mount("/api/v1/build", "asud.http.build", "BuildApi"),
    Mount("/api/v1/builds/live", "asud.http.builds_live", "LiveBuilds", exact=True),
    Mount("/api/v1/revision", "asud.http.meta", "MetaApi"),
    Mount("/api/v1/stats", "asud.http.meta", "MetaApi", exact=True),
    Mount("/api/v1/overview", "asud.http.documents", "Documents"),
    Mount("/api/v1/latest", "asud.http.documents", "Documents"),
    Mount("/api/overview", "asud.http.documents", "Documents"),
    Mount("/api/latest", "asud.http.documents", "Documents"),
    Mount("/overview", "asud.http.documents", "Documents"),
    Mount("/json/v1", "asud.http.documents", "Documents"),
    Mount("/store", "asud.http.store", "StoreFiles"),
    Mount("/docs", "asud.http.docs", "Docs"),
    Mount("/openapi.json", "asud.http.docs", "Docs"),
    # upgrade checks and the 2017 API (helper LEGACY): everything else under /api
    Mount("/api/v1/upgrade-check", "asud.http.upgrades", "UpgradeApi"),
    Mount("/api/upgrade-check", "asud.http.upgrades", "UpgradeApi"),
    Mount("/api", "asud.http.legacy", "LegacyApi"),
    *(Mount(f"/api/{name}", "asud.http.legacy_catalog", "LegacyCatalog")
      for name in ("image", "manifest", "files", "distros", "versions", "models", "packages_image")),
    # statistics and Prometheus (helper STATS)
    Mount("/api/v1/stats/", "asud.http.stats", "StatsApi"),
    Mount("/metrics", "asud.http.metrics", "Metrics"),
    # web pages (helper WEB)
    Mount("/", "asud.http.web", "WebPages", exact=True),
    Mount("/build", "asud.http.web", "WebPages"),
    Mount("/about", "asud.http.web", "WebPages"),
    Mount("/stats", "asud.http.web", "WebPages"),
    Mount("/web", "asud.http.web", "WebPages"),
)

_WERKZEUG_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
#: The request attribute :func:`_name_routes` sets: the template of the Klein route dispatched to, or
#: :data:`_MATCH_AGAIN` when its endpoint serves several templates.
_ROUTE_ATTRIBUTE = "asud_route"
_MATCH_AGAIN = ""


def _load_surfaces(app: AsudApp, mounts: Sequence[Mount]) -> list[tuple[Mount, IResource]]:
    """Each mount with its surface's resource, one surface instance per class; missing modules skipped."""
    made: dict[tuple[str, str], IResource] = {}
    missing: set[str] = set()
    table: list[tuple[Mount, IResource]] = []
    for mount in mounts:
        key = (mount.module, mount.name)
        if mount.module in missing:
            continue
        if key not in made:
            try:
                module = importlib.import_module(mount.module)
            except ModuleNotFoundError as error:
                # Only a part of asud not written yet is skipped (the port grows surface by surface); a
                # missing library is a broken installation and must stop the daemon.
                if not (error.name or "").startswith("asud."):
                    raise
                log.warn("HTTP surface {module} left out ({error}): {prefix} answers 404",
                         module=mount.module, error=error, prefix=mount.prefix)
                missing.add(mount.module)
                continue
            made[key] = getattr(module, mount.name)(app).resource()
        table.append((mount, made[key]))
    table.sort(key=lambda entry: len(entry[0].prefix), reverse=True)
    return table


class Root(Resource):
    """The resource a ``Site`` serves (see the module docstring)."""

    isLeaf = True

    def __init__(self, app: AsudApp, surfaces: list[tuple[Mount, IResource]], fast_path: Any = None) -> None:
        super().__init__()
        self.app = app
        self.surfaces = surfaces
        self.fast_path = fast_path
        for _mount, resource in surfaces:
            _name_routes(resource)

    def render(self, request: IRequest) -> bytes | int:
        try:
            return self._render(request)
        except AsudError as error:  # raised before any surface answered (the fast path)
            return answer_error(request, error)
        except Exception:
            log.failure("{method} {path} failed", method=request.method, path=request.path)
            return error_answer(request, 500, "Internal Server Error")

    def _render(self, request: IRequest) -> bytes | int:
        started = time.perf_counter()
        segments: list[bytes] = list(request.postpath or [b""])
        refuse = self.app.stopping and request.method == b"POST" and _is_build_post(segments)
        if self.fast_path is not None and not refuse:
            answer = self.fast_path.answer(request, segments)
            if answer is not None:
                if self.app.observers:
                    route: str = self.fast_path.route_of(request)
                    if answer is NOT_DONE_YET:  # a file being sent: timed to its end, as the route is
                        request.notifyFinish().addBoth(lambda _: self._observe(request, started, route))
                    else:
                        self._observe(request, started, route)
                return answer  # type: ignore[no-any-return]
        if len(segments) > 1 and segments[0] == b"":
            if request.method in (b"GET", b"HEAD"):
                return self._collapse(request)
            while len(segments) > 1 and segments[0] == b"":
                del segments[0]
            request.postpath = segments
            request.path = _collapsed_path(request)
        try:
            path = "/" + "/".join(segment.decode("utf-8") for segment in segments)
        except UnicodeDecodeError:
            return error_answer(request, 400, "Non-UTF-8 encoding in URL")
        if wants_cors(path):
            if request.method == b"OPTIONS":
                return self._preflight(request)
            add_cors_headers(request)
        if wants_status_in_body(request, path):
            apply_status_in_body(request)
        if refuse:
            return _refuse_build(request, path)
        limit = self.app.config.http.max_body_bytes
        if getattr(request, "body_too_large", False) or _body_size(request) > limit:
            request.setHeader(b"Connection", b"close")
            return error_answer(request, 413, f"Request body too large (limit {limit} bytes)")
        if b"" in segments[:-1]:  # an empty segment inside the path: no route has one
            return error_answer(request, 404, "Not Found")
        if self.app.observers:
            request.notifyFinish().addBoth(lambda _: self._observe(request, started, _route_of(request)))
        for mount, resource in self.surfaces:
            if mount.matches(path):
                return getChildForRequest(resource, request).render(request)  # type: ignore[no-any-return]
        return error_answer(request, 404, "Not Found")

    def _collapse(self, request: IRequest) -> bytes:
        """301 to the path without its extra leading slashes, query kept; never to another host."""
        location = _collapsed_path(request)
        _, separator, query = request.uri.partition(b"?")
        if wants_cors(location.decode("latin-1")):
            add_cors_headers(request)
        return redirect(request, location + separator + query)

    def _preflight(self, request: IRequest) -> bytes:
        request.setResponseCode(204)
        for name, value in CORS_HEADERS:
            request.setHeader(name, value)
        request.setHeader(b"Access-Control-Max-Age", PREFLIGHT_MAX_AGE)
        return b""

    def _observe(self, request: IRequest, started: float, route: str) -> None:
        if not self.app.observers:
            return
        elapsed = time.perf_counter() - started
        method = request.method.decode("latin-1")
        for observer in self.app.observers:
            try:
                observer(method, route, request.code, elapsed)
            except Exception:
                log.failure("request observer failed")


#: The build requests a stopping daemon refuses (v1 and the 2017 API).
BUILD_POSTS = frozenset({"/api/v1/build", "/api/upgrade-request", "/api/build-request"})


def _is_build_post(segments: list[bytes]) -> bool:
    path = "/" + "/".join(segment.decode("latin-1") for segment in segments).lstrip("/")
    return path in BUILD_POSTS


def _refuse_build(request: IRequest, path: str) -> bytes:
    """503 with ``Retry-After`` (in the 2017 shape under the 2017 paths); the connection closes after it,
    so the client's retry finds the next daemon, or this one when it is back."""
    error = Unavailable("The server is stopping, retry in a few seconds")
    request.setHeader(b"Connection", b"close")
    if path.startswith("/api/v1/"):
        return answer_error(request, error)
    from asud.http.legacy import legacy_error

    return legacy_error(request, error)


def _collapsed_path(request: IRequest) -> bytes:
    """The raw path without repeated slashes after the resource's own mount point."""
    prefix = b"/" + b"/".join(request.prepath) if request.prepath else b""
    raw = request.path[len(prefix):] if request.path.startswith(prefix) else request.path
    return prefix + b"/" + raw.lstrip(b"/")


def _body_size(request: IRequest) -> int:
    content = getattr(request, "content", None)
    if content is None:
        return 0
    position = content.tell()
    content.seek(0, 2)
    size: int = content.tell()
    content.seek(position)
    return size


def _name_routes(resource: IResource) -> None:
    """Make a Klein surface set :data:`_ROUTE_ATTRIBUTE` on each request it dispatches to a route.

    Klein matches the path and calls its app's ``execute_endpoint(endpoint, request, …)``, but keeps the
    rule to itself; the endpoint → template table is made here once (the routes are all declared by the
    time a surface is made), and the app's ``execute_endpoint`` is wrapped to write the template on the
    request. Anything that is not a Klein resource is left alone (:func:`_route_of` then matches).
    """
    app = getattr(resource, "_app", None)  # KleinResource keeps its (bound) Klein app there
    if not isinstance(app, Klein) or "execute_endpoint" in vars(app):
        return
    templates: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        templates.setdefault(rule.endpoint, set()).add(_WERKZEUG_PARAMETER.sub(r"{\1}", rule.rule))
    named = {
        endpoint: found.pop() if len(found) == 1 else _MATCH_AGAIN for endpoint, found in templates.items()
    }
    execute = app.execute_endpoint

    def execute_endpoint(endpoint: str, request: IRequest, *args: Any, **kwargs: Any) -> Any:
        setattr(request, _ROUTE_ATTRIBUTE, named.get(endpoint, _MATCH_AGAIN))
        return execute(endpoint, request, *args, **kwargs)

    app.execute_endpoint = execute_endpoint  # type: ignore[method-assign]


def _route_of(request: IRequest) -> str:
    """The route template that answered (``/api/v1/build/{request_hash}``), never the raw path, so unknown
    paths cannot grow a metric's label set; ``unmatched`` when no route did."""
    route: str | None = getattr(request, _ROUTE_ATTRIBUTE, None)
    if route:
        return route
    # No named route: Werkzeug refused the path or method (404/405: the match fails again, "unmatched"),
    # the surface is not a Klein app, or its endpoint serves several templates.
    mapper = getattr(IKleinRequest(request), "mapper", None)
    if mapper is None:
        return "unmatched"
    try:
        rule, _ = mapper.match(return_rule=True)
    except Exception:
        return "unmatched"
    return _WERKZEUG_PARAMETER.sub(r"{\1}", rule.rule)


def make_resource(app: AsudApp, mounts: Sequence[Mount] = MOUNTS) -> IResource:
    """The daemon's HTTP resource for ``app`` (what ``asud.service`` serves and embedders mount)."""
    from asud.http.fastpath import FastPath

    return Root(app, _load_surfaces(app, mounts), FastPath(app))
