"""``GET /metrics``: the service's figures in Prometheus text format.

Built on ``prometheus-client`` directly, with a registry per app (two apps in
one process never mix their counts): requests by route template, method and
status, with latency histograms, timed by a small ASGI middleware; store call
latency by operation, timed by the service; and, read at scrape time, the
cache's hits and misses, the pool's connections in use, and how the
background chores (upkeep, retention) fare. Every name starts with
``sysevents_``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sysevents import SyseventsError

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from sysevents import EventRepository
    from sysevents.store import Backlog

    from .chores import ChoreHealth

BACKLOG_TIMEOUT = 0.5
"""Seconds a scrape waits for the store's backlog before leaving it out."""
# The text format every Prometheus server reads (Litestar adds the charset).
CONTENT_TYPE = "text/plain; version=0.0.4"
# The methods a label may name; any other is "other", so that made-up methods
# cannot grow the label sets.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The figures of one app, in a registry of its own."""

    def __init__(
        self,
        store: Callable[[], EventRepository | None],
        chores: Callable[[], Mapping[str, ChoreHealth]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sysevents_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "sysevents_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "sysevents_store_call_duration_seconds",
            "Time of one call to the event store, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._scraped = _ScrapeTime(store)
        self.registry.register(self._scraped)
        if chores is not None:
            self.registry.register(_Chores(chores))

        # The label children of each (route, method, status) seen, bound once:
        # looking them up by labels costs more than counting.
        self._bound: dict[tuple[str, str, int], tuple[Callable[[], None], Callable[[float], None]]]
        self._bound = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (a method not of HTTP's own is counted as ``other``)."""
        name = method if method in _METHODS else "other"
        key = (route, name, status)
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bound[key] = (
                self.requests.labels(route, name, str(status)).inc,
                self.request_seconds.labels(route, name).observe,
            )
        count, observe = bound
        count()
        observe(seconds)

    def store_timer(self, operation: str) -> Callable[[float], None]:
        """What records one call of ``operation`` (its label bound once, not per call)."""
        return self.store_seconds.labels(operation).observe

    async def refresh(self) -> None:
        """Read what the store reports only when asked (its background backlog), briefly."""
        store = self._scraped.store()
        if store is None:
            return
        try:
            async with asyncio.timeout(BACKLOG_TIMEOUT):
                self._scraped.backlog = await store.backlog()
        except (SyseventsError, TimeoutError):
            self._scraped.backlog = None  # the store does not answer: no figure, no error

    def text(self) -> bytes:
        """Every figure in the Prometheus text format."""
        return generate_latest(self.registry)


class _ScrapeTime(Collector):
    """Figures read when scraped: the cache's counters and the pool's connections."""

    def __init__(self, store: Callable[[], EventRepository | None]) -> None:
        self.store = store
        self.backlog: Backlog | None = None

    def describe(self) -> list[Any]:
        return []  # read at scrape time: nothing to check at registration

    def collect(self) -> Iterator[Any]:
        store = self.store()
        if store is None:
            return
        stats = store.cache_stats()
        if stats is not None:
            for name, value in (
                ("hits", stats.hits),
                ("misses", stats.misses),
                ("errors", stats.errors),
            ):
                family = CounterMetricFamily(
                    f"sysevents_cache_{name}", f"Cache {name} since the app started."
                )
                family.add_metric([], value)
                yield family
        pool = store.pool_stats()
        if pool is not None:
            in_use = GaugeMetricFamily(
                "sysevents_pool_connections_in_use", "Database connections lent out now."
            )
            in_use.add_metric([], pool.size - pool.idle)
            yield in_use
            size = GaugeMetricFamily("sysevents_pool_connections", "Database connections open.")
            size.add_metric([], pool.size)
            yield size
            reads = GaugeMetricFamily(
                "sysevents_pool_reads_in_use",
                "Database connections lent to reads now (the write reserve is never among them).",
            )
            reads.add_metric([], pool.reads_in_use)
            yield reads
            waiting = GaugeMetricFamily(
                "sysevents_pool_reads_waiting", "Reads waiting for a connection within their share."
            )
            waiting.add_metric([], pool.reads_waiting)
            yield waiting
        replicas = store.replicas()
        if replicas:
            lag = GaugeMetricFamily(
                "sysevents_replica_lag_seconds",
                "Seconds each read replica is behind the primary (-1: not answering).",
                labels=["replica"],
            )
            in_use = GaugeMetricFamily(
                "sysevents_replica_in_use", "Whether reads go to the replica.", labels=["replica"]
            )
            for replica in replicas:
                lag.add_metric([replica.name], -1 if replica.lag is None else replica.lag)
                in_use.add_metric([replica.name], int(replica.usable))
            yield lag
            yield in_use
        backlog = self.backlog
        if backlog is not None:
            figures: tuple[tuple[str, float, str], ...] = (
                ("fold_backlog_rows", backlog.rows, "Events not yet counted into the statistics."),
                ("fold_backlog_seconds", backlog.seconds, "Age of the oldest of them."),
            )
            for figure, amount, text in figures:
                gauge = GaugeMetricFamily(f"sysevents_{figure}", text)
                gauge.add_metric([], amount)
                yield gauge
            failures = CounterMetricFamily(
                "sysevents_background_failures",
                "Background runs (the fold, sealing) that failed since the store opened.",
            )
            failures.add_metric([], backlog.failures)
            yield failures


class _Chores(Collector):
    """The background chores' failures, read when scraped."""

    def __init__(self, chores: Callable[[], Mapping[str, ChoreHealth]]) -> None:
        self.chores = chores

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        health = self.chores()
        failures = CounterMetricFamily(
            "sysevents_chore_failures",
            "Runs of a background chore (upkeep, retention) that failed since the app started.",
            labels=["chore"],
        )
        failing = GaugeMetricFamily(
            "sysevents_chore_failing",
            "Failures of a background chore in a row now (0: its last run succeeded).",
            labels=["chore"],
        )
        for name, figures in sorted(health.items()):
            failures.add_metric([name], figures.failures)
            failing.add_metric([name], figures.failing)
        yield failures
        yield failing


class MetricsMiddleware:
    """Times every HTTP request and counts it by route template, method and status.

    It wraps the app's whole ASGI handler (see :func:`time_requests`), outside
    Litestar's exception handling, so that an error answered as a 4xx is
    counted with that status.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then count it."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The router names the route's template (``/api/events/{event_id:str}``);
            # a path no route matches is one label, not one per path.
            route = scope.get("path_template") or "(unmatched)"
            method = str(scope.get("method", "?"))
            self.metrics.observe_request(route, method, status, time.perf_counter() - started)


def time_requests(metrics: Metrics) -> Callable[[Any], None]:
    """A startup hook that wraps the app's ASGI handler in :class:`MetricsMiddleware`."""

    def wrap(app: Any) -> None:
        if not isinstance(app.asgi_handler, MetricsMiddleware):
            app.asgi_handler = MetricsMiddleware(app.asgi_handler, metrics)

    return wrap


@get(
    "/metrics",
    summary="Prometheus metrics",
    description="The service's figures in Prometheus text format (open, like the health "
    "routes; `SYSEVENTS_HTTP_METRICS=false` turns it off).",
    tags=["health"],
    media_type=CONTENT_TYPE,
)
async def metrics_route(metrics: NamedDependency[Metrics]) -> Response[bytes]:
    """Every figure, as Prometheus scrapes them."""
    await metrics.refresh()
    return Response(metrics.text(), media_type=CONTENT_TYPE)
