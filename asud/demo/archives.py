"""Deterministic tar and compression: the same entries always give the same bytes.

Tar members are sorted by the caller, owned by 0:0 with empty user/group names (``--numeric-owner``),
stamped with one mtime (``SOURCE_DATE_EPOCH``), and written in GNU format so no pax headers carry
timestamps. gzip headers carry mtime 0 and no file name; xz and zstd run single-threaded.
"""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass

import zstandard

__all__ = ["TarEntry", "gzip_bytes", "tar_bytes", "with_parent_dirs", "xz_bytes", "zstd_bytes"]


@dataclass(frozen=True, slots=True)
class TarEntry:
    """A file (``data`` set) or a directory (``data`` is ``None``) inside a tar archive."""

    path: str
    data: bytes | None = None
    mode: int = 0o644


def with_parent_dirs(entries: Iterable[TarEntry], root: str = "") -> list[TarEntry]:
    """``entries`` plus a directory entry for every parent, sorted so parents come first.

    ``root`` (``"./"`` for ipk members) is listed first when given, as ``tar -C dir .`` writes it.
    """
    files = list(entries)
    dirs: set[str] = set()
    for entry in files:
        parts = entry.path.removeprefix(root).strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            dirs.add(root + "/".join(parts[:depth]) + "/")
    result = [TarEntry(path, None, 0o755) for path in dirs]
    result.extend(files)
    result.sort(key=lambda entry: entry.path)
    if root:
        result.insert(0, TarEntry(root, None, 0o755))
    return result


def tar_bytes(entries: Iterable[TarEntry], mtime: int) -> bytes:
    """An uncompressed GNU tar of ``entries`` in the order given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mtime = mtime
            info.mode = entry.mode
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def gzip_bytes(data: bytes, level: int = 9) -> bytes:
    """gzip with mtime 0 and no embedded file name (``gzip -n``)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=level, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def xz_bytes(data: bytes, preset: int = 6) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)


def zstd_bytes(data: bytes, level: int = 10) -> bytes:
    return zstandard.ZstdCompressor(level=level, threads=0, write_checksum=True).compress(data)
