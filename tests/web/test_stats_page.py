"""The statistics page (``/stats``): its view model over real statistics tables, then a scripted request
sequence against a live server, read back from the page in Chromium (chart marks and table cells), with
screenshots at desktop and phone width, layout checks, both themes and no request leaving 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sysup.config import Settings
from sysup.database import Base, create_engine_for, session_factory
from sysup.stats.recorder import StatsRecorder
from sysup.web.routes import CONTENT_SECURITY_POLICY
from sysup.web.stats_page import (
    NO_VALUE,
    OTHER,
    Panel,
    bucket_name,
    bucket_starts,
    format_percent,
    format_seconds,
    stats_view,
    window_for,
)
from tests.api.live_server import live_server
from tests.stats.server import finish, fresh_settings
from tests.stats.test_recorder import add_build, record
from tests.web.layout import layout_problems
from tests.web.pages import DESKTOP, PHONE, Pages

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


# -- the view model -----------------------------------------------------------------------------------------


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'stats.db'}")
    Base.metadata.create_all(engine)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def panel(view: Any, panel_id: str) -> Panel:
    return next(p for p in view.panels if p.id == panel_id)


def test_windows_and_formatting() -> None:
    assert window_for("24h").period == "hour" and window_for("30d").period == "day"
    assert window_for(None).key == window_for("bogus").key == "30d"
    hours = bucket_starts(window_for("24h"), NOW)
    assert (
        len(hours) == 24
        and hours[-1] == NOW.replace(minute=0)
        and hours[0] == hours[-1] - timedelta(hours=23)
    )
    days = bucket_starts(window_for("30d"), NOW)
    assert len(days) == 30 and days[-1] == datetime(2026, 11, 27, tzinfo=UTC)
    assert (
        bucket_name(hours[-1], "hour") == "2026-11-27 12:00" and bucket_name(days[-1], "day") == "2026-11-27"
    )
    assert [format_percent(r) for r in (0.25, 1 / 3, 1.0)] == ["25%", "33.3%", "100%"]
    assert [format_seconds(s) for s in (None, 0.01, 42, 125, 3720)] == [
        NO_VALUE,
        "0 s",
        "42 s",
        "2 min 5 s",
        "1 h 2 min",
    ]


def test_view_lays_the_numbers_on_a_full_axis(sessions: sessionmaker[Session]) -> None:
    recorder = StatsRecorder(sessions)
    record(recorder, NOW, version="24.10.4", packages=["htop"], client="a/1", cache_hit=True)
    record(recorder, NOW, version="25.12.1", target="x86/64", packages=["htop", "luci"], client="a/1")
    record(recorder, NOW - timedelta(hours=2), version="25.12.1", client="b/1")
    record(recorder, NOW - timedelta(days=3), version="24.10.4", client="old/1")  # only in 30 days
    add_build(sessions, 1, "done", NOW - timedelta(hours=1), 30.0, manifest={})
    add_build(sessions, 2, "done", NOW - timedelta(hours=1), 60.0, manifest={})
    add_build(sessions, 3, "failed", NOW - timedelta(hours=1), 5.0)
    recorder.collect_builds(timedelta(days=90), NOW)

    view = stats_view(sessions, window=window_for("24h"), now=NOW, queue_length=4)
    figures = {figure.id: (figure.value, figure.detail) for figure in view.figures}
    assert figures["requests"] == ("3", "")
    assert figures["hit-rate"] == ("33.3%", "1 of 3")
    assert figures["queue"] == ("4", "now")
    assert figures["builds"] == ("3", "2 done, 1 failed")
    assert figures["mean"][0] == "45 s" and figures["p95"][0] == "1 min 0 s"

    versions = panel(view, "requests-version")
    assert versions.columns == ("Time (UTC)", "25.12.1", "24.10.4", "Total")
    assert versions.rows == (("2026-11-27 10:00", "1", "0", "1"), ("2026-11-27 12:00", "1", "1", "2"))
    assert versions.legend == (("0", "25.12.1"), ("1", "24.10.4"))
    assert versions.svg is not None and versions.svg.count("<rect") == 3
    cache = panel(view, "cache")
    assert cache.rows == (("2026-11-27 10:00", "0", "1", "0%"), ("2026-11-27 12:00", "1", "1", "50%"))
    assert cache.svg is not None and cache.svg.count("<circle") == 2
    assert panel(view, "builds").rows == (("2026-11-27 11:00", "2", "1", "31.7 s"),)
    assert panel(view, "packages").rows == (("htop", "2"), ("luci", "2"))
    assert panel(view, "clients").rows == (("a/1", "2"), ("b/1", "1"))
    targets = panel(view, "targets")
    assert targets.rows == (("ath79/generic", "2", NO_VALUE), ("x86/64", "1", "45 s"))

    month = stats_view(sessions, window=window_for("30d"), now=NOW, queue_length=0)
    assert panel(month, "requests-version").rows == (
        ("2026-11-24", "1", "0", "1"),
        ("2026-11-27", "1", "2", "3"),
    )
    assert panel(month, "clients").rows[-1] == ("old/1", "1")


def test_rare_versions_are_added_up_as_other(sessions: sessionmaker[Session]) -> None:
    recorder = StatsRecorder(sessions)
    for number in range(7):
        for _ in range(number + 1):
            record(recorder, NOW, version=f"1.{number}")
    versions = panel(
        stats_view(sessions, window=window_for("24h"), now=NOW, queue_length=0), "requests-version"
    )
    assert versions.columns == ("Time (UTC)", "1.6", "1.5", "1.4", "1.3", OTHER, "Total")
    assert versions.rows == (("2026-11-27 12:00", "7", "6", "5", "4", str(3 + 2 + 1), "28"),)


def test_empty_statistics_draw_no_chart(sessions: sessionmaker[Session]) -> None:
    view = stats_view(sessions, window=window_for("30d"), now=NOW, queue_length=0)
    assert all(p.svg is None and p.rows == () for p in view.panels)
    figures = {figure.id: figure.value for figure in view.figures}
    assert figures == {
        "requests": "0",
        "hit-rate": NO_VALUE,
        "queue": "0",
        "builds": "0",
        "mean": NO_VALUE,
        "p95": NO_VALUE,
    }


# -- a scripted sequence on a live server, in Chromium ---------------------------------------------------

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
#: How long the successful build took (set on its record, as a worker that took this long would leave it).
BUILD_SECONDS = 42


@dataclass
class Scripted:
    url: str
    #: When the two events recorded in the past happened.
    three_hours_ago: datetime
    five_days_ago: datetime


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory, queued_settings: Settings) -> Iterator[Scripted]:
    """A worker-less server with empty statistics, after: x86 25.12.1 asked three times (two misses, then
    built, then a cache hit answered from the database and one answered from memory), the Archer on
    24.10.5 (miss, its build fails), x86 on 24.10.5 (miss, still queued), and two older requests recorded
    3 hours and 5 days ago."""
    from sysup.api.app import create_app
    from sysup.builds.models import Build

    app = create_app(fresh_settings(queued_settings, tmp_path_factory.mktemp("web-stats")))
    with live_server(app) as url:
        state = app.state.api

        def post(body: dict[str, Any], client: str, expected: int) -> str:
            answer = httpx.post(f"{url}/api/v1/build", json={**body, "client": client})
            assert answer.status_code == expected, answer.text
            return str(answer.json()["request_hash"])

        x86 = post(X86, "script/1", 202)
        post(X86, "script/2", 202)
        archer = post(ARCHER, "script/1", 202)
        post(QUEUED, "script/3", 202)
        finish(state, x86, ok=True)
        finish(state, archer, ok=False)
        sessions = session_factory(state.engine)
        with sessions() as session, session.begin():
            done = session.scalars(select(Build).where(Build.status == "done")).one()
            session.execute(
                update(Build)
                .where(Build.id == done.id)
                .values(started_at=done.finished_at - timedelta(seconds=BUILD_SECONDS))
            )
        post(X86, "script/1", 200)  # a hit found in the database
        post(X86, "script/1", 200)  # a hit answered from memory (statistics written in a batch)
        now = datetime.now(UTC)
        recorder = StatsRecorder(sessions)
        earlier = {"api": "v1", "distro": "openwrt", "request_hash": "f" * 64, "has_defaults": False}
        record_at = now - timedelta(hours=3)
        assert recorder.record_request(
            **earlier,
            client="script/1",
            version="24.10.5",
            target="ath79/generic",
            profile="tplink_archer-c7-v5",
            packages=["luci"],
            cache_hit=False,
            at=record_at,
        )
        old = now - timedelta(days=5)
        assert recorder.record_request(
            **earlier,
            client=LONG_CLIENT,
            version="25.12.1",
            target="x86/64",
            profile="generic",
            packages=["tcpdump"],
            cache_hit=False,
            at=old,
        )
        # Wait for the batch of the in-memory hit to be written.
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while True:
            document = httpx.get(f"{url}/api/v1/stats/timeseries", params={"days": 30, "by": "total"}).json()
            if sum(point["hits"] for point in document["cache"]) == 2:
                break
            assert datetime.now(UTC) < deadline, document["cache"]
            time.sleep(0.1)
        yield Scripted(url, record_at, old)


@pytest.fixture
def pages(browser: Any, scripted: Scripted, artifacts_dir: Path) -> Iterator[Pages]:
    opened = Pages(browser, scripted.url, artifacts_dir)
    try:
        yield opened
        opened.check()
    finally:
        opened.close()


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


def test_stats_page_is_html_with_a_strict_policy(scripted: Scripted) -> None:
    for path in ("/stats", "/stats?period=24h", "/stats?period=nonsense"):
        response = httpx.get(scripted.url + path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "<svg" in response.text and "https://" not in response.text.replace("http://www.w3.org", "")
    assert 'aria-current="page">Statistics<' in httpx.get(scripted.url + "/stats").text
    assert 'href="/stats"' in httpx.get(scripted.url + "/about").text


def test_last_24_hours_show_the_scripted_numbers(pages: Pages, scripted: Scripted) -> None:
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


def test_period_switch_to_30_days_and_dark_theme(pages: Pages, scripted: Scripted) -> None:
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
