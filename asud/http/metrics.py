"""Prometheus ``GET /metrics`` (text format 0.0.4, rendered here: no client library needed).

Counters that must agree across daemons sharing one Redis (build requests, cache hits, builds by outcome,
build durations) are read from the statistics (``asud.store.stats_queries``), so any daemon answers the
same totals; the queue length, ImageBuilder cache and store sizes are read when scraped. Request latency
is measured in this process by :class:`LatencyHistogram` (Prometheus scrapes each daemon): the root
resource calls its ``observe`` once per answered request, labelled by method, route template and status.

Metric names are ``asud_…`` (:data:`PREFIX`); names and labels after the prefix are the first version's
(``sysup_…``), so a dashboard moves over by renaming the prefix.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.threads import deferToThread
from twisted.web.iweb import IRequest

from asud import __version__
from asud.errors import Unavailable
from asud.http.errors import json_app
from asud.http.shield import shielded
from asud.http.state import AsudApp
from asud.store.stats_keys import BUILD_SECONDS_BUCKETS, bucket_label
from asud.store.stats_window import Totals

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "PREFIX", "LatencyHistogram", "Metrics", "render_metrics"]

#: ``Content-Type`` of the Prometheus text format.
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the request-latency histogram.
LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: First word of every metric name.
PREFIX = "asud"


class LatencyHistogram:
    """Request durations per ``(method, route, status)``. ``observe`` is an ``AsudApp`` request observer
    (``asud.http.state.RequestObserver``), called for every request: it counts each duration in its one
    bucket (found by bisection); :meth:`samples` adds them up into Prometheus' cumulative buckets."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        #: labels → [count per bucket (the last one: above every bound)…, sum, count]
        self._series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0] * (len(self.buckets) + 3)
        series[bisect_left(self.buckets, seconds)] += 1
        series[-2] += seconds
        series[-1] += 1

    def samples(self) -> list[tuple[tuple[str, str, str], list[int], float, int]]:
        """``(labels, cumulative count per bound, sum, count)`` per series, sorted by labels."""
        bounds = len(self.buckets)
        answer = []
        for (method, route, status), series in self._series.items():
            answer.append(((method, route, str(status)), [int(n) for n in accumulate(series[:bounds])],
                           float(series[-2]), int(series[-1])))
        return sorted(answer)


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
        self.lines += [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} {kind}"]

    def sample(self, name: str, value: float, labels: Iterable[tuple[str, str]] = ()) -> None:
        self.lines.append(f"{PREFIX}_{name}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_metrics(
    *,
    queue_length: int,
    totals: Totals,
    imagebuilder_bytes: int,
    store_bytes: int,
    latency: LatencyHistogram | None,
    node: str = "",
) -> str:
    """The whole exposition text; ``node`` names this daemon in a cluster (``[cluster] node``)."""
    out = _Lines()
    out.family("node_info", "gauge", "This daemon: its node name in a cluster and its version (always 1).")
    out.sample("node_info", 1, [("node", node), ("version", __version__)])
    out.family("build_queue_length", "gauge", "Builds waiting for a worker.")
    out.sample("build_queue_length", queue_length)
    out.family("build_requests_total", "counter", "Accepted build requests (v1 and 2017 API).")
    out.sample("build_requests_total", totals.requests)
    out.family("cache_hits_total", "counter", "Build requests answered with an image already built.")
    out.sample("cache_hits_total", totals.cache_hits)
    out.family("cache_misses_total", "counter", "Build requests that needed (or waited for) a build.")
    out.sample("cache_misses_total", totals.cache_misses)
    out.family("builds_total", "counter", "Finished builds by outcome.")
    for outcome in ("done", "failed"):
        out.sample("builds_total", totals.builds.get(outcome, 0), [("outcome", outcome)])
    out.family("build_duration_seconds", "histogram", "Build time from a worker claim to the result.")
    count = sum(totals.builds.values())
    for bound in BUILD_SECONDS_BUCKETS:
        label = bucket_label(bound)
        out.sample("build_duration_seconds_bucket", totals.build_buckets.get(label, 0), [("le", label)])
    out.sample("build_duration_seconds_bucket", count, [("le", "+Inf")])
    out.sample("build_duration_seconds_sum", totals.build_seconds_sum)
    out.sample("build_duration_seconds_count", count)
    out.family("imagebuilder_cache_bytes", "gauge", "Bytes of unpacked ImageBuilders in the cache.")
    out.sample("imagebuilder_cache_bytes", imagebuilder_bytes)
    out.family("store_bytes", "gauge", "Bytes of stored build results.")
    out.sample("store_bytes", store_bytes)
    out.family("http_request_duration_seconds", "histogram", "HTTP request latency in this process.")
    bounds = latency.buckets if latency else ()
    for (method, route, status), counts, total, observed in latency.samples() if latency else []:
        labels = [("method", method), ("route", route), ("status", status)]
        for bound, bucket_count in zip(bounds, counts, strict=True):
            bucket = [*labels, ("le", bucket_label(bound))]
            out.sample("http_request_duration_seconds_bucket", bucket_count, bucket)
        out.sample("http_request_duration_seconds_bucket", observed, [*labels, ("le", "+Inf")])
        out.sample("http_request_duration_seconds_sum", total, labels)
        out.sample("http_request_duration_seconds_count", observed, labels)
    return out.text()


def latency_of(state: AsudApp) -> LatencyHistogram:
    """The app's latency histogram, registered as a request observer the first time it is asked for."""
    for observer in state.observers:
        histogram = getattr(observer, "__self__", None)
        if isinstance(histogram, LatencyHistogram):
            return histogram
    histogram = LatencyHistogram()
    state.observers.append(histogram.observe)
    return histogram


class Metrics:
    """``GET /metrics``. Made with an ``AsudApp``, it registers the app's :class:`LatencyHistogram`.

    ``imagebuilder_bytes`` says how many bytes the ImageBuilder cache holds (run in a thread: it may walk
    directories); without it the app's ``imagebuilders`` part is asked (``usage_bytes()``), if it has one,
    else the cache counts as empty."""

    app = json_app()

    def __init__(self, state: AsudApp, *, imagebuilder_bytes: Callable[[], int] | None = None) -> None:
        self.state = state
        self.latency = latency_of(state)
        cache: Any = getattr(state, "imagebuilders", None)
        if imagebuilder_bytes is None and cache is not None:
            imagebuilder_bytes = cache.usage_bytes
        self._imagebuilder_bytes = imagebuilder_bytes

    def resource(self) -> object:
        return self.app.resource()

    @app.route("/metrics", methods=["GET", "HEAD"])
    def metrics(self, request: IRequest) -> Deferred[bytes]:
        queries = self.state.stats_queries
        records = self.state.build_records()

        async def answer() -> bytes:
            if queries is None:
                raise Unavailable("Statistics are not available, retry later")
            totals = await shielded(queries.totals())
            queued = await shielded(records.queue_length())
            store_bytes = await shielded(deferToThread(self.state.files.usage_bytes))
            cache_bytes = 0
            if self._imagebuilder_bytes is not None:
                cache_bytes = await shielded(deferToThread(self._imagebuilder_bytes))
            text = render_metrics(queue_length=int(queued), totals=totals,
                                  imagebuilder_bytes=int(cache_bytes), store_bytes=int(store_bytes),
                                  latency=self.latency, node=self.state.config.node_name())
            body = text.encode("utf-8")
            request.setHeader(b"Content-Type", CONTENT_TYPE)
            request.setHeader(b"Content-Length", b"%d" % len(body))
            return body

        return ensureDeferred(answer())
