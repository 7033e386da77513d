"""Build artifacts on disk, addressed by content.

Layout under ``root``::

    objects/<sha256>          every stored file once, read-only
    <bin_dir>/<name>          hard links into ``objects/`` (what ``/store/<bin_dir>/<name>`` serves)
    tmp/                      staging, same filesystem so renames and links are atomic

Because a served file *is* its object, ``images[].sha256`` (the hash computed while importing) is always the
hash of the exact bytes served. A ``bin_dir`` is the 64-hex request hash, or for builds with a ``defaults``
script ``<request hash>-<full defaults sha256>``; the latter are never listed (``bin_dirs()`` skips them).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from asud.errors import NotFound

#: A v1 bin_dir: the request hash, optionally followed by ``-`` and the full defaults hash (private).
_BIN_DIR = re.compile(r"\A[0-9a-f]{64}(?:-[0-9a-f]{64})?\Z")
#: A file name: starts with an alphanumeric character (no dot files, no ``..``), no separators, no ``%``.
_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._+=,~-]{0,199}\Z")
_OBJECT = re.compile(r"\A[0-9a-f]{64}\Z")
_CHUNK = 1024 * 1024
#: How :meth:`Store.open_file` opens: never through a symlink as the last component, never blocking (a FIFO
#: would stall the reactor; a regular file ignores the flag), not inherited by build processes.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
#: Linux names the file behind each open descriptor here: the real path of what was opened, race-free.
_FD_DIR = "/proc/self/fd/"
_HAS_FD_DIR = os.path.isdir(_FD_DIR)


def is_valid_bin_dir(bin_dir: str) -> bool:
    return bool(_BIN_DIR.match(bin_dir))


def is_private_bin_dir(bin_dir: str) -> bool:
    """Private bin_dirs (built with ``defaults``) carry a second hash and are never listed."""
    return is_valid_bin_dir(bin_dir) and "-" in bin_dir


def is_valid_name(name: str) -> bool:
    return bool(_NAME.match(name)) and ".." not in name


class Store:
    """Content-addressed files with one directory of hard links per ``bin_dir``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._root_text = str(self.root).rstrip("/")
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    # -- writing ----------------------------------------------------------------------------------
    def import_files(self, bin_dir: str, files: list[Path]) -> dict[str, str]:
        """Copy ``files`` into ``bin_dir`` under their base names; returns name → sha256 of stored bytes."""
        directory = self._bin_dir_path(bin_dir)
        hashes: dict[str, str] = {}
        for path in files:
            name = Path(path).name
            self._check_name(name)
            with open(path, "rb") as source:
                digest = self._store_stream(source)
            self._link(directory, name, digest)
            hashes[name] = digest
        return hashes

    def write_bytes(self, bin_dir: str, name: str, data: bytes) -> str:
        """Store ``data`` as ``bin_dir/name``; returns its sha256."""
        directory = self._bin_dir_path(bin_dir)
        self._check_name(name)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        with open(tmp_name, "rb") as source:
            digest = self._store_stream(source)
        os.unlink(tmp_name)
        self._link(directory, name, digest)
        return digest

    def write_text(self, bin_dir: str, name: str, text: str) -> str:
        """Store ``text`` (UTF-8) as ``bin_dir/name``, e.g. ``build.log``; returns its sha256."""
        return self.write_bytes(bin_dir, name, text.encode("utf-8", "replace"))

    def _store_stream(self, source: BinaryIO) -> str:
        """Copy a binary stream into ``objects/`` (once per content); returns the sha256."""
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as target:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    target.write(chunk)
            os.chmod(tmp_name, 0o444)
            hex_digest = digest.hexdigest()
            object_path = self._objects / hex_digest
            if object_path.exists():
                os.unlink(tmp_name)
            else:
                os.replace(tmp_name, object_path)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return hex_digest

    def _link(self, directory: Path, name: str, digest: str) -> None:
        """Point ``directory/name`` at an object atomically (an existing name is replaced)."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp_link = self._tmp / f"link-{os.getpid()}-{time.monotonic_ns()}"
        os.link(self._objects / digest, tmp_link)
        os.replace(tmp_link, directory / name)

    # -- reading ----------------------------------------------------------------------------------
    def resolve(self, bin_dir: str, name: str) -> Path:
        """The path of a stored file; ``NotFound`` for anything invalid, missing or outside the store."""
        if not is_valid_bin_dir(bin_dir) or not is_valid_name(name):
            raise NotFound("file not found")
        path = self.root / bin_dir / name
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise NotFound("file not found") from None
        if real.parent != self.root / bin_dir or not real.is_file():
            raise NotFound("file not found")
        return real

    def open_file(self, bin_dir: str, name: str) -> tuple[int, int]:
        """``(descriptor, size)`` of a stored file opened for reading (the caller closes it); ``NotFound``
        for anything invalid, missing, not a plain file, or reached through a symlink.

        The hot path of ``/store``: names checked lexically, one ``open``, one ``fstat`` and, on Linux, one
        ``readlink`` of the descriptor, which must name ``<root>/<bin_dir>/<name>`` exactly (the root is
        resolved once): a symlinked ``bin_dir`` or file is refused whatever it points at, and what is
        checked is what was opened. Stricter than :meth:`resolve`, which follows a symlink that stays in
        its ``bin_dir``; the store itself never makes one.
        """
        if not is_valid_bin_dir(bin_dir) or not is_valid_name(name):
            raise NotFound("file not found")
        path = f"{self._root_text}/{bin_dir}/{name}"
        try:
            descriptor = os.open(path, _OPEN_FLAGS)
        except OSError:
            raise NotFound("file not found") from None
        try:
            status = os.fstat(descriptor)
            real = os.readlink(f"{_FD_DIR}{descriptor}") if _HAS_FD_DIR else os.path.realpath(path)
            if not stat.S_ISREG(status.st_mode) or real != path:
                raise NotFound("file not found")
        except BaseException as error:
            os.close(descriptor)
            if isinstance(error, OSError):
                raise NotFound("file not found") from None
            raise
        return descriptor, status.st_size

    def files(self, bin_dir: str) -> dict[str, int]:
        """name → size of every file in ``bin_dir`` (empty when it does not exist)."""
        directory = self._bin_dir_path(bin_dir)
        if not directory.is_dir():
            return {}
        return {entry.name: entry.stat().st_size for entry in os.scandir(directory) if entry.is_file()}

    def exists(self, bin_dir: str) -> bool:
        return is_valid_bin_dir(bin_dir) and (self.root / bin_dir).is_dir()

    def bin_dirs(self) -> list[str]:
        """Public bin_dirs; private ones (built with ``defaults``) are never listed."""
        return sorted(
            entry.name
            for entry in os.scandir(self.root)
            if entry.is_dir() and is_valid_bin_dir(entry.name) and not is_private_bin_dir(entry.name)
        )

    # -- retention --------------------------------------------------------------------------------
    def usage_bytes(self) -> int:
        """Bytes held by stored objects (each content counted once)."""
        return sum(entry.stat().st_size for entry in os.scandir(self._objects) if entry.is_file())

    def remove(self, bin_dir: str) -> None:
        """Delete ``bin_dir`` and every object no other bin_dir links to."""
        directory = self._bin_dir_path(bin_dir)
        if not directory.is_dir():
            return
        shutil.rmtree(directory)
        self._collect()

    def prune(self, max_bytes: int, keep: set[str]) -> list[str]:
        """Remove least recently used bin_dirs (never one in ``keep``) until usage ≤ ``max_bytes``."""
        usage = self.usage_bytes()
        removed: list[str] = []
        if usage <= max_bytes:
            self._clean_tmp()
            return removed
        candidates = sorted(
            (entry.stat().st_mtime, entry.name)
            for entry in os.scandir(self.root)
            if entry.is_dir() and is_valid_bin_dir(entry.name) and entry.name not in keep
        )
        for _mtime, bin_dir in candidates:
            if usage <= max_bytes:
                break
            shutil.rmtree(self.root / bin_dir)
            usage -= self._collect()
            removed.append(bin_dir)
        self._clean_tmp()
        return removed

    def _collect(self) -> int:
        """Delete objects nothing links to any more; returns the bytes freed."""
        freed = 0
        for entry in os.scandir(self._objects):
            if not _OBJECT.match(entry.name):
                continue
            stat = entry.stat()
            if stat.st_nlink <= 1:
                os.unlink(entry.path)
                freed += stat.st_size
        return freed

    def _clean_tmp(self, older_than: float = 3600.0) -> None:
        """Drop staging files left behind by a crashed import."""
        limit = time.time() - older_than
        for entry in os.scandir(self._tmp):
            if entry.stat().st_mtime < limit:
                os.unlink(entry.path)

    # -- validation -------------------------------------------------------------------------------
    def _bin_dir_path(self, bin_dir: str) -> Path:
        if not is_valid_bin_dir(bin_dir):
            raise ValueError(f"invalid bin_dir: {bin_dir!r}")
        return self.root / bin_dir

    @staticmethod
    def _check_name(name: str) -> None:
        if not is_valid_name(name):
            raise ValueError(f"invalid file name: {name!r}")
