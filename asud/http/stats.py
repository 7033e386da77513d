"""Statistics routes: the 2017 API's four ``/api/v1/stats/*`` answers and the time series of the web stats
page (``/api/v1/stats/timeseries``). (``/api/v1/stats``, the queue length, is ``asud.http.meta``'s.)

Every number comes from ``asud.store.stats_queries`` in one Redis round-trip; builds are counted when the
pool reports them, so nothing has to be collected first. Query parameters are read with the texts the
previous server answered (``Invalid request: query.period: Input should be 'hour' or 'day'``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from asud.build.fields import FieldError, InvalidRequest, Reader, Refused, bounded, choice, under
from asud.errors import BadRequest, Unavailable
from asud.http.errors import json_app
from asud.http.responses import json_answer
from asud.http.shield import shielded
from asud.http.state import AsudApp
from asud.store.stats_queries import StatsQueries

__all__ = ["MAX_WINDOW", "KnownPackages", "StatsApi"]

log = Logger()

#: Longest window ``/api/v1/stats/timeseries`` answers for.
MAX_WINDOW = timedelta(days=3660)

#: The query parameters of ``/timeseries``, in the order their errors are named, with their defaults.
_TIMESERIES: tuple[tuple[str, Reader, Any], ...] = (
    ("period", choice(["hour", "day"]), "day"),
    ("by", choice(["version", "target", "total"]), "version"),
    ("days", bounded(1, 3660), 7),
    ("since", str, None),
    ("until", str, None),
    ("limit", bounded(1, 50), 10),
)


def read_query(request: IRequest, table: tuple[tuple[str, Reader, Any], ...]) -> dict[str, Any]:
    """The query parameters of ``table`` (the last value of a repeated one), every refused one named."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, reader, default in table:
        given = request.args.get(name.encode())  # type: ignore[attr-defined]
        if not given:
            values[name] = default
            continue
        try:
            values[name] = reader(given[-1].decode("utf-8", "surrogateescape"))
        except Refused as refused:
            errors.extend(under("query", under(name, refused.errors)))
    if errors:
        raise InvalidRequest(errors)
    return values


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid parameter: {name} must be an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class KnownPackages:
    """Distinct package names over every version's package feeds (``/api/v1/stats/packages``), counted
    once per catalog generation: each version's target feeds (packages, kmods) and arch feeds, read
    through the catalog (which parses them in a thread); concurrent askers share one count."""

    def __init__(self) -> None:
        self._cached: tuple[int, int] | None = None
        self._counting: tuple[int, Deferred[int]] | None = None

    def count(self, catalog: Any) -> Deferred[int]:
        generation = int(getattr(catalog, "generation", 0))
        if self._cached is not None and self._cached[0] == generation:
            return succeed(self._cached[1])
        if self._counting is not None and self._counting[0] == generation:
            return shielded(self._counting[1])
        counting: Deferred[int] = ensureDeferred(self._count(catalog))

        def keep(total: int) -> int:
            self._cached = (generation, total)
            self._counting = None
            return total

        def forget(failure: Any) -> Any:
            self._counting = None
            return failure

        counting.addCallbacks(keep, forget)
        self._counting = (generation, counting)
        return shielded(counting)

    @staticmethod
    async def _count(catalog: Any) -> int:
        names: set[str] = set()
        for distro in catalog.distros():
            for branch in catalog.branches(distro).values():
                arches = sorted(set(branch.targets.values()))
                for version in branch.versions:
                    for arch in arches:
                        names.update(await _or_empty(catalog.arch_index(distro, version, arch), arch))
                    for target in sorted(branch.targets):
                        index = await _or_empty(catalog.target_index(distro, version, target), target)
                        names.update(index.get("packages", {}))
        return len(names)


async def _or_empty(loading: Deferred[dict[str, Any]], what: str) -> dict[str, Any]:
    """A feed that cannot be read now (not verified, unreachable) counts no names, as an absent one."""
    try:
        return await loading
    except Exception:
        log.failure("package names of {what}: the feed could not be read", what=what)
        return {}


