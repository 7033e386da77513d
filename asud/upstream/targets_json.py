"""``.targets.json`` (target → package architecture) and ``.overview.json`` (every profile of a release)."""

from __future__ import annotations

from typing import Any

from asud.upstream._json import load_object
from asud.upstream.errors import UpstreamFormatError

__all__ = ["parse_overview_json", "parse_targets_json"]


def parse_targets_json(data: bytes | str) -> dict[str, str]:
    """``{"ath79/generic": "mips_24kc", …}``, sorted by target (upstream sends hash order)."""
    document = load_object(data, ".targets.json")
    for target, arch in document.items():
        if not isinstance(arch, str) or target.count("/") != 1:
            raise UpstreamFormatError(f".targets.json: bad entry {target!r}: {arch!r}")
    return dict(sorted(document.items()))


def parse_overview_json(data: bytes | str) -> dict[str, Any]:
    """``{"release": "23.05.4", "profiles": [{"id", "target", "titles"}, …]}``, checked and passed on."""
    document = load_object(data, ".overview.json")
    profiles = document.get("profiles")
    if not isinstance(profiles, list):
        raise UpstreamFormatError(".overview.json: 'profiles' must be a list")
    for profile in profiles:
        if not isinstance(profile, dict) or not isinstance(profile.get("id"), str) \
                or not isinstance(profile.get("target"), str):
            raise UpstreamFormatError(f".overview.json: bad profile {profile!r}")
    return document
