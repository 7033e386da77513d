"""What the statistics page (``/stats``) shows: headline figures and one panel per chart, each panel with
its SVG and a table of the same numbers, over the last 24 hours by hour or the last 30 days by day (UTC).

Every number comes from one read of ``asud.store.stats_queries`` (:meth:`StatsQueries.window`); this
module only lays them onto a full axis of buckets (the series leave empty buckets out), groups rare
versions/targets into "other" and formats. The page's route and template belong to the web pages
(``asud.http.web``), which call :func:`page_context`.

    view = stats_view(window_for("24h"), found, now=datetime.now(UTC), queue_length=3)
    context = yield page_context(state, request_period)   # {"view": StatsView, "page": "stats"}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from markupsafe import Markup
from twisted.internet.defer import Deferred, ensureDeferred

from asud.errors import Unavailable
from asud.http.charts import Series, bar_list, column_chart, format_count, line_chart
from asud.http.shield import shielded
from asud.http.state import AsudApp
from asud.store.stats_keys import Period, bucket_start
from asud.store.stats_queries import StatsQueries
from asud.store.stats_queries import Window as Found
from asud.store.stats_window import targets, top


@attrs.frozen
class Window:
    """A period the page can show: ``buckets`` of one ``period`` ending with the one holding now."""

    key: str
    label: str
    period: Period
    buckets: int

    @property
    def step(self) -> timedelta:
        return timedelta(hours=1) if self.period == "hour" else timedelta(days=1)


WINDOWS = (Window("24h", "Last 24 hours", "hour", 24), Window("30d", "Last 30 days", "day", 30))
#: The window shown without (or with an unknown) ``?period=``.
DEFAULT_WINDOW = "30d"
#: Versions or targets drawn as their own series; the rest are added up as "other".
MAX_SERIES = 5
#: Entries of the popular packages, targets and clients lists.
POPULAR_LIMIT = 10
OTHER = "other"
#: Shown for a number that does not exist yet (no build finished, no request made).
NO_VALUE = "n/a"


def window_for(key: str | None) -> Window:
    """The window named ``key`` (``24h``/``30d``), or the default one."""
    return next((w for w in WINDOWS if w.key == key), next(w for w in WINDOWS if w.key == DEFAULT_WINDOW))


# -- formatting -------------------------------------------------------------------------------------------


def format_percent(rate: float) -> str:
    """``0.25`` → ``"25%"``, ``1/3`` → ``"33.3%"``."""
    return f"{rate * 100:.1f}".removesuffix(".0") + "%"


def format_seconds(seconds: float | None) -> str:
    """``12.34`` → ``"12.3 s"``, ``125`` → ``"2 min 5 s"``, ``3720`` → ``"1 h 2 min"``;
    ``None`` → :data:`NO_VALUE`."""
    if seconds is None:
        return NO_VALUE
    if seconds < 60:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def bucket_name(start: datetime, period: Period) -> str:
    """The full label of a bucket, as tables and tooltips show it: ``2026-11-27 13:00`` or ``2026-11-27``."""
    return start.strftime("%Y-%m-%d %H:%M" if period == "hour" else "%Y-%m-%d")


def _axis_label(start: datetime, period: Period) -> str:
    return start.strftime("%H:%M" if period == "hour" else "%d %b")


# -- the view ---------------------------------------------------------------------------------------------


@attrs.frozen
class Figure:
    """One headline number."""

    id: str
    label: str
    value: str
    detail: str = ""


@attrs.frozen
class Panel:
    """One chart with its legend and the table of its numbers (``svg`` is ``None`` when nothing was
    recorded in the window)."""

    id: str
    title: str
    svg: Markup | None
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    legend: tuple[tuple[str, str], ...] = ()
    note: str = ""


@attrs.frozen
class StatsView:
    """The whole page: the window shown (``since`` inclusive, ``until`` exclusive) and the others."""

    window: Window
    since: datetime
    until: datetime
    figures: tuple[Figure, ...]
    panels: tuple[Panel, ...]
    windows: tuple[Window, ...] = WINDOWS


def bucket_starts(window: Window, now: datetime) -> list[datetime]:
    """Starts of the window's buckets, oldest first, the last one holding ``now``."""
    last = bucket_start(now, window.period)
    return [last - window.step * back for back in range(window.buckets - 1, -1, -1)]


