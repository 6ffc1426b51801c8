"""The store as the service uses it: opened lazily, every call bounded in time and timed.

:class:`GuardedStore` implements the whole store contract over the store it
wraps, so a route reads ``await store.add(new, caller=...)``. Each call:

* opens the store first if it is not open yet (the app starts even when its
  store is down, and starts using it once it answers);
* fails with ``StoreUnavailableError`` past the service's timeout (a 503),
  never hangs;
* is timed per operation for ``/metrics`` when metrics are on.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sysevents import (
    Event,
    EventFilter,
    EventHistogram,
    EventPage,
    EventPatch,
    EventQuery,
    EventRepository,
    EventStats,
    NewEvent,
    RetentionPolicy,
    RetentionReport,
    StoreUnavailableError,
)
from sysevents.delegating import DelegatingStore
from sysevents.keys import ApiKey, KeyStore, Scope, StoredKey

T = TypeVar("T")
logger = logging.getLogger("sysevents_http")


class StoreTimer(Protocol):
    """Where store calls are timed (``sysevents_http.metrics.Metrics``)."""

    def store_timer(self, operation: str) -> Callable[[float], None]:
        """A function that records one call of ``operation`` taking so many seconds."""


class GuardedStore(DelegatingStore):
    """``inner`` behind a timeout, a lazy open and the metrics (see the module).

    ``owned``: the store is the service's own, closed with it; a store handed
    in by the caller is left open.
    """

    def __init__(
        self,
        inner: EventRepository,
        *,
        timeout: float,
        owned: bool,
        timer: StoreTimer | None = None,
    ) -> None:
        super().__init__(inner)
        self.timeout = timeout
        self.owned = owned
        self._opened = not owned
        self._open_lock = asyncio.Lock()
        self._timer = timer
        self._timers: dict[str, Callable[[float], None]] = {}
        self._keys = None if inner.keys is None else GuardedKeys(inner.keys, self)

    @property
    def keys(self) -> KeyStore | None:
        """The inner store's keys, each call guarded alike."""
        return self._keys

    @property
    def opened(self) -> bool:
        """Whether the store is open (it may not be, when it did not answer at start)."""
        return self._opened

    async def open(self) -> None:
        """Open the store if it is not yet; a store that does not answer is tried again later."""
        await self._try_open()

    async def close(self) -> None:
        """Close the store if it is the service's own."""
        if self.owned:
            await self.inner.close()

    async def _try_open(self) -> bool:
        if self._opened:
            return True
        async with self._open_lock:
            if self._opened:
                return True
            try:
                await asyncio.wait_for(self.inner.open(), self.timeout)
            except Exception as exc:  # the app keeps serving; requests retry
                logger.warning("the event store did not open (%s); will retry", exc)
                return False
            self._opened = True
            return True

    async def run(
        self, operation: str, call: Callable[[], Awaitable[T]], seconds: float | None = None
    ) -> T:
        """``call()``, opened first, within ``seconds`` (default: the timeout), timed."""
        limit = self.timeout if seconds is None else seconds
        try:
            async with asyncio.timeout(limit):  # no task per call, unlike wait_for
                if not self._opened and not await self._try_open():
                    raise StoreUnavailableError("the event store is not open")
                if self._timer is None:
                    return await call()
                started = time.perf_counter()
                try:
                    return await call()
                finally:
                    self._observe(operation, time.perf_counter() - started)
        except TimeoutError:
            raise StoreUnavailableError(
                f"the event store did not answer within {limit:g} s"
            ) from None

    def _observe(self, operation: str, seconds: float) -> None:
        record = self._timers.get(operation)
        if record is None:
            assert self._timer is not None
            record = self._timers[operation] = self._timer.store_timer(operation)
        record(seconds)

    # -- the contract, each operation guarded ------------------------------------------

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event."""
        return await self.run("add", lambda: self.inner.add(new, caller=caller))

    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events, all or none."""
        return await self.run("add_many", lambda: self.inner.add_many(news, caller=caller))

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the given fields."""
        return await self.run("update", lambda: self.inner.update(event_id, patch, actor=actor))

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event."""
        await self.run("delete", lambda: self.inner.delete(event_id, actor=actor))

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove (or count) the expired events; bounded by the store's own timeouts only."""
        return await self.run(
            "apply_retention",
            lambda: self.inner.apply_retention(policy, now=now, dry_run=dry_run),
            seconds=_UPKEEP_SECONDS,
        )

    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None``."""
        return await self.run("get", lambda: self.inner.get(event_id))

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of the matching events."""
        return await self.run("list", lambda: self.inner.list(query))

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the matching events."""
        return await self.run("stats", lambda: self.inner.stats(query))

    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts by severity per bucket of time."""
        return await self.run("histogram", lambda: self.inner.histogram(query, interval))

    async def get_json(self, event_id: int) -> bytes | None:
        """The event as JSON, or ``None``."""
        return await self.run("get", lambda: self.inner.get_json(event_id))

    async def list_json(self, query: EventQuery | None = None, *, max_bytes: int = 0) -> bytes:
        """One page as JSON, within ``max_bytes``."""
        return await self.run("list", lambda: self.inner.list_json(query, max_bytes=max_bytes))

    async def stats_json(self, query: EventFilter | None = None) -> bytes:
        """The stats as JSON."""
        return await self.run("stats", lambda: self.inner.stats_json(query))

    async def ping(self) -> None:
        """Check the store answers."""
        await self.run("ping", self.inner.ping)

    async def ping_within(self, seconds: float) -> None:
        """Check the store answers within ``seconds``."""
        await self.run("ping", self.inner.ping, seconds=seconds)

    async def maintain(self, now: datetime | None = None) -> builtins.list[str]:
        """The store's upkeep."""
        return await self.run("maintain", lambda: self.inner.maintain(now), _UPKEEP_SECONDS)


# Upkeep (retention, partitions ahead) is bounded by each statement's timeout
# in the store, not by one timeout over the whole run.
_UPKEEP_SECONDS = timedelta(hours=1).total_seconds()


class GuardedKeys:
    """A key store whose calls go through the guard of a :class:`GuardedStore`."""

    def __init__(self, inner: KeyStore, guard: GuardedStore) -> None:
        self._inner = inner
        self._guard = guard

    async def create_key(
        self, name: str, scopes: frozenset[Scope], expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new key; its text is returned once."""
        return await self._guard.run(
            "create_key", lambda: self._inner.create_key(name, scopes, expires_at)
        )

    async def list_keys(self) -> builtins.list[ApiKey]:
        """Every key."""
        return await self._guard.run("list_keys", self._inner.list_keys)

    async def revoke_key(self, name: str) -> ApiKey:
        """Revoke the key named ``name``."""
        return await self._guard.run("revoke_key", lambda: self._inner.revoke_key(name))

    async def find_key(self, key_id: str) -> StoredKey | None:
        """The key with this id."""
        return await self._guard.run("find_key", lambda: self._inner.find_key(key_id))

    async def has_keys(self) -> bool:
        """Whether any key was created."""
        return await self._guard.run("has_keys", self._inner.has_keys)
