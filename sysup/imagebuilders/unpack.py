"""Unpack an ImageBuilder archive safely, like ``tar --strip-components=1 -xf`` but refusing tricks.

The archive's sha256 was verified against a signed list before it gets here, yet it is still unpacked as
if hostile: a member with an absolute name or a ``..`` component, a device file or FIFO, and a symlink or
hard link that points outside the tree are refused, and the whole unpack fails. Ownership is never taken
from the archive, set-id bits are dropped, and write bits are removed from every file, so a workspace that
hard-links a cached file cannot change it by accident (see ``workspace``).

``.tar.xz`` goes through ``lzma``, ``.tar.zst`` through ``zstandard``; both stream (no temporary .tar).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import zstandard

from asud.errors import UpstreamError

__all__ = ["UnsafeArchive", "tree_size", "unpack_archive"]


class UnsafeArchive(UpstreamError):
    """The archive holds a member that could write outside its directory (or a device); nothing is kept."""


def _strip(name: str, components: int, archive: str) -> str | None:
    """``name`` without its first ``components`` parts; ``None`` for the stripped top directories."""
    if name.startswith("/") or os.path.isabs(name):
        raise UnsafeArchive(f"{archive}: member {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"{archive}: member {name!r} contains '..'")
    if len(parts) <= components:
        return None
    return "/".join(parts[components:])


def _member_filter(archive: str, components: int) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    def accept(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            raise UnsafeArchive(f"{archive}: member {member.name!r} is a device or FIFO")
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise UnsafeArchive(f"{archive}: member {member.name!r} has an unsupported type")
        name = _strip(member.name, components, archive)
        if name is None:
            if member.isdir():
                return None
            raise UnsafeArchive(f"{archive}: member {member.name!r} is not inside the top directory")
        linkname = member.linkname
        if member.islnk():
            stripped = _strip(linkname, components, archive)
            if stripped is None:
                raise UnsafeArchive(f"{archive}: hard link {member.name!r} points at the top directory")
            linkname = stripped
        member = member.replace(name=name, linkname=linkname, deep=False)
        try:
            member = tarfile.data_filter(member, dest)
        except tarfile.FilterError as error:
            raise UnsafeArchive(f"{archive}: {error}") from error
        if member.isfile() and member.mode is not None:
            # Read-only in the cache: a hard-linked workspace must not be able to rewrite it in place.
            member = member.replace(mode=member.mode & ~0o222, deep=False)
        elif member.isdir() and member.mode is not None:
            member = member.replace(mode=member.mode | 0o700, deep=False)
        return member

    return accept


def unpack_archive(archive: Path, dest: Path, *, strip_components: int = 1) -> None:
    """Extract ``archive`` (``.tar.xz``, ``.tar.zst``, ``.tar.gz`` or ``.tar``) into the existing ``dest``.

    Raises ``UnsafeArchive`` on a dangerous member and ``UpstreamError`` on a corrupt archive; the caller
    removes ``dest`` then.
    """
    name = archive.name
    accept = _member_filter(name, strip_components)
    try:
        with archive.open("rb") as raw:
            if name.endswith((".tar.zst", ".tzst")):
                reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
                with reader, tarfile.open(fileobj=reader, mode="r|") as tar:
                    tar.extractall(dest, filter=accept)
            else:
                mode = "r|xz" if name.endswith((".tar.xz", ".txz")) else "r|*"
                with tarfile.open(fileobj=raw, mode=mode) as tar:  # type: ignore[call-overload]
                    tar.extractall(dest, filter=accept)
    except UnsafeArchive:
        raise
    except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as error:
        raise UpstreamError(f"{name}: cannot unpack: {error}") from error


def tree_size(root: Path) -> int:
    """Bytes used by the files under ``root`` (each inode counted once; directories not counted)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for current, _dirs, files in os.walk(root):
        for name in files:
            info = os.lstat(os.path.join(current, name))
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total
