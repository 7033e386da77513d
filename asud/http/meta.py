"""Small routes around the build API: the revision check LuCI makes, and the queue length.

``/api/v1/revision/{version}/{target}/{subtarget}`` is what LuCI asks before every build, for releases and
snapshots alike: the ``version_code`` of the target's ``profiles.json`` (clients-contract §6.1).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.web.iweb import IRequest

from asud.errors import BadRequest, NotFound
from asud.http.errors import json_app
from asud.http.responses import json_answer, json_bytes
from asud.http.shield import shielded
from asud.http.state import AsudApp

__all__ = ["MetaApi"]


class MetaApi:
    """``/api/v1/revision/…`` and ``/api/v1/stats``."""

    app = json_app()

    def __init__(self, state: AsudApp) -> None:
        self.state = state

    def resource(self) -> object:
        return self.app.resource()

    @app.route("/api/v1/revision/<version>/<target>/<subtarget>", methods=["GET", "HEAD"])
    def revision(self, request: IRequest, version: str, target: str, subtarget: str) -> bytes:
        """The revision a build of this version and target would have: ``{"revision": "r28427-…"}``."""
        catalog = self.state.current_catalog()
        key = (str(getattr(catalog, "generation", 0)), "revision", version, target, subtarget)
        body = self.state.documents.get(key)
        if body is None:
            body = json_bytes({"revision": self.revision_of(version, f"{target}/{subtarget}")})
            self.state.documents.put(key, body)
        return json_answer(request, body)

    def revision_of(self, version: str, target: str) -> str:
        """``version_code`` of the target's ``profiles.json``, for releases and snapshots alike."""
        catalog = self.state.current_catalog()
        distro = self.state.default_distro
        if catalog.version(distro, version) is None:
            raise BadRequest(f"Unsupported version: {version}")
        info = catalog.target(distro, version, target)
        if info is None:
            raise NotFound(f"Failed to fetch revision for {version}/{target}")
        return str(info.version_code)

    @app.route("/api/v1/stats", methods=["GET", "HEAD"])
    def stats(self, request: IRequest) -> Deferred[bytes]:
        """How many builds are waiting in the queue."""

        async def answer() -> bytes:
            length = await shielded(self.state.build_records().queue_length())
            return json_answer(request, {"queue_length": int(length)})

        return ensureDeferred(answer())
