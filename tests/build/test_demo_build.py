"""End to end against the demo upstream: a real demo ImageBuilder fetched over HTTP from 127.0.0.1, its
feeds prefetched and verified, and ``make info/manifest/image`` run inside bwrap with no network.

Ported from sysup's tests/imagebuilders/test_demo_build.py (same assertions); every step is a Deferred
and every ``make`` a child process on the reactor.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted

from asud.build.feeds import LocalFeed
from asud.build.imagebuilders import ImageBuilderCache
from asud.build.keys import install_keys, read_usign_keys
from asud.build.packages import PackageCache, RepositoriesFile, read_repositories
from asud.build.runner import ImageBuilderRunner, ImpossiblePackageSelection
from asud.build.sandbox import Sandbox, find_sandbox
from asud.build.workspace import Workspace, make_workspace
from asud.errors import BuildError, ImageTooBig
from asud.upstream.usign import PublicKey, SecretKey, parse_public_key
from tests.catalog.helpers import demo_fetcher
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

pytestmark = pytest.mark.slow

SMALL_FLASH_DEVICE = "tplink_tl-wr842n-v3"


@attrs.define
class Env:
    url: str
    key: PublicKey
    cache: ImageBuilderCache
    packages: PackageCache
    sandbox: Sandbox
    root: Path


@pytest.fixture(scope="module")
def env(demo_tree: DemoTree, tmp_path_factory: pytest.TempPathFactory) -> Env:
    require_executable("bwrap", "bubblewrap")
    require_executable("mksquashfs", "squashfs-tools")
    info, url = demo_tree
    root = tmp_path_factory.mktemp("ib-e2e")
    fetcher = demo_fetcher(retries=1)  # keeps no connection: nothing left on the reactor between tests
    return Env(
        url,
        parse_public_key(info.public_key_text),
        ImageBuilderCache(root / "ib", fetcher, 10**10),
        PackageCache(root / "pkg", fetcher),
        find_sandbox("bwrap", kill_grace=2),
        root,
    )


@attrs.define
class Prepared:
    workspace: Workspace
    runner: ImageBuilderRunner
    repositories: RepositoriesFile
    feeds: list[LocalFeed]


async def prepare(env: Env, path: str, target: str, extra_keys: list[str] | None = None) -> Prepared:
    """lease → workspace → keys → prefetch indexes → rewrite repositories (the pipeline's sequence)."""
    with await env.cache.lease(env.url, path, target, [env.key]) as lease:
        workspace = await make_workspace(lease.path, env.root / "workspaces")
    install_keys(workspace.path / "keys", list(extra_keys or []))
    repositories = read_repositories(workspace.path)
    feeds = await env.packages.prefetch_indexes(
        repositories, [*read_usign_keys(workspace.path / "keys"), env.key]
    )
    await env.packages.rewrite_repositories(workspace.path, repositories, feeds)
    runner = ImageBuilderRunner(workspace.path, env.sandbox, 120, 64 * 1024**2)
    return Prepared(workspace, runner, repositories, feeds)


async def build(env: Env, prepared: Prepared, profile: str, packages: list[str], bin_dir: Path,
                **image_args: Any) -> Any:
    manifest = await prepared.runner.manifest(profile, packages)
    fetched = await env.packages.prefetch_packages(prepared.feeds, manifest)
    assert set(fetched.missing) <= {"kernel", "libc"}, fetched.missing
    await env.packages.rewrite_repositories(
        prepared.workspace.path, prepared.repositories, prepared.feeds, fetched
    )
    args = {
        "files_dir": None,
        "extra_image_name": "",
        "rootfs_partsize": None,
        "rootfs_filesystem": None,
        "supports_rootfs_filesystem": False,
        **image_args,
    }
    return manifest, await prepared.runner.image(profile, packages, bin_dir=bin_dir, **args)


ERAS = [
    ("releases/23.05.5", "ath79/generic", "tplink_archer-c7-v5"),  # opkg, .tar.xz
    ("releases/24.10.4", "ath79/generic", "tplink_archer-c7-v5"),  # opkg, .tar.zst, kmods feed
    ("releases/25.12.1", "ath79/generic", "tplink_archer-c7-v5"),  # apk
]


@pytest.mark.parametrize(("path", "target", "profile"), ERAS, ids=[e[0] for e in ERAS])
@pytest_twisted.ensureDeferred
async def test_build_each_era(env: Env, tmp_path: Path, path: str, target: str, profile: str) -> None:
    prepared = await prepare(env, path, target)
    with prepared.workspace:
        info = await prepared.runner.info()
        assert info.target == target and profile in info.profiles
        assert not await prepared.runner.supports_rootfs_filesystem()
        files = tmp_path / "files" / "etc" / "uci-defaults"
        files.mkdir(parents=True)
        (files / "99-asu-defaults").write_text("echo hi\n")
        manifest, result = await build(
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


@pytest_twisted.ensureDeferred
async def test_snapshot_rootfs_filesystem_and_warm_image_time(env: Env, tmp_path: Path) -> None:
    prepared = await prepare(env, "snapshots", "x86/64")
    with prepared.workspace:
        runner = prepared.runner
        assert await runner.supports_rootfs_filesystem()
        _, result = await build(
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
        await runner.image(
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


@pytest_twisted.ensureDeferred
async def test_warm_ensure_is_cheap(env: Env) -> None:
    (await prepare(env, "releases/24.10.4", "ath79/generic")).workspace.cleanup()
    started = time.monotonic()
    prepared = await prepare(env, "releases/24.10.4", "ath79/generic")
    prepared.workspace.cleanup()
    assert time.monotonic() - started < 5


@pytest_twisted.ensureDeferred
async def test_failures_are_mapped(env: Env, tmp_path: Path) -> None:
    prepared = await prepare(env, "releases/24.10.4", "ath79/generic")
    runner = prepared.runner
    with prepared.workspace:
        with pytest.raises(ImpossiblePackageSelection) as caught:
            await runner.manifest("tplink_archer-c7-v5", ["does-not-exist"])
        assert caught.value.packages == ["does-not-exist"]
        assert "Cannot install package does-not-exist" in caught.value.stderr
        with pytest.raises(BuildError, match="does not exist"):
            await runner.manifest("no_such_profile", [])
        with pytest.raises(ImageTooBig, match="exceed device storage"):
            await build(env, prepared, SMALL_FLASH_DEVICE, ["python3-light"], tmp_path / "bin")


@pytest_twisted.ensureDeferred
async def test_apk_unknown_package(env: Env) -> None:
    prepared = await prepare(env, "releases/25.12.1", "ath79/generic")
    with prepared.workspace, pytest.raises(ImpossiblePackageSelection) as caught:
        await prepared.runner.manifest("tplink_archer-c7-v5", ["nope-pkg"])
    assert caught.value.packages == ["nope-pkg"]
    assert "no such package" in caught.value.stderr


@pytest_twisted.ensureDeferred
async def test_extra_keys_land_in_the_workspace(env: Env) -> None:
    extra = SecretKey.generate(b"\x07" * 32).public_key
    prepared = await prepare(env, "releases/24.10.4", "ath79/generic", extra_keys=[extra.to_text()])
    with prepared.workspace:
        assert (prepared.workspace.path / "keys" / extra.fingerprint).read_text() == extra.to_text()
        ib_dir = await env.cache.ensure(env.url, "releases/24.10.4", "ath79/generic", [env.key])
        assert not (ib_dir / "keys" / extra.fingerprint).exists()
