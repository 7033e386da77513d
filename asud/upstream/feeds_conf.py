"""``packages/<arch>/feeds.conf``: ``src-git <name> <url>^<commit>`` per line; the names are the feeds."""

from __future__ import annotations

__all__ = ["parse_feeds_conf"]


def parse_feeds_conf(text: str) -> list[str]:
    """Feed names in file order (``base``, ``luci``, ``packages``, …), comments and blanks skipped."""
    names: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("src-") and parts[1] not in names:
            names.append(parts[1])
    return names
