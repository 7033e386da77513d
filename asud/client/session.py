"""One build request against a server's v1 API, with treq: submit, follow, download, verify, write the
manifest.

Progress is reported through callbacks, so the same code drives the Rich display and ``--json``::

    http = HTTPClient(Agent(reactor))
    result = await request_build(BuildSession("https://asud.example", http, reactor), body, Path("out"))

Every download is hashed as it streams in and compared with the sha256 the server announced; a file that
does not match is deleted (:class:`~asud.client.errors.VerificationFailed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import treq
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectError, ConnectionLost, TimeoutError
from twisted.internet.task import deferLater
from twisted.web.client import ResponseFailed, ResponseNeverReceived
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse

from asud.client.errors import (
    BuildFailed,
    ClientError,
    RequestRejected,
    ServerBusy,
    ServerUnreachable,
    VerificationFailed,
)

__all__ = ["BuildResult", "BuildSession", "DownloadedImage", "describe_detail", "request_build"]

#: Seconds between status queries (OFS and LuCI poll every 5 s, owut every 2 s).
DEFAULT_POLL_INTERVAL = 2.0
#: Longest wait for one build, queue included, in seconds.
DEFAULT_BUILD_TIMEOUT = 3600.0
#: Longest wait for the headers of one answer.
DEFAULT_REQUEST_TIMEOUT = 60.0

#: (answer, seconds since submit) after each status query while queued or building.
StatusCallback = Callable[[dict[str, Any], float], None]
#: (image name, bytes so far, total bytes or None) while downloading.
DownloadCallback = Callable[[str, int, int | None], None]

#: What a network failure looks like through treq: no connection, a cut, no answer in time.
TRANSPORT_ERRORS = (
    ConnectError,
    ConnectionLost,
    TimeoutError,
    ResponseFailed,
    ResponseNeverReceived,
    CancelledError,
)


@attrs.frozen
class DownloadedImage:
    name: str
    type: str
    filesystem: str | None
    path: Path
    sha256: str
    size: int


@attrs.define
class BuildResult:
    """A finished build: the server's answer, the verified files and the manifest written beside them."""

    answer: dict[str, Any]
    elapsed: float
    images: list[DownloadedImage] = attrs.field(factory=list)
    manifest: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """What ``--json`` prints."""
        return {
            "status": 200,
            "request_hash": self.answer.get("request_hash"),
            "version_number": self.answer.get("version_number"),
            "version_code": self.answer.get("version_code"),
            "target": self.answer.get("target"),
            "profile": self.answer.get("id"),
            "elapsed": round(self.elapsed, 3),
            "manifest": str(self.manifest) if self.manifest else None,
            "images": [
                {
                    "name": image.name,
                    "type": image.type,
                    "filesystem": image.filesystem,
                    "path": str(image.path),
                    "sha256": image.sha256,
                    "size": image.size,
                }
                for image in self.images
            ],
        }


