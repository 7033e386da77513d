"""Resolution outcomes kept per catalog (``asud.build.resolutions``): a selection sent again is answered
the same, without resolving it again; a catalog that changed answers afresh; the cache stays bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from asud.build.request import BuildRequest, parse_build_request
from asud.build.resolutions import ResolutionCache, ResolutionKey, Resolved, key_weight, resolutions_of
from asud.build.validate import RequestLimits, ValidatedRequest, validate_request
from asud.demo.checksums import write_sha256sums
from asud.demo.signing import demo_key, sign_file
from asud.errors import AsudError, PackageConflict, UnknownPackages
from asud.http.root import make_resource
from asud.http.state import AsudApp
from tests.catalog.helpers import (
    TreeServer,
    copy_tree,
    demo_fetcher,
    load_demo,
    load_demo_catalog,
    replace_file,
)
from tests.http.client import StubClient
from tests.http.conftest import close_app, demo_settings, open_app
from tests.http.legacy_bodies import assert_legacy_error, ath79_body
from tests.support.redis import RedisProcess
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

LIMITS = RequestLimits()
#: Two of the ``wpad-*`` trio, which conflict with each other (the benchmark's selection).
CONFLICTING = ["wpad-basic-mbedtls", "wpad-mini"]


def _request(packages: list[str], **fields: object) -> BuildRequest:
    return parse_build_request({"version": "24.10.4", "target": "ath79/generic",
                                "profile": "tplink,archer-c7-v5", "packages": packages, **fields})


async def _refusal(request: BuildRequest, catalog: Any, cache: ResolutionCache | None) -> AsudError:
    try:
        await validate_request(request, catalog, LIMITS, cache)
    except AsudError as error:
        return error
    raise AssertionError("the selection was accepted")


@pytest_twisted.async_fixture(scope="module")
async def catalog(demo_tree: DemoTree) -> Any:
    return await load_demo_catalog(demo_tree)


# -- through validation --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_refused_selection_sent_again_is_refused_alike_without_resolving(catalog: Any) -> None:
    cache = ResolutionCache()
    request = _request([*CONFLICTING, "htop"])
    uncached = await _refusal(request, catalog, None)
    first = await _refusal(request, catalog, cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)
    second = await _refusal(request, catalog, cache)
    assert (cache.hits, cache.misses) == (1, 1)  # answered from the cache: no resolution ran
    for error in (first, second):
        assert type(error) is PackageConflict is type(uncached)
        assert (error.status_code, error.detail, error.args) == (400, uncached.detail, uncached.args)
    assert second is not first and second.__traceback__ is not None  # raised anew, not re-raised


@pytest_twisted.ensureDeferred
async def test_unknown_names_are_refused_alike_with_their_suggestions(catalog: Any) -> None:
    cache = ResolutionCache()
    request = _request(["luci-app-adblok", "htop"])
    uncached = await _refusal(request, catalog, None)
    await _refusal(request, catalog, cache)
    again = await _refusal(request, catalog, cache)
    assert cache.hits == 1
    assert isinstance(again, UnknownPackages) and isinstance(uncached, UnknownPackages)
    assert again.detail == uncached.detail
    assert (again.names, again.suggestions) == (uncached.names, uncached.suggestions)
    assert "luci-app-adblock" in again.detail


def _fields(validated: ValidatedRequest) -> tuple[Any, ...]:
    return (validated.request_hash, validated.image_key, validated.manifest, validated.build_packages,
            validated.job())


@pytest_twisted.ensureDeferred
async def test_a_valid_selection_sent_again_gives_the_same_validation(catalog: Any) -> None:
    cache = ResolutionCache()
    request = _request(["luci", "htop"], diff_packages=True)
    uncached = await validate_request(request, catalog, LIMITS)
    first = await validate_request(request, catalog, LIMITS, cache)
    second = await validate_request(request, catalog, LIMITS, cache)
    assert (cache.hits, cache.misses) == (1, 1)
    assert _fields(first) == _fields(second) == _fields(uncached)
    assert second.manifest is not None and "luci" in second.manifest
    # each answer has its own copy: changing one changes nothing kept
    second.manifest.clear()
    third = await validate_request(request, catalog, LIMITS, cache)
    assert _fields(third) == _fields(uncached)


@pytest_twisted.ensureDeferred
async def test_other_selections_orders_and_devices_are_resolved_on_their_own(catalog: Any) -> None:
    cache = ResolutionCache()
    await validate_request(_request(["luci", "htop"]), catalog, LIMITS, cache)
    await validate_request(_request(["htop", "luci"]), catalog, LIMITS, cache)  # order can pick providers
    await validate_request(_request(["luci", "htop"], profile="glinet,gl-ar150"), catalog, LIMITS, cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 3)


def test_each_catalog_has_its_own_cache(catalog: Any) -> None:
    cache = resolutions_of(catalog)
    assert cache is not None and resolutions_of(catalog) is cache
    assert resolutions_of(object()) is not cache
    assert resolutions_of(1) is None  # cannot be weakly referenced: nothing cached


# -- through the API -------------------------------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def asud_app(tmp_path: Path, redis_server: RedisProcess, demo_tree: DemoTree) -> AsyncIterator[AsudApp]:
    app = await open_app(demo_settings(tmp_path / "data", demo_tree), redis_server.url, demo_tree)
    try:
        yield app
    finally:
        await close_app(app)


@pytest_twisted.ensureDeferred
async def test_the_api_answers_a_refused_selection_alike_from_the_cache(asud_app: AsudApp) -> None:
    client = StubClient(make_resource(asud_app))
    cache = resolutions_of(asud_app.current_catalog())
    assert cache is not None
    cache.clear()  # the demo catalog is shared by the tests of this process
    packages = ["wpad-mini", "wpad-basic-mbedtls", "htop"]
    body = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink,archer-c7-v5",
            "packages": packages, "client": "asud-tests/1"}
    uncached = await _refusal(_request(packages), asud_app.current_catalog(), None)
    before = (cache.hits, cache.misses)
    first = await client.post("/api/v1/build", json=body)
    assert (cache.hits, cache.misses) == (before[0], before[1] + 1)
    second = await client.post("/api/v1/build", json=body)
    assert (cache.hits, cache.misses) == (before[0] + 1, before[1] + 1)  # no resolution the second time
    assert first.status_code == second.status_code == 400
    assert first.content == second.content
    assert second.json() == {"status": 400, "detail": uncached.detail}
    assert "conflicts with" in uncached.detail
    assert (await client.get("/api/v1/stats")).json()["queue_length"] == 0


# -- a catalog refresh -----------------------------------------------------------------------------------

_NEW_PACKAGE = """
Package: asud-newtool
Version: 1.0-r1
Depends: libc
Section: utils
Architecture: mips_24kc
Installed-Size: 10
Filename: asud-newtool_1.0-r1_mips_24kc.ipk
Size: 100
SHA256sum: {zeros}
Description: A package published upstream after the first load
""".format(zeros="0" * 64)


def _publish_package(root: Path) -> None:
    """Add ``asud-newtool`` to 24.10.4's mips_24kc ``packages`` feed, signed as upstream signs."""
    arch_dir = root / "releases/24.10.4/packages/mips_24kc"
    packages = arch_dir / "packages" / "Packages"
    replace_file(packages, packages.read_bytes().rstrip(b"\n") + b"\n" + _NEW_PACKAGE.encode())
    for name in ("packages/Packages.sig", "sha256sums", "sha256sums.sig"):
        (arch_dir / name).unlink(missing_ok=True)  # hard links into the shared tree: never write through
    key = demo_key(1)
    sign_file(packages, key)
    sign_file(write_sha256sums(arch_dir), key)


