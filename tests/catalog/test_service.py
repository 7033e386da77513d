"""``CatalogService``: the first load at start, refreshes on a loop (driven by a ``Clock``), atomic swaps,
and the report in the daemon's log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from asud.catalog import Catalog, CatalogService
from asud.errors import SignatureError
from tests.catalog.helpers import demo_config, demo_fetcher, replace_file
from tests.support.upstream import DemoTree


@pytest.fixture()
def logged() -> Iterator[list[tuple[LogLevel, str]]]:
    """What the catalog writes to the Twisted log during the test."""
    events: list[tuple[LogLevel, str]] = []

    def observe(event: dict[str, Any]) -> None:
        if str(event.get("log_namespace", "")).startswith("asud.catalog"):
            events.append((event["log_level"], formatEvent(event)))

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def _service(demo_tree: DemoTree, url: str | None = None) -> tuple[CatalogService, Clock]:
    clock = Clock()
    config = demo_config(demo_tree, url, catalog={"refresh_interval": "10m"})
    return CatalogService(config, demo_fetcher(), reactor=clock), clock


@pytest_twisted.ensureDeferred
async def test_start_loads_the_catalog_and_logs_its_report(
    demo_tree: DemoTree, logged: list[tuple[LogLevel, str]]
) -> None:
    service, clock = _service(demo_tree)
    ready = service.ready
    assert service.catalog is None and not ready.called
    service.startService()
    catalog = await ready
    assert isinstance(catalog, Catalog) and service.catalog is catalog and catalog.generation == 1
    assert await service.ready is catalog  # fired at once, once loaded
    assert service.report is not None and service.report.ok
    texts = [text for _, text in logged]
    assert "catalog generation 1 loaded" in texts
    assert any(text.startswith("catalog: openwrt: 5 versions, 15 targets") for text in texts)
    assert "catalog: 24.10.4: 3 targets (3 changed), 13 profiles, packages read on first use" in texts
    assert clock.getDelayedCalls()  # the refresh loop waits on the service's clock
    await service.stopService()
    assert not clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_a_refresh_swaps_in_a_new_generation_only_when_upstream_changed(
    demo_tree: DemoTree, private_tree: tuple[Path, str], logged: list[tuple[LogLevel, str]]
) -> None:
    root, url = private_tree
    service, clock = _service(demo_tree, url)
    service.startService()
    first = await service.ready
    try:
        clock.advance(600)  # the loop's refresh is now running; join it
        report = await service.refresh()
        assert not report.changed and service.catalog is first
        assert "catalog unchanged" in logged[-1][1]
        # Upstream drops a target: the next refresh replaces the catalog in one assignment.
        targets_file = root / "releases/24.10.5/.targets.json"
        targets = json.loads(targets_file.read_bytes())
        del targets["mediatek/filogic"]
        replace_file(targets_file, json.dumps(targets).encode())
        clock.advance(600)
        report = await service.refresh()
        second = service.catalog
        assert report.changed and second is not first and second is not None and second.generation == 2
        assert second.target("openwrt", "24.10.5", "mediatek/filogic") is None
        assert first.target("openwrt", "24.10.5", "mediatek/filogic") is not None  # old one untouched
    finally:
        await service.stopService()
    assert not clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_problems_go_to_the_log_as_warnings(
    demo_tree: DemoTree, private_tree: tuple[Path, str], logged: list[tuple[LogLevel, str]]
) -> None:
    root, url = private_tree
    (root / "releases/24.10.4/targets/ath79/generic/sha256sums.sig").unlink()
    service, _ = _service(demo_tree, url)
    await service.start()
    warnings = [text for level, text in logged if level == LogLevel.warn]
    assert warnings == [
        f"catalog: PROBLEM: 24.10.4 ath79/generic: {url}/releases/24.10.4/targets/ath79/generic/"
        "sha256sums.sig: not found upstream (404)"
    ]
    # A feed refused on first use is logged with its URL, too.
    (root / "releases/24.10.4/packages/x86_64/base/Packages.sig").unlink()
    assert service.catalog is not None
    try:
        await service.catalog.package_index("openwrt", "24.10.4", "x86/64")
    except SignatureError:
        pass
    else:
        raise AssertionError("an unsigned index was used")
    index_url = f"{url}/releases/24.10.4/packages/x86_64/base/Packages"
    assert [text for level, text in logged if level == LogLevel.warn][1:] == [
        f"catalog: package feeds of openwrt 24.10.4 x86_64 ({url}/releases/24.10.4/packages/x86_64) "
        f"not used: {index_url} has no signature ({index_url}.sig is not on the server); "
        "its packages are not used"
    ]
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_stopping_during_the_first_load_cancels_it(demo_tree: DemoTree) -> None:
    service, clock = _service(demo_tree)
    service.startService()
    ready = service.ready
    await service.stopService()
    try:
        await ready
    except CancelledError:
        pass
    else:
        raise AssertionError("ready fired although the load was cancelled")
    assert service.catalog is None and not clock.getDelayedCalls()
