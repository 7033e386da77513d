"""One build request against a server's v1 API: submit, follow, download, verify, write the manifest.

Progress is reported through callbacks, so the same code drives the Rich display and ``--json``::

    with httpx.Client() as http:
        result = request_build(BuildSession("https://sysup.example", http), body, Path("out"))
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sysup.client.errors import (
    BuildFailed,
    ClientError,
    RequestRejected,
    ServerBusy,
    ServerUnreachable,
    VerificationFailed,
)

#: Seconds between status queries (OFS and LuCI poll every 5 s, owut every 2 s).
DEFAULT_POLL_INTERVAL = 2.0
#: Longest wait for one build, queue included, in seconds.
DEFAULT_BUILD_TIMEOUT = 3600.0

#: (answer, seconds since submit) after each status query while queued or building.
StatusCallback = Callable[[dict[str, Any], float], None]
#: (image name, bytes so far, total bytes or None) while downloading.
DownloadCallback = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class DownloadedImage:
    name: str
    type: str
    filesystem: str | None
    path: Path
    sha256: str
    size: int


@dataclass
class BuildResult:
    """A finished build: the server's answer, the verified files and the manifest written beside them."""

    answer: dict[str, Any]
    elapsed: float
    images: list[DownloadedImage] = field(default_factory=list)
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
    """The server's ``detail`` as one line; FastAPI's 422 sends a list of ``{loc, msg}``."""
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


class BuildSession:
    """The v1 build API of one server, through ``http`` (which the caller owns and closes)."""

    def __init__(
        self,
        server: str,
        http: httpx.Client,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        build_timeout: float = DEFAULT_BUILD_TIMEOUT,
    ) -> None:
        self.server = server.rstrip("/")
        self.http = http
        self.poll_interval = poll_interval
        self.build_timeout = build_timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        url = self.server + path
        try:
            response = self.http.request(method, url, json=body)
        except httpx.TransportError as error:
            raise ServerUnreachable(f"cannot reach {self.server}: {error}") from error
        try:
            answer = response.json()
        except ValueError:
            raise ServerUnreachable(
                f"{self.server} answered HTTP {response.status_code} without JSON to {path}",
                status=response.status_code,
            ) from None
        if not isinstance(answer, dict):
            message = f"{self.server} sent unexpected JSON to {path}"
            raise ServerUnreachable(message, status=response.status_code)
        return response.status_code, answer

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST the request; the answer (200 or 202) or an error for anything else."""
        status, answer = self._call("POST", "/api/v1/build", body)
        return self._checked(status, answer)

    def status(self, request_hash: str) -> dict[str, Any]:
        status, answer = self._call("GET", f"/api/v1/build/{request_hash}")
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

    def follow(self, answer: dict[str, Any], on_status: StatusCallback | None = None) -> dict[str, Any]:
        """Poll until the build is done; returns the 200 answer."""
        started = time.monotonic()
        while answer["status"] == 202:
            elapsed = time.monotonic() - started
            if on_status is not None:
                on_status(answer, elapsed)
            request_hash = answer.get("request_hash")
            if not request_hash:
                raise ServerUnreachable("the server accepted the build but sent no request_hash")
            if elapsed > self.build_timeout:
                waited = f"{self.build_timeout:.0f} s"
                raise ServerBusy(f"the build did not finish within {waited} ({request_hash})")
            time.sleep(self.poll_interval)
            answer = self.status(request_hash)
        return answer

    def download(
        self, answer: dict[str, Any], out_dir: Path, on_progress: DownloadCallback | None = None
    ) -> list[DownloadedImage]:
        """Every image of a finished build into ``out_dir``, each checked against its sha256."""
        out_dir.mkdir(parents=True, exist_ok=True)
        images = []
        for entry in answer.get("images") or []:
            name = Path(str(entry["name"])).name
            url = f"{self.server}/store/{answer['bin_dir']}/{name}"
            target = out_dir / name
            digest = hashlib.sha256()
            size = 0
            try:
                with self.http.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise ServerUnreachable(f"cannot download {name}: HTTP {response.status_code}")
                    length = response.headers.get("content-length")
                    total = int(length) if length and length.isdigit() else None
                    with target.open("wb") as stream:
                        for chunk in response.iter_bytes():
                            stream.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                            if on_progress is not None:
                                on_progress(name, size, total)
            except httpx.TransportError as error:
                raise ServerUnreachable(f"cannot download {name}: {error}") from error
            if digest.hexdigest() != entry.get("sha256"):
                target.unlink(missing_ok=True)
                raise VerificationFailed(
                    f"{name}: sha256 is {digest.hexdigest()}, the server said {entry.get('sha256')} (deleted)"
                )
            images.append(
                DownloadedImage(
                    name=name,
                    type=str(entry.get("type", "")),
                    filesystem=entry.get("filesystem"),
                    path=target,
                    sha256=digest.hexdigest(),
                    size=size,
                )
            )
        return images


def write_manifest(answer: dict[str, Any], out_dir: Path) -> Path:
    """``<image_prefix>.manifest`` with ``name - version`` lines, as the ImageBuilder writes it."""
    stem = answer.get("image_prefix") or f"sysup-{str(answer.get('request_hash', 'build'))[:12]}"
    path = out_dir / f"{Path(str(stem)).name}.manifest"
    manifest = answer.get("manifest") or {}
    path.write_text("".join(f"{name} - {version}\n" for name, version in sorted(manifest.items())))
    return path


def request_build(
    session: BuildSession,
    body: dict[str, Any],
    out_dir: Path,
    *,
    on_status: StatusCallback | None = None,
    on_progress: DownloadCallback | None = None,
) -> BuildResult:
    """Submit ``body``, wait for the build, download and verify every image, write the manifest.

    Raises a :class:`~sysup.client.errors.ClientError` subclass on any failure.
    """
    started = time.monotonic()
    answer = session.follow(session.submit(body), on_status)
    if not answer.get("images"):
        raise ClientError("the build finished without images")
    result = BuildResult(answer=answer, elapsed=0.0)
    result.images = session.download(answer, out_dir, on_progress)
    result.manifest = write_manifest(answer, out_dir)
    result.elapsed = time.monotonic() - started
    return result
