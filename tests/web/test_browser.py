"""The pages in a real browser: Debian's Chromium, headless, driven by Playwright, against asud on a real
socket over the demo upstream.

Every page is photographed at desktop width and at a 390 px phone width into ``test-artifacts/web/``,
checked for sideways scrolling, elements sticking out and overlapping, and every request the browser
makes is recorded: none may leave the server (127.0.0.1). The browser works on its own thread
(``tests.web.browser``) while the reactor serves it; each test hands it one function.

The builds run on the whole daemon (``asud.service.makeService``: its own redis-server, the catalog read
from the demo upstream, HTTP on a free port) started with ``[build] workers = 0``; a build pool on the
daemon's queue joins when a test wants the queue to move, as a second node of a cluster would.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import blockingCallFromThread

from asud.build.pool import BuildPool
from asud.config import Config
from asud.service import AsudService, makeService
from asud.upstream.fetch import Fetcher
from tests.catalog.helpers import demo_config
from tests.http.client import LiveServer, TreqClient
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree
from tests.web.browser import BrowserThread
from tests.web.conftest import DEFAULTS_LIMIT
from tests.web.pages import PHONE, Pages, get_json

#: Longest wait for a build (the first one of a target downloads and unpacks its ImageBuilder).
BUILD_TIMEOUT_MS = 180_000
VERSION = "25.12.1"
SMALL_FLASH = ("ath79/generic", "tplink_tl-wr842n-v3")


@attrs.define
class Daemon:
    """asud as ``twist asud`` runs it, taking no builds until :meth:`start_building`."""

    service: AsudService
    url: str
    pool: BuildPool | None = None
    fetcher: Fetcher | None = None

    @property
    def building(self) -> bool:
        return self.pool is not None

    def start_building(self) -> Any:
        """A build pool of one slot on the daemon's own queue, records and files store (on the reactor)."""
        if self.pool is not None:
            return None
        app = self.service.app
        config: Config = attrs.evolve(app.config, build=attrs.evolve(app.config.build, workers=1))
        self.fetcher = Fetcher(timeout=30.0, retries=1, cache_dir=config.upstream_cache_dir, persistent=False)
        self.pool = BuildPool(config, app.queue, app.records, app.files, self.fetcher, node="web-tests")
        return self.pool.start()

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.stopService()
        if self.fetcher is not None:
            await self.fetcher.close()
        await self.service.stopService()