@pytest_twisted.ensureDeferred
async def test_a_package_published_upstream_makes_a_refused_selection_valid(
    demo_tree: DemoTree, tmp_path: Path
) -> None:
    root = copy_tree(demo_tree[0].root, tmp_path / "tree")
    server = TreeServer(root)
    url = server.start()
    try:
        fetcher = demo_fetcher()
        old, report = await load_demo(demo_tree, url=url, fetcher=fetcher)
        assert report.ok
        request = _request(["asud-newtool"])
        refused = await _refusal(request, old, resolutions_of(old))
        assert isinstance(refused, UnknownPackages) and refused.names == ["asud-newtool"]
        again = await _refusal(request, old, resolutions_of(old))
        assert again.detail == refused.detail

        _publish_package(root)
        new, report = await load_demo(demo_tree, url=url, fetcher=fetcher, previous=old)
        assert report.ok and new is not old and new.generation == old.generation + 1

        cache = resolutions_of(new)
        assert cache is not None and len(cache) == 0
        validated = await validate_request(request, new, LIMITS, cache)
        assert validated.manifest is not None and validated.manifest["asud-newtool"] == "1.0-r1"
        # the old catalog, still held by requests that began before the swap, answers as before
        assert (await _refusal(request, old, resolutions_of(old))).detail == refused.detail
    finally:
        await server.stop()


