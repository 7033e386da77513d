"""``GET``/``HEAD /store/{bin_dir}/{name}``: the built files, byte for byte what ``images[].sha256`` names.

``Store.resolve`` is the gate: it refuses anything that is not a plain file of a valid ``bin_dir`` inside
the store (``..``, encoded separators, absolute paths, symlinks out). The file goes out through a producer
with ``Content-Length`` (auc compares it with what it wrote); ``HEAD`` answers the headers only.

A download of a plain stored file is answered before Klein by ``asud.http.fastpath`` with the same headers
and bytes (through ``Store.open_file``, stricter still); everything it refuses comes here.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.web.iweb import IRequest

from asud.http.errors import json_app
from asud.http.files import send_file
from asud.http.state import AsudApp

__all__ = ["StoreFiles", "media_type_of"]


def media_type_of(name: str) -> bytes:
    """Text for logs and manifests, JSON for ``profiles.json``, bytes for everything else (images)."""
    if name.endswith((".log", ".txt", ".manifest")):
        return b"text/plain; charset=utf-8"
    if name.endswith(".json"):
        return b"application/json"
    return b"application/octet-stream"


class StoreFiles:
    """The ``/store`` surface."""

    app = json_app()

    def __init__(self, state: AsudApp) -> None:
        self.state = state

    def resource(self) -> object:
        return self.app.resource()

    @app.route("/store/<string:bin_dir>/<string:name>", methods=["GET", "HEAD"])
    def file(self, request: IRequest, bin_dir: str, name: str) -> bytes | Deferred[bytes]:
        """A file of a finished build; 404 for anything else."""
        path = self.state.files.resolve(bin_dir, name)  # NotFound → 404 JSON
        return send_file(request, path, media_type_of(name))
