"""The statistics page (``/stats``) in Chromium: a scripted request sequence against asud on a real socket,
read back from the page (chart marks and table cells), with screenshots at desktop and phone width, layout
checks, both themes and no request leaving 127.0.0.1.

The view model's numbers over the same script are tested without a browser in
``tests/http/test_stats_page.py`` (helper STATS); this module checks that the page shows them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest_twisted

from asud.errors import BuildError
from asud.http.state import AsudApp
from asud.http.stats_page import NO_VALUE, bucket_name, format_percent
from asud.http.web import CONTENT_SECURITY_POLICY
from tests.http.client import LiveServer
from tests.web.browser import BrowserThread
from tests.web.layout import layout_problems
from tests.web.pages import DESKTOP, PHONE, Pages

X86 = {"version": "25.12.1", "target": "x86/64", "profile": "generic", "packages": ["htop"]}
ARCHER = {
    "version": "24.10.5",
    "target": "ath79/generic",
    "profile": "tplink_archer-c7-v5",
    "packages": ["luci"],
}
QUEUED = {"version": "24.10.5", "target": "x86/64", "profile": "generic", "packages": []}
#: The client of the request five days ago: a browser's User-Agent, longer than a chart line.
LONG_CLIENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
#: How long the successful build took (as a pool that took this long would count it).
BUILD_SECONDS = 42
NODE = "web-stats-tests"


@attrs.define
class Scripted:
    server: LiveServer
    #: When the two events recorded in the past happened.
    three_hours_ago: datetime
    five_days_ago: datetime

    @property
    def url(self) -> str:
        return self.server.url


async def finish(app: AsudApp, request_hash: str, *, ok: bool) -> None:
    """Take the build off the queue and finish it as the pool would, counting it in the statistics (the
    successful one as taking :data:`BUILD_SECONDS`)."""
    records = app.build_records()
    view = await records.get(request_hash)
    assert view is not None
    assert await records.started(view.image_key, NODE) is not None
    if ok:
        result = {"images": [], "manifest": {"base-files": "1", "htop": "3"}}
        record = await records.done(view.image_key, result, request_hash, "", "", node=NODE)
    else:
        record = await records.failed(view.image_key, BuildError("Error: too big", "", "boom"), node=NODE)
    assert record is not None
    finished = app.clock.seconds()
    assert await app.stats.record_build(
        view.image_key, outcome="done" if ok else "failed", job=record.job or {},
        started_at=finished - (BUILD_SECONDS if ok else 3), finished_at=finished, result=record.result,
        error_kind=record.error_kind or None,
    )


@pytest_twisted.async_yield_fixture
async def scripted(web_app: AsudApp, web_server: LiveServer) -> AsyncIterator[Scripted]:
    """A pool-less server with empty statistics, after: x86 25.12.1 asked four times (two misses, built in
    42 s, then two cache hits), the Archer on 24.10.5 (a miss, its build fails), x86 on 24.10.5 (a miss,
    still queued), and two older requests recorded 3 hours and 5 days ago."""

    async def post(body: dict[str, Any], client: str, expected: int) -> str:
        answer = await web_server.client.post("/api/v1/build", json={**body, "client": client})
        assert answer.status_code == expected, answer.text
        return str(answer.json()["request_hash"])

    x86 = await post(X86, "script/1", 202)
    await post(X86, "script/2", 202)
    archer = await post(ARCHER, "script/1", 202)
    await post(QUEUED, "script/3", 202)
    await finish(web_app, x86, ok=True)
    await finish(web_app, archer, ok=False)
    await post(X86, "script/1", 200)  # a hit found in Redis
    await post(X86, "script/1", 200)  # a hit answered from memory
    now = datetime.fromtimestamp(web_app.clock.seconds(), UTC)
    earlier = {"api": "v1", "distro": "openwrt", "request_hash": "f" * 64, "has_defaults": False,
               "cache_hit": False}
    three_hours_ago, five_days_ago = now - timedelta(hours=3), now - timedelta(days=5)
    web_app.stats.record_request(**earlier, **ARCHER, client="script/1", at=three_hours_ago)
    web_app.stats.record_request(**earlier, **{**X86, "packages": ["tcpdump"]},
                                 client=LONG_CLIENT, at=five_days_ago)
    assert await web_app.stats.flush()
    yield Scripted(web_server, three_hours_ago, five_days_ago)


def table(page: Any, panel_id: str) -> dict[str, dict[str, str]]:
    """The table of a panel, read from the DOM (closed or not): ``{row header: {column: cell}}``."""
    rows: list[list[str]] = page.locator(f"#panel-{panel_id} table").evaluate(
        "t => [...t.rows].map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
    header, *body = rows
    return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in body}


def column_sum(cells: dict[str, dict[str, str]], column: str) -> int:
    return sum(int(row[column]) for row in cells.values())


def marks(page: Any, panel_id: str, selector: str) -> dict[str, float]:
    """``data-series``/``data-name`` → summed ``data-value`` of a panel's chart marks."""
    found: list[list[Any]] = page.locator(f"#panel-{panel_id} svg {selector}").evaluate_all(
        "ms => ms.map(m => [m.dataset.series || m.dataset.name, Number(m.dataset.value)])"
    )
    sums: dict[str, float] = {}
    for key, value in found:
        sums[key] = sums.get(key, 0.0) + value
    return sums


