"""``sha256sums`` lists as OpenWrt's ``rules.mk`` writes them (recursive, as on the buildbot)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["write_sha256sums"]


def write_sha256sums(directory: Path) -> Path:
    """Write ``directory/sha256sums``: ``<hex> *<relative path>`` for every file below, sorted by path.

    ``sha256sums`` and its ``.sig`` are left out: they are written after the list.
    """
    lines = []
    for path in sorted(directory.rglob("*"), key=lambda p: p.relative_to(directory).as_posix()):
        relative = path.relative_to(directory).as_posix()
        if not path.is_file() or relative in ("sha256sums", "sha256sums.sig"):
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest} *{relative}\n")
    target = directory / "sha256sums"
    target.write_text("".join(lines))
    return target
