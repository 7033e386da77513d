"""KEPT UNTIL ITS ASUD TWIN PASSES: the two build flows of the old browser test, still against sysup (its
web routes now render asud's templates and static files). ``tests/web/test_browser.py`` has the rest on
asud; these move there once ``asud.service`` runs a build pool, and this file goes.

The pages in a real browser: Debian's Chromium, headless, driven by Playwright, against a sysup server
over the demo upstream whose build worker the test starts when it wants the queue to move.

Every page is photographed at desktop width and at a 390 px phone width into ``test-artifacts/web/``,
checked for sideways scrolling, elements sticking out and overlapping, and every request the browser
makes is recorded: none may leave the server (127.0.0.1).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysup.config import Settings
from tests.api.conftest import demo_info, make_settings, migrate_and_sync
from tests.api.live_server import live_server
from tests.support.requirements import require
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.pages import Pages

__all__ = ["demo_info"]

pytestmark = pytest.mark.slow

#: Longest wait for a build (the first one of a target downloads and unpacks its ImageBuilder).
BUILD_TIMEOUT_MS = 180_000
VERSION = "25.12.1"
ARCHER = ("ath79/generic", "tplink_archer-c7-v5")
SMALL_FLASH = ("ath79/generic", "tplink_tl-wr842n-v3")


@dataclass
class Worker:
    """The embedded build worker, started when a test is ready for the queue to move."""

    settings: Settings
    consumer: Any = None

    @property
    def running(self) -> bool:
        return self.consumer is not None

    def start(self) -> None:
        from sysup.builds.queue import start_embedded_consumer

        if self.consumer is None:
            self.consumer = start_embedded_consumer(self.settings)

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
            self.consumer = None


@dataclass
class Server:
    url: str
    settings: Settings
    worker: Worker


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, demo_info: Any, demo_upstream_url: str
) -> Iterator[Server]:
    from sysup.api.app import create_app

    settings = make_settings(
        tmp_path_factory.mktemp("web-browser"),
        demo_info,
        demo_upstream_url,
        allow_defaults=True,
        max_defaults_length=2048,
        workers=1,
    )
    migrate_and_sync(settings)
    worker = Worker(settings)
    try:
        with live_server(create_app(settings)) as url:
            yield Server(url, settings, worker)
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def sync_browser() -> Iterator[Any]:
    """Chromium on the main thread (sysup's server runs on a thread of its own, not on the reactor)."""
    require(CHROMIUM.exists(), f"Chromium not installed at {CHROMIUM} (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def pages(sync_browser: Any, server: Server, artifacts_dir: Path) -> Iterator[Pages]:
    opened = Pages(sync_browser, server.url, artifacts_dir)
    try:
        yield opened
        opened.check()
    finally:
        opened.close()


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def chips(page: Any) -> list[str]:
    return page.locator("#package-list .chip:not(.removed)").evaluate_all(
        "items => items.map(item => item.dataset.package)"
    )


def add_package(page: Any, name: str) -> None:
    field_ = page.locator("#package-add")
    field_.fill(name)
    field_.press("Escape")
    page.locator("#package-add-button").click()
    page.locator(f'#package-list .chip[data-package="{name}"]').wait_for()


def wait_for_validation(page: Any, expected: str) -> None:
    """Wait for the server's check of the selection to answer ``expected`` (ok, unknown, conflict …)."""
    try:
        page.locator(f'body[data-validation="{expected}"]').wait_for()
    except Exception as error:
        state = page.evaluate("document.body.dataset.validation")
        text = page.locator("#validation").inner_text()
        raise AssertionError(f"validation is {state!r}, not {expected!r}: {text}") from error


def test_build_from_search_to_download(pages: Pages, server: Server) -> None:
    """Search → pick → add a package → typo flagged → fixed → build → queue → steps → download, with a
    reload while the build waits in the queue."""
    assert not server.worker.running, "this test must see the queue before the worker starts"
    # One build ahead of ours, so the page has a queue position to show.
    ahead = httpx.post(
        f"{server.url}/api/v1/build",
        json={"version": VERSION, "target": "ath79/generic", "profile": "glinet_gl-ar150", "client": "t/1"},
    )
    assert ahead.status_code == 202, ahead.text

    page = pages.open("/")
    assert page.locator("#version").input_value() == VERSION  # the newest stable release first
    snapshot_option = page.locator('#version option[value="SNAPSHOT"]')
    assert "snapshot" in snapshot_option.inner_text().lower()

    # Keyboard only: type with a typo, arrow down, Enter.
    search = page.locator("#device-search")
    search.focus()
    page.keyboard.type("archr c7")
    page.locator("#device-results [role=option]").first.wait_for()
    titles = page.locator("#device-results [role=option] .option-title").all_inner_texts()
    assert "TP-Link Archer C7 v5" in titles
    for _ in range(titles.index("TP-Link Archer C7 v5") + 1):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.locator("#device-card").wait_for()
    assert page.locator("#device-title").inner_text() == "TP-Link Archer C7 v5"
    assert "Archer A7 v5" in page.locator("#device-also").inner_text()
    # A shareable direct link, like the Firmware Selector's.
    assert f"version={VERSION}" in page.url and "id=tplink_archer-c7-v5" in page.url

    # Stock downloads and the pre-filled package list (defaults + device packages).
    stock = page.locator("#stock-downloads a")
    assert stock.count() == 2 and "sysupgrade" in stock.first.inner_text()
    prefilled = chips(page)
    assert "base-files" in prefilled and "kmod-ath10k-ct" in prefilled
    wait_for_validation(page, "ok")
    # The first-boot script is allowed on this server, with its limit shown; rootfs size is not offered
    # for a raw-flash device.
    assert "2048 bytes" in page.locator("#defaults-hint").inner_text()
    assert page.locator("#rootfs-field").is_hidden()

    # Autocomplete from the package index.
    page.locator("#package-add").fill("luci-app-adb")
    page.locator("#package-results [role=option]").first.wait_for()
    assert "luci-app-adblock" in page.locator("#package-results").inner_text()
    page.locator("#package-add").press("Escape")

    # A typo is flagged inline by the server's check, with a suggestion that fixes it.
    add_package(page, "luci-app-adblok")
    wait_for_validation(page, "unknown")
    assert "invalid" in (page.locator('.chip[data-package="luci-app-adblok"]').get_attribute("class") or "")
    problem = page.locator('#validation [data-unknown="luci-app-adblok"]')
    assert "Unknown package" in problem.inner_text()
    page.locator("#validation").scroll_into_view_if_needed()
    pages.shoot(page, "builder-typo")
    problem.locator("button.suggestion", has_text="luci-app-adblock").click()
    wait_for_validation(page, "ok")
    assert "luci-app-adblock" in chips(page) and "luci-app-adblok" not in chips(page)

    # Remove a default package and restore it.
    page.locator('.chip[data-package="ppp"] button').click()
    assert page.locator('.chip.removed[data-package="ppp"]').count() == 1
    wait_for_validation(page, "ok")
    page.locator('.chip.removed[data-package="ppp"] button').click()
    wait_for_validation(page, "ok")
    assert "ppp" in chips(page)

    page.locator("#defaults").fill("uci set system.@system[0].hostname='browser-test'\nuci commit system\n")
    wait_for_validation(page, "ok")
    pages.shoot(page, "builder")

    queued_before = httpx.get(f"{server.url}/api/v1/stats").json()["queue_length"]
    assert queued_before == 1  # checking the selection queued nothing

    page.locator("#request-build").click()
    page.wait_for_url(re.compile(r"/build/[0-9A-Za-z_-]+$"))
    request_hash = page.url.rsplit("/", 1)[1]
    build = page.locator("#build")
    page.locator('#build[data-status="queued"]').wait_for()
    assert "1 build ahead" in page.locator("#progress-status").inner_text()
    assert page.locator('#steps [data-step="queued"]').get_attribute("data-state") == "current"
    pages.shoot(page, "build-queued")

    # A reload (or a shared link) resumes the progress view.
    page.reload()
    page.locator('#build[data-status="queued"]').wait_for()
    assert build.get_attribute("data-request-hash") == request_hash

    server.worker.start()
    page.locator('#build[data-status="done"]').wait_for(timeout=BUILD_TIMEOUT_MS)
    seen = (build.get_attribute("data-seen") or "").split()
    assert seen[0] == "queued" and seen[-1] == "done", seen
    assert all(item.get_attribute("data-state") == "complete" for item in page.locator("#steps li").all())

    # Result: images with type, filesystem, size, sha256 (copy button), download link; manifest; log.
    image = page.locator('#images li[data-image-type="sysupgrade"]')
    assert image.count() == 1
    assert "squashfs" in image.locator(".badge").inner_text()
    page.locator('#images li[data-image-type="sysupgrade"] .image-size:not(:empty)').wait_for()
    shown_sha256 = image.locator("code.sha256").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", shown_sha256)
    assert image.locator("button.copy").count() == 1
    manifest_count = int(page.locator("#manifest-count").inner_text())
    assert manifest_count > 20
    page.locator("#manifest-details summary").click()
    assert page.locator("#manifest", has_text="luci-app-adblock").count() == 1
    assert page.locator("#log-section").is_visible()
    page.locator("#log-details summary").click()
    assert page.locator("#build-log").inner_text().strip()
    page.locator("#log-details summary").click()
    pages.shoot(page, "build-done")

    with page.expect_download() as download_info:
        image.locator("a.download").click()
    path = download_info.value.path()
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == shown_sha256

    # The API agrees with the page.
    answer = httpx.get(f"{server.url}/api/v1/build/{request_hash}").json()
    assert answer["request"]["defaults"].startswith("uci set system")
    assert "luci-app-adblock" in answer["request"]["packages"]


def test_failing_build_shows_error_and_log(pages: Pages, server: Server) -> None:
    server.worker.start()
    target, profile = SMALL_FLASH
    page = pages.open(f"/?version={VERSION}&target={target}&id={profile}")
    page.locator("#device-card").wait_for()
    assert page.locator("#device-title").inner_text() == "TP-Link TL-WR842N v3"
    assert "640 KiB" in page.locator("#device-limit").inner_text()
    wait_for_validation(page, "ok")
    add_package(page, "python3-light")  # too big for its 640 KiB flash
    wait_for_validation(page, "ok")
    page.locator("#request-build").click()
    page.wait_for_url(re.compile(r"/build/"))
    page.locator('#build[data-status="failed"]').wait_for(timeout=BUILD_TIMEOUT_MS)
    detail = page.locator("#failure-detail").inner_text()
    assert "exceed device storage" in detail, detail
    assert page.locator("#log-details").get_attribute("open") is not None
    assert "too big" in page.locator("#build-log").inner_text()
    assert page.locator('#steps [data-state="failed"]').count() == 1
    assert page.locator("#result").is_hidden()
    pages.shoot(page, "build-failed")