def figure(page: Any, figure_id: str) -> str:
    return str(page.locator(f"#figure-{figure_id} .figure-value").inner_text())


def chart_label_overlaps(page: Any) -> list[str]:
    """Text of any chart drawn over other text of the same chart (the page's layout check skips SVG)."""
    return list(
        page.evaluate(
            """() => {
          const problems = [];
          for (const svg of document.querySelectorAll("svg.chart")) {
            const boxes = [...svg.querySelectorAll("text")]
              .map(t => [t.textContent, t.getBoundingClientRect()]);
            const box = svg.getBoundingClientRect();
            for (const [text, r] of boxes) {
              if (r.left < box.left - 1 || r.right > box.right + 1) {
                problems.push(`${svg.id}: "${text}" is cut off`);
              }
            }
            for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
              const [a, ra] = boxes[i], [b, rb] = boxes[j];
              const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
              const y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
              if (x > 1 && y > 1) problems.push(`${svg.id}: "${a}" overlaps "${b}"`);
            }
          }
          return problems;
        }"""
        )
    )


def shoot(pages: Pages, page: Any, name: str) -> None:
    """The page's own layout checks, plus chart labels that neither collide nor get cut off."""
    pages.shoot(page, name)
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        problems = chart_label_overlaps(page)
        assert not problems, "\n".join(problems)
    page.set_viewport_size(DESKTOP)


