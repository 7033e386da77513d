"""Validation against a catalog loaded from the demo download tree (no ImageBuilders needed)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from asud.build.request import BuildRequest, parse_build_request
from asud.build.validate import RequestLimits, ValidatedRequest, is_repository_allowed, validate_request
from asud.config import Config, DistroSettings, RequestSettings
from asud.errors import BadRequest, DefaultsRejected, PackageConflict, UnknownPackages
from tests.support.upstream import demo_tree

__all__ = ["demo_tree"]

KEY = "untrusted comment: test\nRWSrHfFmlHslUcLbXFIRp+eEikWF9z1N77IJiX5Bt/nJd1a/x+L+SU89\n"
ALLOW = ("https://feeds.example.org/openwrt/",)


@pytest_twisted.async_fixture(scope="module")
async def catalog(demo_tree: Any) -> Any:
    from tests.catalog.helpers import load_demo_catalog

    return await load_demo_catalog(demo_tree)


def _request(**fields: object) -> BuildRequest:
    body = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink,archer-c7-v5",
            "packages": ["luci"], **fields}
    return parse_build_request(body)


LIMITS = RequestLimits(repository_allow_list=ALLOW)


async def validate(request: BuildRequest, catalog: Any, limits: RequestLimits = LIMITS) -> ValidatedRequest:
    return await validate_request(request, catalog, limits)


@pytest_twisted.ensureDeferred
async def test_valid_opkg_request_predicts_manifest(catalog: Any) -> None:
    validated = await validate(_request(diff_packages=True, packages=["luci", "htop", "dropbear"]), catalog)
    assert validated.profile == "tplink_archer-c7-v5"
    assert validated.request.profile == "tplink_archer-c7-v5"
    assert validated.manifest is not None and "luci" in validated.manifest and "htop" in validated.manifest
    assert "-ppp" in validated.build_packages and "htop" in validated.build_packages
    assert validated.version_code.startswith("r")
    assert validated.bin_dir == validated.request_hash
    assert validated.job()["version_path"] == "releases/24.10.4"
    assert validated.echo() == validated.request.to_json()
    assert validated.echo()["profile"] == "tplink_archer-c7-v5"


@pytest_twisted.ensureDeferred
async def test_same_image_from_different_requests_shares_key(catalog: Any) -> None:
    a = await validate(_request(packages=["luci", "htop"]), catalog)
    b = await validate(_request(packages=["htop", "luci", "luci"], client="ofs/1"), catalog)
    c = await validate(_request(packages=["luci", "htop"], version_code=a.version_code), catalog)
    assert a.request_hash == b.request_hash and a.image_key == b.image_key
    assert a.request_hash != c.request_hash and a.image_key == c.image_key


@pytest_twisted.ensureDeferred
async def test_apk_request(catalog: Any) -> None:
    validated = await validate(
        _request(version="SNAPSHOT", target="x86/64", profile="generic", packages=["luci", "-ppp"]), catalog
    )
    assert validated.package_manager == "apk" and validated.manifest is None
    with pytest.raises(UnknownPackages) as info:
        await validate(_request(version="SNAPSHOT", target="x86/64", profile="generic",
                                packages=["luci", "no-such-pkg"]), catalog)
    assert "no-such-pkg" in info.value.detail


@pytest.mark.parametrize("version", ["25.12.1", "SNAPSHOT"])
@pytest_twisted.ensureDeferred
async def test_apk_request_with_the_full_default_list(catalog: Any, version: str) -> None:
    """The Firmware Selector sends every default and device package (virtual names such as ``nftables``
    included, which apk's index.json does not list) with ``diff_packages``; that must validate."""
    target = catalog.target("openwrt", version, "x86/64")
    profile = catalog.profile("openwrt", version, "x86/64", "generic")
    assert target is not None and profile is not None
    shipped = [*target.default_packages, *profile.device_packages]
    index_names = set((await catalog.target_index("openwrt", version, "x86/64"))["packages"])
    assert any(name not in index_names for name in shipped), "the demo should ship a virtual default"
    validated = await validate(
        _request(version=version, target="x86/64", profile="generic", packages=[*shipped, "luci"],
                 diff_packages=True),
        catalog,
    )
    assert "luci" in validated.build_packages


@pytest_twisted.ensureDeferred
async def test_packages_versions_without_packages(catalog: Any) -> None:
    validated = await validate(_request(packages=[], packages_versions={"luci": "1", "htop": "2"}), catalog)
    assert set(validated.build_packages) == {"luci", "htop"} and validated.versioned
    plain = await validate(_request(packages=["luci", "htop"]), catalog)
    assert plain.image_key != validated.image_key


@pytest.mark.parametrize(
    ("fields", "limits", "error", "detail"),
    [
        ({"defaults": "echo"}, LIMITS, DefaultsRejected, "Handling `defaults` not enabled on server"),
        ({"defaults": "x" * 50}, RequestLimits(allow_defaults=True, max_defaults_length=10), DefaultsRejected,
         "exceeds"),
        ({"repositories": {"x": "https://evil.example.org/openwrt/"}}, LIMITS, BadRequest,
         "Repository not allowed: https://evil.example.org/openwrt/"),
        ({"repository_keys": ["not a key"]}, LIMITS, BadRequest, "Invalid repository key"),
        ({"distro": "lede"}, LIMITS, BadRequest, "Unsupported distro: lede"),
        ({"version": "19.07.10"}, LIMITS, BadRequest, "Unsupported branch: 19.07.10"),
        ({"version": "24.10.99"}, LIMITS, BadRequest, "Unsupported version: 24.10.99"),
        ({"target": "foo/bar"}, LIMITS, BadRequest, "Unsupported target: foo/bar"),
        ({"profile": "foo"}, LIMITS, BadRequest,
         "Unsupported profile: foo. The requested profile was either dropped or never existed. Please check "
         "the forums for more information."),
        ({"packages": ["a", "b", "c"]}, RequestLimits(max_packages=2), BadRequest, "Too many packages"),
        ({"rootfs_size_mb": 4096}, LIMITS, BadRequest, "rootfs_size_mb 4096 exceeds"),
        ({"packages": ["luci", "lucy"]}, LIMITS, UnknownPackages, "Unknown package(s): lucy"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_errors_and_messages(
    catalog: Any, fields: dict[str, object], limits: RequestLimits, error: type[Exception], detail: str
) -> None:
    with pytest.raises(error) as info:
        await validate(_request(**fields), catalog, limits)
    assert detail in info.value.detail  # type: ignore[attr-defined]
    assert isinstance(info.value.detail, str)  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_order_defaults_before_everything(catalog: Any) -> None:
    with pytest.raises(DefaultsRejected):
        await validate(_request(defaults="x", version="0.0", profile="nope"), catalog)
    with pytest.raises(BadRequest, match="Repository not allowed"):
        await validate(_request(repositories={"x": "http://a/"}, version="0.0"), catalog)
    with pytest.raises(BadRequest, match="Unsupported version"):
        await validate(_request(version="24.10.99", profile="nope", packages=["nope"]), catalog)


@pytest_twisted.ensureDeferred
async def test_conflicting_selection(catalog: Any) -> None:
    with pytest.raises((PackageConflict, UnknownPackages)):
        await validate(_request(packages=["wpad-basic-mbedtls", "wpad-basic-wolfssl", "wpad"]), catalog)


@pytest_twisted.ensureDeferred
async def test_defaults_allowed_give_private_bin_dir(catalog: Any) -> None:
    validated = await validate(_request(defaults="echo hi"), catalog, RequestLimits(allow_defaults=True))
    assert validated.bin_dir.startswith(validated.request_hash + "-") and len(validated.bin_dir) == 129
    allowed = await validate(
        _request(repositories={"extra": "https://feeds.example.org/openwrt/extra/packages.adb"},
                 repository_keys=[KEY]),
        catalog,
    )
    assert allowed.request.repositories_mode == "append"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://feeds.example.org/openwrt/x", True),
        ("https://feeds.example.org/openwrt", True),
        ("https://FEEDS.example.org/openwrt/x", True),
        ("http://feeds.example.org/openwrt/x", False),
        ("https://feeds.example.org/openwrtx/", False),
        ("https://feeds.example.org.evil.com/openwrt/", False),
        ("https://evil.com@feeds.example.org/openwrt/", False),
        ("https://feeds.example.org@evil.com/openwrt/", False),
        ("https://feeds.example.org/openwrt/../private", False),
        ("https://feeds.example.org/openwrt/%2e%2e/private", False),
        ("https://feeds.example.org:8443/openwrt/x", False),
        ("https://feeds.example.org/openwrt/x?y=1", False),
        ("https://feeds.example.org/openwrt\\..\\x", False),
        ("ftp://feeds.example.org/openwrt/x", False),
        ("file:///etc/passwd", False),
    ],
)
def test_repository_allow_list(url: str, ok: bool) -> None:
    assert is_repository_allowed(url, ALLOW) is ok


def test_limits_from_config() -> None:
    config = Config(
        requests=RequestSettings(allow_defaults=True, max_defaults_length=10, max_custom_rootfs_size_mb=64,
                                 max_packages=7, repository_allow_list=list(ALLOW)),
        distros={"openwrt": DistroSettings(), "libremesh": DistroSettings()},
    )
    assert RequestLimits.from_config(config) == RequestLimits(
        allow_defaults=True, max_defaults_length=10, max_custom_rootfs_size_mb=64, max_packages=7,
        repository_allow_list=ALLOW, distros=frozenset({"openwrt", "libremesh"}),
    )
    assert RequestLimits.from_config(Config()) == RequestLimits()