# -- the bounds ------------------------------------------------------------------------------------------


def _key(number: int, packages: tuple[str, ...] = ("luci",)) -> ResolutionKey:
    return ("openwrt", "24.10.4", "ath79/generic", "opkg", ("base-files",), (), (*packages, f"p{number:04d}"))


def _resolved(size: int = 3) -> Resolved:
    manifest = {f"package-{n}": "1.0-r1" for n in range(size)}
    return Resolved.of((manifest, manifest))


def test_the_cache_keeps_at_most_its_entries_and_drops_the_least_recently_used() -> None:
    cache = ResolutionCache(entries=3)
    for number in range(3):
        cache.put(_key(number), _resolved())
    assert cache.get(_key(0)) is not None  # 0 is now the most recently used
    cache.put(_key(3), _resolved())
    assert len(cache) == 3
    assert cache.get(_key(1)) is None
    assert all(cache.get(_key(number)) is not None for number in (0, 2, 3))


def test_the_cache_stays_within_its_weight() -> None:
    one = key_weight(_key(0)) + _resolved(50).weight()
    cache = ResolutionCache(entries=1000, weight=one * 10)
    for number in range(100):
        cache.put(_key(number), _resolved(50))
        assert cache.weight <= one * 10
    assert len(cache) == 10
    assert cache.get(_key(99)) is not None and cache.get(_key(89)) is None


def test_an_outcome_heavier_than_an_eighth_of_the_weight_is_not_kept() -> None:
    cache = ResolutionCache(weight=64 * 1024)
    long_selection = tuple(f"{'x' * 120}-{n}" for n in range(500))  # max_packages names of 120 characters
    cache.put(_key(0, long_selection), _resolved())
    assert len(cache) == 0 and cache.weight == 0
    cache.put(_key(1), _resolved())
    assert len(cache) == 1


def test_putting_a_key_again_replaces_its_outcome() -> None:
    cache = ResolutionCache()
    cache.put(_key(0), _resolved(3))
    cache.put(_key(0), Resolved.of(PackageConflict("a conflicts with b")))
    assert len(cache) == 1
    assert cache.weight == key_weight(_key(0)) + Resolved.of(PackageConflict("a conflicts with b")).weight()
    outcome = cache.get(_key(0))
    assert outcome is not None
    with pytest.raises(PackageConflict, match="a conflicts with b"):
        outcome.result()


def test_a_kept_refusal_holds_no_traceback() -> None:
    try:
        raise UnknownPackages(["nope"], {"nope": ["nano"]})
    except UnknownPackages as error:
        kept = Resolved.of(error)
    assert kept.refusal is not None and kept.refusal.__traceback__ is None
    with pytest.raises(UnknownPackages) as raised:
        kept.result()
    assert raised.value.detail == "Unknown package(s): nope (did you mean nano?)"
    assert raised.value.names == ["nope"] and raised.value.suggestions == {"nope": ["nano"]}


@pytest_twisted.ensureDeferred
async def test_the_2017_api_answers_a_refused_selection_alike_from_the_cache(asud_app: AsudApp) -> None:
    client = StubClient(make_resource(asud_app))
    cache = resolutions_of(asud_app.current_catalog())
    assert cache is not None
    cache.clear()
    body = await ath79_body(client, "wpad-mini", "wpad-basic-mbedtls")
    first = await client.post("/api/build-request", json=body)
    hits, misses = cache.hits, cache.misses
    second = await client.post("/api/build-request", json=body)
    assert (cache.hits, cache.misses) == (hits + 1, misses)  # the router's retry ran no resolution
    assert first.content == second.content
    assert "conflicts with" in assert_legacy_error(second, 400)["detail"]
