"""The repository protocol that every event store implements."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from .model import Event, EventFilter, EventPage, EventPatch, EventQuery, EventStats, NewEvent


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

    async def add(self, new: NewEvent) -> Event:
        """Store one event and return it with its ``id`` and ``created_at``."""

    async def add_many(self, news: Sequence[NewEvent]) -> list[Event]:
        """Store several events atomically (all or none), in the order given."""

    async def get(self, event_id: int) -> Event | None:
        """The event with this id, or ``None``."""

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of the events matching ``query``."""

    async def update(self, event_id: int, patch: EventPatch) -> Event:
        """Change the fields given in ``patch``; raise ``NotFoundError`` if missing."""

    async def delete(self, event_id: int) -> None:
        """Remove the event; raise ``NotFoundError`` if missing."""

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the events matching the filters of ``query``."""

    async def ping(self) -> None:
        """Check the store answers; raise ``StoreUnavailableError`` if not."""
