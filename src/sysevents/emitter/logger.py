"""The emitter: callers hand events over, a background task stores them."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Self, TextIO

from pydantic import ValidationError

from sysevents.errors import InvalidEventError, StoreUnavailableError, SyseventsError
from sysevents.model import NewEvent
from sysevents.otel import current_ids
from sysevents.store import EventRepository

from .fallback import Fallback
from .lifecycle import chain_sigterm_on_loop
from .queue import EmitQueue, EmitterCounters, Item, Overflow
from .threaded import ThreadedEventLogger

logger = logging.getLogger("sysevents.emitter")


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
    backoff (with jitter) for ``retry_window`` seconds; after that it, and any
    batch that fails until the store answers again, goes to ``fallback``
    (stdout). Every event carries a fresh idempotency key, so a retried batch
    that had in fact been stored is not stored twice.

    Nothing is lost when the process ends: at interpreter exit whatever is
    left goes to ``fallback``, and on SIGTERM (with ``handle_sigterm``, when
    started on the main thread's loop) the emitter stores what it holds for at
    most ``drain_timeout`` seconds, sends the rest to ``fallback``, then hands
    the signal to the handler that was there before (by default: exit).
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
        drain_timeout: float = 2.0,
        handle_sigterm: bool = True,
    ) -> None:
        self.repo = repo
        self._queue = EmitQueue(max_queue, overflow, block_timeout)
        self.batch_size = batch_size
        self.interval = interval
        self.retry_window = retry_window
        self.max_backoff = max_backoff
        self.source = source
        self.drain_timeout = drain_timeout
        self.handle_sigterm = handle_sigterm
        self._fallback = Fallback(fallback, source=source)
        self._written = self._retried = self._invalid = 0
        self._outage = False
        self._in_flight: list[NewEvent] = []  # the batch being stored
        self._validated: list[NewEvent] = []  # the next one, waiting for its turn
        self._task: asyncio.Task[None] | None = None
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
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> bool:
        """Queue one event; ``False`` if it was dropped. Never blocks on I/O, never raises.

        Without ``trace_id`` and ``span_id``, the event gets those of the
        current OpenTelemetry span, if there is one; given ids win.
        """
        try:
            when = timestamp if timestamp is not None else datetime.now(UTC)
            if trace_id is None and span_id is None:
                trace_id, span_id = current_ids()
            return self._queue.put(
                event_type, message, severity, _copied(details), source, when, trace_id, span_id
            )
        except Exception:  # emit() must never raise into the caller
            self._queue.dropped += 1
            return False

    @property
    def counters(self) -> EmitterCounters:
        """Counts of queued, written, retried, dropped, invalid and stdout events."""
        queue = self._queue
        return EmitterCounters(
            queued=queue.queued,
            written=self._written,
            retried=self._retried,
            dropped=queue.dropped,
            invalid=self._invalid,
            to_stdout=self._fallback.written,
            pending=queue.queued - self._finished(),
        )

    def _finished(self) -> int:
        """Queued events that reached their end: stored, on stdout, invalid or evicted."""
        return self._written + self._fallback.written + self._invalid + self._queue.evicted

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer task on the running event loop."""
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        self._queue.writer_thread = threading.get_ident()
        self._stopping = False
        self._task = loop.create_task(self._run(), name="sysevents-emitter")
        atexit.register(self._at_exit)
        if self.handle_sigterm:
            chain_sigterm_on_loop(loop, self._on_sigterm)

    async def flush(self) -> None:
        """Wait until every event emitted before this call is stored or sent to stdout.

        Bound the wait with ``asyncio.timeout`` if needed.
        """
        target = self._queue.queued
        while self._finished() < target:
            if self._task is None or self._task.done():
                self._fallback.items(self._queue.drain(), "emitter stopped")
                return
            await asyncio.sleep(self.interval / 2)

    async def aclose(self, drain: float | None = None) -> None:
        """Store what is queued, then stop; what is not stored in ``drain`` seconds goes to stdout.

        Without ``drain``, storing may take as long as the retry window allows.
        """
        task = self._task
        if task is None:
            return
        self._stopping = True
        done, _ = await asyncio.wait({task}, timeout=drain)
        if not done:
            task.cancel()  # the writer hands what it holds to the fallback
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._task = None
        # The exit hook stays registered: events emitted after closing still
        # reach stdout at exit instead of vanishing.
        self._fallback.items(self._queue.drain(), "emitter closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _on_sigterm(self) -> None:
        await self.aclose(drain=self.drain_timeout)

    def _at_exit(self) -> None:
        # The loop is gone at interpreter exit: whatever is left goes to stdout.
        self._abandon("interpreter exit")

    def _abandon(self, why: str) -> None:
        """Send the batches being written, then the queue, to the fallback."""
        events = [*self._in_flight, *self._validated]
        self._in_flight, self._validated = [], []
        if events:
            self._fallback.events(events, why)
        self._fallback.items(self._queue.drain(), why)

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
                self._validated = self._validate(self._queue.take(self.batch_size))
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
            self._abandon("emitter cancelled")
            raise

    async def _store_in_flight(self) -> None:
        await self._store(self._in_flight)
        self._in_flight = []

    def _validate(self, batch: list[Item]) -> list[NewEvent]:
        events = []
        for item in batch:
            event_type, message, severity, details, source, when, trace_id, span_id, key = item
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
                            "trace_id": trace_id,
                            "span_id": span_id,
                        }
                    )
                )
            except ValidationError as exc:
                self._invalid += 1
                self._fallback.invalid(item, exc.errors())
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
                    self._fallback.events(events, f"store unavailable: {exc}")
                    return
                self._retried += len(events)
                # Jittered, so that many writers retrying one database spread out.
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except InvalidEventError:
                await self._write_one_by_one(events)
                return
            except SyseventsError as exc:
                self._fallback.events(events, f"store error: {exc}")
                return
            except Exception as exc:  # a writer that dies would lose everything after
                logger.exception("unexpected error while storing events")
                self._fallback.events(events, f"unexpected error: {exc!r}")
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
                self._fallback.events([event], f"refused by the store: {exc}")

    # -- programs without an event loop -------------------------------------------

    @classmethod
    def in_thread(
        cls, open_repo: Callable[[], EventRepository], **options: Any
    ) -> ThreadedEventLogger:
        """An emitter running on its own thread and event loop, for synchronous programs.

        ``open_repo`` creates the (unopened) repository on that loop, for
        example ``lambda: sysevents.connect(url)``.
        """
        return ThreadedEventLogger(open_repo, cls, **options)


_FLAT = (str, int, float, bool, type(None))


def _copied(details: dict[str, Any] | None) -> dict[str, Any] | None:
    """The caller's details, copied: changing them after ``emit`` changes nothing stored."""
    if details is None:
        return None
    if all(isinstance(v, _FLAT) for v in details.values()):
        return dict(details)  # the common case, and cheap
    return copy.deepcopy(details)
