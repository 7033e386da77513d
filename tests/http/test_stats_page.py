"""The statistics page's view model over real statistics in Redis: a scripted sequence of events, then the
exact numbers of every figure, table row and chart (was the data part of tests/web/test_stats_page.py; its
browser part goes with the web pages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import pytest_twisted

from asud.errors import Unavailable
from asud.http.stats_page import (
    NO_VALUE,
    OTHER,
    Panel,
    StatsView,
    bucket_name,
    bucket_starts,
    format_percent,
    format_seconds,
    page_context,
    read_view,
    window_for,
)
from asud.store.stats_queries import StatsQueries
from tests.http.test_stats_routes import Scripted, scripted
from tests.store.stats_support import NOW, add_build, record, recorder_and_queries, stats_redis

__all__ = ["scripted", "stats_redis"]


def panel(view: Any, panel_id: str) -> Panel:
    return next(p for p in view.panels if p.id == panel_id)


def view_of(queries: StatsQueries, key: str, queue_length: int = 0) -> Any:
    return read_view(queries, window_for(key), now=NOW, queue_length=queue_length)


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


@pytest_twisted.ensureDeferred
async def test_view_lays_the_numbers_on_a_full_axis(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    await record(recorder, NOW, version="24.10.4", packages=["htop"], client="a/1", cache_hit=True)
    await record(recorder, NOW, version="25.12.1", target="x86/64", packages=["htop", "luci"], client="a/1")
    await record(recorder, NOW - timedelta(hours=2), version="25.12.1", client="b/1")
    await record(recorder, NOW - timedelta(days=3), version="24.10.4", client="old/1")  # only in 30 days
    assert await add_build(recorder, 1, "done", NOW - timedelta(hours=1), 30.0, manifest={})
    assert await add_build(recorder, 2, "done", NOW - timedelta(hours=1), 60.0, manifest={})
    assert await add_build(recorder, 3, "failed", NOW - timedelta(hours=1), 5.0)

    view: StatsView = await view_of(queries, "24h", queue_length=4)
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

    month: StatsView = await view_of(queries, "30d")
    assert panel(month, "requests-version").rows == (
        ("2026-11-24", "1", "0", "1"),
        ("2026-11-27", "1", "2", "3"),
    )
    assert panel(month, "clients").rows[-1] == ("old/1", "1")


@pytest_twisted.ensureDeferred
async def test_rare_versions_are_added_up_as_other(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    for number in range(7):
        for _ in range(number + 1):
            await record(recorder, NOW, version=f"1.{number}")
    versions = panel(await view_of(queries, "24h"), "requests-version")
    assert versions.columns == ("Time (UTC)", "1.6", "1.5", "1.4", "1.3", OTHER, "Total")
    assert versions.rows == (("2026-11-27 12:00", "7", "6", "5", "4", str(3 + 2 + 1), "28"),)


@pytest_twisted.ensureDeferred
async def test_empty_statistics_draw_no_chart(stats_redis: Any) -> None:
    _, queries, _ = recorder_and_queries(stats_redis)
    view = await view_of(queries, "30d")
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


#: The client of the request five days ago: a browser's User-Agent, longer than a chart line.
LONG_CLIENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
#: How long the successful build took.
BUILD_SECONDS = 42


def table(view: StatsView, panel_id: str) -> dict[str, dict[str, str]]:
    """A panel's table as the page shows it: ``{row header: {column: cell}}``."""
    found = panel(view, panel_id)
    return {row[0]: dict(zip(found.columns[1:], row[1:], strict=True)) for row in found.rows}


def column_sum(cells: dict[str, dict[str, str]], column: str) -> int:
    return sum(int(row[column]) for row in cells.values())


