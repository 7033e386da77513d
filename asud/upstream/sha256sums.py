"""``sha256sums``: ``<64 hex> *<path>`` per line, the list a ``.sig`` signs for a whole directory."""

from __future__ import annotations

import re

from asud.upstream.errors import UpstreamFormatError

__all__ = ["IMAGEBUILDER_PATTERN", "find_imagebuilder", "format_sha256sums", "parse_sha256sums"]

#: An ImageBuilder archive as named in a target directory (``.tar.xz`` until 23.05, ``.tar.zst`` since).
IMAGEBUILDER_PATTERN = re.compile(r"^[a-z]+-imagebuilder-.+\.Linux-x86_64\.tar\.(xz|zst)$")
_HEX = frozenset("0123456789abcdef")


def parse_sha256sums(text: str) -> dict[str, str]:
    """Path → lowercase hex digest. Accepts the binary marker (``hash *path``) and text mode
    (``hash  path``); a malformed line is an error, because the list is what a signature vouches for."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, space, path = line.partition(" ")
        digest = digest.lower()
        if not space or len(digest) != 64 or not _HEX.issuperset(digest):
            raise UpstreamFormatError(f"sha256sums: malformed line {line!r}")
        if path[:1] in ("*", " "):
            path = path[1:]
        if not path:
            raise UpstreamFormatError(f"sha256sums: line without a path {line!r}")
        sums[path] = digest
    return sums


def format_sha256sums(entries: dict[str, str]) -> str:
    """The text ``mkhash``/``sha256sum -b`` writes: sorted by path, binary marker."""
    return "".join(f"{entries[path]} *{path}\n" for path in sorted(entries))


def find_imagebuilder(sums: dict[str, str]) -> tuple[str, str] | None:
    """``(file name, sha256)`` of the ImageBuilder archive listed in a target's ``sha256sums``."""
    for path in sorted(sums):
        if IMAGEBUILDER_PATTERN.match(path):
            return path, sums[path]
    return None
