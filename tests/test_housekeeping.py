"""The daemon's periodic upkeep: the catalog refreshed from upstream (``CatalogService``) and a round of
pruning (``asud.housekeeping.Housekeeping``) on a real ``redis-server`` and files store, with a ``Clock``
where time matters.

Ported from sysup's ``tests/builds/test_maintenance.py`` (catalog refresh, old upgrade checks forgotten),
plus what the round does besides: index entries of forgotten builds, one failing step not stopping the
others, rounds on the loop until the service stops. The disk budgets (store and ImageBuilder cache) are
``tests/scaleout/test_disk_budget.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from asud.catalog import CatalogService
from asud.config import Config, load
from asud.housekeeping import MIN_CHECK_KEEP, Housekeeping
from asud.store.files import Store
from asud.store.records import BUILD_PREFIX, IMAGE_INDEX_KEY, REQUEST_INDEX_KEY, REQUEST_PREFIX, BuildRecords
from asud.store.redis import Redis
from asud.upgrades.request import UpgradeCheckRequest
from asud.upgrades.store import UpgradeCheckStore
from asud.upstream.etag_cache import EtagCache
from tests.build.support import eventually
from tests.catalog.helpers import demo_config, demo_fetcher
from tests.store.support import redis, validated
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree", "redis"]

#: A usign key that signed nothing of the demo tree.
OTHER_KEY = "RWSrHfFmlHslUcLbXFIRp+eEikWF9z1N77IJiX5Bt/nJd1a/x+L+SU89"
#: 2026-01-01, so stored times look like real ones.
START = 1_767_225_600.0


@pytest.fixture()
def logged() -> Iterator[list[tuple[LogLevel, str]]]:
    """What the housekeeping writes to the Twisted log during the test."""
    events: list[tuple[LogLevel, str]] = []

    def observe(event: dict[str, Any]) -> None:
        if str(event.get("log_namespace", "")).startswith("asud.housekeeping"):
            events.append((event["log_level"], formatEvent(event)))

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def _config(tmp_path: Path, **overrides: Any) -> Config:
    return load(environ={}, data_dir=str(tmp_path / "data"), **overrides)


def _check(version: str) -> UpgradeCheckRequest:
    return UpgradeCheckRequest(distro="openwrt", version=version, target="x86/64", packages={"curl": "1"})


def _clock() -> Clock:
    clock = Clock()
    clock.advance(START)
    return clock


# -- the catalog refresh (sysup's refresh_catalog) ------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_refresh_fills_the_catalog(demo_tree: DemoTree) -> None:
    service = CatalogService(demo_config(demo_tree), demo_fetcher(), reactor=_clock())
    catalog = await service.start()
    assert service.report is not None and service.report.problems == []
    assert catalog.version("openwrt", "24.10.5") is not None
    report = await service.refresh()  # nothing changed: still fine, and the same catalog
    assert report.problems == [] and not report.changed and service.catalog is catalog


@pytest_twisted.ensureDeferred
async def test_refresh_reports_an_upstream_signed_by_another_key(demo_tree: DemoTree) -> None:
    config = demo_config(demo_tree, distros={"openwrt": {"public_keys": [OTHER_KEY]}})
    service = CatalogService(config, demo_fetcher(), reactor=_clock())
    catalog = await service.start()
    assert service.report is not None and len(service.report.problems) > 0
    assert catalog.target("openwrt", "24.10.5", "x86/64") is None


# -- a round of pruning ------------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_housekeeping_forgets_old_upgrade_checks_only(redis: Redis, tmp_path: Path) -> None:
    config = _config(tmp_path)
    clock = _clock()
    checks = UpgradeCheckStore(redis, clock=clock)
    old, new = _check("24.10.4"), _check("24.10.5")
    await checks.save(old, None)
    clock.advance(config.retention.stats + 86400)  # the old one is now a day past the retention
    await checks.save(new, None)
    housekeeping = Housekeeping(config, records=BuildRecords.from_config(redis, config, clock=clock),
                                files=Store(config.store_dir), upgrade_checks=checks, clock=clock)
    await housekeeping.run_once()
    assert await checks.load(old.request_hash) is None
    assert await checks.load(new.request_hash) is not None


@pytest_twisted.ensureDeferred
async def test_checks_are_kept_a_day_even_with_a_shorter_statistics_retention(redis: Redis,
                                                                               tmp_path: Path) -> None:
    config = _config(tmp_path, retention={"stats": "1h"})
    clock = _clock()
    checks = UpgradeCheckStore(redis, clock=clock)
    await checks.save(_check("24.10.4"), None)
    housekeeping = Housekeeping(config, records=BuildRecords.from_config(redis, config, clock=clock),
                                files=Store(config.store_dir), upgrade_checks=checks, clock=clock)
    clock.advance(2 * 3600)
    await housekeeping.run_once()
    assert await checks.load(_check("24.10.4").request_hash) is not None
    clock.advance(MIN_CHECK_KEEP)
    await housekeeping.run_once()
    assert await checks.load(_check("24.10.4").request_hash) is None


@pytest_twisted.ensureDeferred
async def test_index_entries_of_forgotten_builds_go(redis: Redis, tmp_path: Path) -> None:
    """The 2017 API's prefix indexes keep an entry per finished build; Redis expires the records, the
    round drops what they left behind (and keeps the entries of builds it still knows)."""
    config = _config(tmp_path)
    records = BuildRecords.from_config(redis, config)
    kept, forgotten = validated(packages=["kept"]), validated(packages=["forgotten"])
    for request in (kept, forgotten):
        await records.submit(request, client="test/1")
        assert await records.started(request.image_key, "node-a") is not None
        await records.done(request.image_key, {"images": []}, request.bin_dir, "", "", node="node-a")
    # What the records' expiry does once their time is up:
    await redis.call("DEL", f"{BUILD_PREFIX}{forgotten.image_key}",
                     f"{REQUEST_PREFIX}{forgotten.request_hash}")
    housekeeping = Housekeeping(config, records=records, files=Store(config.store_dir))
    await housekeeping.run_once()
    assert await redis.call("ZRANGE", IMAGE_INDEX_KEY, 0, -1) == [kept.image_key]
    assert await redis.call("ZRANGE", REQUEST_INDEX_KEY, 0, -1) == [kept.request_hash]
    assert await records.find_request_hashes(kept.request_hash[:12]) == [kept.request_hash]


@pytest_twisted.ensureDeferred
async def test_a_failing_step_does_not_stop_the_others(redis: Redis, tmp_path: Path,
                                                       logged: list[tuple[LogLevel, str]]) -> None:
    config = _config(tmp_path)
    clock = _clock()
    checks = UpgradeCheckStore(redis, clock=clock)
    await checks.save(_check("24.10.4"), None)
    files = Store(config.store_dir)
    shutil.rmtree(files.root)  # the store's disk went away: its step fails
    housekeeping = Housekeeping(config, records=BuildRecords.from_config(redis, config, clock=clock),
                                files=files, upgrade_checks=checks, clock=clock)
    clock.advance(config.retention.stats + 1)
    await housekeeping.run_once()  # never fails
    assert await checks.load(_check("24.10.4").request_hash) is None  # the step after it still ran
    assert (LogLevel.critical, "housekeeping: pruning the files store failed") in logged


@pytest_twisted.ensureDeferred
async def test_rounds_run_on_the_loop_until_the_service_stops(redis: Redis, tmp_path: Path) -> None:
    config = _config(tmp_path)
    clock = _clock()
    checks = UpgradeCheckStore(redis, clock=clock)
    housekeeping = Housekeeping(config, records=BuildRecords.from_config(redis, config, clock=clock),
                                files=Store(config.store_dir), upgrade_checks=checks, clock=clock,
                                interval=600)
    await checks.save(_check("24.10.4"), None)
    clock.advance(config.retention.stats + 1)  # the check is old already …
    housekeeping.startService()
    try:
        clock.advance(599)  # … but no round is due before the first interval has passed
        assert await checks.load(_check("24.10.4").request_hash) is not None
        clock.advance(1)
        await eventually(lambda: checks.load(_check("24.10.4").request_hash).addCallback(
            lambda found: found is None))
        assert clock.getDelayedCalls()  # the next round is waiting on the clock
    finally:
        await housekeeping.stopService()
    assert not clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_the_upstream_cache_is_trimmed_to_its_budget(redis: Redis, tmp_path: Path,
                                                          logged: list[tuple[LogLevel, str]]) -> None:
    config = _config(tmp_path, cache={"upstream_max_bytes": 5000})
    earlier = EtagCache(config.upstream_cache_dir)  # what a run before this one kept: 8 entries of ~1.1 kB
    urls = [f"http://127.0.0.1:9/releases/19.07.{number}/.targets.json" for number in range(8)]
    for url in urls:
        earlier.put(url, bytes(1000), '"old"', None)
    fetcher = demo_fetcher(cache_dir=config.upstream_cache_dir)
    housekeeping = Housekeeping(config, records=BuildRecords.from_config(redis, config),
                                files=Store(config.store_dir), upstream=fetcher)
    await housekeeping.run_once()
    kept = [url for url in urls if earlier.get(url) is not None]
    on_disk = sum(path.stat().st_size for path in config.upstream_cache_dir.rglob("*") if path.is_file())
    assert 0 < len(kept) < len(urls) and on_disk <= 5000
    removed = len(urls) - len(kept)
    assert (LogLevel.info, f"housekeeping: removed {removed} entries of the upstream cache") in logged
