"""Prometheus ``GET /metrics`` (text format 0.0.4, rendered here: no client library needed).

Counters that must agree across API processes (build requests, cache hits, builds by outcome, build
durations) are read from the statistics tables, so any process answers the same totals; the queue length,
ImageBuilder cache and store sizes are read when scraped. Request latency is measured in this process by
:class:`LatencyMiddleware` (Prometheus scrapes each process), labelled by method, route template and status.

``install_metrics(app)`` adds the route and the middleware.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sysup.api.state import ApiState, api_state
from sysup.stats import queries, recorder_for
from sysup.stats.recorder import BUILD_SECONDS_BUCKETS, bucket_label

router = APIRouter(tags=["metrics"])

#: ``Content-Type`` of the Prometheus text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the request-latency histogram.
LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LatencyHistogram:
    """Request durations per ``(method, route, status)``; thread-safe."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        #: labels → (per-bucket counts, sum, count)
        self._series: dict[tuple[str, str, str], tuple[list[int], float, int]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        with self._lock:
            counts, total, count = self._series.get(key) or ([0] * len(self.buckets), 0.0, 0)
            for index, bound in enumerate(self.buckets):
                if seconds <= bound:
                    counts[index] += 1
            self._series[key] = (counts, total + seconds, count + 1)

    def samples(self) -> list[tuple[tuple[str, str, str], list[int], float, int]]:
        with self._lock:
            return [
                (key, list(counts), total, count)
                for key, (counts, total, count) in sorted(self._series.items())
            ]


class LatencyMiddleware:
    """Times every HTTP request into a :class:`LatencyHistogram` (the route template, never the raw path,
    so unknown paths cannot grow the label set)."""

    def __init__(self, app: ASGIApp, histogram: LatencyHistogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.histogram.observe(scope["method"], route, status, time.perf_counter() - started)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, labels: Iterable[tuple[str, str]] = ()) -> None:
        self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


_ib_caches: dict[str, Any] = {}
_ib_lock = threading.Lock()


def imagebuilder_cache_bytes(state: ApiState) -> int:
    """Bytes of unpacked ImageBuilders in this server's cache (0 before the first build)."""
    root = state.settings.ib_cache_dir
    if not (root / "entries").is_dir():
        return 0
    from sysup.imagebuilders.cache import ImageBuilderCache
    from sysup.upstream.fetch import Fetcher

    with _ib_lock:
        cache = _ib_caches.get(str(root))
        if cache is None:
            # Only read here; the fetcher is never used and never opens a connection.
            cache = _ib_caches[str(root)] = ImageBuilderCache(
                root, Fetcher(timeout=1.0, retries=0), state.settings.ib_cache_max_bytes
            )
    return int(cache.usage_bytes())


def render_metrics(state: ApiState, latency: LatencyHistogram | None) -> str:
    """The whole exposition text."""
    recorder_for(state.engine).maintain(state.settings.stats_retention)
    from sysup.database import session_factory

    totals = queries.totals(session_factory(state.engine))
    out = _Lines()
    out.family("sysup_build_queue_length", "gauge", "Builds waiting for a worker.")
    out.sample("sysup_build_queue_length", state.builds.queue_length())
    out.family("sysup_build_requests_total", "counter", "Accepted build requests (v1 and 2017 API).")
    out.sample("sysup_build_requests_total", totals.requests)
    out.family("sysup_cache_hits_total", "counter", "Build requests answered with an image already built.")
    out.sample("sysup_cache_hits_total", totals.cache_hits)
    out.family("sysup_cache_misses_total", "counter", "Build requests that needed (or waited for) a build.")
    out.sample("sysup_cache_misses_total", totals.cache_misses)
    out.family("sysup_builds_total", "counter", "Finished builds by outcome.")
    for outcome in ("done", "failed"):
        out.sample("sysup_builds_total", totals.builds.get(outcome, 0), [("outcome", outcome)])
    out.family("sysup_build_duration_seconds", "histogram", "Build time from a worker claim to the result.")
    count = sum(totals.builds.values())
    for bound in BUILD_SECONDS_BUCKETS:
        label = bucket_label(bound)
        out.sample("sysup_build_duration_seconds_bucket", totals.build_buckets.get(label, 0), [("le", label)])
    out.sample("sysup_build_duration_seconds_bucket", count, [("le", "+Inf")])
    out.sample("sysup_build_duration_seconds_sum", totals.build_seconds_sum)
    out.sample("sysup_build_duration_seconds_count", count)
    out.family("sysup_imagebuilder_cache_bytes", "gauge", "Bytes of unpacked ImageBuilders in the cache.")
    out.sample("sysup_imagebuilder_cache_bytes", imagebuilder_cache_bytes(state))
    out.family("sysup_store_bytes", "gauge", "Bytes of stored build results.")
    out.sample("sysup_store_bytes", state.store.usage_bytes())
    out.family("sysup_http_request_duration_seconds", "histogram", "HTTP request latency in this process.")
    for (method, route, status), counts, total, observed in latency.samples() if latency else []:
        labels = [("method", method), ("route", route), ("status", status)]
        for bound, bucket_count in zip(LATENCY_BUCKETS, counts, strict=True):
            out.sample(
                "sysup_http_request_duration_seconds_bucket",
                bucket_count,
                [*labels, ("le", bucket_label(bound))],
            )
        out.sample("sysup_http_request_duration_seconds_bucket", observed, [*labels, ("le", "+Inf")])
        out.sample("sysup_http_request_duration_seconds_sum", total, labels)
        out.sample("sysup_http_request_duration_seconds_count", observed, labels)
    return out.text()


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request, state: Annotated[ApiState, Depends(api_state)]) -> Response:
    latency = getattr(request.app.state, "request_latency", None)
    text = await run_in_threadpool(render_metrics, state, latency)
    return Response(text, media_type=CONTENT_TYPE)


def install_metrics(app: FastAPI) -> None:
    """Add ``GET /metrics`` and the latency middleware to ``app`` (call before the outer middlewares)."""
    histogram = LatencyHistogram()
    app.state.request_latency = histogram
    app.include_router(router)
    app.add_middleware(LatencyMiddleware, histogram=histogram)
