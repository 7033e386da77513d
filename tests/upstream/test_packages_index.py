"""opkg ``Packages`` stanzas: every field shape the real indexes use, and speed at real scale."""

from __future__ import annotations

import time

import pytest

from asud.upstream.errors import UpstreamFormatError
from asud.upstream.packages_index import parse_depends, parse_names, parse_packages
from asud.upstream.records import Dependency

STANZAS = """\
Package: libiwinfo20230701
Version: 2024.10.20~b94f066e-r1
Depends: libc, libubus20250102, libuci20250120 | libuci-compat, kernel (=6.6.86~abc-r1), libnl-tiny (>= 2023)
Provides: libiwinfo, libiwinfo-any (= 1.0)
Conflicts: libiwinfo-old (<< 2020), other
ABIVersion: 20230701
Section: libs
Architecture: mips_24kc
Installed-Size: 20480
Filename: libiwinfo20230701_2024.10.20~b94f066e-r1_mips_24kc.ipk
Size: 12345
SHA256sum:aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111
Description:  Generalized Wireless Information Library (iwinfo)
 Second line of the description.
 .
 Last line.

Package: busybox
Version: 1.36.1-r2
Depends: libc
Architecture: mips_24kc
Description:  The Swiss Army Knife
"""


def test_fields_of_a_stanza() -> None:
    iwinfo, busybox = parse_packages(STANZAS)
    assert iwinfo.name == "libiwinfo20230701" and iwinfo.abi_version == "20230701"
    assert iwinfo.stripped_name == "libiwinfo"
    assert iwinfo.version == "2024.10.20~b94f066e-r1"
    assert iwinfo.depends == (
        (Dependency("libc"),),
        (Dependency("libubus20250102"),),
        (Dependency("libuci20250120"), Dependency("libuci-compat")),
        (Dependency("kernel", "=", "6.6.86~abc-r1"),),
        (Dependency("libnl-tiny", ">=", "2023"),),
    )
    assert iwinfo.provides == ("libiwinfo", "libiwinfo-any")
    assert iwinfo.conflicts == ("libiwinfo-old", "other")
    assert iwinfo.sha256 == "aaaa1111" * 8  # old "SHA256sum:" without a space
    assert (iwinfo.size, iwinfo.installed_size, iwinfo.section) == (12345, 20480, "libs")
    assert iwinfo.description == (
        "Generalized Wireless Information Library (iwinfo)\nSecond line of the description.\n.\nLast line."
    )
    assert busybox.name == busybox.stripped_name == "busybox" and busybox.abi_version is None
    assert (busybox.size, busybox.sha256, busybox.filename) == (0, "", "")


def test_crlf_and_missing_trailing_newline() -> None:
    records = parse_packages("Package: a\r\nVersion: 1\r\n\r\nPackage: b\r\nVersion: 2")
    assert [(r.name, r.version) for r in records] == [("a", "1"), ("b", "2")]


def test_blank_lines_blanks_and_continuations() -> None:
    """Only an empty line ends a stanza; a line of blanks continues the field above; values lose the blanks
    around them, on every path the parser takes (plain stanzas and stanzas with continuations)."""
    text = (
        "\n\nPackage: a\nVersion: 1 \nSection:\tnet\t\n\n\n\n"
        "Package: b\nVersion: 2\nDescription:\n first\n  \n\tsecond\nSize: 7\n\n"
    )
    a, b = parse_packages(text)
    assert (a.name, a.version, a.section) == ("a", "1", "net")
    assert (b.name, b.version, b.size) == ("b", "2", 7)
    assert b.description == "first\n \nsecond"
    with pytest.raises(UpstreamFormatError, match="not 'Field: value'"):
        parse_packages("Package: a\nVersion: 1\nno colon here\n")


def test_equal_depends_are_parsed_once_per_index() -> None:
    first, second = parse_packages("Package: a\nVersion: 1\nDepends: libc, x\n\nPackage: b\nVersion: 1\n"
                                   "Depends: libc, x\n")
    assert first.depends == ((Dependency("libc"),), (Dependency("x"),))
    assert first.depends is second.depends  # one tuple in memory for the 10,000 packages that share it


def test_depends_syntaxes() -> None:
    assert parse_depends("a (>=1.2), b(<<2) | c (= 3), d>=4, e") == (
        (Dependency("a", ">=", "1.2"),),
        (Dependency("b", "<<", "2"), Dependency("c", "=", "3")),
        (Dependency("d", ">=", "4"),),
        (Dependency("e"),),
    )
    assert parse_depends("") == ()
    assert parse_names("x (= 1), y=2, z") == ("x", "y", "z")
    with pytest.raises(UpstreamFormatError):
        parse_depends("a (>=)")


def test_malformed_stanzas_are_refused() -> None:
    with pytest.raises(UpstreamFormatError):
        parse_packages("Version: 1\n")
    with pytest.raises(UpstreamFormatError):
        parse_packages("Package: a\nVersion: 1\nSize: big\n")
    with pytest.raises(UpstreamFormatError):
        parse_packages(" continuation first\n")


def test_real_scale_is_fast() -> None:
    stanza = STANZAS.split("\n\n")[0]
    text = "\n\n".join(stanza.replace("libiwinfo20230701", f"pkg{i}", 1) for i in range(10_000)) + "\n"
    started = time.perf_counter()
    records = parse_packages(text)
    elapsed = time.perf_counter() - started
    assert len(records) == 10_000 and records[-1].name == "pkg9999"
    assert elapsed < 1.5, f"10,000 stanzas took {elapsed:.2f}s"
