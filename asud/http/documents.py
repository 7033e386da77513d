"""``/json/v1/*`` (overview, branches, latest, per-device profiles, package indexes) and the redirects to
them (``/api/v1/overview``, ``/api/overview``, ``/overview``, ``/api/v1/latest``, ``/api/latest``).

``{path}`` is a branch path with its version filled in (``releases/24.10.4``, ``releases/24.10-SNAPSHOT``,
``snapshots``), as clients build it from ``overview.json``/``branches.json``. Documents are rendered once
per catalog generation and kept a few seconds, so a burst of clients costs one catalog walk. An unknown
path, target, profile or architecture is a 404 JSON answer; auc treats that as "no upgrade".
``/api/overview`` and ``/api/latest`` are the paths LuCI ≤ 24.10 still uses (clients-contract §2.4).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.web.iweb import IRequest

from asud import __version__
from asud.errors import NotFound
from asud.http.errors import json_app
from asud.http.json_documents import overview_document, profile_document, target_top_level, version_paths
from asud.http.responses import json_answer, json_bytes, mount_path, redirect
from asud.http.shield import shielded
from asud.http.state import AsudApp

__all__ = ["LATEST_JSON", "OVERVIEW_JSON", "Documents"]

OVERVIEW_JSON = "/json/v1/overview.json"
LATEST_JSON = "/json/v1/latest.json"


class Documents:
    """The ``/json/v1`` surface and its redirects."""

    app = json_app()

    def __init__(self, state: AsudApp) -> None:
        self.state = state

    def resource(self) -> object:
        return self.app.resource()

    # -- redirects ------------------------------------------------------------------------------------
    @app.route("/api/v1/overview", methods=["GET", "HEAD"])
    @app.route("/api/overview", methods=["GET", "HEAD"])
    @app.route("/overview", methods=["GET", "HEAD"])
    def overview_redirect(self, request: IRequest) -> bytes:
        """301 to ``/json/v1/overview.json`` (LuCI uses ``/api/v1/overview``, old LuCI ``/api/overview``)."""
        return redirect(request, mount_path(request) + OVERVIEW_JSON)

    @app.route("/api/v1/latest", methods=["GET", "HEAD"])
    @app.route("/api/latest", methods=["GET", "HEAD"])
    def latest_redirect(self, request: IRequest) -> bytes:
        """301 to ``/json/v1/latest.json``."""
        return redirect(request, mount_path(request) + LATEST_JSON)

    # -- documents ------------------------------------------------------------------------------------
    @app.route("/json/v1/overview.json", methods=["GET", "HEAD"])
    def overview(self, request: IRequest) -> Deferred[bytes]:
        """Branches with versions, targets and package changes, the latest releases, the server's limits."""
        return self._cached(request, ("overview",), self._overview)

    @app.route("/json/v1/branches.json", methods=["GET", "HEAD"])
    def branches(self, request: IRequest) -> Deferred[bytes]:
        """The branch objects of ``overview.json`` as a list (what auc reads)."""

        async def compute() -> Any:
            return list((await self._overview())["branches"].values())

        return self._cached(request, ("branches",), compute)

    @app.route("/json/v1/latest.json", methods=["GET", "HEAD"])
    def latest(self, request: IRequest) -> Deferred[bytes]:
        """The newest release of each branch, newest first."""

        async def compute() -> Any:
            return {"latest": self.state.current_catalog().latest(self.state.default_distro)}

        return self._cached(request, ("latest",), compute)

    @app.route("/json/v1/<path:path>/targets/<target>/<subtarget>/index.json", methods=["GET", "HEAD"])
    def target_index(self, request: IRequest, path: str, target: str, subtarget: str) -> Deferred[bytes]:
        """Target-specific packages (and kmods) with versions: ``{"architecture", "packages"}``."""

        async def compute() -> Any:
            catalog = self.state.current_catalog()
            version = self._version_of_path(path)
            index = await shielded(
                catalog.target_index(self.state.default_distro, version, f"{target}/{subtarget}")
            )
            if not index.get("architecture"):
                raise NotFound(f"Unsupported target: {target}/{subtarget}")
            return index

        return self._cached(request, ("target-index", path, target, subtarget), compute)

    @app.route("/json/v1/<path:path>/targets/<target>/<subtarget>/<profile>.json", methods=["GET", "HEAD"])
    def profile(self, request: IRequest, path: str, target: str, subtarget: str,
                profile: str) -> Deferred[bytes]:
        """One device: ``profiles.json`` top level merged with the profile (board names with ``,`` too)."""

        async def compute() -> Any:
            catalog = self.state.current_catalog()
            distro = self.state.default_distro
            version = self._version_of_path(path)
            full_target = f"{target}/{subtarget}"
            info = catalog.target(distro, version, full_target)
            if info is None:
                raise NotFound(f"Unsupported target: {full_target}")
            entry = catalog.profile(distro, version, full_target, profile)
            if entry is None:
                raise NotFound(f"Unsupported profile: {profile}")
            return profile_document(target_top_level(info), entry)

        return self._cached(request, ("profile", path, target, subtarget, profile), compute)

    @app.route("/json/v1/<path:path>/packages/<arch>-index.json", methods=["GET", "HEAD"])
    def arch_index(self, request: IRequest, path: str, arch: str) -> Deferred[bytes]:
        """Every package of the architecture's feeds: a flat ``{"name": "version"}``."""

        async def compute() -> Any:
            catalog = self.state.current_catalog()
            version = self._version_of_path(path)
            index = await shielded(catalog.arch_index(self.state.default_distro, version, arch))
            if not index:
                raise NotFound(f"Unsupported architecture: {arch}")
            return index

        return self._cached(request, ("arch-index", path, arch), compute)

    # -- helpers --------------------------------------------------------------------------------------
    def _cached(self, request: IRequest, key: tuple[str, ...],
                compute: Callable[[], Awaitable[Any]]) -> Deferred[bytes]:
        """The rendered document under ``key`` (for this catalog generation), computed on a miss."""

        async def answer() -> bytes:
            catalog = self.state.current_catalog()
            full_key = (str(getattr(catalog, "generation", 0)), *key)
            body = self.state.documents.get(full_key)
            if body is None:
                body = json_bytes(await compute())
                self.state.documents.put(full_key, body)
            return json_answer(request, body)

        return ensureDeferred(answer())

    async def _overview(self) -> dict[str, Any]:
        catalog = self.state.current_catalog()
        config = self.state.config
        distro = config.default_distro
        upstream = config.distros.get(distro)
        document = overview_document(
            catalog.branches(distro),
            catalog.latest(distro),
            upstream_url=upstream.upstream_url if upstream else "",
            server=self._server_info(),
        )
        # Every configured distribution (``branches`` above are the default one's; see /api/distros).
        document["distros"] = {
            name: {"alias": settings.alias or name, "latest": catalog.latest(name),
                   "upstream_url": settings.upstream_url, "default": name == distro}
            for name, settings in config.distros.items()
        }
        return document

    def _server_info(self) -> dict[str, Any]:
        """The ``server`` object of ``overview.json``: limits owut checks before it sends a request."""
        config = self.state.config
        requests = config.requests
        return {
            "version": __version__,
            "contact": config.server_contact,
            "allow_defaults": requests.allow_defaults,
            "repository_allow_list": list(requests.repository_allow_list),
            "max_custom_rootfs_size_mb": requests.max_custom_rootfs_size_mb,
            "max_defaults_length": requests.max_defaults_length,
        }

    def _version_of_path(self, path: str) -> str:
        """The version served under ``path``; ``NotFound`` when no branch has it."""
        catalog = self.state.current_catalog()
        paths = version_paths(catalog.branches(self.state.default_distro).values())
        version = paths.get(path.strip("/"))
        if version is None:
            raise NotFound(f"Unsupported path: {path}")
        return version
