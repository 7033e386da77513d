"""The store: content addressing, hard-linked bin_dirs, path safety, pruning."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from asud.errors import NotFound
from asud.store.files import Store

HASH_A = "a" * 64
HASH_B = "b" * 64
PRIVATE = f"{'c' * 64}-{'d' * 64}"


def _file(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def test_import_returns_sha256_of_the_served_bytes(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    image = _file(tmp_path / "out", "openwrt-x86-64-generic-squashfs-combined.img.gz", b"image bytes")
    hashes = store.import_files(HASH_A, [image])
    served = store.resolve(HASH_A, image.name)
    assert hashes[image.name] == hashlib.sha256(served.read_bytes()).hexdigest()
    assert served.read_bytes() == b"image bytes"


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    image = _file(tmp_path / "out", "image.bin", b"x" * 1000)
    store.import_files(HASH_A, [image])
    store.import_files(HASH_B, [image])
    assert store.usage_bytes() == 1000
    inode_a = os.stat(store.resolve(HASH_A, "image.bin")).st_ino
    assert inode_a == os.stat(store.resolve(HASH_B, "image.bin")).st_ino


def test_write_text_and_files(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    digest = store.write_text(HASH_A, "build.log", "hello\n")
    assert digest == hashlib.sha256(b"hello\n").hexdigest()
    assert store.files(HASH_A) == {"build.log": 6}
    assert store.resolve(HASH_A, "build.log").read_text() == "hello\n"


@pytest.mark.parametrize(
    ("bin_dir", "name"),
    [
        (HASH_A, "../" + HASH_B + "/x"),
        (HASH_A, ".."),
        (HASH_A, "..%2Fetc%2Fpasswd"),
        (HASH_A, "%2e%2e"),
        (HASH_A, "a/b"),
        (HASH_A, "a\\b"),
        (HASH_A, ".hidden"),
        (HASH_A, "a\x00b"),
        (HASH_A, "image.bin\n"),
        ("..", "image.bin"),
        ("objects", HASH_A),
        ("tmp", "x"),
        (HASH_A.upper(), "image.bin"),
        (HASH_A + "/..", "image.bin"),
        ("%2e%2e", "image.bin"),
        ("", "image.bin"),
    ],
)
def test_resolve_refuses_traversal(tmp_path: Path, bin_dir: str, name: str) -> None:
    store = Store(tmp_path / "store")
    store.write_text(HASH_A, "image.bin", "x")
    with pytest.raises(NotFound):
        store.resolve(bin_dir, name)


def test_resolve_refuses_symlink_out_of_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.write_text(HASH_A, "image.bin", "x")
    secret = _file(tmp_path, "secret", b"secret")
    os.symlink(secret, store.root / HASH_A / "evil.bin")
    with pytest.raises(NotFound):
        store.resolve(HASH_A, "evil.bin")
    with pytest.raises(NotFound):
        store.resolve(HASH_A, "missing.bin")


def test_invalid_names_are_refused_on_import(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with pytest.raises(ValueError):
        store.write_text("../x", "build.log", "x")
    with pytest.raises(ValueError):
        store.write_text(HASH_A, "..", "x")


def test_private_bin_dirs_are_not_listed(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.write_text(HASH_A, "build.log", "a")
    store.write_text(PRIVATE, "build.log", "b")
    assert store.bin_dirs() == [HASH_A]
    assert store.resolve(PRIVATE, "build.log").read_text() == "b"


def test_prune_evicts_least_recently_used_and_keeps(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.write_bytes(HASH_A, "a.bin", b"a" * 100)
    store.write_bytes(HASH_B, "b.bin", b"b" * 100)
    store.write_bytes(PRIVATE, "c.bin", b"c" * 100)
    os.utime(store.root / HASH_A, (1000, 1000))
    os.utime(store.root / HASH_B, (2000, 2000))
    os.utime(store.root / PRIVATE, (3000, 3000))
    removed = store.prune(150, keep={HASH_A})
    assert removed == [HASH_B, PRIVATE]
    assert store.usage_bytes() == 100
    assert store.exists(HASH_A)
    assert not store.exists(HASH_B)


def test_remove_keeps_objects_still_linked(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.write_bytes(HASH_A, "x.bin", b"shared")
    store.write_bytes(HASH_B, "x.bin", b"shared")
    store.write_bytes(HASH_B, "y.bin", b"only b")
    store.remove(HASH_A)
    assert store.resolve(HASH_B, "x.bin").read_bytes() == b"shared"
    store.remove(HASH_B)
    assert store.usage_bytes() == 0
