"""Unpacking (a child tar) strips the top directory and refuses every way out of the tree.

Ported from sysup's tests/imagebuilders/test_unpack.py (same assertions)."""

from __future__ import annotations

import io
import lzma
import os
import stat
import tarfile
from pathlib import Path

import pytest
import pytest_twisted
import zstandard

from asud.build.unpack import UnsafeArchive, tree_size, unpack_archive
from asud.errors import UpstreamError

TOP = "openwrt-imagebuilder-x86-64.Linux-x86_64"


def _add(
    tar: tarfile.TarFile,
    name: str,
    *,
    data: bytes = b"",
    kind: bytes = tarfile.REGTYPE,
    linkname: str = "",
    mode: int = 0o644,
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.uid = info.gid = 1234
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def make_tar(path: Path, members: list[dict]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            _add(tar, **member)
    raw = buffer.getvalue()
    if path.name.endswith(".zst"):
        path.write_bytes(zstandard.ZstdCompressor().compress(raw))
    elif path.name.endswith(".xz"):
        path.write_bytes(lzma.compress(raw))
    else:
        path.write_bytes(raw)
    return path


GOOD = [
    {"name": f"{TOP}/", "kind": tarfile.DIRTYPE, "mode": 0o755},
    {"name": f"{TOP}/Makefile", "data": b"all:\n"},
    {"name": f"{TOP}/scripts/", "kind": tarfile.DIRTYPE, "mode": 0o555},
    {"name": f"{TOP}/scripts/run.sh", "data": b"#!/bin/sh\n", "mode": 0o4755},
    {"name": f"{TOP}/scripts/link", "kind": tarfile.SYMTYPE, "linkname": "run.sh"},
    {"name": f"{TOP}/hard", "kind": tarfile.LNKTYPE, "linkname": f"{TOP}/Makefile"},
]


@pytest.mark.parametrize("suffix", [".tar.zst", ".tar.xz", ".tar"])
@pytest_twisted.ensureDeferred
async def test_unpacks_and_strips_the_top_directory(tmp_path: Path, suffix: str) -> None:
    archive = make_tar(tmp_path / f"ib{suffix}", GOOD)
    dest = tmp_path / "out"
    dest.mkdir()
    size = await unpack_archive(archive, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["Makefile", "hard", "scripts"]
    assert (dest / "Makefile").read_bytes() == b"all:\n"
    assert os.readlink(dest / "scripts" / "link") == "run.sh"
    assert os.stat(dest / "hard").st_ino == os.stat(dest / "Makefile").st_ino
    run = os.stat(dest / "scripts" / "run.sh")
    assert run.st_mode & stat.S_IXUSR and not run.st_mode & (stat.S_ISUID | stat.S_IWUSR)
    assert run.st_uid == os.getuid()
    assert os.stat(dest / "scripts").st_mode & stat.S_IWUSR  # the cache can still evict it
    assert tree_size(dest) == len(b"all:\n") + len(b"#!/bin/sh\n") == size


BAD = {
    "absolute": [{"name": "/etc/evil", "data": b"x"}],
    "dotdot": [{"name": f"{TOP}/../evil", "data": b"x"}],
    "dotdot-deep": [{"name": f"{TOP}/a/../../evil", "data": b"x"}],
    "device": [{"name": f"{TOP}/dev", "kind": tarfile.CHRTYPE}],
    "fifo": [{"name": f"{TOP}/fifo", "kind": tarfile.FIFOTYPE}],
    "symlink-out": [{"name": f"{TOP}/up", "kind": tarfile.SYMTYPE, "linkname": "../../../etc"}],
    "symlink-absolute": [{"name": f"{TOP}/abs", "kind": tarfile.SYMTYPE, "linkname": "/etc/passwd"}],
    "through-symlink": [
        {"name": f"{TOP}/up", "kind": tarfile.SYMTYPE, "linkname": ".."},
        {"name": f"{TOP}/up/escaped", "data": b"x"},
    ],
    "hardlink-out": [{"name": f"{TOP}/h", "kind": tarfile.LNKTYPE, "linkname": "/etc/passwd"}],
    "file-at-top": [{"name": "loose-file", "data": b"x"}],
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest_twisted.ensureDeferred
async def test_refuses_members_that_escape(tmp_path: Path, case: str) -> None:
    archive = make_tar(tmp_path / "ib.tar.zst", BAD[case])
    dest = tmp_path / "box" / "out"
    dest.mkdir(parents=True)
    with pytest.raises(UnsafeArchive):
        await unpack_archive(archive, dest)
    assert list(dest.iterdir()) == []  # refused before anything was extracted
    assert not (tmp_path / "box" / "evil").exists()
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "box" / "escaped").exists()


@pytest_twisted.ensureDeferred
async def test_corrupt_archive_is_an_upstream_error(tmp_path: Path) -> None:
    archive = tmp_path / "ib.tar.zst"
    archive.write_bytes(b"not zstd at all")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UpstreamError):
        await unpack_archive(archive, dest)


def test_listing_names_are_read_exactly() -> None:
    from asud.build.unpack import check_listing, parse_listing

    listing = (
        'drwxr-xr-x 0/0         0 2024-01-01 00:00 "top/"\n'
        '-rw-r--r-- 0/0         1 2024-01-01 00:00 "top/a b -> c"\n'
        '-rw-r--r-- 0/0         1 2024-01-01 00:00 "top/we\\"ird\\nname \\303\\274"\n'
        'lrwxrwxrwx 0/0         0 2024-01-01 00:00 "top/link" -> "a b -> c"\n'
        'hrw-r--r-- 0/0         0 2024-01-01 00:00 "top/hard" link to "top/a b -> c"\n'
    )
    members = parse_listing(listing)
    assert [(m.kind, m.name, m.link) for m in members] == [
        ("d", "top/", ""),
        ("-", "top/a b -> c", ""),
        ("-", 'top/we"ird\nname ü', ""),
        ("l", "top/link", "a b -> c"),
        ("h", "top/hard", "top/a b -> c"),
    ]
    assert check_listing(listing, "ib.tar") == 5