@pytest_twisted.ensureDeferred
async def test_the_browser_tests_script_in_numbers(stats_redis: Any) -> None:
    """The sequence of the Chromium test of ``/stats``: x86 on 25.12.1 asked four times (two misses, built
    in 42 s, two hits), the Archer on 24.10.5 (a miss, its build fails), x86 on 24.10.5 (a miss, still
    queued), and two earlier requests: three hours and five days ago."""
    recorder, queries, _ = recorder_and_queries(stats_redis)
    x86 = {"version": "25.12.1", "target": "x86/64", "profile": "generic", "packages": ["htop"]}
    archer = {"version": "24.10.5", "target": "ath79/generic", "profile": "tplink_archer-c7-v5",
              "packages": ["luci"]}
    queued = {"version": "24.10.5", "target": "x86/64", "profile": "generic", "packages": []}
    moment = NOW - timedelta(minutes=20)
    await record(recorder, moment, client="script/1", **x86)
    await record(recorder, moment, client="script/2", **x86)
    await record(recorder, moment, client="script/1", **archer)
    await record(recorder, moment, client="script/3", **queued)
    assert await recorder.record_build("a" * 64, outcome="done", job=x86, started_at=moment,
                                       finished_at=moment + timedelta(seconds=BUILD_SECONDS))
    assert await recorder.record_build("b" * 64, outcome="failed", job=archer, started_at=moment,
                                       finished_at=moment + timedelta(seconds=3), error_kind="BuildError")
    await record(recorder, NOW, client="script/1", cache_hit=True, **x86)
    await record(recorder, NOW, client="script/1", cache_hit=True, **x86)
    three_hours_ago, five_days_ago = NOW - timedelta(hours=3), NOW - timedelta(days=5)
    await record(recorder, three_hours_ago, client="script/1", **archer)
    await record(recorder, five_days_ago, client=LONG_CLIENT, **{**x86, "packages": ["tcpdump"]})

    day: StatsView = await view_of(queries, "24h", queue_length=1)
    figures = {figure.id: (figure.value, figure.detail) for figure in day.figures}
    assert figures["requests"][0] == "7"
    assert figures["hit-rate"] == (format_percent(2 / 7), "2 of 7") == ("28.6%", "2 of 7")
    assert figures["queue"][0] == "1"
    assert figures["builds"] == ("2", "1 done, 1 failed")
    assert figures["mean"][0] == figures["p95"][0] == f"{BUILD_SECONDS} s"
    versions = table(day, "requests-version")
    assert column_sum(versions, "25.12.1") == 4 and column_sum(versions, "24.10.5") == 3
    assert column_sum(versions, "Total") == 7
    assert versions[bucket_name(three_hours_ago.replace(minute=0), "hour")]["24.10.5"] == "1"
    assert panel(day, "requests-version").legend == (("0", "25.12.1"), ("1", "24.10.5"))
    targets = table(day, "requests-target")
    assert column_sum(targets, "x86/64") == 5 and column_sum(targets, "ath79/generic") == 2
    cache = table(day, "cache")
    assert column_sum(cache, "Hits") == 2 and column_sum(cache, "Misses") == 5
    builds = table(day, "builds")
    assert column_sum(builds, "Done") == 1 and column_sum(builds, "Failed") == 1
    assert table(day, "packages") == {"htop": {"Requests": "4"}, "luci": {"Requests": "2"}}
    assert table(day, "targets") == {
        "x86/64": {"Requests": "5", "Mean build time": f"{BUILD_SECONDS} s"},
        "ath79/generic": {"Requests": "2", "Mean build time": NO_VALUE},
    }
    assert table(day, "clients") == {
        "script/1": {"Requests": "5"},
        "script/2": {"Requests": "1"},
        "script/3": {"Requests": "1"},
    }
    chart = panel(day, "requests-version").svg
    assert chart is not None and 'role="img"' in chart and "25.12.1 4, 24.10.5 3" in chart

    month: StatsView = await view_of(queries, "30d", queue_length=1)
    figures = {figure.id: (figure.value, figure.detail) for figure in month.figures}
    assert figures["requests"][0] == "8" and figures["hit-rate"][0] == "25%"
    versions = table(month, "requests-version")
    assert versions[bucket_name(five_days_ago, "day")] == {"25.12.1": "1", "24.10.5": "0", "Total": "1"}
    assert column_sum(versions, "25.12.1") == 5 and column_sum(versions, "Total") == 8
    assert table(month, "clients")[LONG_CLIENT] == {"Requests": "1"}
    assert table(month, "packages")["tcpdump"] == {"Requests": "1"}
    targets = table(month, "requests-target")
    assert column_sum(targets, "x86/64") == 6 and column_sum(targets, "ath79/generic") == 2


@pytest_twisted.ensureDeferred
async def test_the_page_context_of_a_daemon(scripted: Scripted) -> None:
    """What the web pages render ``/stats`` with: the view of the daemon's own statistics and queue."""
    context = await page_context(scripted.app, "24h")
    assert context["page"] == "stats" and context["view"].window.key == "24h"
    figures = {figure.id: figure.value for figure in context["view"].figures}
    assert figures["requests"] == "4" and figures["queue"] == "0" and figures["builds"] == "2"
    assert (await page_context(scripted.app, "nonsense"))["view"].window.key == "30d"
    without = attrs.evolve(scripted.app, stats_queries=None)
    with pytest.raises(Unavailable):
        await page_context(without, None)
