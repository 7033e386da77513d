"""The trust rules of the catalog: which upstream bytes may be used, checked before anything is parsed.

* a ``sha256sums`` counts only with a ``.sig`` that verifies with one of the distribution's keys;
* ``profiles.json`` and apk ``index.json`` only when their sha256 is the one the verified list gives;
* opkg ``Packages`` only with a ``Packages.sig`` that verifies — an index without one is refused, never
  silently skipped.

Anything else raises ``SignatureError`` naming the URL, and nothing derived from it is kept. These are
plain functions over bytes; the feed ones parse thousands of records and run in a thread.
"""

from __future__ import annotations

import hashlib

from asud.errors import SignatureError
from asud.upstream.index_json import parse_index_json
from asud.upstream.packages_index import parse_packages
from asud.upstream.profiles_json import parse_profiles_json
from asud.upstream.records import PackageRecord, ProfilesDocument
from asud.upstream.sha256sums import parse_sha256sums
from asud.upstream.usign import PublicKey, verify

__all__ = [
    "sha256",
    "verified_apk_index",
    "verified_opkg_index",
    "verified_profiles",
    "verified_sums",
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified_sums(url: str, sums: bytes, signature: bytes, keys: tuple[PublicKey, ...]) -> dict[str, str]:
    """The ``sha256sums`` at ``url`` (path → hex), once its signature verified."""
    try:
        verify(sums, signature.decode("utf-8", "replace"), keys)
    except SignatureError as error:
        raise SignatureError(f"{url}: {error.detail}") from error
    return parse_sha256sums(sums.decode("utf-8"))


def verified_profiles(url: str, data: bytes, expected: str | None) -> tuple[ProfilesDocument, str]:
    """``profiles.json`` and its sha256, if that is what the signed list names."""
    if expected is None:
        raise SignatureError(f"{url.rsplit('/', 1)[0]}/sha256sums does not list profiles.json")
    digest = sha256(data)
    if digest != expected:
        raise SignatureError(f"{url} has sha256 {digest}, but the signed sha256sums says {expected}")
    return parse_profiles_json(data), digest


def verified_opkg_index(url: str, index: bytes, signature: bytes | None,
                        keys: tuple[PublicKey, ...]) -> list[PackageRecord]:
    """The records of the opkg ``Packages`` at ``url`` (``…/Packages``), if ``Packages.sig`` verifies."""
    if signature is None:
        raise SignatureError(
            f"{url} has no signature ({url}.sig is not on the server); its packages are not used"
        )
    try:
        verify(index, signature.decode("utf-8", "replace"), keys)
    except SignatureError as error:
        raise SignatureError(f"{url}: {error.detail}") from error
    return parse_packages(index.decode("utf-8"))


def verified_apk_index(url: str, index: bytes, expected: str | None) -> list[PackageRecord]:
    """Names and versions of the apk ``index.json`` at ``url``, if the signed list names its sha256."""
    digest = sha256(index)
    if expected != digest:
        raise SignatureError(
            f"{url} does not match the signed sha256sums ({expected or 'not listed'})"
        )
    parsed = parse_index_json(index)
    return [PackageRecord(name=name, version=version) for name, version in parsed.packages.items()]
