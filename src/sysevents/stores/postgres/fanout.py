"""One tail reader per repository, fanning new rows out to every live tail.

Every tail of a repository (each :meth:`follow`, so each HTTP stream)
subscribes to one :class:`TailHub`. The hub alone reads what is new: once per
wake-up (a ``NOTIFY``, its look-again schedule, or a poll), every new row below
the horizon, unfiltered, and hands each row to the subscribers whose filter
matches it (``EventFilter.matches``, the in-memory store's reading). N open
streams cost one read per wake-up, not N.

Each subscriber has a bounded queue (:data:`QUEUE` rows). One that falls that
far behind is dropped rather than slowing the others: it ends, after the rows
it holds, with :class:`TailOverflow`, and resumes from its last position like
any tail (an HTTP client reconnects with its ``Last-Event-ID``).

A tail that starts behind the hub (``after`` an older position, or the hub
moved on while the tail joined) reads its own way up to the hub's position
first, with its filter in SQL, then takes the hub's rows. The hub runs while
it has subscribers and stops with the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from sysevents.errors import StoreError, StoreUnavailableError
from sysevents.model import Event
from sysevents.query import EventFilter
from sysevents.tail import Tailed, TailOverflow

from .pool import PostgresPool
from .tail import BATCH, Listener, Position, position_text, read_rows, row_position, start_after

log = logging.getLogger("sysevents.stores.postgres")

QUEUE = 1000
"""Rows a subscriber may hold unread before it is dropped."""

Item = tuple[Position, Event | None]
"""A row for a subscriber, or (``None``) the position the hub started at."""


class Subscriber:
    """One tail's place at the hub: its filter and its queue."""

    def __init__(self, query: EventFilter, size: int) -> None:
        self.query = query
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(size)
        self.joined: Position | None = None
        """The hub's position when this joined: every row after it comes through the queue."""
        self.ended: StoreError | None = None

    def offer(self, item: Item) -> bool:
        """Queue ``item``; ``False`` if the queue is full."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    def end(self, reason: StoreError) -> None:
        """End this subscriber: it reads what it holds, then raises ``reason``."""
        if self.ended is None:
            self.ended = reason
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)  # wakes a reader waiting on an empty queue

    async def next(self, seconds: float | None) -> Item | None:
        """The next item, or ``None`` after ``seconds``; raises once ended and read out."""
        if not self.queue.empty():
            item = self.queue.get_nowait()  # never behind a timeout, even one already over
        elif self.ended is not None:
            raise self.ended
        else:
            try:
                item = await asyncio.wait_for(self.queue.get(), seconds)
            except TimeoutError:
                return None
        if item is None:
            assert self.ended is not None
            raise self.ended
        return item


class TailHub:
    """The one reader of new rows of a repository (see the module)."""

    def __init__(
        self, db: PostgresPool, listener: Listener, poll: float, queue: int | None = None
    ) -> None:
        self._db = db
        self._listener = listener
        self._poll = poll
        self._queue = QUEUE if queue is None else queue
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self.position: Position | None = None
        """Every row up to here has been handed to every subscriber (``None``: not started)."""
        self.reads = 0
        """Reads of new rows so far: one per wake-up, whatever the number of subscribers."""

    @property
    def subscribers(self) -> int:
        """Tails fed now."""
        return len(self._subscribers)

    def backlog(self) -> int:
        """Rows queued for the slowest subscriber."""
        return max((s.queue.qsize() for s in self._subscribers), default=0)

    def feeds(self, subscriber: Subscriber) -> bool:
        """Whether ``subscriber`` is still fed (not dropped, not ended)."""
        return subscriber in self._subscribers

    def join(self, query: EventFilter) -> Subscriber:
        """A new subscriber, fed from now on; the hub starts if it was not running."""
        subscriber = Subscriber(query, self._queue)
        subscriber.joined = self.position
        self._subscribers.add(subscriber)
        if self._task is None or self._task.done():
            self.position = subscriber.joined = None
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="sysevents-tail-hub"
            )
        return subscriber

    async def leave(self, subscriber: Subscriber) -> None:
        """Stop feeding ``subscriber``; the last one out stops the hub."""
        self._subscribers.discard(subscriber)
        if not self._subscribers:
            await self.stop()

    async def stop(self, reason: StoreError | None = None) -> None:
        """Stop reading; every subscriber ends (with ``reason``, or as closed)."""
        task, self._task = self._task, None
        self.position = None
        # Taken before waiting: a tail that joins meanwhile starts a new reader, and stays.
        subscribers, self._subscribers = self._subscribers, set()
        ended = reason or StoreUnavailableError("the repository is closed")
        for subscriber in subscribers:
            subscriber.end(ended)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = self._poll
        try:
            while True:
                signal = self._listener.signal()  # taken before reading: no wake-up is lost
                rows, horizon = await read_rows(self._db, EventFilter(), self.position)
                self.reads += 1
                if self.position is None:
                    self.position = start_after(horizon)
                    for subscriber in self._subscribers:
                        if subscriber.joined is None:
                            subscriber.joined = self.position
                            subscriber.offer((self.position, None))
                    continue
                self._hand_out([(row_position(r), r.event) for r in rows])
                if len(rows) == BATCH:
                    continue
                # Every row below the horizon has been read: start past it next time.
                self.position = max(self.position, start_after(horizon))
                woken = await _wait(signal, delay)
                # Woken, the writer's rows may still wait on an older transaction:
                # look again soon; not woken, back off towards the poll.
                delay = 0.02 if woken else min(delay * 2, self._poll)
        except StoreError as exc:
            log.debug("tail reader: %s; its tails end", exc)
            if self._task is asyncio.current_task():
                await self.stop(exc)
        except Exception as exc:  # a bug: its tails must not wait for ever
            log.exception("tail reader failed; its tails end")
            if self._task is asyncio.current_task():
                await self.stop(StoreUnavailableError(f"the tail reader failed: {exc!r}"))

    def _hand_out(self, rows: list[Item]) -> None:
        """Each row to the subscribers it matches; one whose queue is full is dropped."""
        if not rows:
            return
        dropped = []
        for subscriber in self._subscribers:
            query = subscriber.query
            for item in rows:
                event = item[1]
                assert event is not None
                if query.matches(event) and not subscriber.offer(item):
                    dropped.append(subscriber)
                    break
        for subscriber in dropped:
            self._subscribers.discard(subscriber)
            log.warning("a live tail fell %d events behind and was dropped", self._queue)
            subscriber.end(
                TailOverflow(
                    f"this tail fell {self._queue} events behind the others and was "
                    "dropped: resume from its last position"
                )
            )
        self.position = rows[-1][0]


async def _wait(signal: asyncio.Event, seconds: float) -> bool:
    """Wait until ``signal`` is set or ``seconds`` pass; whether it was set."""
    try:
        await asyncio.wait_for(signal.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def follow_hub(
    hub: TailHub,
    db: PostgresPool,
    query: EventFilter,
    after: Position | None,
    idle: float | None,
    check_open: Callable[[], None],
) -> AsyncIterator[Tailed]:
    """One tail fed by ``hub``: its own catch-up to the hub, then the hub's matching rows.

    With ``idle``, a heartbeat (``Tailed(None, position)``) comes after that
    many seconds without an event.
    """
    check_open()
    position = after
    if position is None:
        # From now on: not from wherever the hub happens to be.
        _, horizon = await read_rows(db, query, None)
        position = start_after(horizon)
    subscriber = hub.join(query)
    try:
        if subscriber.joined is None:
            await subscriber.next(None)  # the hub's start, which sets ``joined``
        joined = subscriber.joined
        assert joined is not None
        while position < joined:  # behind the hub: read up to it alone
            rows, _ = await read_rows(db, query, position, upto=joined)
            for stored in rows:
                position = row_position(stored)
                yield Tailed(stored.event, position_text(position))
            if len(rows) < BATCH:
                position = joined
        loop = asyncio.get_running_loop()
        last_yield = loop.time()
        while True:
            check_open()
            wait = None if idle is None else max(0.0, last_yield + idle - loop.time())
            try:
                item = await subscriber.next(wait)
            except TailOverflow:
                raise
            except StoreError:
                check_open()  # a closed repository says so in its own words
                raise
            if item is None:  # idle: past whatever the hub read that did not match
                # Only with nothing queued: every row up to the hub's position was offered.
                if hub.position is not None and hub.feeds(subscriber) and subscriber.queue.empty():
                    position = max(position, hub.position)
                last_yield = loop.time()
                yield Tailed(None, position_text(position))
                continue
            at, event = item
            if at <= position or event is None:
                continue
            position = at
            last_yield = loop.time()
            yield Tailed(event, position_text(position))
    finally:
        await hub.leave(subscriber)