class StatsApi:
    """``/api/v1/stats/{popular_packages,popular_targets,images,packages,timeseries}``."""

    app = json_app()

    def __init__(self, state: AsudApp, *, known_packages: KnownPackages | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.state = state
        self.known_packages = known_packages or KnownPackages()
        self._now = now

    def resource(self) -> object:
        return self.app.resource()

    def queries(self) -> StatsQueries:
        queries = self.state.stats_queries
        if queries is None:
            raise Unavailable("Statistics are not available, retry later")
        return queries  # type: ignore[no-any-return]

    def now(self) -> datetime:
        if self._now is not None:
            return self._now()
        return datetime.fromtimestamp(self.state.clock.seconds(), UTC)

    @app.route("/api/v1/stats/popular_packages", methods=["GET", "HEAD"])
    def popular_packages(self, request: IRequest) -> Deferred[bytes]:
        """``[{"package_name", "count"}]``: the 50 packages named by most requests (never the ``defaults``
        content), most requested first, ties by name."""

        async def answer() -> bytes:
            found = await shielded(self.queries().popular_packages())
            return json_answer(request, [{"package_name": name, "count": count} for name, count in found])

        return ensureDeferred(answer())

    @app.route("/api/v1/stats/popular_targets", methods=["GET", "HEAD"])
    def popular_targets(self, request: IRequest) -> Deferred[bytes]:
        """``[{"target", "subtarget", "count", "build_seconds"}]``: the 50 most requested targets;
        ``build_seconds`` is the rounded mean of the target's successful builds (``null`` before one)."""

        async def answer() -> bytes:
            entries = await shielded(self.queries().popular_targets())
            body = []
            for entry in entries:
                target, _, subtarget = entry["target"].partition("/")
                seconds = entry["build_seconds"]
                body.append({
                    "target": target,
                    "subtarget": subtarget,
                    "count": entry["count"],
                    "build_seconds": round(seconds) if seconds is not None else None,
                })
            return json_answer(request, body)

        return ensureDeferred(answer())

    @app.route("/api/v1/stats/images", methods=["GET", "HEAD"])
    def images(self, request: IRequest) -> Deferred[bytes]:
        """``{"total": build requests ever, "stored": public images in the store, "requested": queued
        now}``."""

        async def answer() -> bytes:
            totals = await shielded(self.queries().totals())
            stored = await shielded(deferToThread(self.state.files.bin_dirs))  # a directory scan
            queued = await shielded(self.state.build_records().queue_length())
            return json_answer(request, {"total": totals.requests, "stored": len(stored),
                                         "requested": int(queued)})

        return ensureDeferred(answer())

    @app.route("/api/v1/stats/packages", methods=["GET", "HEAD"])
    def packages(self, request: IRequest) -> Deferred[bytes]:
        """``{"packages": n}``: distinct (ABI-free) package names over every version's feeds."""

        async def answer() -> bytes:
            count = await self.known_packages.count(self.state.current_catalog())
            return json_answer(request, {"packages": count})

        return ensureDeferred(answer())

    @app.route("/api/v1/stats/timeseries", methods=["GET", "HEAD"])
    def timeseries(self, request: IRequest) -> Deferred[bytes]:
        """Build requests per hour/day by version, target or in total, cache hits and misses with the hit
        rate, finished builds with their mean duration, mean and p95 build time, and the popular packages,
        targets and clients of the window (``days`` ending now, or ``since``/``until``). Hourly buckets
        exist while the retention keeps them (``[retention] stats``); daily ones forever."""
        query = read_query(request, _TIMESERIES)
        end = _moment(query["until"], "until") or self.now()
        start = _moment(query["since"], "since") or end - timedelta(days=query["days"])
        if start >= end or end - start > MAX_WINDOW:
            raise BadRequest("Invalid window: since must be before until, and at most ten years apart")
        queries = self.queries()

        async def answer() -> bytes:
            document = await shielded(queries.timeseries(
                period=query["period"], by=query["by"], since=start, until=end, limit=query["limit"]
            ))
            return json_answer(request, document)

        return ensureDeferred(answer())
