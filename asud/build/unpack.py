"""Unpack an ImageBuilder archive with a child ``tar --strip-components=1``, refusing tricks first.

The archive's sha256 was verified against a signed list before it gets here, yet it is unpacked as if
hostile, in three steps, none of them in the reactor thread:

1. ``tar --list --verbose`` (a child process) names every member; the listing is checked in a thread: a
   member with an absolute name or a ``..`` component (tar says when it would rewrite one), a device file
   or FIFO, a symlink or hard link that points outside the tree, or a member reached through a symlink is
   refused (``UnsafeArchive``) and nothing is extracted;
2. ``tar --extract`` (a child process) writes the tree, never taking ownership or permissions from the
   archive;
3. a walk (in a thread) drops set-id bits and removes write bits from every file, so a workspace that
   hard-links a cached file cannot change it by accident (see ``asud.build.workspace``), and counts the
   bytes.

``.tar.zst`` needs the ``zstd`` program, ``.tar.xz`` ``xz`` (tar runs them).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from asud.build.process import run_process
from asud.errors import UpstreamError

__all__ = ["UnsafeArchive", "check_listing", "tree_size", "unpack_archive"]

#: The environment of the tar children: C locale, so the listing's format and quoting are fixed.
TAR_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"}
#: A listing longer than this is refused (a real ImageBuilder lists a few MB).
MAX_LISTING_BYTES = 256 * 1024**2


class UnsafeArchive(UpstreamError):
    """The archive holds a member that could write outside its directory (or a device); nothing is kept."""


@attrs.frozen
class Member:
    """One line of ``tar --list --verbose --quoting-style=c``."""

    kind: str
    name: str
    link: str = ""


def compression_flags(name: str) -> list[str]:
    if name.endswith((".tar.zst", ".tzst")):
        return ["--zstd"]
    if name.endswith((".tar.xz", ".txz")):
        return ["--xz"]
    if name.endswith((".tar.gz", ".tgz")):
        return ["--gzip"]
    return []


# -- reading the listing --------------------------------------------------------------------------------

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "?": "?"}
_OCTAL = re.compile(r"[0-7]{1,3}")


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The C-quoted string starting at ``text[start] == '"'`` (decoded) and the index after it."""
    if start >= len(text) or text[start] != '"':
        raise ValueError("expected a quoted name")
    out = bytearray()
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return out.decode("utf-8", "surrogateescape"), index + 1
        if char == "\\":
            octal = _OCTAL.match(text, index + 1)
            if octal:
                out.append(int(octal.group(), 8) & 0xFF)
                index = octal.end()
                continue
            escaped = text[index + 1 : index + 2]
            if escaped not in _ESCAPES:
                raise ValueError(f"unknown escape \\{escaped}")
            out += _ESCAPES[escaped].encode()
            index += 2
            continue
        out += char.encode("utf-8", "surrogateescape")
        index += 1
    raise ValueError("unterminated quoted name")


def parse_listing(text: str) -> list[Member]:
    """Members of a ``tar -tv --quoting-style=c`` listing (C locale)."""
    members = []
    for line in text.splitlines():
        if not line:
            continue
        quote = line.find('"')
        if quote < 0:
            raise ValueError(f"unreadable listing line {line!r}")
        name, end = _quoted(line, quote)
        link = ""
        rest = line[end:]
        for marker in (" -> ", " link to "):
            if rest.startswith(marker):
                link, end = _quoted(line, end + len(marker))
                rest = line[end:]
                break
        if rest:
            raise ValueError(f"unreadable listing line {line!r}")
        members.append(Member(line[0], name, link))
    return members


# -- checking it ----------------------------------------------------------------------------------------

