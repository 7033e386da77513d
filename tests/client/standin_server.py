"""A small Twisted server that speaks the v1 build contract, for the desktop client's tests.

It answers the way asud does (clients-contract §6: 202 ``queued`` with ``queue_position``, 202 ``started``
with ``imagebuilder_status``, 200 with ``images``/``manifest``/``bin_dir``, 500 with the build log, 400
with a ``detail``, 529 when overloaded, ``/store/<bin_dir>/<name>`` downloads) with the values of the demo
tree's ath79/generic 24.10.5 build. It stands in for the daemon until the daemon builds end to end; the
tests run against it and need no bwrap, Redis or ImageBuilder.

``StandIn.mode`` changes what it does for the next builds: ``"busy"`` (529), ``"corrupt"`` (a download
that does not match its sha256), ``"never"`` (a build that stays queued).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from asud.demo.server import base_url

__all__ = ["DEVICE_PACKAGES", "VERSION_CODE", "StandIn", "start_standin"]

VERSION = "24.10.5"
VERSION_CODE = "r29087-d9c5716d1d"
TARGET = "ath79/generic"
#: Default packages of the demo's ath79/generic profiles, with their versions in 24.10.5.
DEFAULT_PACKAGES = {
    "base-files": "1.5-r29087",
    "busybox": "1.36.1-r2",
    "dropbear": "2024.86-r1",
    "firewall4": "2024.12.18~18fc0ead-r1",
    "kernel": "6.6.86~1d7fce7949dddb08a1db2274f716805f-r1",
}
#: Packages a request may add, with their versions.
DEVICE_PACKAGES = {
    "luci": "25.300.71234~a91f3c0",
    "curl": "8.12.1-r1",
    "owut": "2025.10.03~c6c6d11b-r1",
    "python3-light": "3.11.10-r1",
}
PROFILES = ("tplink_archer-c7-v5", "tplink_tl-wr842n-v3", "generic")
#: Profiles whose flash is too small for ``python3-light`` (the demo's 4 MiB device).
SMALL_FLASH = ("tplink_tl-wr842n-v3",)


@attrs.define
class Build:
    request_hash: str
    body: dict[str, Any]
    polls: int = 0
    files: dict[str, bytes] = attrs.field(factory=dict)


def _json(request: Request, status: int, body: dict[str, Any]) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(body).encode()


@attrs.define
class StandIn:
    """The server's state: builds by request hash; ``url`` once listening."""

    mode: str = "normal"
    url: str = ""
    builds: dict[str, Build] = attrs.field(factory=dict)
    port: IListeningPort | None = None

    def request_hash(self, body: dict[str, Any]) -> str:
        asked = {key: value for key, value in body.items() if key != "client"}
        return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:32]

    # -- the contract ----------------------------------------------------------------------------------
    def submit(self, request: Request) -> bytes:
        if self.mode == "busy":
            request.setHeader(b"retry-after", b"30")
            return _json(request, 529, {"status": 529, "detail": "Server overloaded, try again later"})
        try:
            body = json.loads(request.content.read())
        except ValueError:
            return _json(request, 400, {"status": 400, "detail": "the body is not valid JSON"})
        if body.get("version") != VERSION:
            return _json(
                request, 400, {"status": 400, "detail": f"Unsupported version: {body.get('version')}"}
            )
        if body.get("profile") not in PROFILES:
            detail = f"Unsupported profile: {body.get('profile')}"
            return _json(request, 400, {"status": 400, "detail": detail})
        unknown = [name for name in body.get("packages", []) if name.lstrip("-") not in _KNOWN]
        if unknown:
            return _json(request, 400, {"status": 400, "detail": f"Unknown package(s): {', '.join(unknown)}"})
        request_hash = self.request_hash(body)
        build = self.builds.setdefault(request_hash, Build(request_hash, body))
        return self.answer(request, build, advance=False)

    def status(self, request: Request, request_hash: str) -> bytes:
        build = self.builds.get(request_hash)
        if build is None:
            body = {"status": 404, "title": "Not Found", "detail": "could not find provided request hash"}
            return _json(request, 404, body)
        return self.answer(request, build, advance=True)

    def answer(self, request: Request, build: Build, *, advance: bool) -> bytes:
        if advance and self.mode != "never":
            build.polls += 1
        common = {"request_hash": build.request_hash, "enqueued_at": "2026-12-04T12:00:00+00:00"}
        if build.polls == 0:
            request.setHeader(b"x-queue-position", b"1")
            return _json(request, 202, {"status": 202, "detail": "queued", "queue_position": 1, **common})
        if build.polls == 1:
            request.setHeader(b"x-imagebuilder-status", b"building_image")
            body = {"status": 202, "detail": "started", "imagebuilder_status": "building_image", **common}
            return _json(request, 202, body)
        packages = build.body.get("packages", [])
        if build.body["profile"] in SMALL_FLASH and "python3-light" in packages:
            stderr = (
                "Creating filesystem with parameters:\n"
                f"Image file openwrt-{VERSION}-ath79-generic-{build.body['profile']}-squashfs-sysupgrade.bin "
                "is too big: 4521984 > 3866624\n"
            )
            body = {
                "status": 500,
                "detail": "Error: Selected packages exceed device storage",
                "imagebuilder_status": "failed",
                "stdout": "",
                "stderr": stderr,
                **common,
            }
            return _json(request, 500, body)
        return _json(request, 200, self.done(build, common))

    def done(self, build: Build, common: dict[str, Any]) -> dict[str, Any]:
        profile = build.body["profile"]
        prefix = f"openwrt-{VERSION}-ath79-generic-{profile}"
        manifest = dict(DEFAULT_PACKAGES)
        for name in build.body.get("packages", []):
            if name.startswith("-"):
                manifest.pop(name[1:], None)
            else:
                manifest[name] = DEVICE_PACKAGES[name]
        images = []
        for kind in ("factory", "sysupgrade"):
            name = f"{prefix}-squashfs-{kind}.bin"
            data = hashlib.sha256(f"{build.request_hash}/{kind}".encode()).digest() * 2048
            build.files[name] = data
            images.append(
                {
                    "name": name,
                    "type": kind,
                    "filesystem": "squashfs",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                }
            )
        return {
            "status": 200,
            "detail": "done",
            "imagebuilder_status": "done",
            **common,
            "version_number": VERSION,
            "version_code": VERSION_CODE,
            "target": TARGET,
            "id": profile,
            "titles": [{"vendor": "TP-Link", "model": profile}],
            "image_prefix": prefix,
            "bin_dir": build.request_hash,
            "images": images,
            "manifest": manifest,
            "build_at": "2026-12-04T12:00:01Z",
            "request": build.body,
            "stdout": "",
            "stderr": "",
        }

    def download(self, request: Request, bin_dir: str, name: str) -> bytes:
        build = self.builds.get(bin_dir)
        data = build.files.get(name) if build is not None else None
        if data is None:
            return _json(request, 404, {"status": 404, "detail": "Not Found"})
        if self.mode == "corrupt":
            data = data[:-1] + b"!"
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"content-length", str(len(data)).encode())
        return data


