"""``file://`` URLs and plain paths for the fetcher: a download tree on disk read like a server.

Blocking file I/O: the fetcher calls these in a thread. A validator is derived from mtime and size (the
shape of nginx's ETag), so a local tree answers conditional requests like a server does.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from asud.errors import SignatureError, UpstreamError
from asud.upstream.errors import UpstreamNotFound

__all__ = ["copy_local", "local_path", "read_local"]

_CHUNK = 1024 * 1024


def local_path(url: str) -> Path | None:
    """The file a ``file:`` URL or a plain path names; ``None`` for network URLs."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if not parts.scheme:
        return Path(url)
    return None


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _parse_http_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _stat(url: str, path: Path) -> os.stat_result:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise UpstreamNotFound(f"{url}: no such file", 404, url) from None
    except OSError as exc:
        raise UpstreamError(f"{url}: {exc}") from exc
    if not path.is_file():
        raise UpstreamNotFound(f"{url}: not a file", 404, url)
    return stat


def read_local(url: str, path: Path, etag: str | None, last_modified: str | None,
               max_bytes: int) -> tuple[int, bytes | None, str, str]:
    """``(status, body, etag, last_modified)`` of a local file; status 304 (body ``None``) when the
    validators still match."""
    stat = _stat(url, path)
    file_etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    file_modified = http_date(stat.st_mtime)
    unchanged = etag == file_etag if etag else False
    if not etag and last_modified:
        since = _parse_http_date(last_modified)
        unchanged = since is not None and int(stat.st_mtime) <= since
    if unchanged:
        return 304, None, file_etag, file_modified
    if stat.st_size > max_bytes:
        raise UpstreamError(f"{url}: {stat.st_size} bytes is over the limit of {max_bytes}")
    return 200, path.read_bytes(), file_etag, file_modified


def copy_local(url: str, path: Path, dest: Path, max_bytes: int, expected: str | None) -> tuple[str, int]:
    """Copy a local file to ``dest`` through a temporary file, hashing it; ``(sha256, size)``.

    ``dest`` is replaced only once the copy is complete and matches ``expected``.
    """
    try:
        source = path.open("rb")
    except FileNotFoundError:
        raise UpstreamNotFound(f"{url}: no such file", 404, url) from None
    except OSError as exc:
        raise UpstreamError(f"{url}: {exc}") from exc
    with source:
        total = os.fstat(source.fileno()).st_size
        if total > max_bytes:
            raise UpstreamError(f"{url}: {total} bytes is over the limit of {max_bytes}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        temp = Path(temp_name)
        try:
            os.fchmod(fd, 0o644)
            digest = hashlib.sha256()
            done = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: source.read(_CHUNK), b""):
                    done += len(chunk)
                    if done > max_bytes:
                        raise UpstreamError(f"{url}: body is over the limit of {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            hexdigest = digest.hexdigest()
            if expected and hexdigest != expected:
                raise SignatureError(f"{url}: sha256 is {hexdigest}, expected {expected}")
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return hexdigest, done