async def drop_kept_alive(service: AsudService) -> None:
    """Close the connections Chromium keeps alive to the daemon (closing a browser context does not close
    them at once). Stopping the daemon stops listening but leaves open connections, each with the site's
    idle timer, on the reactor the next test uses."""
    listeners: Any = service.getServiceNamed("http")
    for reader in list(reactor.getReaders()):  # type: ignore[attr-defined]
        protocol = getattr(reader, "protocol", None)
        if getattr(protocol, "factory", None) is listeners.site:
            reader.abortConnection()
    await deferLater(reactor, 0, lambda: None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def daemon_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory for the module's daemons: the second reuses the first's ImageBuilders."""
    return tmp_path_factory.mktemp("web-daemon")


@pytest_twisted.async_yield_fixture
async def daemon(demo_tree: DemoTree, daemon_dir: Path) -> AsyncIterator[Daemon]:
    require_executable("redis-server")
    config = demo_config(
        demo_tree,
        data_dir=str(daemon_dir),
        http={"listen": ["tcp:0:interface=127.0.0.1"]},
        build={"workers": 0, "sandbox": "none"},
        requests={"allow_defaults": True, "max_defaults_length": DEFAULTS_LIMIT,
                  "max_pending_jobs": 1000, "max_pending_per_client": 1000},
    )
    service = makeService(config)
    service.startService()
    running = Daemon(service, "")
    try:
        await service.started
        port = service.getServiceNamed("http").ports[0].getHost().port
        running.url = f"http://127.0.0.1:{port}"
        yield running
    finally:
        await drop_kept_alive(service)
        await running.stop()


def chips(page: Any) -> list[str]:
    return page.locator("#package-list .chip:not(.removed)").evaluate_all(  # type: ignore[no-any-return]
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


@pytest_twisted.ensureDeferred
async def test_unknown_build_is_explained(browser: BrowserThread, web_server: LiveServer,
                                          artifacts_dir: Path) -> None:
    def in_browser(pages: Pages) -> None:
        page = pages.open("/build/0123456789abcdef")
        page.locator('#build[data-status="missing"]').wait_for()
        assert "unknown" in page.locator("#failure-detail").inner_text()

    await browser.session(web_server.url, artifacts_dir, in_browser)


@pytest_twisted.ensureDeferred
async def test_direct_link_on_a_phone_and_options(browser: BrowserThread, web_server: LiveServer,
                                                  artifacts_dir: Path) -> None:
    def in_browser(pages: Pages) -> None:
        page = pages.open("/?version=24.10.5&target=x86/64&id=generic")
        page.set_viewport_size(PHONE)
        page.locator("#device-card").wait_for()
        assert page.locator("#version").input_value() == "24.10.5"
        assert page.locator("#device-title").inner_text() == "Generic x86/64"
        # x86 images are partitioned and come in two filesystems: both options are offered.
        assert page.locator("#rootfs-field").is_visible()
        assert page.locator("#filesystem-field").is_visible()
        assert page.locator("#filesystem option").all_inner_texts()[1:] == ["ext4", "squashfs"]
        page.locator("#rootfs-size").fill("5000")  # over the server's limit of 1024 MB
        wait_for_validation(page, "invalid")
        assert "1024" in page.locator("#validation").inner_text()
        page.locator("#rootfs-size").fill("256")
        wait_for_validation(page, "ok")
        # Conflicting packages are refused by the resolver before anything is queued.
        add_package(page, "ip-tiny")
        add_package(page, "ip-full")
        wait_for_validation(page, "conflict")
        assert "conflict" in page.locator("#validation").inner_text()
        # Switching the version keeps the device and the additions.
        page.locator("#version").select_option("23.05.5")
        page.locator("#device-revision", has_text="23.05.5").wait_for()
        assert "ip-full" in chips(page) and "version=23.05.5" in page.url
        pages.shoot(page, "builder-x86")

    await browser.session(web_server.url, artifacts_dir, in_browser)


@pytest_twisted.ensureDeferred
async def test_about_page_in_both_themes(browser: BrowserThread, web_server: LiveServer,
                                         artifacts_dir: Path) -> None:
    def in_browser(pages: Pages) -> None:
        page = pages.open("/about")
        versions = page.locator(".branch-versions").all_inner_texts()
        assert any("25.12.1" in line for line in versions) and any("24.10.4" in line for line in versions)
        assert page.locator("#limit-rootfs").inner_text() == "1024 MB"
        assert "2048 bytes" in page.locator("#limit-defaults").inner_text()
        assert page.locator('a[href="/docs"]').count() >= 1
        assert page.locator("code", has_text="mediatek/filogic").count() >= 1
        pages.shoot(page, "about")
        light = page.evaluate("getComputedStyle(document.body).backgroundColor")
        dark_page = pages.open("/about", color_scheme="dark")
        dark = dark_page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert light != dark
        pages.shoot(dark_page, "about-dark")

    await browser.session(web_server.url, artifacts_dir, in_browser)


# -- builds on the whole daemon ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_build_from_search_to_download(browser: BrowserThread, daemon: Daemon,
                                             artifacts_dir: Path) -> None:
    """Search → pick → add a package → typo flagged → fixed → build → queue → steps → download, with a
    reload while the build waits in the queue."""
    assert not daemon.building, "this test must see the queue before a pool takes from it"
    # One build ahead of ours, so the page has a queue position to show.
    ahead = await TreqClient(daemon.url).post(
        "/api/v1/build",
        json={"version": VERSION, "target": "ath79/generic", "profile": "glinet_gl-ar150", "client": "t/1"},
    )
    assert ahead.status_code == 202, ahead.text

    def in_browser(pages: Pages) -> str:
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
        # The first-boot script is allowed on this server, with its limit shown; rootfs size is not
        # offered for a raw-flash device.
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
        typo = page.locator('.chip[data-package="luci-app-adblok"]')
        assert "invalid" in (typo.get_attribute("class") or "")
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

        script = "uci set system.@system[0].hostname='browser-test'\nuci commit system\n"
        page.locator("#defaults").fill(script)
        wait_for_validation(page, "ok")
        pages.shoot(page, "builder")

        queued_before = get_json(f"{daemon.url}/api/v1/stats")["queue_length"]
        assert queued_before == 1  # checking the selection queued nothing

        page.locator("#request-build").click()
        page.wait_for_url(re.compile(r"/build/[0-9A-Za-z_-]+$"))
        request_hash: str = page.url.rsplit("/", 1)[1]
        build = page.locator("#build")
        page.locator('#build[data-status="queued"]').wait_for()
        assert "1 build ahead" in page.locator("#progress-status").inner_text()
        assert page.locator('#steps [data-step="queued"]').get_attribute("data-state") == "current"
        pages.shoot(page, "build-queued")

        # A reload (or a shared link) resumes the progress view.
        page.reload()
        page.locator('#build[data-status="queued"]').wait_for()
        assert build.get_attribute("data-request-hash") == request_hash

        blockingCallFromThread(reactor, daemon.start_building)
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
        return request_hash

    request_hash = await browser.session(daemon.url, artifacts_dir, in_browser)
    # The API agrees with the page.
    answer = (await TreqClient(daemon.url).get(f"/api/v1/build/{request_hash}")).json()
    assert answer["request"]["defaults"].startswith("uci set system")
    assert "luci-app-adblock" in answer["request"]["packages"]


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_failing_build_shows_error_and_log(browser: BrowserThread, daemon: Daemon,
                                                 artifacts_dir: Path) -> None:
    await daemon.start_building()
    target, profile = SMALL_FLASH

    def in_browser(pages: Pages) -> None:
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

    await browser.session(daemon.url, artifacts_dir, in_browser)
