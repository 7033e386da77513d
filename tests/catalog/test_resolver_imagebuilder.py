"""The resolver's predicted manifest equals what the (miniature) ImageBuilder installs.

The ImageBuilder tarballs of the demo tree are unpacked, their ``repositories.conf`` pointed at the tree
with ``file:`` URLs, and ``make manifest PROFILE=… PACKAGES=… STRIP_ABI=1`` is run; the prediction uses
the loaded catalog plus the ImageBuilder's own local packages (``kernel``, ``libc``), which upstream
indexes never list.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import pytest_twisted

from asud.catalog import Catalog
from asud.catalog.resolver import PackageIndex, resolve
from asud.errors import PackageConflict, UnknownPackages
from asud.upstream.manifest import parse_manifest
from asud.upstream.packages_index import parse_packages
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree

#: Requests exercising alternatives (``luci-ssl``, ``adblock``), Provides (``ip``, ``wpad-basic``),
#: ABI-versioned names (``libubox``), conflicts resolved by removal and plain removals.
REQUESTS = [
    [],
    ["luci"],
    ["luci-ssl", "adblock"],
    ["uclient-fetch", "adblock"],
    ["-dnsmasq", "dnsmasq-full"],
    ["ip"],
    ["wpad-basic", "-wpad-basic-mbedtls"],
    ["libubox", "-ppp", "-ppp-mod-pppoe", "htop"],
]

CASES = [
    ("23.05.5", "x86/64", "generic"),
    ("24.10.4", "ath79/generic", "tplink_archer-c7-v5"),
    ("24.10.5", "mediatek/filogic", "bananapi_bpi-r3"),
]


def _unpack(demo_tree: DemoTree, version: str, target: str, dest: Path) -> Path:
    info, _ = demo_tree
    target_dir = info.version_dir(version) / "targets" / target
    archive = next(target_dir.glob("*-imagebuilder-*.tar.*"))
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(dest), "--strip-components=1", "-xf", str(archive)], check=True)
    conf = dest / "repositories.conf"
    conf.write_text(conf.read_text().replace(info.base_url, info.root.as_uri()))
    return dest


def _imagebuilder_manifest(ib: Path, profile: str, packages: list[str]) -> dict[str, str] | str:
    """The manifest, or the error text when the ImageBuilder refuses."""
    result = subprocess.run(
        ["make", "manifest", f"PROFILE={profile}", f"PACKAGES={' '.join(packages)}", "STRIP_ABI=1"],
        cwd=ib,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        return result.stderr
    return dict(parse_manifest(result.stdout))


@pytest.mark.parametrize(("version", "target", "profile"), CASES)
@pytest_twisted.ensureDeferred
async def test_predicted_manifest_equals_imagebuilder(
    catalog: Catalog, demo_tree: DemoTree, tmp_path: Path, version: str, target: str, profile: str
) -> None:
    for tool in ("make", "tar", "xz", "zstd"):
        require_executable(tool)
    ib = _unpack(demo_tree, version, target, tmp_path / "ib")
    local = parse_packages((ib / "packages" / "Packages").read_text())
    catalog_index = await catalog.package_index("openwrt", version, target)
    # The IB's own kernel/libc replace the catalog's unknown-version stand-ins; the local feed comes last.
    index = PackageIndex(
        [r for r in catalog_index.records if r.version] + local, catalog_index.package_manager
    )
    info = catalog.target("openwrt", version, target)
    assert info is not None
    for request in REQUESTS:
        expected = _imagebuilder_manifest(ib, profile, request)
        predicted = resolve(
            index,
            default_packages=info.default_packages,
            profile_packages=info.profiles[profile].device_packages,
            requested=request,
        )
        assert predicted.manifest == expected, request


@pytest_twisted.ensureDeferred
async def test_impossible_selections_fail_in_both(
    catalog: Catalog, demo_tree: DemoTree, tmp_path: Path
) -> None:
    for tool in ("make", "tar", "zstd"):
        require_executable(tool)
    ib = _unpack(demo_tree, "24.10.4", "ath79/generic", tmp_path / "ib")
    index = await catalog.package_index("openwrt", "24.10.4", "ath79/generic")
    info = catalog.target("openwrt", "24.10.4", "ath79/generic")
    assert info is not None
    profile = "tplink_archer-c7-v5"
    device = info.profiles[profile].device_packages

    conflict = _imagebuilder_manifest(ib, profile, ["ip-full", "ip-tiny"])
    assert isinstance(conflict, str) and "conflict" in conflict
    with pytest.raises(PackageConflict, match="ip-full conflicts with ip-tiny"):
        resolve(
            index,
            default_packages=info.default_packages,
            profile_packages=device,
            requested=["ip-full", "ip-tiny"],
        )

    unknown = _imagebuilder_manifest(ib, profile, ["luci-app-nonexistent"])
    assert isinstance(unknown, str) and "luci-app-nonexistent" in unknown
    with pytest.raises(UnknownPackages) as caught:
        resolve(
            index,
            default_packages=info.default_packages,
            profile_packages=device,
            requested=["luci-app-nonexistent"],
        )
    assert caught.value.names == ["luci-app-nonexistent"]
