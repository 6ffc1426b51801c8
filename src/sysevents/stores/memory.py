"""An in-memory event store: the reference behaviour, and the test double."""

from __future__ import annotations

import asyncio
import builtins
import copy
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sysevents.audit import delete_record, update_record
from sysevents.columns import GIVEN
from sysevents.errors import NotFoundError
from sysevents.histogram import EventHistogram, plan_histogram
from sysevents.integrity import Digest, Sealer
from sysevents.keys import MemoryKeyStore
from sysevents.model import Event, EventPatch, EventStats, NewEvent
from sysevents.query import EventFilter, EventQuery, page_total
from sysevents.retention import RetentionPolicy, RetentionReport
from sysevents.rules import is_event_id
from sysevents.settings import Settings
from sysevents.tail import Tailed, bad_position

from .base import Listing, RepositoryBase, check_caller, first_of_each_key, replayed
from .memory_seals import MemorySeals


class MemoryEventRepository(RepositoryBase):
    """Keeps events in a dict; every instance is independent. Not durable.

    Configured by ``settings`` and ``overrides`` of their fields (see
    :class:`~sysevents.stores.base.RepositoryBase`).
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self._events: dict[int, Event] = {}
        self._keys: dict[tuple[str, str], int] = {}  # (caller, idempotency key) -> id
        self._callers: dict[int, str] = {}  # id -> the caller of its idempotency key
        self._next_id = 1
        # Every stored id in insertion order: a tail's position is an index here.
        self._log: list[int] = []
        self._waiters: set[asyncio.Future[None]] = set()
        self._api_keys = MemoryKeyStore()
        self._seals = MemorySeals(self._events, self._log)
        self._sealer = Sealer.from_settings(self._seals, self.settings)

    @property
    def keys(self) -> MemoryKeyStore:
        """The API keys of this store (see ``sysevents.keys``)."""
        return self._api_keys

    @property
    def seals(self) -> MemorySeals:
        """The digests of this store, and its events in the order they were sealed."""
        return self._seals

    async def open(self) -> None:
        """Reopen after ``close``; contents are kept. Sealing starts (``seal_interval``)."""
        self._closed = False
        self._sealer.start()

    async def known_series(
        self, pairs: Sequence[tuple[str, str | None]]
    ) -> set[tuple[str, str | None]]:
        """Those (event_type, source) pairs some stored event has."""
        self._ensure_open()
        wanted = set(pairs)
        return {p for e in self._events.values() if (p := (e.event_type, e.source)) in wanted}

    async def seal(self) -> builtins.list[Digest]:
        """Seal the events stored since the last digest, now."""
        self._ensure_open()
        return await self._sealer.seal()

    async def close(self) -> None:
        """Close; a tail in progress ends with ``StoreUnavailableError``."""
        await self._sealer.stop(1.0)
        await super().close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _keyed(self, caller: str, key: str, now: datetime) -> Event | None:
        """The event stored with this key, unless it is older than the idempotency window."""
        event_id = self._keys.get((caller, key))
        if event_id is None:
            return None
        event = self._events[event_id]
        if event.created_at < now - self.idempotency_window:
            del self._keys[caller, key], self._callers[event_id]
            return None
        return event

    def _check_keys(self, news: Sequence[NewEvent], caller: str, now: datetime) -> None:
        """Refuse, before anything is stored, a key reused with a different event."""
        for key, new in first_of_each_key(news).items():
            stored = self._keyed(caller, key, now)
            if stored is not None:
                replayed(new, stored)

    def _store(self, new: NewEvent, now: datetime, caller: str = "") -> Event:
        key = new.idempotency_key
        if key is not None:
            stored = self._keyed(caller, key, now)
            if stored is not None:
                return _copy(replayed(new, stored))
        values: dict[str, Any] = {c.name: copy.deepcopy(getattr(new, c.name)) for c in GIVEN}
        values.update(id=self._next_id, created_at=now, written_by=caller or None)
        event = Event.model_construct(**values)
        self._events[event.id] = event
        if key is not None:
            self._keys[caller, key] = event.id
            self._callers[event.id] = caller
        self._next_id += 1
        self._log.append(event.id)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        return _copy(event)

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event."""
        self._ensure_open()
        self._check_written([new], loc_prefix=False)
        return self._store(new, datetime.now(UTC), check_caller(caller))

    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events, all or none."""
        self._ensure_open()
        self._check_written(news, loc_prefix=True)
        now = datetime.now(UTC)
        caller = check_caller(caller)
        self._check_keys(news, caller, now)
        return [self._store(new, now, caller) for new in news]

    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None``."""
        self._ensure_open()
        event = self._events.get(event_id) if is_event_id(event_id) else None
        return None if event is None else _copy(event)

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the given fields (recording the change when an ``actor`` made it)."""
        self._ensure_open()
        self._check_changes_allowed()
        current = self._events.get(event_id) if is_event_id(event_id) else None
        if current is None:
            raise NotFoundError(event_id)
        self._check_written([patch], loc_prefix=False)
        changes = copy.deepcopy(patch.changes())
        updated = current.model_copy(update=changes)
        self._events[event_id] = updated
        if actor is not None:
            record = update_record(current, updated, actor)
            self._store(record, datetime.now(UTC), check_caller(actor))
        return _copy(updated)

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event (recording the removal when an ``actor`` made it)."""
        self._ensure_open()
        self._check_changes_allowed()
        gone = self._events.pop(event_id, None) if is_event_id(event_id) else None
        if gone is None:
            raise NotFoundError(event_id)
        self._forget_key(gone)
        if actor is not None:
            self._store(delete_record(gone, actor), datetime.now(UTC), check_caller(actor))

    def _forget_key(self, gone: Event) -> None:
        caller = self._callers.pop(gone.id, None)
        if caller is not None and gone.idempotency_key is not None:
            self._keys.pop((caller, gone.idempotency_key), None)

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove the events ``policy`` says have expired (or only count them)."""
        self._ensure_open()
        now = now or datetime.now(UTC)
        counts: Counter[str] = Counter()
        expired = []
        for event in self._events.values():
            rule = policy.rule_for(event.event_type, event.severity)
            if rule is not None and event.timestamp < now - rule.age:
                counts[rule.text] += 1
                expired.append(event.id)
        if not dry_run:
            for event_id in expired:
                self._forget_key(self._events.pop(event_id))
        return RetentionReport.from_counts(policy, now, counts, dry_run=dry_run)

    async def _listing(self, query: EventQuery) -> Listing:
        """The matching events of one page, and their count."""
        position = self._position(query)
        matching = [e for e in self._events.values() if query.matches(e)]
        newest = query.order == "newest"
        matching.sort(key=_sort_key, reverse=newest)
        total, exact = page_total(query.count, len(matching), self.count_cap)
        if position is not None:
            ts, last_id = position
            if newest:
                matching = [e for e in matching if (e.timestamp, e.id) < (ts, last_id)]
            else:
                matching = [e for e in matching if (e.timestamp, e.id) > (ts, last_id)]
        start = query.offset
        rows = [_copy(e) for e in matching[start : start + query.limit + 1]]
        return Listing(rows, total, exact)

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the matching events."""
        self._ensure_open()
        query = query or EventFilter()
        matching = [e for e in self._events.values() if query.matches(e)]
        now = datetime.now(UTC)
        hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
        times = [e.timestamp for e in matching]
        return EventStats.from_counts(
            by_severity=Counter(e.severity.value for e in matching),
            by_type=Counter(e.event_type for e in matching),
            by_source=Counter(e.source for e in matching if e.source is not None),
            last_hour=sum(1 for t in times if t >= hour_ago),
            last_24h=sum(1 for t in times if t >= day_ago),
            first_timestamp=min(times, default=None),
            last_timestamp=max(times, default=None),
            top=self.stats_top,
        )

    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts of the matching events by severity per bucket of ``interval``."""
        self._ensure_open()
        query = query or EventFilter()
        plan = plan_histogram(query, interval)
        span = query.model_copy(update={"since": plan.since, "until": plan.until})
        counts = Counter(
            (plan.floor(e.timestamp.astimezone(UTC)), e.severity.value)
            for e in self._events.values()
            if span.matches(e)
        )
        return plan.histogram((start, severity, n) for (start, severity), n in counts.items())

    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:
        """New matching events in insertion order; a position is an insertion number."""
        start = None
        if after is not None:
            if not (after.isascii() and after.isdigit() and len(after) <= 18):
                raise bad_position(after)
            start = int(after)
        return self._follow(query or EventFilter(), start, idle)

    async def _follow(
        self, query: EventFilter, start: int | None, idle: float | None
    ) -> AsyncIterator[Tailed]:
        self._ensure_open()
        seen = len(self._log) if start is None else min(start, len(self._log))
        while True:
            self._ensure_open()
            while seen < len(self._log):
                event = self._events.get(self._log[seen])
                seen += 1
                if event is not None and query.matches(event):
                    yield Tailed(_copy(event), str(seen))
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), idle)
            except TimeoutError:
                yield Tailed(None, str(seen))
            finally:
                self._waiters.discard(waiter)

    async def ping(self) -> None:
        """Always answers while open."""
        self._ensure_open()

    def snapshot(self) -> builtins.list[Event]:
        """Every stored event, oldest first by (timestamp, id); copies, readable without a loop."""
        return [_copy(e) for e in sorted(self._events.values(), key=_sort_key)]

    def __len__(self) -> int:
        return len(self._events)


def _sort_key(event: Event) -> tuple[datetime, int]:
    return event.timestamp, event.id


def _copy(event: Event) -> Event:
    """A copy whose details the caller may change without touching the store."""
    if event.details is None:
        return event
    return event.model_copy(update={"details": copy.deepcopy(event.details)})