_KNOWN = {*DEFAULT_PACKAGES, *DEVICE_PACKAGES}


class _Root(Resource):
    isLeaf = True

    def __init__(self, state: StandIn) -> None:
        super().__init__()
        self.state = state

    def render_POST(self, request: Request) -> bytes:
        if request.postpath == [b"api", b"v1", b"build"]:
            return self.state.submit(request)
        return _json(request, 404, {"status": 404, "detail": "Not Found"})

    def render_GET(self, request: Request) -> bytes:
        parts = [part.decode() for part in request.postpath]
        if len(parts) == 4 and parts[:3] == ["api", "v1", "build"]:
            return self.state.status(request, parts[3])
        if len(parts) == 3 and parts[0] == "store":
            return self.state.download(request, parts[1], parts[2])
        return _json(request, 404, {"status": 404, "detail": "Not Found"})


def start_standin(reactor: Any) -> Deferred[StandIn]:
    """Listen on a free 127.0.0.1 port; ``state.port.stopListening()`` ends it."""
    from twisted.internet.endpoints import TCP4ServerEndpoint

    state = StandIn()
    # No idle timeout: it would leave a timer on the reactor for every connection still open.
    site = Site(_Root(state), timeout=None)
    listening = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)

    def started(port: IListeningPort) -> StandIn:
        state.port = port
        state.url = base_url(port.getHost())
        return state

    return listening.addCallback(started)