@pytest_twisted.ensureDeferred
async def test_stats_page_is_html_with_a_strict_policy(scripted: Scripted) -> None:
    client = scripted.server.client
    for path in ("/stats", "/stats?period=24h", "/stats?period=nonsense"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "<svg" in response.text and "https://" not in response.text.replace("http://www.w3.org", "")
    assert 'aria-current="page">Statistics<' in (await client.get("/stats")).text
    assert 'href="/stats"' in (await client.get("/about")).text


@pytest_twisted.ensureDeferred
async def test_last_24_hours_show_the_scripted_numbers(scripted: Scripted, browser: BrowserThread,
                                                       artifacts_dir: Path) -> None:
    def in_browser(pages: Pages) -> None:
        page = pages.open("/stats?period=24h")
        assert page.locator('.period-switch a[aria-current="page"]').inner_text() == "Last 24 hours"
        # Seven requests in 24 hours: x86 25.12.1 4 times (2 misses, 2 hits),
        # the Archer twice (one 3 hours ago), x86 24.10.5 once.
        assert figure(page, "requests") == "7"
        assert figure(page, "hit-rate") == format_percent(2 / 7) == "28.6%"
        assert page.locator("#figure-hit-rate .figure-detail").inner_text() == "2 of 7"
        assert figure(page, "queue") == "1"
        assert figure(page, "builds") == "2"
        assert page.locator("#figure-builds .figure-detail").inner_text() == "1 done, 1 failed"
        assert figure(page, "mean") == figure(page, "p95") == f"{BUILD_SECONDS} s"

        versions = table(page, "requests-version")
        assert column_sum(versions, "25.12.1") == 4 and column_sum(versions, "24.10.5") == 3
        assert column_sum(versions, "Total") == 7
        assert versions[bucket_name(scripted.three_hours_ago.replace(minute=0), "hour")]["24.10.5"] == "1"
        assert marks(page, "requests-version", "rect") == {"25.12.1": 4, "24.10.5": 3}
        assert page.locator("#panel-requests-version .chart-legend").inner_text().split() == [
            "25.12.1",
            "24.10.5",
        ]
        targets = table(page, "requests-target")
        assert column_sum(targets, "x86/64") == 5 and column_sum(targets, "ath79/generic") == 2
        assert marks(page, "requests-target", "rect") == {"x86/64": 5, "ath79/generic": 2}

        cache = table(page, "cache")
        assert column_sum(cache, "Hits") == 2 and column_sum(cache, "Misses") == 5
        builds = table(page, "builds")
        assert column_sum(builds, "Done") == 1 and column_sum(builds, "Failed") == 1
        assert marks(page, "builds", "rect") == {"Done": 1, "Failed": 1}

        assert table(page, "packages") == {"htop": {"Requests": "4"}, "luci": {"Requests": "2"}}
        assert marks(page, "packages", "g.bar") == {"htop": 4, "luci": 2}
        assert page.locator("#panel-packages .bar-value").all_text_contents() == ["4", "2"]
        assert table(page, "targets") == {
            "x86/64": {"Requests": "5", "Mean build time": f"{BUILD_SECONDS} s"},
            "ath79/generic": {"Requests": "2", "Mean build time": NO_VALUE},
        }
        assert table(page, "clients") == {
            "script/1": {"Requests": "5"},
            "script/2": {"Requests": "1"},
            "script/3": {"Requests": "1"},
        }
        # Accessible names: each chart is an image named by its <title> and described by its <desc>.
        chart = page.locator("#chart-requests-version")
        assert chart.get_attribute("role") == "img"
        assert "25.12.1 4, 24.10.5 3" in page.locator("#chart-requests-version-desc").text_content()
        page.locator("#panel-requests-version summary").click()
        assert page.locator("#panel-requests-version table").is_visible()
        shoot(pages, page, "stats-24h")

    await browser.session(scripted.url, artifacts_dir, in_browser)


@pytest_twisted.ensureDeferred
async def test_period_switch_to_30_days_and_dark_theme(scripted: Scripted, browser: BrowserThread,
                                                       artifacts_dir: Path) -> None:
    def in_browser(pages: Pages) -> None:
        page = pages.open("/stats")
        assert page.locator('.period-switch a[aria-current="page"]').inner_text() == "Last 30 days"
        page.locator('.period-switch a[data-period="24h"]').click()
        page.wait_for_url("**/stats?period=24h")
        assert figure(page, "requests") == "7"
        page.locator('.period-switch a[data-period="30d"]').click()
        page.wait_for_url("**/stats?period=30d")
        # The request of five days ago counts now: 25.12.1 on x86/64, a miss, by a browser, naming tcpdump.
        assert figure(page, "requests") == "8"
        assert figure(page, "hit-rate") == "25%"
        versions = table(page, "requests-version")
        assert versions[bucket_name(scripted.five_days_ago, "day")] == {
            "25.12.1": "1",
            "24.10.5": "0",
            "Total": "1",
        }
        assert column_sum(versions, "25.12.1") == 5 and column_sum(versions, "Total") == 8
        assert table(page, "clients")[LONG_CLIENT] == {"Requests": "1"}
        assert table(page, "packages")["tcpdump"] == {"Requests": "1"}
        assert marks(page, "requests-target", "rect") == {"x86/64": 6, "ath79/generic": 2}
        shoot(pages, page, "stats-30d")

        light = page.locator("#panel-builds rect.tone-ok").first.evaluate("r => getComputedStyle(r).fill")
        dark_page = pages.open("/stats", color_scheme="dark")
        dark = dark_page.locator("#panel-builds rect.tone-ok").first.evaluate("r => getComputedStyle(r).fill")
        assert light != dark
        assert layout_problems(dark_page) == []
        shoot(pages, dark_page, "stats-30d-dark")

    await browser.session(scripted.url, artifacts_dir, in_browser)
