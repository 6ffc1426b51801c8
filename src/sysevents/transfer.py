"""Moving events into a store: from NDJSON (the export format) or from another store.

The events go in through the store contract (``add_many``), so every backend
can receive them: their timestamps, details, keys and writers (``written_by``)
are kept, while the target gives them its own ids and ``created_at``; a store
with ``add_kept`` (SQLite) keeps the ids where they are free, and ``created_at``.
Running an import twice stores nothing new: before each page is written, the
target's events over the page's time span are read, and an event equal to one
already there (every field but ``id`` and ``created_at``) is skipped, as many
times as the target holds it. Pages are cheap to check when the events come
in time order, as ``sysevents export`` writes them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from .columns import GIVEN
from .errors import RESERVED_PREFIX, InvalidEventError
from .export import PAGE, event_pages
from .model import Event, NewEvent, OwnRecord
from .query import EventFilter
from .store import EventRepository

__all__ = ["Progress", "TransferReport", "ndjson_pages", "store_pages", "transfer"]

_TINY = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a transfer is."""

    read: int
    """Events read from the source so far."""
    stored: int
    """Of those, events the target did not hold and now does."""
    total: int | None
    """Events the source holds, when known."""
    seconds: float
    """Since the transfer started."""

    @property
    def rate(self) -> float:
        """Events read per second."""
        return self.read / self.seconds if self.seconds > 0 else 0.0

    @property
    def left(self) -> float | None:
        """Seconds still to go at this rate, when the total is known."""
        if self.total is None or not self.rate:
            return None
        return max(self.total - self.read, 0) / self.rate

    def line(self) -> str:
        """One line for a terminal: rows, rate, time left."""
        of = f" of {self.total:,}" if self.total is not None else ""
        left = f", {self.left:,.0f} s left" if self.left is not None else ""
        return f"{self.read:,}{of} events read, {self.stored:,} stored ({self.rate:,.0f}/s{left})"


@dataclass(frozen=True, slots=True)
class TransferReport:
    """What a transfer did."""

    read: int
    stored: int
    seconds: float


def _key(event: Event) -> str:
    """What makes two stored events the same event (all but ``id`` and ``created_at``)."""
    values = event.model_dump(mode="json", exclude={"id", "created_at"})
    values["timestamp"] = event.timestamp.timestamp()
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def _new(event: Event) -> NewEvent:
    fields: dict[str, Any] = {c.name: getattr(event, c.name) for c in GIVEN}
    # sysevents' own records (audit, retention) are copied as what they are.
    kind = OwnRecord if event.event_type.startswith(RESERVED_PREFIX) else NewEvent
    return kind.model_validate(fields)


def ndjson_pages(stream: IO[bytes], size: int = PAGE) -> Iterable[list[Event]]:
    """The events of NDJSON lines (as ``sysevents export`` writes them), ``size`` at a time.

    A line that is not an event raises ``InvalidEventError`` naming its number.
    """
    page: list[Event] = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            page.append(Event.model_validate_json(line))
        except ValueError as exc:
            raise InvalidEventError(
                [{"loc": ("line", number), "msg": str(exc).splitlines()[0], "type": "ndjson"}]
            ) from None
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


async def store_pages(repo: EventRepository) -> AsyncIterator[list[Event]]:
    """Every event of ``repo``, oldest first, a page at a time."""
    async for page in event_pages(repo):
        yield page


async def _held(target: EventRepository, page: list[Event]) -> Counter[str]:
    since = min(e.timestamp for e in page)
    until = max(e.timestamp for e in page) + _TINY
    held: Counter[str] = Counter()
    async for found in event_pages(target, EventFilter(since=since, until=until)):
        held.update(_key(e) for e in found)
    return held


async def transfer(
    target: EventRepository,
    pages: AsyncIterable[list[Event]] | Iterable[list[Event]],
    *,
    total: int | None = None,
    prepare: Callable[[list[datetime]], Awaitable[object]] | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> TransferReport:
    """Store in ``target`` the events of ``pages`` it does not hold yet.

    ``prepare`` is called with each page's timestamps before it is written
    (PostgreSQL: to make their months' partitions); ``progress`` after each page.
    """
    start = time.monotonic()
    read = stored = 0
    async for page in _pages(pages):
        held = await _held(target, page)
        missing: list[Event] = []
        for event in page:
            key = _key(event)
            if held[key] > 0:
                held[key] -= 1
            else:
                missing.append(event)
        if missing and prepare is not None:
            await prepare([e.timestamp for e in missing])
        kept = getattr(target, "add_kept", None)
        if callable(kept):  # a store that can keep ids and created_at (SQLite)
            if missing:
                stored += await kept([(_new(e), e) for e in missing])
            missing = []
        # One batch per writer, in order: the writer becomes the caller again.
        run: list[Event] = []
        for item in [*missing, None]:
            if run and (item is None or item.written_by != run[0].written_by):
                await target.add_many([_new(e) for e in run], caller=run[0].written_by)
                stored += len(run)
                run = []
            if item is not None:
                run.append(item)
        read += len(page)
        if progress is not None:
            progress(Progress(read, stored, total, time.monotonic() - start))
    return TransferReport(read, stored, time.monotonic() - start)


async def _pages(
    pages: AsyncIterable[list[Event]] | Iterable[list[Event]],
) -> AsyncIterator[list[Event]]:
    if isinstance(pages, AsyncIterable):
        async for page in pages:
            yield page
    else:
        for page in pages:
            yield page
