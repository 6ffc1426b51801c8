"""A non-blocking event emitter: callers hand events over, a background task stores them.

``emit()`` costs the caller a tuple and a deque append: no I/O, no validation,
no exception. A writer task on the repository's event loop validates, batches
and stores the events with ``add_many``, retries while the store is
unavailable, and writes what it cannot store to stdout as one JSON line each,
so nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Self, TextIO

from pydantic import ValidationError

from .errors import InvalidEventError, StoreUnavailableError, SyseventsError
from .model import NewEvent
from .repository import EventRepository

logger = logging.getLogger("sysevents.emitter")

Overflow = Literal["drop_newest", "drop_oldest", "block"]
"""What ``emit()`` does when the queue is full (see :class:`EventLogger`)."""

# What emit() queues: validated later, off the caller's path.
_Item = tuple[str, str, str, Any, str | None, datetime, str]


@dataclass(frozen=True, slots=True)
class EmitterCounters:
    """What the emitter has done so far."""

    queued: int
    written: int
    retried: int
    dropped: int
    invalid: int
    to_stdout: int
    pending: int


class EventLogger:
    """Stores events in the background; ``emit()`` never blocks on I/O and never raises.

    Start it on the event loop the repository lives on (``async with
    EventLogger(repo):`` or ``await logger.start()``); ``emit()`` may then be
    called from that loop or from any thread. ``flush()`` waits until every
    event emitted so far is stored (or sent to stdout); ``aclose()`` flushes
    and stops. For programs without an event loop, see :meth:`in_thread`.

    ``overflow`` says what happens when ``max_queue`` events are waiting:
    ``drop_newest`` refuses the new event, ``drop_oldest`` discards the oldest
    waiting one, ``block`` makes a calling thread wait up to ``block_timeout``
    seconds for room (then drops; on the writer's own loop it never waits).
    Every drop is counted.

    While the store is unavailable a batch is retried with capped exponential
    backoff for ``retry_window`` seconds; after that it, and any batch that
    fails until the store answers again, goes to ``fallback`` (stdout).
    Every event carries a fresh idempotency key, so a retried batch that had
    in fact been stored is not stored twice.
    """

    def __init__(
        self,
        repo: EventRepository,
        *,
        max_queue: int = 100_000,
        overflow: Overflow = "drop_newest",
        block_timeout: float = 0.1,
        batch_size: int = 1_000,
        interval: float = 0.01,
        retry_window: float = 30.0,
        max_backoff: float = 2.0,
        source: str | None = None,
        fallback: TextIO | None = None,
    ) -> None:
        if overflow not in ("drop_newest", "drop_oldest", "block"):
            raise ValueError(f"unknown overflow policy {overflow!r}")
        self.repo = repo
        self.max_queue = max_queue
        self.overflow = overflow
        self.block_timeout = block_timeout
        self.batch_size = batch_size
        self.interval = interval
        self.retry_window = retry_window
        self.max_backoff = max_backoff
        self.source = source
        self._fallback = fallback
        self._queue: deque[_Item] = deque()
        # One lock for the queue and the caller-side counters; held for a few
        # hundred nanoseconds, never across I/O.
        self._room = threading.Condition(threading.Lock())
        self._key_prefix = secrets.token_hex(8)
        self._seq = 0
        self._queued = self._written = self._retried = self._dropped = 0
        self._invalid = self._to_stdout = self._evicted = 0
        self._outage = False
        self._in_flight: list[NewEvent] = []  # the batch being stored
        self._validated: list[NewEvent] = []  # the next one, waiting for its turn
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stopping = False

    # -- the caller's side ------------------------------------------------------

    def emit(
        self,
        event_type: str,
        message: str,
        *,
        severity: str = "info",
        details: dict[str, Any] | None = None,
        source: str | None = None,
        timestamp: datetime | None = None,
    ) -> bool:
        """Queue one event; ``False`` if it was dropped. Never blocks on I/O, never raises."""
        try:
            when = timestamp if timestamp is not None else datetime.now(UTC)
            with self._room:
                if len(self._queue) >= self.max_queue and not self._make_room():
                    self._dropped += 1
                    return False
                self._seq += 1
                key = f"{self._key_prefix}-{self._seq:x}"
                self._queue.append((event_type, message, severity, details, source, when, key))
                self._queued += 1
            return True
        except Exception:  # emit() must never raise into the caller
            self._dropped += 1
            return False

    def _make_room(self) -> bool:
        """Decide, holding the lock with the queue full, whether the event may be queued."""
        if self.overflow == "drop_oldest":
            # The writer pops without the lock: the queue may have emptied meanwhile.
            with contextlib.suppress(IndexError):
                self._queue.popleft()
                self._dropped += 1
                self._evicted += 1
            return True
        if self.overflow == "block" and threading.get_ident() != self._loop_thread:
            deadline = time.monotonic() + self.block_timeout
            while len(self._queue) >= self.max_queue:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(left)
            return True
        return False

    @property
    def counters(self) -> EmitterCounters:
        """Counts of queued, written, retried, dropped, invalid and stdout events."""
        return EmitterCounters(
            queued=self._queued,
            written=self._written,
            retried=self._retried,
            dropped=self._dropped,
            invalid=self._invalid,
            to_stdout=self._to_stdout,
            pending=self._queued - self._finished(),
        )

    def _finished(self) -> int:
        """Queued events that reached their end: stored, on stdout, invalid or evicted."""
        return self._written + self._to_stdout + self._invalid + self._evicted

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer task on the running event loop."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopping = False
        self._task = self._loop.create_task(self._run(), name="sysevents-emitter")
        atexit.register(self._at_exit)

    async def flush(self) -> None:
        """Wait until every event emitted before this call is stored or sent to stdout.

        Bound the wait with ``asyncio.timeout`` if needed.
        """
        target = self._queued
        while self._finished() < target:
            if self._task is None or self._task.done():
                self._drain_to_fallback("emitter stopped")
                return
            await asyncio.sleep(self.interval / 2)

    async def aclose(self) -> None:
        """Flush what is queued (as long as the retry window allows), then stop."""
        if self._task is None:
            return
        self._stopping = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        # The exit hook stays registered: events emitted after closing still
        # reach stdout at exit instead of vanishing.
        self._drain_to_fallback("emitter closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _at_exit(self) -> None:
        # The loop is gone at interpreter exit: whatever is left goes to stdout.
        self._abandon_in_flight("interpreter exit")
        self._drain_to_fallback("interpreter exit")

    def _abandon_in_flight(self, why: str) -> None:
        """Send the batches being written to stdout: the writer will not finish them."""
        events = [*self._in_flight, *self._validated]
        self._in_flight, self._validated = [], []
        if events:
            self._fallback_events(events, why)

    # -- the writer ---------------------------------------------------------------

    async def _run(self) -> None:
        # While one batch is being stored (the database works on the other
        # core), the next one is validated here: one store at a time, in order.
        storing: asyncio.Task[None] | None = None
        try:
            while True:
                if not self._queue:
                    if storing is not None:
                        if storing.done():
                            await storing
                            storing = None
                        else:  # until it is stored, or more events come to validate
                            await asyncio.wait({storing}, timeout=self.interval)
                        continue
                    if self._stopping:
                        return
                    await asyncio.sleep(self.interval)
                    continue
                self._validated = self._validate(self._take_batch())
                if storing is not None:
                    await storing
                    storing = None
                if self._validated:
                    self._in_flight, self._validated = self._validated, []
                    storing = asyncio.get_running_loop().create_task(self._store_in_flight())
                    await asyncio.sleep(0)  # it sends its statement before we validate more
        except asyncio.CancelledError:
            if storing is not None:
                storing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await storing
            self._abandon_in_flight("emitter cancelled")
            self._drain_to_fallback("emitter cancelled")
            raise

    async def _store_in_flight(self) -> None:
        await self._store(self._in_flight)
        self._in_flight = []

    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        queue = self._queue
        with contextlib.suppress(IndexError):
            while len(batch) < self.batch_size:
                batch.append(queue.popleft())
        if self.overflow == "block":
            with self._room:
                self._room.notify_all()
        return batch

    def _validate(self, batch: list[_Item]) -> list[NewEvent]:
        events = []
        for event_type, message, severity, details, source, when, key in batch:
            try:
                events.append(
                    NewEvent.model_validate(
                        {
                            "event_type": event_type,
                            "message": message,
                            "severity": severity,
                            "details": details,
                            "source": source if source is not None else self.source,
                            "timestamp": when,
                            "idempotency_key": key,
                        }
                    )
                )
            except ValidationError as exc:
                self._invalid += 1
                self._print_raw(
                    batch_item=(event_type, message, severity, details, source, when), why=exc
                )
        return events

    async def _store(self, events: list[NewEvent]) -> None:
        first_failure: float | None = None
        backoff = 0.05
        while True:
            try:
                await self.repo.add_many(events)
            except StoreUnavailableError as exc:
                now = time.monotonic()
                first_failure = first_failure or now
                if self._outage or now - first_failure >= self.retry_window:
                    if not self._outage:
                        logger.warning(
                            "store unavailable for %.0fs: events go to stdout", now - first_failure
                        )
                    self._outage = True
                    self._fallback_events(events, f"store unavailable: {exc}")
                    return
                self._retried += len(events)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except InvalidEventError:
                await self._write_one_by_one(events)
                return
            except SyseventsError as exc:
                self._fallback_events(events, f"store error: {exc}")
                return
            except Exception as exc:  # a writer that dies would lose everything after
                logger.exception("unexpected error while storing events")
                self._fallback_events(events, f"unexpected error: {exc!r}")
                return
            self._outage = False
            self._written += len(events)
            return

    async def _write_one_by_one(self, events: list[NewEvent]) -> None:
        for index, event in enumerate(events):
            self._in_flight = events[index:]
            try:
                await self.repo.add(event)
                self._written += 1
            except Exception as exc:  # never let one event stop the writer
                self._fallback_events([event], f"refused by the store: {exc}")

    # -- the fallback -------------------------------------------------------------

    def _out(self) -> TextIO:
        return self._fallback if self._fallback is not None else sys.stdout

    def _fallback_events(self, events: list[NewEvent], why: str) -> None:
        out = self._out()
        for event in events:
            line = event.model_dump(mode="json")
            line["fallback_reason"] = why
            _print_line(out, line)
        self._to_stdout += len(events)

    def _print_raw(self, batch_item: tuple[Any, ...], why: ValidationError) -> None:
        event_type, message, severity, details, source, when = batch_item
        line = {
            "event_type": repr(event_type) if not isinstance(event_type, str) else event_type,
            "severity": str(severity),
            "message": message if isinstance(message, str) else repr(message),
            "source": source if isinstance(source, str) else None,
            "timestamp": _iso(when),
            "details": details,
            "fallback_reason": "invalid event: "
            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in why.errors()),
        }
        _print_line(self._out(), line)

    def _drain_to_fallback(self, why: str) -> None:
        leftovers: list[_Item] = []
        with contextlib.suppress(IndexError):
            while True:
                leftovers.append(self._queue.popleft())
        if not leftovers:
            return
        out = self._out()
        for event_type, message, severity, details, source, when, key in leftovers:
            _print_line(
                out,
                {
                    "event_type": event_type,
                    "severity": severity,
                    "message": message,
                    "details": details,
                    "source": source if source is not None else self.source,
                    "timestamp": _iso(when),
                    "idempotency_key": key,
                    "fallback_reason": why,
                },
            )
        self._to_stdout += len(leftovers)

    # -- programs without an event loop -------------------------------------------

    @classmethod
    def in_thread(
        cls, open_repo: Callable[[], EventRepository], **options: Any
    ) -> ThreadedEventLogger:
        """An emitter running on its own thread and event loop, for synchronous programs.

        ``open_repo`` creates the (unopened) repository on that loop, for
        example ``lambda: sysevents.connect(url)``.
        """
        return ThreadedEventLogger(open_repo, **options)


def _iso(when: Any) -> str:
    return when.isoformat() if isinstance(when, datetime) else str(when)


def _print_line(out: TextIO, line: dict[str, Any]) -> None:
    try:
        out.write(json.dumps(line, ensure_ascii=False, default=repr) + "\n")
        out.flush()
    except Exception:  # pragma: no cover - stdout itself is gone
        logger.exception("could not write an event to the fallback stream")


class ThreadedEventLogger:
    """An :class:`EventLogger` on a private thread and loop; ``emit()`` from anywhere."""

    def __init__(self, open_repo: Callable[[], EventRepository], **options: Any) -> None:
        self._started = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._open_repo = open_repo
        self._options = options
        self._error: BaseException | None = None
        self.emitter: EventLogger | None = None
        self._thread = threading.Thread(target=self._main, name="sysevents-emitter", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        atexit.register(self.close)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            repo = self._open_repo()
            self._loop.run_until_complete(repo.open())
            self.emitter = EventLogger(repo, **self._options)
            self._loop.run_until_complete(self.emitter.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def _call(self, coro: Coroutine[Any, Any, None], timeout: float | None) -> None:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.result(timeout)

    def emit(self, event_type: str, message: str, **fields: Any) -> bool:
        """Queue one event (see :meth:`EventLogger.emit`)."""
        assert self.emitter is not None
        return self.emitter.emit(event_type, message, **fields)

    @property
    def counters(self) -> EmitterCounters:
        """The emitter's counters."""
        assert self.emitter is not None
        return self.emitter.counters

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event emitted so far is stored or sent to stdout."""
        assert self.emitter is not None
        self._call(self.emitter.flush(), timeout)

    def close(self) -> None:
        """Flush, stop the emitter, close the repository and the thread; safe twice."""
        if not self._thread.is_alive() or self.emitter is None:
            return
        emitter = self.emitter

        async def shutdown() -> None:
            await emitter.aclose()
            await emitter.repo.close()

        try:
            self._call(shutdown(), None)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            atexit.unregister(self.close)
