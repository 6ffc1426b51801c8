"""``DelegatingStore``: a store that hands every operation to another, the base of wrappers.

The Redis cache, the service's guarded store and the store the pytest plugin
lends are each one; a subclass overrides what it changes, and every other
operation, optional parts included, is the inner store's
(tests/test_store_contract.py proves it for each).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from .histogram import EventHistogram
from .integrity import Digest, SealStore
from .keys import KeyStore
from .model import Event, EventPage, EventPatch, EventStats, NewEvent
from .query import EventFilter, EventQuery
from .retention import RetentionPolicy, RetentionReport
from .store import Backlog, CacheStats, EventRepository, EventStore, PoolStats, ReplicaState, Series
from .tail import Tailed


class DelegatingStore(EventStore):
    """A store that hands every operation to ``inner``: the base of wrappers.

    A subclass overrides what it changes; everything else, optional parts
    included, is the inner store's.
    """

    def __init__(self, inner: EventRepository) -> None:
        self.inner = inner

    @property
    def remote(self) -> bool:  # type: ignore[override]
        """Whether the inner store is a server's."""
        return bool(getattr(self.inner, "remote", False))

    @property
    def keys(self) -> KeyStore | None:
        """The inner store's keys."""
        return self.inner.keys

    @property
    def seals(self) -> SealStore | None:
        """The inner store's digests."""
        return self.inner.seals

    async def seal(self) -> builtins.list[Digest]:
        """Seal the inner store's events."""
        return await self.inner.seal()

    async def known_series(self, pairs: Sequence[Series]) -> set[Series]:
        """The inner store's answer."""
        return await self.inner.known_series(pairs)

    async def open(self) -> None:
        """Open the inner store."""
        await self.inner.open()

    async def close(self) -> None:
        """Close the inner store."""
        await self.inner.close()

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event."""
        return await self.inner.add(new, caller=caller)

    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events, all or none."""
        return await self.inner.add_many(news, caller=caller)

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the given fields."""
        return await self.inner.update(event_id, patch, actor=actor)

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event."""
        await self.inner.delete(event_id, actor=actor)

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove (or count) the expired events."""
        return await self.inner.apply_retention(policy, now=now, dry_run=dry_run)

    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None``."""
        return await self.inner.get(event_id)

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of the matching events."""
        return await self.inner.list(query)

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the matching events."""
        return await self.inner.stats(query)

    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts by severity per bucket of time."""
        return await self.inner.histogram(query, interval)

    async def get_json(self, event_id: int) -> bytes | None:
        """The event as JSON, or ``None``."""
        return await self.inner.get_json(event_id)

    async def list_json(self, query: EventQuery | None = None, *, max_bytes: int = 0) -> bytes:
        """One page as JSON, within ``max_bytes``."""
        return await self.inner.list_json(query, max_bytes=max_bytes)

    async def stats_json(self, query: EventFilter | None = None) -> bytes:
        """The stats as JSON."""
        return await self.inner.stats_json(query)

    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:
        """The inner store's tail, with positions."""
        return self.inner.follow(query, after=after, idle=idle)

    def tail(
        self, query: EventFilter | None = None, *, after: str | None = None
    ) -> AsyncIterator[Event]:
        """The inner store's tail of events."""
        return self.inner.tail(query, after=after)

    async def ping(self) -> None:
        """Check the inner store answers."""
        await self.inner.ping()

    async def maintain(self, now: datetime | None = None) -> builtins.list[str]:
        """The inner store's upkeep."""
        return await self.inner.maintain(now)

    def cache_stats(self) -> CacheStats | None:
        """The inner store's cache counters."""
        return self.inner.cache_stats()

    def pool_stats(self) -> PoolStats | None:
        """The inner store's pool figures."""
        return self.inner.pool_stats()

    def replicas(self) -> builtins.list[ReplicaState]:
        """The inner store's read replicas."""
        return self.inner.replicas()

    async def backlog(self) -> Backlog | None:
        """The inner store's background backlog."""
        return await self.inner.backlog()

    async def leads(self) -> bool:
        """Whether this process leads the inner store's background work."""
        return await self.inner.leads()
