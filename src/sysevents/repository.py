"""The repository protocol that every event store implements, and its optional capabilities.

A capability is a small protocol a repository may also implement; callers
test for it with ``isinstance`` rather than probing for attributes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from .histogram import EventHistogram
from .keys import KeyStore
from .model import Event, EventPage, EventPatch, EventStats, NewEvent
from .query import EventFilter, EventQuery
from .retention import RetentionPolicy, RetentionReport
from .tail import Tailed


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
        """Open the repository."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the repository."""

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event and return it with its ``id`` and ``created_at``.

        Idempotency keys belong to their ``caller`` (an API key's name; none:
        the library's own): two callers never see each other's.
        """

    async def add_many(self, news: Sequence[NewEvent], *, caller: str | None = None) -> list[Event]:
        """Store several events atomically (all or none), in the order given."""

    async def get(self, event_id: int) -> Event | None:
        """The event with this id, or ``None``."""

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of the events matching ``query``."""

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the fields given in ``patch``; raise ``NotFoundError`` if missing.

        With an ``actor``, the change is recorded, atomically with it, as an
        event of type ``sysevents.event_updated`` (see ``sysevents.audit``).
        """

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event; raise ``NotFoundError`` if missing (recorded if ``actor``)."""

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the events matching the filters of ``query``."""

    async def ping(self) -> None:
        """Check the store answers; raise ``StoreUnavailableError`` if not."""


@runtime_checkable
class JsonReads(Protocol):
    """A repository that can answer reads as JSON bytes without building models.

    The bytes are those of ``model_dump_json()``: a service that sends the
    answer on can pass them through (the Redis cache returns its entries so).
    Every store of this package has them.
    """

    async def get_json(self, event_id: int) -> bytes | None:
        """What ``get`` returns, as ``Event`` JSON; ``None`` if there is no such event."""

    async def stats_json(self, query: EventFilter | None = None) -> bytes:
        """What ``stats`` returns, as ``EventStats`` JSON."""

    async def list_json(self, query: EventQuery | None = None, *, max_bytes: int = 0) -> bytes:
        """What ``list`` returns, as ``EventPage`` JSON, ending early to stay within ``max_bytes``.

        A page cut short holds at least one event, and its ``next_cursor``
        continues after the last event it holds.
        """


@runtime_checkable
class MakesHistograms(Protocol):
    """A repository that counts events by severity in buckets of time (every store here)."""

    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts of ``query``'s events per bucket of ``interval`` over ``[since, until)``.

        ``interval`` is ``1m``, ``5m``, ``1h``, ``1d`` or ``auto``; buckets are
        aligned in UTC (see ``sysevents.histogram``). More than 1000 buckets,
        or another interval, raises ``InvalidEventError`` naming ``interval``.
        """


@runtime_checkable
class Tails(Protocol):
    """A repository that follows new events as they are stored (every store here)."""

    def tail(
        self, query: EventFilter | None = None, *, after: str | None = None
    ) -> AsyncIterator[Event]:
        """Each new event matching ``query``, once, in order, for as long as one iterates."""

    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:
        """The new events with their positions (see ``sysevents.tail``), resumable by ``after``.

        Yields an item without an event each ``idle`` seconds without one.
        """


@runtime_checkable
class HasKeys(Protocol):
    """A repository that keeps API keys beside its events (memory, PostgreSQL)."""

    keys: KeyStore
    """Its key store."""


@runtime_checkable
class AppliesRetention(Protocol):
    """A repository that removes expired events itself (every store of this package)."""

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove the events ``policy`` says have expired at ``now``, rule by rule.

        ``dry_run`` only counts them. Afterwards no read shows an expired event
        and every count stays exact.
        """


@runtime_checkable
class Maintains(Protocol):
    """A repository with upkeep to run now and then (PostgreSQL: partitions ahead, old keys)."""

    async def maintain(self, now: datetime | None = None) -> list[str]:
        """Do the upkeep; what it created, for the log."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one cached repository since it was created."""

    hits: int
    misses: int
    errors: int
    bypassed: int
    """Calls served without Redis because the breaker was open or Redis was busy."""
    coalesced: int
    """Misses that waited for another caller's load instead of querying."""
    breaker: Literal["closed", "open"]
    """``open`` while Redis is being skipped after a failure."""


@runtime_checkable
class ReportsCacheStats(Protocol):
    """A repository with a cache that counts its hits and misses."""

    def cache_stats(self) -> CacheStats:
        """The cache counters and the breaker state."""
