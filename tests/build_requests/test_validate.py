"""Validation against a catalog synced from the demo download tree (no ImageBuilders needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from asud.demo.generator import generate_tree
from asud.errors import BadRequest, DefaultsRejected, PackageConflict, UnknownPackages
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.validate import RequestLimits, is_repository_allowed, validate_request
from sysup.catalog.queries import Catalog
from sysup.catalog.sync import sync_distro
from sysup.config import DistroSettings
from sysup.database import create_engine_for, session_factory
from sysup.database.migrate import upgrade_database
from sysup.upstream.fetch import Fetcher

KEY = "untrusted comment: test\nRWSrHfFmlHslUcLbXFIRp+eEikWF9z1N77IJiX5Bt/nJd1a/x+L+SU89\n"
ALLOW = ("https://feeds.example.org/openwrt/",)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    root = tmp_path_factory.mktemp("validate")
    tree = generate_tree(root / "upstream", with_imagebuilders=False)
    url = f"sqlite:///{root / 'sysup.db'}"
    upgrade_database(url)
    engine = create_engine_for(url)
    sessions = session_factory(engine)
    distro = DistroSettings(upstream_url=tree.root.as_uri(), public_keys=[tree.public_key_text])
    with Fetcher() as fetcher:
        report = sync_distro(sessions, "openwrt", distro, fetcher)
    assert report.errors == []
    yield Catalog(sessions, {"openwrt": distro})
    engine.dispose()


def _request(**fields: object) -> BuildRequest:
    body = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink,archer-c7-v5",
            "packages": ["luci"], **fields}
    return BuildRequest.model_validate(body)


LIMITS = RequestLimits(repository_allow_list=ALLOW)


def test_valid_opkg_request_predicts_manifest(catalog: Catalog) -> None:
    validated = validate_request(_request(diff_packages=True, packages=["luci", "htop", "dropbear"]), catalog,
                                 LIMITS)
    assert validated.profile == "tplink_archer-c7-v5"
    assert validated.request.profile == "tplink_archer-c7-v5"
    assert validated.manifest is not None and "luci" in validated.manifest and "htop" in validated.manifest
    assert "-ppp" in validated.build_packages and "htop" in validated.build_packages
    assert validated.version_code.startswith("r")
    assert validated.bin_dir == validated.request_hash
    assert validated.job()["version_path"] == "releases/24.10.4"


def test_same_image_from_different_requests_shares_key(catalog: Catalog) -> None:
    a = validate_request(_request(packages=["luci", "htop"]), catalog, LIMITS)
    b = validate_request(_request(packages=["htop", "luci", "luci"], client="ofs/1"), catalog, LIMITS)
    c = validate_request(_request(packages=["luci", "htop"], version_code=a.version_code), catalog, LIMITS)
    assert a.request_hash == b.request_hash and a.image_key == b.image_key
    assert a.request_hash != c.request_hash and a.image_key == c.image_key


def test_apk_request(catalog: Catalog) -> None:
    validated = validate_request(
        _request(version="SNAPSHOT", target="x86/64", profile="generic", packages=["luci", "-ppp"]),
        catalog, LIMITS,
    )
    assert validated.package_manager == "apk" and validated.manifest is None
    with pytest.raises(UnknownPackages) as info:
        validate_request(_request(version="SNAPSHOT", target="x86/64", profile="generic",
                                  packages=["luci", "no-such-pkg"]), catalog, LIMITS)
    assert "no-such-pkg" in info.value.detail


@pytest.mark.parametrize("version", ["25.12.1", "SNAPSHOT"])
def test_apk_request_with_the_full_default_list(catalog: Catalog, version: str) -> None:
    """The Firmware Selector sends every default and device package (virtual names such as ``nftables``
    included, which apk's index.json does not list) with ``diff_packages``; that must validate."""
    target = catalog.target("openwrt", version, "x86/64")
    profile = catalog.profile("openwrt", version, "x86/64", "generic")
    assert target is not None and profile is not None
    shipped = [*target.default_packages, *profile.device_packages]
    index_names = set(catalog.target_index("openwrt", version, "x86/64")["packages"])
    assert any(name not in index_names for name in shipped), "the demo should ship a virtual default"
    validated = validate_request(
        _request(version=version, target="x86/64", profile="generic", packages=[*shipped, "luci"],
                 diff_packages=True),
        catalog, LIMITS,
    )
    assert "luci" in validated.build_packages


def test_packages_versions_without_packages(catalog: Catalog) -> None:
    validated = validate_request(
        _request(packages=[], packages_versions={"luci": "1", "htop": "2"}), catalog, LIMITS
    )
    assert set(validated.build_packages) == {"luci", "htop"} and validated.versioned
    plain = validate_request(_request(packages=["luci", "htop"]), catalog, LIMITS)
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
def test_errors_and_messages(
    catalog: Catalog, fields: dict[str, object], limits: RequestLimits, error: type[Exception], detail: str
) -> None:
    with pytest.raises(error) as info:
        validate_request(_request(**fields), catalog, limits)
    assert detail in info.value.detail  # type: ignore[attr-defined]
    assert isinstance(info.value.detail, str)  # type: ignore[attr-defined]


def test_order_defaults_before_everything(catalog: Catalog) -> None:
    with pytest.raises(DefaultsRejected):
        validate_request(_request(defaults="x", version="0.0", profile="nope"), catalog, LIMITS)
    with pytest.raises(BadRequest, match="Repository not allowed"):
        validate_request(_request(repositories={"x": "http://a/"}, version="0.0"), catalog, LIMITS)
    with pytest.raises(BadRequest, match="Unsupported version"):
        validate_request(_request(version="24.10.99", profile="nope", packages=["nope"]), catalog, LIMITS)


def test_conflicting_selection(catalog: Catalog) -> None:
    with pytest.raises((PackageConflict, UnknownPackages)):
        validate_request(_request(packages=["wpad-basic-mbedtls", "wpad-basic-wolfssl", "wpad"]), catalog,
                         LIMITS)


def test_defaults_allowed_give_private_bin_dir(catalog: Catalog) -> None:
    validated = validate_request(_request(defaults="echo hi"), catalog, RequestLimits(allow_defaults=True))
    assert validated.bin_dir.startswith(validated.request_hash + "-") and len(validated.bin_dir) == 129
    allowed = validate_request(
        _request(repositories={"extra": "https://feeds.example.org/openwrt/extra/packages.adb"},
                 repository_keys=[KEY]),
        catalog, LIMITS,
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
