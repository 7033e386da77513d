"""The build page's live log in Chromium: lines appear while the build runs, with the step and the elapsed
time, scrolled to the end; the connections dropped mid-build, the page reconnects and shows every line
exactly once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread

from tests.http.client import TreqClient
from tests.web.browser import BrowserThread
from tests.web.pages import Pages
from tests.web.test_browser import BUILD_TIMEOUT_MS, VERSION, Daemon, daemon, daemon_dir, drop_kept_alive

__all__ = ["daemon", "daemon_dir"]


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_the_build_page_shows_the_log_live(browser: BrowserThread, daemon: Daemon,
                                                 artifacts_dir: Path) -> None:
    client = TreqClient(daemon.url)
    posted = await client.post("/api/v1/build", json={
        "version": VERSION, "target": "x86/64", "profile": "generic", "packages": ["htop"], "client": "t/1"})
    assert posted.status_code == 202, posted.text
    request_hash = posted.json()["request_hash"]

    def in_browser(pages: Pages) -> list[str]:
        page = pages.open(f"/build/{request_hash}")
        page.locator('#build[data-status="queued"]').wait_for()
        assert page.locator("#live-log-section").is_hidden()  # nothing printed yet
        blockingCallFromThread(reactor, daemon.start_building)
        # A locator waits without evaluating a string in the page (its CSP forbids eval).
        page.locator("#live-log span").first.wait_for(state="attached", timeout=BUILD_TIMEOUT_MS)
        assert int(page.locator("#live-log").get_attribute("data-lines") or 0) > 0
        assert page.locator("#live-log").get_attribute("data-ended") is None  # the build still runs
        assert page.locator("#live-log-step").inner_text().startswith("Step: ")
        # Every connection to the daemon dropped mid-build: EventSource reconnects with Last-Event-ID.
        blockingCallFromThread(reactor, lambda: Deferred.fromCoroutine(drop_kept_alive(daemon.service)))
        page.locator('#live-log[data-ended="done"]').wait_for(timeout=BUILD_TIMEOUT_MS)
        page.locator('#build[data-status="done"]').wait_for(timeout=BUILD_TIMEOUT_MS)
        assert re.search(r"\d+:\d\d elapsed", page.locator("#live-log-elapsed").inner_text())
        assert page.locator("#live-log-connection").inner_text() == ""
        at_end = page.evaluate(
            "(() => { const p = document.getElementById('live-log');"
            " return p.scrollHeight <= p.clientHeight"
            " || p.scrollTop + p.clientHeight >= p.scrollHeight - 30; })()")
        assert at_end, "the live log is not scrolled to its end"
        pages.shoot(page, "build-live-log")
        return [span for span in page.locator("#live-log span").all_inner_texts()]

    shown = await browser.session(daemon.url, artifacts_dir, in_browser)
    shown = [line.rstrip("\n") for line in shown]
    assert shown[-1] == "done"
    text = (await client.get(f"/api/v1/build/{request_hash}/log")).text
    printed = [line for line in text.splitlines() if not line.startswith("==> ")]
    on_page = [line for line in shown[:-1] if not line.startswith("==> ")]
    assert on_page == printed  # every line once, in order, across the reconnect
    assert any(line == "==> make image" for line in shown)
