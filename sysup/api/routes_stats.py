"""Statistics routes: the 2017 API's four ``/api/v1/stats/*`` answers and the time series of the web
stats page (``/api/v1/stats/timeseries``).

Each call first collects finished builds from ``builds`` into the statistics (cheap and incremental), so
the numbers include every build finished before the call.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from asud.errors import BadRequest
from sysup.api.responses import JsonResponse
from sysup.api.state import ApiState, api_state
from sysup.catalog.models import PackageFeed
from sysup.catalog.records_codec import decode_records
from sysup.database import session_factory
from sysup.stats import queries, recorder_for

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])

State = Annotated[ApiState, Depends(api_state)]

#: Longest window ``/api/v1/stats/timeseries`` answers for.
MAX_WINDOW = timedelta(days=3660)


def _sessions(state: ApiState) -> queries.Sessions:
    recorder_for(state.engine).maintain(state.settings.stats_retention)
    return session_factory(state.engine)


@router.get("/popular_packages", summary="The 50 most requested packages")
async def popular_packages(state: State) -> Response:
    """``[{"package_name", "count"}]``: requests naming the package (never the ``defaults`` content)."""

    def read() -> list[dict[str, Any]]:
        return [
            {"package_name": name, "count": count}
            for name, count in queries.popular_packages(_sessions(state))
        ]

    return JsonResponse(await run_in_threadpool(read))


@router.get("/popular_targets", summary="The 50 most requested targets, with average build time")
async def popular_targets(state: State) -> Response:
    """``[{"target", "subtarget", "count", "build_seconds"}]``; ``build_seconds`` is the rounded mean of
    the target's successful builds (``null`` before the first one)."""

    def read() -> list[dict[str, Any]]:
        answer = []
        for entry in queries.popular_targets(_sessions(state)):
            target, _, subtarget = entry["target"].partition("/")
            seconds = entry["build_seconds"]
            answer.append(
                {
                    "target": target,
                    "subtarget": subtarget,
                    "count": entry["count"],
                    "build_seconds": round(seconds) if seconds is not None else None,
                }
            )
        return answer

    return JsonResponse(await run_in_threadpool(read))


@router.get("/images", summary="Build requests ever, images stored, builds queued")
async def images(state: State) -> Response:
    """``{"total": build requests ever, "stored": public images in the store, "requested": queued now}``."""

    def read() -> dict[str, int]:
        totals = queries.totals(_sessions(state))
        return {
            "total": totals.requests,
            "stored": len(state.store.bin_dirs()),
            "requested": state.builds.queue_length(),
        }

    return JsonResponse(await run_in_threadpool(read))


class _KnownPackages:
    """Distinct package names over every present feed; recounted only when a feed changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[tuple[Any, ...], int] | None = None

    def count(self, state: ApiState) -> int:
        with session_factory(state.engine)() as session:
            fingerprint = tuple(
                session.execute(
                    select(PackageFeed.id, PackageFeed.index_sha256).where(PackageFeed.present.is_(True))
                ).all()
            )
            with self._lock:
                if self._cached is not None and self._cached[0] == fingerprint:
                    return self._cached[1]
            names: set[str] = set()
            for (blob,) in session.execute(select(PackageFeed.records).where(PackageFeed.present.is_(True))):
                names.update(record.stripped_name for record in decode_records(blob))
        with self._lock:
            self._cached = (fingerprint, len(names))
        return len(names)


_known_packages = _KnownPackages()


@router.get("/packages", summary="Distinct package names known across versions")
async def packages(state: State) -> Response:
    """``{"packages": n}``: ABI-free names over every version's feeds."""
    return JsonResponse({"packages": await run_in_threadpool(_known_packages.count, state)})


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid parameter: {name} must be an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/timeseries", summary="Time series for the stats page")
async def timeseries(
    state: State,
    period: Annotated[Literal["hour", "day"], Query(description="Bucket size")] = "day",
    by: Annotated[Literal["version", "target", "total"], Query(description="Split requests by")] = "version",
    days: Annotated[int, Query(ge=1, le=3660, description="Window ending now (without since)")] = 7,
    since: Annotated[str | None, Query(description="ISO 8601 start (inclusive)")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 end (exclusive); default now")] = None,
    limit: Annotated[int, Query(ge=1, le=50, description="Entries of the popular lists")] = 10,
) -> Response:
    """Build requests per hour/day by version or target, cache hits and misses with the hit rate, finished
    builds with their mean duration, p95 build time, and the popular packages, targets and clients of the
    window. Hourly buckets exist while raw events are kept (``stats_retention``); daily ones forever."""
    end = _moment(until, "until") or datetime.now(UTC)
    start = _moment(since, "since") or end - timedelta(days=days)
    if start >= end or end - start > MAX_WINDOW:
        raise BadRequest("Invalid window: since must be before until, and at most ten years apart")

    def read() -> dict[str, Any]:
        return queries.timeseries(_sessions(state), period=period, by=by, since=start, until=end, limit=limit)

    return JsonResponse(await run_in_threadpool(read))