def _label(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _grouped(points: Sequence[dict[str, Any]]) -> list[str]:
    """Series keys, most requests first; beyond ``MAX_SERIES`` the rest become ``OTHER``."""
    totals: Counter[str] = Counter()
    for point in points:
        totals[point["key"]] += point["count"]
    keys = [key for key, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]
    return keys if len(keys) <= MAX_SERIES else [*keys[: MAX_SERIES - 1], OTHER]


def _requests_panel(
    panel_id: str, noun: str, points: Sequence[dict[str, Any]], starts: Sequence[datetime], window: Window
) -> Panel:
    keys = _grouped(points)
    index = {_label(start): i for i, start in enumerate(starts)}
    values = {key: [0.0] * len(starts) for key in keys}
    for point in points:
        key = point["key"] if point["key"] in values else OTHER
        if point["bucket"] in index:
            values[key][index[point["bucket"]]] += point["count"]
    series = [Series(key, tuple(values[key]), tone=str(i)) for i, key in enumerate(keys)]
    names = [bucket_name(start, window.period) for start in starts]
    total = sum(sum(row) for row in values.values())
    title = f"Build requests by {noun}"
    description = (
        f"{format_count(total)} build requests per {window.period}, {window.label.lower()}, by {noun}"
    )
    if series:
        description += ": " + ", ".join(f"{s.name} {format_count(sum(values[s.name]))}" for s in series)
    columns = [values[key] for key in keys]
    rows = tuple(
        (names[i], *(format_count(column[i]) for column in columns), format_count(sum(c[i] for c in columns)))
        for i in range(len(starts))
        if any(column[i] for column in columns)
    )
    svg = (
        column_chart(
            f"chart-{panel_id}",
            title=title,
            description=description + ".",
            buckets=[_axis_label(start, window.period) for start in starts],
            names=names,
            series=series,
        )
        if rows
        else None
    )
    return Panel(
        panel_id,
        title,
        svg,
        ("Time (UTC)", *keys, "Total"),
        rows,
        legend=tuple((s.tone, s.name) for s in series),
    )


def _cache_panel(points: Sequence[dict[str, Any]], starts: Sequence[datetime], window: Window) -> Panel:
    by_bucket = {point["bucket"]: point for point in points}
    rates = tuple(by_bucket[_label(s)]["rate"] if _label(s) in by_bucket else None for s in starts)
    names = [bucket_name(start, window.period) for start in starts]
    rows = tuple(
        (names[i], format_count(p["hits"]), format_count(p["misses"]), format_percent(p["rate"]))
        for i, start in enumerate(starts)
        if (p := by_bucket.get(_label(start)))
    )
    title = "Cache hit rate"
    svg = (
        line_chart(
            "chart-cache",
            title=title,
            description=f"Share of build requests answered from the cache per {window.period}, "
            f"{window.label.lower()}.",
            buckets=[_axis_label(start, window.period) for start in starts],
            names=names,
            series=[Series("Hit rate", rates, tone="ok")],
            fmt=format_percent,
            top=1.0,
        )
        if rows
        else None
    )
    note = "A hit is a request answered with an image already built; a miss needed a build (or joined one)."
    return Panel("cache", title, svg, ("Time (UTC)", "Hits", "Misses", "Hit rate"), rows, note=note)


def _builds_panel(points: Sequence[dict[str, Any]], starts: Sequence[datetime], window: Window) -> Panel:
    by_bucket = {point["bucket"]: point for point in points}
    done = tuple(float(by_bucket[_label(s)]["done"]) if _label(s) in by_bucket else 0.0 for s in starts)
    failed = tuple(float(by_bucket[_label(s)]["failed"]) if _label(s) in by_bucket else 0.0 for s in starts)
    names = [bucket_name(start, window.period) for start in starts]
    rows = tuple(
        (names[i], format_count(p["done"]), format_count(p["failed"]), format_seconds(p["mean_seconds"]))
        for i, start in enumerate(starts)
        if (p := by_bucket.get(_label(start)))
    )
    series = [Series("Done", done, tone="ok"), Series("Failed", failed, tone="error")]
    title = "Finished builds"
    svg = (
        column_chart(
            "chart-builds",
            title=title,
            description=f"{format_count(sum(done))} builds done and {format_count(sum(failed))} failed per "
            f"{window.period}, {window.label.lower()}.",
            buckets=[_axis_label(start, window.period) for start in starts],
            names=names,
            series=series,
        )
        if rows
        else None
    )
    return Panel(
        "builds",
        title,
        svg,
        ("Time (UTC)", "Done", "Failed", "Mean time"),
        rows,
        legend=(("ok", "Done"), ("error", "Failed")),
    )


def _popular_panel(
    panel_id: str, title: str, noun: str, items: Sequence[tuple[str, int]], extra: Sequence[str] = ()
) -> Panel:
    svg = (
        bar_list(
            f"chart-{panel_id}",
            title=title,
            description=f"{title}: " + ", ".join(f"{name} {count}" for name, count in items) + ".",
            items=[(name, float(count)) for name, count in items],
        )
        if items
        else None
    )
    columns = (noun, "Requests", *(["Mean build time"] if extra else []))
    rows = tuple(
        (name, format_count(count), *([extra[i]] if extra else [])) for i, (name, count) in enumerate(items)
    )
    return Panel(panel_id, title, svg, columns, rows)


def stats_view(window: Window, found: Found, *, now: datetime, queue_length: int,
               limit: int = POPULAR_LIMIT) -> StatsView:
    """Everything the page shows for ``window`` ending at ``now``, from what one read of the window
    ``found`` (``queue_length``: builds waiting now)."""
    starts = bucket_starts(window, now.astimezone(UTC))
    since, until = starts[0], starts[-1] + window.step
    period = window.period
    by_version = found.request_series(period, "version")
    by_target = found.request_series(period, "target")
    cache = found.cache_series(period)
    builds = found.build_series(period)
    times = found.build_times()
    packages = top(found.packages, limit)
    popular_targets = targets(found.total(), limit)
    clients = top(found.clients, limit)

    hits = sum(point["hits"] for point in cache)
    misses = sum(point["misses"] for point in cache)
    done = sum(point["done"] for point in builds)
    failed = sum(point["failed"] for point in builds)
    figures = (
        Figure("requests", "Build requests", format_count(hits + misses)),
        Figure(
            "hit-rate",
            "Cache hit rate",
            format_percent(hits / (hits + misses)) if hits + misses else NO_VALUE,
            f"{format_count(hits)} of {format_count(hits + misses)}",
        ),
        Figure("queue", "Waiting in the queue", format_count(queue_length), "now"),
        Figure("builds", "Builds finished", format_count(done + failed), f"{done} done, {failed} failed"),
        Figure("mean", "Mean build time", format_seconds(times["mean"]), "successful builds"),
        Figure("p95", "95th percentile", format_seconds(times["p95"]), "successful builds"),
    )
    panels = (
        _requests_panel("requests-version", "version", by_version, starts, window),
        _requests_panel("requests-target", "target", by_target, starts, window),
        _cache_panel(cache, starts, window),
        _builds_panel(builds, starts, window),
        _popular_panel("packages", "Popular packages", "Package", packages),
        _popular_panel(
            "targets",
            "Popular targets",
            "Target",
            [(entry["target"], entry["count"]) for entry in popular_targets],
            [format_seconds(entry["build_seconds"]) for entry in popular_targets],
        ),
        _popular_panel("clients", "Clients", "Client", clients),
    )
    return StatsView(window, since, until, figures, panels)


def read_view(queries: StatsQueries, window: Window, *, now: datetime, queue_length: int,
              limit: int = POPULAR_LIMIT) -> Deferred[StatsView]:
    """:func:`stats_view` of ``window`` ending at ``now``, read in one round-trip."""
    starts = bucket_starts(window, now.astimezone(UTC))
    since, until = starts[0], starts[-1] + window.step
    found = queries.window(since, until, period=window.period, limit=limit)
    return found.addCallback(lambda result: stats_view(window, result, now=now, queue_length=queue_length,
                                                       limit=limit))


def stats_for(state: AsudApp, key: str | None, now: datetime | None = None) -> Deferred[StatsView]:
    """The view of the daemon behind ``state`` for the window named ``key`` (``24h``/``30d``, else the
    default); ``Unavailable`` (503) without Redis."""

    async def view() -> StatsView:
        queries = state.stats_queries
        if queries is None:
            raise Unavailable("Statistics are not available, retry later")
        queued = await shielded(state.build_records().queue_length())
        moment = now or datetime.fromtimestamp(state.clock.seconds(), UTC)
        return await shielded(read_view(queries, window_for(key), now=moment, queue_length=int(queued)))

    return ensureDeferred(view())


def page_context(state: AsudApp, key: str | None) -> Deferred[dict[str, Any]]:
    """The template context of ``/stats?period=<key>``: ``{"view": StatsView, "page": "stats"}``."""
    return stats_for(state, key).addCallback(lambda view: {"view": view, "page": "stats"})


__all__ = [
    "DEFAULT_WINDOW",
    "NO_VALUE",
    "OTHER",
    "WINDOWS",
    "Figure",
    "Panel",
    "StatsView",
    "Window",
    "bucket_name",
    "bucket_starts",
    "format_percent",
    "format_seconds",
    "page_context",
    "read_view",
    "stats_for",
    "stats_view",
    "window_for",
]
