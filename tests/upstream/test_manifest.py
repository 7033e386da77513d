"""Manifests in both spellings."""

from __future__ import annotations

from asud.upstream.manifest import format_manifest, parse_manifest


def test_both_spellings_and_noise() -> None:
    text = "busybox - 1.36.1-r2\nlibubox20240329 2024.03.29~eb9bcb64-r1\n\nmake[1]: Leaving directory '/ib'\n"
    assert parse_manifest(text) == {"busybox": "1.36.1-r2", "libubox20240329": "2024.03.29~eb9bcb64-r1"}


def test_format_is_sorted_and_reads_back() -> None:
    packages = {"zlib": "1.3-r1", "base-files": "1403-r1"}
    text = format_manifest(packages)
    assert text == "base-files - 1403-r1\nzlib - 1.3-r1\n"
    assert parse_manifest(text) == packages
