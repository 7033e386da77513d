"""End to end against the demo upstream: a real demo ImageBuilder fetched over HTTP from 127.0.0.1, its
feeds prefetched and verified, and ``make info/manifest/image`` run inside bwrap with no network."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asud.errors import BuildError, ImageTooBig
from asud.upstream.usign import PublicKey, SecretKey, parse_public_key
from sysup.imagebuilders.cache import ImageBuilderCache
from sysup.imagebuilders.keys import install_keys, read_usign_keys
from sysup.imagebuilders.package_cache import LocalFeed, PackageCache, RepositoriesFile, read_repositories
from sysup.imagebuilders.runner import ImageBuilderRunner, ImpossiblePackageSelection
from sysup.imagebuilders.sandbox import Sandbox, find_sandbox
from sysup.imagebuilders.workspace import Workspace, make_workspace
from sysup.upstream.fetch import Fetcher
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree

pytestmark = pytest.mark.slow

SMALL_FLASH_DEVICE = "tplink_tl-wr842n-v3"


@dataclass
class Env:
    url: str
    key: PublicKey
    cache: ImageBuilderCache
    packages: PackageCache
    sandbox: Sandbox
    root: Path


@pytest.fixture(scope="module")
def env(demo_tree: DemoTree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_executable("bwrap", "bubblewrap")
    require_executable("mksquashfs", "squashfs-tools")
    info, url = demo_tree
    root = tmp_path_factory.mktemp("ib-e2e")
    with Fetcher(timeout=10, retries=1) as fetcher:
        yield Env(
            url,
            parse_public_key(info.public_key_text),
            ImageBuilderCache(root / "ib", fetcher, 10**10),
            PackageCache(root / "pkg", fetcher),
            find_sandbox("bwrap"),
            root,
        )


@dataclass
class Prepared:
    workspace: Workspace
    runner: ImageBuilderRunner
    repositories: RepositoriesFile
    feeds: list[LocalFeed]


def prepare(env: Env, path: str, target: str, extra_keys: list[str] = ()) -> Prepared:
    """ensure → workspace → keys → prefetch indexes → rewrite repositories (the worker's sequence)."""
    with env.cache.lease(env.url, path, target, [env.key]) as ib_dir:
        workspace = make_workspace(ib_dir, env.root / "workspaces")
    install_keys(workspace.path / "keys", list(extra_keys))
    repositories = read_repositories(workspace.path)
    feeds = env.packages.prefetch_indexes(repositories, [*read_usign_keys(workspace.path / "keys"), env.key])
    env.packages.rewrite_repositories(workspace.path, repositories, feeds)
    runner = ImageBuilderRunner(workspace.path, env.sandbox, 120, 64 * 1024**2)
    return Prepared(workspace, runner, repositories, feeds)


def build(env: Env, prepared: Prepared, profile: str, packages: list[str], bin_dir: Path, **image_args):
    manifest = prepared.runner.manifest(profile, packages)
    fetched = env.packages.prefetch_packages(prepared.feeds, manifest)
    assert set(fetched.missing) <= {"kernel", "libc"}, fetched.missing
    env.packages.rewrite_repositories(prepared.workspace.path, prepared.repositories, prepared.feeds, fetched)
    args = {
        "files_dir": None,
        "extra_image_name": "",
        "rootfs_partsize": None,
        "rootfs_filesystem": None,
        "supports_rootfs_filesystem": False,
        **image_args,
    }
    return manifest, prepared.runner.image(profile, packages, bin_dir=bin_dir, **args)


ERAS = [
    ("releases/23.05.5", "ath79/generic", "tplink_archer-c7-v5"),  # opkg, .tar.xz
    ("releases/24.10.4", "ath79/generic", "tplink_archer-c7-v5"),  # opkg, .tar.zst, kmods feed
    ("releases/25.12.1", "ath79/generic", "tplink_archer-c7-v5"),  # apk
]


@pytest.mark.parametrize(("path", "target", "profile"), ERAS, ids=[e[0] for e in ERAS])
def test_build_each_era(env: Env, tmp_path: Path, path: str, target: str, profile: str) -> None:
    prepared = prepare(env, path, target)
    with prepared.workspace:
        info = prepared.runner.info()
        assert info.target == target and profile in info.profiles
        assert not prepared.runner.supports_rootfs_filesystem()
        files = tmp_path / "files" / "etc" / "uci-defaults"
        files.mkdir(parents=True)
        (files / "99-asu-defaults").write_text("echo hi\n")
        manifest, result = build(
            env,
            prepared,
            profile,
            ["luci", "-uboot-envtools"],
            tmp_path / "bin",
            files_dir=tmp_path / "files",
            extra_image_name="abc123",
        )
        assert "luci" in manifest and "uboot-envtools" not in manifest
        entry = result.profiles.profiles[profile]
        assert entry.images
        for image in entry.images:
            data = (tmp_path / "bin" / image.name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == image.sha256
            assert "abc123" in image.name
        assert result.build_cmd[:2] == ["make", "image"]
        assert (
            f"PROFILE={profile}" in result.build_cmd and "PACKAGES=luci -uboot-envtools" in result.build_cmd
        )


def test_snapshot_rootfs_filesystem_and_warm_image_time(env: Env, tmp_path: Path) -> None:
    prepared = prepare(env, "snapshots", "x86/64")
    with prepared.workspace:
        runner = prepared.runner
        assert runner.supports_rootfs_filesystem()
        _, result = build(
            env,
            prepared,
            "generic",
            [],
            tmp_path / "bin",
            rootfs_filesystem="squashfs",
            supports_rootfs_filesystem=True,
        )
        images = result.profiles.profiles["generic"].images
        assert images and all(image.filesystem == "squashfs" for image in images)
        # A warm build: the IB is cached, the feeds and packages are local; time the bare `make image`.
        started = time.monotonic()
        runner.image(
            "generic",
            [],
            bin_dir=tmp_path / "bin2",
            files_dir=None,
            extra_image_name="",
            rootfs_partsize=None,
            rootfs_filesystem="squashfs",
            supports_rootfs_filesystem=True,
        )
        elapsed = time.monotonic() - started
        print(f"\nwarm `make image` (snapshot x86/64 generic, squashfs only): {elapsed:.2f} s")
        assert elapsed < 60


def test_warm_ensure_is_cheap(env: Env) -> None:
    prepare(env, "releases/24.10.4", "ath79/generic").workspace.cleanup()
    started = time.monotonic()
    prepared = prepare(env, "releases/24.10.4", "ath79/generic")
    prepared.workspace.cleanup()
    assert time.monotonic() - started < 5


def test_failures_are_mapped(env: Env, tmp_path: Path) -> None:
    prepared = prepare(env, "releases/24.10.4", "ath79/generic")
    runner = prepared.runner
    with prepared.workspace:
        with pytest.raises(ImpossiblePackageSelection) as caught:
            runner.manifest("tplink_archer-c7-v5", ["does-not-exist"])
        assert caught.value.packages == ["does-not-exist"]
        assert "Cannot install package does-not-exist" in caught.value.stderr
        with pytest.raises(BuildError, match="does not exist"):
            runner.manifest("no_such_profile", [])
        with pytest.raises(ImageTooBig, match="exceed device storage"):
            build(env, prepared, SMALL_FLASH_DEVICE, ["python3-light"], tmp_path / "bin")


def test_apk_unknown_package(env: Env) -> None:
    prepared = prepare(env, "releases/25.12.1", "ath79/generic")
    with prepared.workspace, pytest.raises(ImpossiblePackageSelection) as caught:
        prepared.runner.manifest("tplink_archer-c7-v5", ["nope-pkg"])
    assert caught.value.packages == ["nope-pkg"]
    assert "no such package" in caught.value.stderr


def test_extra_keys_land_in_the_workspace(env: Env) -> None:
    extra = SecretKey.generate(b"\x07" * 32).public_key
    prepared = prepare(env, "releases/24.10.4", "ath79/generic", extra_keys=[extra.to_text()])
    with prepared.workspace:
        assert (prepared.workspace.path / "keys" / extra.fingerprint).read_text() == extra.to_text()
        ib_dir = env.cache.ensure(env.url, "releases/24.10.4", "ath79/generic", [env.key])
        assert not (ib_dir / "keys" / extra.fingerprint).exists()
