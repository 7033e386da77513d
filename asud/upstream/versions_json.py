"""``/.versions.json``: the releases a download server offers."""

from __future__ import annotations

from asud.upstream._json import load_object, require_str, str_tuple
from asud.upstream.records import VersionsDocument

__all__ = ["parse_versions_json"]


def parse_versions_json(data: bytes | str) -> VersionsDocument:
    """The four fields of ``.versions.json``; ``versions_list`` is kept in upstream order (sort it with
    ``version_order.release_key``). ``SNAPSHOT`` builds are never listed there."""
    document = load_object(data, ".versions.json")
    return VersionsDocument(
        stable_version=require_str(document, "stable_version", ".versions.json"),
        oldstable_version=str(document.get("oldstable_version") or ""),
        upcoming_version=str(document.get("upcoming_version") or ""),
        versions_list=str_tuple(document.get("versions_list"), ".versions.json versions_list"),
    )