def _strip(name: str, components: int, archive: str) -> str | None:
    """``name`` without its first ``components`` parts; ``None`` for the stripped top directories."""
    if name.startswith("/"):
        raise UnsafeArchive(f"{archive}: member {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"{archive}: member {name!r} contains '..'")
    if len(parts) <= components:
        return None
    return "/".join(parts[components:])


def check_listing(text: str, archive: str, *, strip_components: int = 1) -> int:
    """Refuse (``UnsafeArchive``) every way out of the tree; returns the number of members."""
    try:
        members = parse_listing(text)
    except ValueError as error:
        raise UpstreamError(f"{archive}: cannot read the archive's listing: {error}") from error
    symlinks: set[str] = set()
    for member in members:
        if member.kind in "cbp":
            raise UnsafeArchive(f"{archive}: member {member.name!r} is a device or FIFO")
        if member.kind not in "-dlh":
            raise UnsafeArchive(f"{archive}: member {member.name!r} has an unsupported type")
        name = _strip(member.name, strip_components, archive)
        if name is None:
            if member.kind == "d":
                continue
            raise UnsafeArchive(f"{archive}: member {member.name!r} is not inside the top directory")
        parents = name.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            if "/".join(parents[:depth]) in symlinks:
                raise UnsafeArchive(f"{archive}: member {member.name!r} goes through a symlink")
        if member.kind == "h":
            if _strip(member.link, strip_components, archive) is None:
                raise UnsafeArchive(f"{archive}: hard link {member.name!r} points at the top directory")
        elif member.kind == "l":
            target = member.link
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise UnsafeArchive(f"{archive}: symlink {member.name!r} points outside the tree ({target})")
            symlinks.add(name)
    return len(members)


# -- after extracting -----------------------------------------------------------------------------------

def settle_tree(root: Path) -> int:
    """Files read-only without set-id bits, directories owner-writable (so the cache can evict them);
    returns the bytes used (each inode once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for current, dirnames, filenames in os.walk(root):
        for name in dirnames:
            path = os.path.join(current, name)
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                os.chmod(path, (stat.S_IMODE(info.st_mode) & ~0o7022) | 0o700)
        for name in filenames:
            path = os.path.join(current, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                os.chmod(path, (stat.S_IMODE(info.st_mode) | 0o400) & ~0o7222)
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total


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


def _failure(archive: str, stderr: str, returncode: int) -> UpstreamError:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return UpstreamError(f"{archive}: cannot unpack: {lines[-1] if lines else f'tar exited {returncode}'}")


def unpack_archive(
    archive: Path,
    dest: Path,
    *,
    reactor: Any = None,
    timeout: float = 600.0,
    kill_grace: float = 5.0,
    strip_components: int = 1,
) -> Deferred[int]:
    """Extract ``archive`` (``.tar.zst``, ``.tar.xz``, ``.tar.gz`` or ``.tar``) into the existing ``dest``;
    fires with the bytes unpacked.

    Fails with ``UnsafeArchive`` on a dangerous member and ``UpstreamError`` on a corrupt archive; the
    caller removes ``dest`` then.
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    return Deferred.fromCoroutine(_unpack(archive, dest, reactor, timeout, kill_grace, strip_components))


async def _unpack(archive: Path, dest: Path, reactor: Any, timeout: float, kill_grace: float,
                  strip_components: int) -> int:
    name = archive.name
    flags = compression_flags(name)
    listing = await run_process(
        ["tar", "--list", "--verbose", "--numeric-owner", "--quoting-style=c", *flags, "-f", str(archive)],
        reactor=reactor, env=TAR_ENV, timeout=timeout, output_limit=MAX_LISTING_BYTES,
        kill_grace=kill_grace, step="tar --list",
    )
    if listing.output_truncated:
        raise UnsafeArchive(f"{name}: the archive lists more than {MAX_LISTING_BYTES} bytes of members")
    if not listing.ok:
        raise _failure(name, listing.stderr, listing.returncode)
    # tar rewrites absolute or ``..`` names and link targets (and says so) before we could see them.
    rewritten = [line for line in listing.stderr.splitlines() if "Removing leading" in line]
    if rewritten:
        raise UnsafeArchive(f"{name}: members with absolute or '..' paths ({rewritten[0].strip()})")
    pool = reactor.getThreadPool()
    await deferToThreadPool(reactor, pool, check_listing, listing.stdout, name,
                            strip_components=strip_components)
    extracted = await run_process(
        ["tar", "--extract", *flags, "-f", str(archive), "-C", str(dest),
         f"--strip-components={strip_components}", "--no-same-owner", "--no-same-permissions",
         "--delay-directory-restore", "--no-acls", "--no-xattrs", "--no-selinux"],
        reactor=reactor, env=TAR_ENV, timeout=timeout, output_limit=16 * 1024**2, kill_grace=kill_grace,
        step="tar --extract",
    )
    if not extracted.ok:
        raise _failure(name, extracted.stderr, extracted.returncode)
    size: int = await deferToThreadPool(reactor, pool, settle_tree, dest)
    return size
