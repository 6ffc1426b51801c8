"""The store contract, written once: what every event store does.

:class:`EventRepository` is the protocol callers program against; every
backend (memory, PostgreSQL, the REST client) and every wrapper (the Redis
cache, the pytest plugin's borrowed store, the service's guard) implements all
of it. :class:`EventStore` is their base class: it derives what can be derived
(the JSON reads, ``tail`` from ``follow``) and answers the optional parts
(``keys``, ``seals``, ``maintain``, ``cache_stats``, ``pool_stats``) with
"none" until a store has them. ``sysevents.delegating.DelegatingStore``
forwards every operation to another store, so a wrapper keeps every capability
of what it wraps and overrides only what it changes.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from .histogram import EventHistogram
from .integrity import Digest, SealStore
from .keys import KeyStore
from .model import Event, EventPage, EventPatch, EventStats, NewEvent
from .query import EventFilter, EventQuery
from .retention import RetentionPolicy, RetentionReport
from .tail import Tailed, TailOverflow


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one cached store since it was created."""

    hits: int
    misses: int
    errors: int
    bypassed: int
    """Calls served without Redis because the breaker was open or Redis was busy."""
    coalesced: int
    """Misses that waited for another caller's load instead of querying."""
    breaker: Literal["closed", "open"]
    """``open`` while Redis is being skipped after a failure."""


@dataclass(frozen=True, slots=True)
class PoolStats:
    """The database connections of a store that pools them."""

    size: int
    """Connections open now."""
    idle: int
    """Of those, connections waiting in the pool (the others are lent out)."""
    reads_in_use: int = 0
    """Connections lent to reads now (at most the pool's size less its write reserve)."""
    reads_waiting: int = 0
    """Reads waiting for a place within the reads' share."""


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """A read replica of a store, as last seen."""

    name: str
    """Its URL without the password."""
    lag: float | None
    """Seconds behind the primary (``None``: not answering)."""
    usable: bool
    """Whether reads go to it now."""


Series = tuple[str, str | None]
"""An (event_type, source) pair: what adds rows to the statistics."""


@dataclass(frozen=True, slots=True)
class Backlog:
    """Work a store does in the background that is not done yet."""

    rows: int
    """Events not yet counted into the statistics' rollups (up to a cap: a lower bound)."""
    seconds: float
    """How long the oldest of them has waited."""
    failures: int
    """Background attempts that failed since the store opened (logged at most once a minute)."""


@runtime_checkable
class EventRepository(Protocol):
    """An event store. Every backend behaves the same; see the conformance suite.

    Open it with ``async with repo:`` (or ``await repo.open()``) and close it
    with ``await repo.close()``, which is safe to call twice.
    """

    async def open(self) -> None:
        """Acquire resources; a store that is down does not make this fail."""

    async def close(self) -> None:
        """Release everything; safe to call more than once."""

    async def __aenter__(self) -> Self:
        """Open the store."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""

    # -- writes ---------------------------------------------------------------------

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event and return it with its ``id`` and ``created_at``.

        Idempotency keys belong to their ``caller`` (an API key's id; none:
        the library's own): two callers never see each other's.
        """

    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events atomically (all or none), in the order given."""

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the fields given in ``patch``; raise ``NotFoundError`` if missing.

        With an ``actor``, the change is recorded, atomically with it, as an
        event of type ``sysevents.event_updated`` (see ``sysevents.audit``).
        """

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event; raise ``NotFoundError`` if missing (recorded if ``actor``)."""

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove the events ``policy`` says have expired at ``now``, rule by rule.

        ``dry_run`` only counts them. Afterwards no read shows an expired event
        and every count stays exact.
        """

    # -- reads ----------------------------------------------------------------------

    async def get(self, event_id: int) -> Event | None:
        """The event with this id, or ``None``."""

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of the events matching ``query``."""

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the events matching the filters of ``query``."""

    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts of ``query``'s events per bucket of ``interval`` over ``[since, until)``.

        ``interval`` is ``1m``, ``5m``, ``1h``, ``1d`` or ``auto``; buckets are
        aligned in UTC (see ``sysevents.histogram``). More than 1000 buckets,
        or another interval, raises ``InvalidEventError`` naming ``interval``.
        """

    async def get_json(self, event_id: int) -> bytes | None:
        """What ``get`` returns, as ``Event`` JSON; ``None`` if there is no such event."""

    async def list_json(self, query: EventQuery | None = None, *, max_bytes: int = 0) -> bytes:
        """What ``list`` returns, as ``EventPage`` JSON, ending early to stay within ``max_bytes``.

        A page cut short holds at least one event, and its ``next_cursor``
        continues after the last event it holds.
        """

    async def stats_json(self, query: EventFilter | None = None) -> bytes:
        """What ``stats`` returns, as ``EventStats`` JSON."""

    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:
        """The new events with their positions (see ``sysevents.tail``), resumable by ``after``.

        Yields an item without an event each ``idle`` seconds without one. A
        malformed ``after`` raises ``InvalidEventError`` at once, before iterating.
        A store whose tails share one reader may end a tail that falls far
        behind with ``TailOverflow`` (a ``StoreUnavailableError``): follow again
        from its last position (``tail`` does so by itself).
        """

    def tail(
        self, query: EventFilter | None = None, *, after: str | None = None
    ) -> AsyncIterator[Event]:
        """Each new event matching ``query``, once, in order, for as long as one iterates."""

    async def ping(self) -> None:
        """Check the store answers; raise ``StoreUnavailableError`` if not."""

    # -- optional: ``None`` (or nothing to do) where a store has no such thing -------

    @property
    def keys(self) -> KeyStore | None:
        """The API keys kept beside the events (memory, PostgreSQL), or ``None``."""

    @property
    def seals(self) -> SealStore | None:
        """The digests sealing the events, and the events in commit order; or ``None``."""

    async def seal(self) -> builtins.list[Digest]:
        """Seal what is committed into new digests now (done every ``seal_interval`` anyway)."""

    async def known_series(self, pairs: Sequence[Series]) -> set[Series]:
        """Those (event_type, source) pairs some stored event has (all of them: not known)."""

    async def maintain(self, now: datetime | None = None) -> builtins.list[str]:
        """Do the store's upkeep (PostgreSQL: partitions ahead, old keys); what it created."""

    def cache_stats(self) -> CacheStats | None:
        """The cache's counters, for a store behind a cache."""

    def pool_stats(self) -> PoolStats | None:
        """The connection pool's figures, for a store that pools connections."""

    def replicas(self) -> builtins.list[ReplicaState]:
        """The read replicas reads may go to (``read_database_url``), as last seen."""

    async def backlog(self) -> Backlog | None:
        """What the store has yet to do in the background (PostgreSQL: rows to fold)."""

    async def leads(self) -> bool:
        """Whether this process runs the background work every process of this store shares.

        One process at a time does (the fold, upkeep, retention): the others
        skip it while it leads, and one of them takes over when it is gone.
        """


