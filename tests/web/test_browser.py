"""The pages in a real browser: Debian's Chromium, headless, driven by Playwright, against asud on a real
socket over the demo upstream.

Every page is photographed at desktop width and at a 390 px phone width into ``test-artifacts/web/``,
checked for sideways scrolling, elements sticking out and overlapping, and every request the browser
makes is recorded: none may leave the server (127.0.0.1). The browser works on its own thread
(``tests.web.browser``) while the reactor serves it; each test hands it one function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted

from tests.http.client import LiveServer
from tests.web.browser import BrowserThread
from tests.web.pages import PHONE, Pages


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
