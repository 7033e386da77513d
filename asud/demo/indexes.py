"""Package indexes as OpenWrt's scripts write them: opkg ``Packages``/``Packages.manifest``/``index.json``
and the demo's signed ``packages.adb`` container.

Each function returns ``{file name: bytes}`` for one feed directory; signatures of ``Packages`` are added
by the caller (``signing``), because the demo ``packages.adb`` carries its signature inside.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from asud.demo.archives import gzip_bytes
from asud.demo.package_set import PackageSpec
from asud.demo.packages import control_fields
from asud.upstream.usign import SecretKey

__all__ = ["IndexEntry", "adb_container", "apk_feed_files", "index_json", "opkg_feed_files"]

#: Fields ``package/Makefile`` drops from ``Packages.manifest`` to make ``Packages``.
_MANIFEST_ONLY = ("Maintainer", "LicenseFiles", "Source", "SourceName", "Require", "SourceDateEpoch")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A package as an index lists it: its spec plus the file's name, size and hash."""

    spec: PackageSpec
    filename: str
    size: int
    sha256: str
    installed_size: int


def _stanza(entry: IndexEntry) -> str:
    lines = [f"{key}: {value}" for key, value in control_fields(entry.spec, entry.installed_size)]
    lines += [
        f"Filename: {entry.filename}",
        f"Size: {entry.size}",
        f"SHA256sum: {entry.sha256}",
        f"Description:  {entry.spec.description}",
    ]
    return "\n".join(lines) + "\n\n"


def index_json(entries: Sequence[IndexEntry], architecture: str, version: int) -> bytes:
    """``index.json``: v1 (sed one-liner, ABI names kept) or v2 (``make-index-json.py``, ABI stripped)."""
    ordered = sorted(entries, key=lambda entry: entry.spec.name)
    if version == 1:
        pairs = ", ".join(f'"{entry.spec.name}": "{entry.spec.version}"' for entry in ordered)
        return f'{{"architecture": "{architecture}", "packages":{{{pairs}}}}}\n'.encode()
    packages = {
        entry.spec.base_name: entry.spec.version for entry in sorted(entries, key=lambda e: e.spec.base_name)
    }
    document = {"version": 2, "architecture": architecture, "packages": packages}
    return (json.dumps(document, indent=2) + "\n").encode()


def opkg_feed_files(
    entries: Sequence[IndexEntry], architecture: str, index_version: int, *, local: bool = False
) -> dict[str, bytes]:
    """``Packages.manifest``, ``Packages``, ``Packages.gz`` and ``index.json`` of an opkg feed.

    Like ``ipkg-make-index.sh``, feeds never list ``kernel`` and ``libc``; the IB-local repository
    (``local=True``) is the one place that lists them.
    """
    ordered = sorted(entries, key=lambda e: e.spec.name)
    listed = ordered if local else [e for e in ordered if e.spec.base_name not in ("kernel", "libc")]
    manifest = "".join(_stanza(entry) for entry in listed)
    packages = "".join(
        line + "\n"
        for line in manifest.split("\n")[:-1]
        if not line.startswith(tuple(f"{f}:" for f in _MANIFEST_ONLY))
    )
    # usign's SHA-512 bug workaround from package/Makefile: pad when (64 + size) % 128 is 110 or 111.
    if (64 + len(packages.encode())) % 128 in (110, 111):
        packages += "\n\n"
    packages_bytes = packages.encode()
    return {
        "Packages.manifest": manifest.encode(),
        "Packages": packages_bytes,
        "Packages.gz": gzip_bytes(packages_bytes),
        "index.json": index_json(listed, architecture, index_version),
    }


def adb_container(entries: Sequence[IndexEntry], architecture: str, key: SecretKey) -> bytes:
    """The demo ``packages.adb``: ``SYSUP-DEMO-ADB 1``, usign comment and signature, then the JSON body."""
    packages = []
    for entry in sorted(entries, key=lambda e: e.spec.name):
        spec = entry.spec
        packages.append(
            {
                "name": spec.name,
                "version": spec.version,
                "depends": spec.apk_depends(),
                "provides": list(spec.provides),
                "conflicts": list(spec.conflicts),
                "abi_version": spec.abi_version,
                "file": entry.filename,
                "size": entry.size,
                "sha256": entry.sha256,
                "installed_size": entry.installed_size,
                "description": spec.description,
            }
        )
    body = json.dumps({"architecture": architecture, "packages": packages}, separators=(",", ":")).encode()
    signature = key.sign(body).splitlines()[1]
    header = f"SYSUP-DEMO-ADB 1\nuntrusted comment: signed by key {key.fingerprint}\n{signature}\n"
    return header.encode() + body


def apk_feed_files(entries: Sequence[IndexEntry], architecture: str, key: SecretKey) -> dict[str, bytes]:
    """``packages.adb`` (demo container) and ``index.json`` v2 of an apk feed."""
    return {
        "packages.adb": adb_container(entries, architecture, key),
        "index.json": index_json(entries, architecture, 2),
    }