class Lifecycle:
    """``async with`` for anything with ``open()`` and ``close()``."""

    async def open(self) -> None:
        """Acquire resources (nothing to do by default)."""

    async def close(self) -> None:
        """Release resources; safe to call twice."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class EventStore(Lifecycle, ABC):
    """The base of every store: the operations each must implement, and the derived ones."""

    remote = False
    """Whether a server keeps the events: it, not this store, stamps ``written_by`` and seals."""

    @property
    def keys(self) -> KeyStore | None:
        """The API keys kept beside the events; ``None``: this store keeps none."""
        return None

    @property
    def seals(self) -> SealStore | None:
        """``None``: this store does not seal its events."""
        return None

    async def seal(self) -> builtins.list[Digest]:
        """Nothing to seal by default."""
        return []

    async def known_series(self, pairs: Sequence[Series]) -> set[Series]:
        """A store that cannot tell says every pair is known (nothing is limited)."""
        return set(pairs)

    @abstractmethod
    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event."""

    @abstractmethod
    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events, all or none."""

    @abstractmethod
    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the given fields."""

    @abstractmethod
    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event."""

    @abstractmethod
    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove (or, ``dry_run``, count) the expired events."""

    @abstractmethod
    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None``."""

    @abstractmethod
    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of the matching events."""

    @abstractmethod
    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the matching events."""

    @abstractmethod
    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts by severity per bucket of time."""

    @abstractmethod
    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:
        """The new events matching ``query`` after position ``after`` (none: from now on)."""

    @abstractmethod
    async def ping(self) -> None:
        """Check the store answers."""

    async def get_json(self, event_id: int) -> bytes | None:
        """What ``get`` returns, as ``Event`` JSON; ``None`` if there is no such event."""
        event = await self.get(event_id)
        return None if event is None else event.model_dump_json().encode()

    async def list_json(self, query: EventQuery | None = None, *, max_bytes: int = 0) -> bytes:
        """What ``list`` returns, as ``EventPage`` JSON (a whole page: see ``RepositoryBase``)."""
        return (await self.list(query)).model_dump_json().encode()

    async def stats_json(self, query: EventFilter | None = None) -> bytes:
        """What ``stats`` returns, as ``EventStats`` JSON."""
        return (await self.stats(query)).model_dump_json().encode()

    async def tail(
        self, query: EventFilter | None = None, *, after: str | None = None
    ) -> AsyncIterator[Event]:
        """Each new event matching ``query``, once, in order: ``async for e in repo.tail()``.

        A consumer too slow for the store's shared reader (``TailOverflow``)
        follows again from its last position, by itself: nothing is lost.
        """
        position = after
        while True:
            items = self.follow(query, after=position)
            try:
                async for item in items:
                    position = item.position
                    if item.event is not None:
                        yield item.event
                return
            except TailOverflow:
                continue
            finally:
                await items.aclose()  # type: ignore[attr-defined]

    async def maintain(self, now: datetime | None = None) -> builtins.list[str]:
        """Nothing to do by default."""
        return []

    def cache_stats(self) -> CacheStats | None:
        """No cache by default."""
        return None

    def pool_stats(self) -> PoolStats | None:
        """No pool by default."""
        return None

    def replicas(self) -> builtins.list[ReplicaState]:
        """No read replicas by default."""
        return []

    async def backlog(self) -> Backlog | None:
        """No background work by default."""
        return None

    async def leads(self) -> bool:
        """A store no other process shares: this one leads."""
        return True
