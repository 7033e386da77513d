"""``index.json`` beside each package index: package name → version.

v1 (22.03 … 24.10.1) has no ``version`` key and keeps ABI suffixes in names (``libubox20240329``);
v2 (24.10.2+, 25.12, recent snapshots) says ``"version": 2`` and lists ABI-stripped names.
"""

from __future__ import annotations

from dataclasses import dataclass

from asud.upstream._json import load_object
from asud.upstream.errors import UpstreamFormatError

__all__ = ["IndexJson", "parse_index_json"]


@dataclass(frozen=True, slots=True)
class IndexJson:
    version: int
    architecture: str
    packages: dict[str, str]

    @property
    def abi_stripped(self) -> bool:
        """Whether the names are the ones users type (v2), rather than ABI-suffixed (v1)."""
        return self.version >= 2


def parse_index_json(data: bytes | str) -> IndexJson:
    document = load_object(data, "index.json")
    version = document.get("version", 1)
    packages = document.get("packages")
    if not isinstance(version, int) or not isinstance(packages, dict):
        raise UpstreamFormatError("index.json: needs 'packages' (object) and an integer 'version'")
    for name, package_version in packages.items():
        if not isinstance(package_version, str):
            raise UpstreamFormatError(f"index.json: version of {name!r} is not a string")
    return IndexJson(version=version, architecture=str(document.get("architecture") or ""), packages=packages)
