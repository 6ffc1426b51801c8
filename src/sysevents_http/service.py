"""The state the app keeps between requests: the repository, lifecycle events, throttles."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import sysevents
from sysevents import (
    ConfigurationError,
    EventFilter,
    EventQuery,
    EventRepository,
    HasKeys,
    JsonReads,
    NewEvent,
    ReportsCacheStats,
    Settings,
    Severity,
    StoreUnavailableError,
)
from sysevents._tasks import finish
from sysevents.keys import KeyRing, KeyStore, static_keys

from .config import HttpOptions
from .limits import MemoryCounter, RedisCounter
from .maintenance import upkeep_forever

if TYPE_CHECKING:
    from .metrics import Metrics

HEALTH_STORE_TIMEOUT = 1.0
"""Seconds a question the service asks its store for itself may take."""

T = TypeVar("T")
P = ParamSpec("P")
logger = logging.getLogger("sysevents_http")

SOURCE = "sysevents_http"
"""The ``source`` of the lifecycle events the service records."""


class EventService:
    """Owns the repository of one app and records its lifecycle events.

    The repository is created and opened in :meth:`start` (inside the app's
    lifespan, on the app's own event loop) and closed in :meth:`stop`. A
    repository handed in by the caller is used as it is and left open.
    """

    def __init__(
        self,
        settings: Settings,
        options: HttpOptions,
        repository: EventRepository | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self._given = repository
        self._repository: EventRepository | None = repository
        self._json_reads: JsonReads | None = None
        self._opened = repository is not None
        self._open_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_health: dict[str, tuple[float, str]] = {}
        self.started_monotonic = time.monotonic()
        self.store_timeout = options.store_timeout or settings.timeout + 1.0
        secret_keys = settings.api_keys.get_secret_value() if settings.api_keys else ""
        self.keys = KeyRing(None, static_keys(secret_keys))
        """The API keys requests are checked against (settings first, then the store's)."""
        self.rate_counter: MemoryCounter | RedisCounter = MemoryCounter()
        self._upkeep: asyncio.Task[None] | None = None
        self._stop_upkeep = asyncio.Event()
        self._rate_redis: Any = None
        self.metrics: Metrics | None = None
        """Where store calls are timed (``/metrics``), when metrics are on."""

    @property
    def uptime(self) -> float:
        """Seconds since the service started."""
        return round(time.monotonic() - self.started_monotonic, 3)

    @property
    def repository(self) -> EventRepository:
        """The repository (created by :meth:`start` unless one was handed in)."""
        if self._repository is None:
            raise StoreUnavailableError("the service has not started")
        return self._repository

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Create and open the repository, then record ``system_startup``."""
        self.started_monotonic = time.monotonic()
        self._open_lock = asyncio.Lock()
        if self._given is None:
            self._repository = sysevents.connect(settings=self.settings)
            self._opened = False
        # Looked up once: the capabilities do not change while the app runs.
        repository = self._repository
        self._json_reads = repository if isinstance(repository, JsonReads) else None
        self.keys.store = repository.keys if isinstance(repository, HasKeys) else None
        if self.settings.redis_url and self.settings.rate_limit != "off":
            from sysevents.cache import cache_client

            self._rate_redis = cache_client(self.settings.redis_url, timeout=0.25)
            self.rate_counter = RedisCounter(self._rate_redis, self.settings.cache_prefix)
        if not self._opened:
            await self._try_open()
        await self.record(
            "system_startup", Severity.INFO, "sysevents API started", self._host_details()
        )
        self._stop_upkeep = asyncio.Event()
        self._upkeep = asyncio.get_running_loop().create_task(
            upkeep_forever(self.repository, self.settings, self._stop_upkeep),
            name="sysevents-upkeep",
        )

    async def stop(self) -> None:
        """Record ``system_shutdown``, finish pending records, close what we opened."""
        upkeep, self._upkeep = self._upkeep, None
        if upkeep is not None:
            self._stop_upkeep.set()
            await finish(upkeep, self.settings.timeout)
        try:
            await self.record(
                "system_shutdown", Severity.INFO, "sysevents API stopping", self._host_details()
            )
            if self._tasks:
                _, pending = await asyncio.wait(self._tasks, timeout=self.store_timeout)
                for task in pending:
                    task.cancel()
        finally:
            if self._rate_redis is not None:
                await self._rate_redis.aclose()
            if self._given is None and self._repository is not None:
                await self._repository.close()

    async def _try_open(self) -> bool:
        async with self._open_lock:
            if self._opened:
                return True
            try:
                await asyncio.wait_for(self.repository.open(), self.store_timeout)
            except Exception as exc:  # the app keeps serving; requests retry
                logger.warning("the event store did not open (%s); will retry", exc)
                return False
            self._opened = True
            return True

    async def call(
        self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run one repository call, failing with ``StoreUnavailableError`` past the timeout."""
        return await self.call_within(self.store_timeout, operation, *args, **kwargs)

    async def call_within(
        self,
        seconds: float,
        operation: Callable[P, Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run one repository call, failing with ``StoreUnavailableError`` after ``seconds``."""
        try:
            async with asyncio.timeout(seconds):  # no task per call, unlike wait_for
                if not self._opened and not await self._try_open():
                    raise StoreUnavailableError("the event store is not open")
                if self.metrics is None:
                    return await operation(*args, **kwargs)
                started = time.perf_counter()
                try:
                    return await operation(*args, **kwargs)
                finally:
                    self.metrics.observe_store(
                        getattr(operation, "__name__", "call"), time.perf_counter() - started
                    )
        except TimeoutError:
            raise StoreUnavailableError(
                f"the event store did not answer within {seconds:g} s"
            ) from None

    async def event_json(self, event_id: int) -> bytes | None:
        """The event as JSON, straight from the cache's bytes when the repository has them."""
        if self._json_reads is not None:
            return await self.call(self._json_reads.get_json, event_id)
        event = await self.call(self.repository.get, event_id)
        return None if event is None else event.model_dump_json().encode()

    async def stats_json(self, query: EventFilter) -> bytes:
        """The stats as JSON, straight from the cache's bytes when the repository has them."""
        if self._json_reads is not None:
            return await self.call(self._json_reads.stats_json, query)
        stats = await self.call(self.repository.stats, query)
        return stats.model_dump_json().encode()

    def key_store(self) -> KeyStore:
        """The store's keys (``ConfigurationError`` for a store that keeps none)."""
        if self.keys.store is None:
            raise ConfigurationError(
                "this event store keeps no API keys: give them in SYSEVENTS_API_KEYS"
            )
        return self.keys.store

    async def auth_required(self) -> bool:
        """Whether a request to a protected route must carry a key (see ``Settings.auth``)."""
        mode = self.settings.auth
        if mode == "off":
            return False
        if mode == "required":
            return True
        # A store that cannot say whether keys exist fails the request (503):
        # nothing is served without knowing.
        return await self.call_within(HEALTH_STORE_TIMEOUT, self.keys.any_keys)

    async def page_json(self, query: EventQuery) -> bytes:
        """One page as JSON, within the ``max_page_bytes`` budget when the repository can cut it.

        A repository without JSON reads (one handed in that is not a sysevents
        store) answers whole pages.
        """
        if self._json_reads is not None:
            return await self.call(
                self._json_reads.list_json, query, max_bytes=self.settings.max_page_bytes
            )
        page = await self.call(self.repository.list, query)
        return page.model_dump_json().encode()

    # -- lifecycle events ---------------------------------------------------------

    def _host_details(self) -> dict[str, Any]:
        return {
            "version": sysevents.__version__,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "uptime": self.uptime,
        }

    async def record(
        self, event_type: str, severity: Severity, message: str, details: dict[str, Any]
    ) -> bool:
        """Store a lifecycle event, or print it to stdout as one JSON line when the store fails."""
        new = NewEvent(
            event_type=event_type,
            severity=severity,
            message=message,
            details=details,
            source=SOURCE,
        )
        try:
            await self.call(self.repository.add, new)
            return True
        except Exception as exc:
            line = new.model_dump(mode="json")
            line["stored"] = False
            line["error"] = f"{type(exc).__name__}: {exc}"
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return False

    def note_health(self, kind: str, state: str, details: dict[str, Any]) -> None:
        """Record a health event in the background, at most once per interval per state."""
        now = time.monotonic()
        last = self._last_health.get(kind)
        if (
            last is not None
            and last[1] == state
            and now - last[0] < self.options.health_log_interval
        ):
            return
        self._last_health[kind] = (now, state)
        severity = Severity.INFO if state == "ok" else Severity.ERROR
        message = f"{kind.replace('_', ' ')}: {state}"
        task = asyncio.get_running_loop().create_task(
            self._record_quietly(kind, severity, message, {**details, "state": state})
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_quietly(
        self, kind: str, severity: Severity, message: str, details: dict[str, Any]
    ) -> None:
        await self.record(kind, severity, message, details)

    def pool_stats(self) -> dict[str, int] | None:
        """The database pool's counters (``pool_size``, ``pool_available``…), when there is one."""
        repository = self._repository
        pool = getattr(repository, "pool", None) or getattr(
            getattr(repository, "inner", None), "pool", None
        )
        if pool is None or not hasattr(pool, "get_stats"):
            return None
        stats: dict[str, int] = pool.get_stats()
        return stats

    def cache_stats(self) -> dict[str, Any] | None:
        """The repository's cache counters, when it has a cache."""
        repository = self._repository
        if not isinstance(repository, ReportsCacheStats):
            return None
        return dataclasses.asdict(repository.cache_stats())
