"""Checksum lists and finding the ImageBuilder in them."""

from __future__ import annotations

import pytest

from asud.upstream.errors import UpstreamFormatError
from asud.upstream.sha256sums import find_imagebuilder, format_sha256sums, parse_sha256sums

A, B, C = "a" * 64, "b" * 64, "C" * 64


def test_markers_and_round_trip() -> None:
    ib = "openwrt-imagebuilder-x86-64.Linux-x86_64.tar.zst"
    text = f"{A} *profiles.json\n{B}  packages/Packages\n{C} *{ib}\n"
    sums = parse_sha256sums(text)
    assert sums == {"profiles.json": A, "packages/Packages": B,
                    "openwrt-imagebuilder-x86-64.Linux-x86_64.tar.zst": C.lower()}
    formatted = format_sha256sums(sums)
    assert formatted.splitlines()[0] == f"{C.lower()} *openwrt-imagebuilder-x86-64.Linux-x86_64.tar.zst"
    assert parse_sha256sums(formatted) == sums


def test_find_imagebuilder_by_era() -> None:
    assert find_imagebuilder({"openwrt-imagebuilder-23.05.5-x86-64.Linux-x86_64.tar.xz": A,
                              "openwrt-sdk-23.05.5-x86-64_gcc.Linux-x86_64.tar.xz": B}) == (
        "openwrt-imagebuilder-23.05.5-x86-64.Linux-x86_64.tar.xz", A)
    assert find_imagebuilder({"lede-imagebuilder-17.01.0-ar71xx-generic.Linux-x86_64.tar.xz": A}) is not None
    assert find_imagebuilder({"openwrt-imagebuilder-x86-64.Linux-x86_64.tar.zst": A})[1] == A  # type: ignore[index]
    assert find_imagebuilder({"openwrt-imagebuilder-x86-64.Linux-x86_64.tar.gz": A}) is None
    assert find_imagebuilder({"sub/openwrt-imagebuilder-x86-64.Linux-x86_64.tar.zst": A}) is None


def test_malformed_lines_are_refused() -> None:
    for line in ("abc *file\n", f"{A}\n", f"{'g' * 64} *file\n", f"{A} *\n"):
        with pytest.raises(UpstreamFormatError):
            parse_sha256sums(line)
