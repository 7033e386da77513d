"""Small signed upstream trees and a counting HTTP server for the build tests (from sysup's
tests/imagebuilders/factories.py)."""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import zstandard

from asud.upstream.sha256sums import format_sha256sums
from asud.upstream.usign import SecretKey

KEY = SecretKey.generate(bytes(range(32)))
OTHER_KEY = SecretKey.generate(bytes(32))


def tar_bytes(members: list[dict]) -> bytes:
    """An uncompressed tar of ``members`` (``name``, optional ``data``, ``kind``, ``linkname``, ``mode``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member["name"])
            info.type = member.get("kind", tarfile.REGTYPE)
            info.mode = member.get("mode", 0o644)
            info.linkname = member.get("linkname", "")
            data = member.get("data", b"")
            if info.type == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def compress(raw: bytes, suffix: str) -> bytes:
    if suffix.endswith(".zst"):
        return zstandard.ZstdCompressor().compress(raw)
    if suffix.endswith(".xz"):
        return lzma.compress(raw)
    return raw


def ib_members(top: str, payload: bytes = b"") -> list[dict]:
    return [
        {"name": f"{top}/", "kind": tarfile.DIRTYPE, "mode": 0o755},
        {"name": f"{top}/Makefile", "data": b"info:\n\t@echo ok\n"},
        {"name": f"{top}/repositories.conf", "data": b"src/gz core http://example.invalid/core\n"},
        {"name": f"{top}/payload.bin", "data": payload},
    ]


def sign_dir(directory: Path, key: SecretKey = KEY) -> None:
    """(Re)write ``sha256sums`` + ``sha256sums.sig`` over every file below ``directory``."""
    sums = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel not in ("sha256sums", "sha256sums.sig"):
            sums[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    text = format_sha256sums(sums)
    (directory / "sha256sums").write_text(text)
    (directory / "sha256sums.sig").write_text(key.sign(text.encode()))


def make_target(
    root: Path,
    path: str,
    target: str,
    *,
    payload: bytes = b"x" * 1000,
    suffix: str = ".tar.zst",
    members: list[dict] | None = None,
) -> Path:
    """A signed target dir ``root/path/targets/target/`` holding one ImageBuilder archive."""
    directory = root / path / "targets" / target
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*imagebuilder*"):
        old.unlink()
    board = target.replace("/", "-")
    top = f"openwrt-imagebuilder-{board}.Linux-x86_64"
    raw = tar_bytes(members if members is not None else ib_members(top, payload))
    (directory / f"{top}{suffix}").write_bytes(compress(raw, suffix))
    sign_dir(directory)
    return directory


class _Handler(SimpleHTTPRequestHandler):
    counter: Counter[str]

    def _etag(self) -> str | None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return None
        info = path.stat()
        return f'"{info.st_mtime_ns:x}-{info.st_size:x}"'

    def do_GET(self) -> None:
        self.counter[self.path] += 1
        etag = self._etag()
        if etag and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self._current_etag = etag
        super().do_GET()

    def end_headers(self) -> None:
        etag = getattr(self, "_current_etag", None)
        if etag:
            self.send_header("ETag", etag)
            self._current_etag = None
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(root: Path) -> Iterator[tuple[str, Counter[str]]]:
    """Serve ``root`` on 127.0.0.1; yields the base URL and a counter of GET paths."""
    counter: Counter[str] = Counter()
    handler = type("Handler", (_Handler,), {"counter": counter})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=os.fspath(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counter
    finally:
        server.shutdown()
        server.server_close()