def describe_detail(detail: Any) -> str:
    """The server's ``detail`` as one line; a schema error may send a list of ``{loc, msg}``."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
                parts.append(f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail) if detail is not None else ""


def describe_failure(error: BaseException, timeout: float) -> str:
    """A transport failure in words (treq wraps the real reason in lists of Failures)."""
    if isinstance(error, CancelledError):
        return f"no answer within {timeout:g} s"
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(reason.getErrorMessage() for reason in reasons)
    return str(error) or type(error).__name__


class BuildSession:
    """The v1 build API of one server, through ``http`` (which the caller owns and closes)."""

    def __init__(
        self,
        server: str,
        http: HTTPClient,
        reactor: Any,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        build_timeout: float = DEFAULT_BUILD_TIMEOUT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.http = http
        self.reactor = reactor
        self.poll_interval = poll_interval
        self.build_timeout = build_timeout
        self.request_timeout = request_timeout
        self.headers = headers or {}

    async def _send(self, method: str, url: str, **kwargs: Any) -> IResponse:
        return await self.http.request(
            method, url, headers=self.headers, reactor=self.reactor, timeout=self.request_timeout, **kwargs
        )

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        extra = {} if body is None else {"json": body}
        try:
            response = await self._send(method, self.server + path, **extra)
            raw = await treq.content(response)
        except TRANSPORT_ERRORS as error:
            reason = describe_failure(error, self.request_timeout)
            raise ServerUnreachable(f"cannot reach {self.server}: {reason}") from error
        try:
            answer = json.loads(raw)
        except ValueError:
            raise ServerUnreachable(
                f"{self.server} answered HTTP {response.code} without JSON to {path}", status=response.code
            ) from None
        if not isinstance(answer, dict):
            raise ServerUnreachable(f"{self.server} sent unexpected JSON to {path}", status=response.code)
        return response.code, answer

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST the request; the answer (200 or 202) or an error for anything else."""
        status, answer = await self._call("POST", "/api/v1/build", body)
        return self._checked(status, answer)

    async def status(self, request_hash: str) -> dict[str, Any]:
        status, answer = await self._call("GET", f"/api/v1/build/{request_hash}")
        return self._checked(status, answer)

    def _checked(self, status: int, answer: dict[str, Any]) -> dict[str, Any]:
        answer.setdefault("status", status)
        if status in (200, 202):
            return answer
        detail = describe_detail(answer.get("detail")) or f"HTTP {status}"
        logs = {"stdout": str(answer.get("stdout") or ""), "stderr": str(answer.get("stderr") or "")}
        if status == 500 and ("imagebuilder_status" in answer or logs["stderr"] or logs["stdout"]):
            raise BuildFailed(detail, status=status, **logs)
        if status in (429, 503, 529):
            raise ServerBusy(detail, status=status)
        if 400 <= status < 500:
            raise RequestRejected(detail, status=status)
        raise ServerUnreachable(f"the server failed (HTTP {status}): {detail}", status=status, **logs)

    async def follow(self, answer: dict[str, Any], on_status: StatusCallback | None = None) -> dict[str, Any]:
        """Poll until the build is done; returns the 200 answer."""
        started = self.reactor.seconds()
        while answer["status"] == 202:
            elapsed = self.reactor.seconds() - started
            if on_status is not None:
                on_status(answer, elapsed)
            request_hash = answer.get("request_hash")
            if not request_hash:
                raise ServerUnreachable("the server accepted the build but sent no request_hash")
            if elapsed > self.build_timeout:
                waited = f"{self.build_timeout:.0f} s"
                raise ServerBusy(f"the build did not finish within {waited} ({request_hash})")
            await deferLater(self.reactor, self.poll_interval, lambda: None)
            answer = await self.status(request_hash)
        return answer

    async def download(
        self, answer: dict[str, Any], out_dir: Path, on_progress: DownloadCallback | None = None
    ) -> list[DownloadedImage]:
        """Every image of a finished build into ``out_dir``, each checked against its sha256."""
        out_dir.mkdir(parents=True, exist_ok=True)
        images = []
        for entry in answer.get("images") or []:
            name = Path(str(entry["name"])).name
            url = f"{self.server}/store/{answer['bin_dir']}/{name}"
            target = out_dir / name
            digest, size = await self._fetch_file(url, name, target, on_progress)
            if digest != entry.get("sha256"):
                target.unlink(missing_ok=True)
                raise VerificationFailed(
                    f"{name}: sha256 is {digest}, the server said {entry.get('sha256')} (deleted)"
                )
            images.append(
                DownloadedImage(
                    name=name,
                    type=str(entry.get("type", "")),
                    filesystem=entry.get("filesystem"),
                    path=target,
                    sha256=digest,
                    size=size,
                )
            )
        return images

    async def _fetch_file(
        self, url: str, name: str, target: Path, on_progress: DownloadCallback | None
    ) -> tuple[str, int]:
        """Stream ``url`` into ``target``, hashing on the way; ``(sha256 hex, size)``."""
        digest = hashlib.sha256()
        size = 0
        try:
            response = await self._send("GET", url, unbuffered=True)
            if response.code != 200:
                await treq.content(response)  # read it, so the connection can be reused or closed
                raise ServerUnreachable(f"cannot download {name}: HTTP {response.code}")
            total = None if response.length is UNKNOWN_LENGTH else int(response.length)
            with target.open("wb") as stream:

                def write(chunk: bytes) -> None:
                    nonlocal size
                    stream.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if on_progress is not None:
                        on_progress(name, size, total)

                await treq.collect(response, write)
        except TRANSPORT_ERRORS as error:
            target.unlink(missing_ok=True)
            reason = describe_failure(error, self.request_timeout)
            raise ServerUnreachable(f"cannot download {name}: {reason}") from error
        return digest.hexdigest(), size


def write_manifest(answer: dict[str, Any], out_dir: Path) -> Path:
    """``<image_prefix>.manifest`` with ``name - version`` lines, as the ImageBuilder writes it."""
    stem = answer.get("image_prefix") or f"asud-{str(answer.get('request_hash', 'build'))[:12]}"
    path = out_dir / f"{Path(str(stem)).name}.manifest"
    manifest = answer.get("manifest") or {}
    path.write_text("".join(f"{name} - {version}\n" for name, version in sorted(manifest.items())))
    return path


async def request_build(
    session: BuildSession,
    body: dict[str, Any],
    out_dir: Path,
    *,
    on_status: StatusCallback | None = None,
    on_progress: DownloadCallback | None = None,
) -> BuildResult:
    """Submit ``body``, wait for the build, download and verify every image, write the manifest.

    Raises a :class:`~asud.client.errors.ClientError` subclass on any failure.
    """
    started = session.reactor.seconds()
    answer = await session.follow(await session.submit(body), on_status)
    if not answer.get("images"):
        raise ClientError("the build finished without images")
    result = BuildResult(answer=answer, elapsed=0.0)
    result.images = await session.download(answer, out_dir, on_progress)
    result.manifest = write_manifest(answer, out_dir)
    result.elapsed = session.reactor.seconds() - started
    return result
