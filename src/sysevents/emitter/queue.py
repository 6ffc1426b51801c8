"""The emitter's queue: what ``emit()`` appends to, with a policy for when it is full."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Overflow = Literal["drop_newest", "drop_oldest", "block"]
"""What ``emit()`` does when the queue is full (see :class:`~sysevents.EventLogger`)."""

Item = tuple[str, str, str, Any, str | None, datetime, str | None, str | None, str]
"""What ``emit()`` queues, validated later off the caller's path: (event type,
message, severity, details, source, timestamp, trace id, span id, idempotency key)."""


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


class EmitQueue:
    """A deque and a lock held for a few hundred nanoseconds, never across I/O.

    ``put`` is for callers on any thread; ``take`` and ``drain`` for the
    writer, which pops without the lock (``deque.popleft`` is atomic).
    """

    def __init__(self, max_queue: int, overflow: Overflow, block_timeout: float) -> None:
        if overflow not in ("drop_newest", "drop_oldest", "block"):
            raise ValueError(f"unknown overflow policy {overflow!r}")
        self.max_queue = max_queue
        self.overflow = overflow
        self.block_timeout = block_timeout
        self._items: deque[Item] = deque()
        self._room = threading.Condition(threading.Lock())
        # Keys unique to this queue: a retried batch that had in fact been
        # stored is not stored twice.
        self._key_prefix = secrets.token_hex(8)
        self.writer_thread: int | None = None
        """The thread of the writer's loop: ``block`` never makes it wait."""
        self.queued = 0
        self.dropped = 0
        self.evicted = 0
        """Queued events dropped by ``drop_oldest`` to make room (also counted as dropped)."""

    def __len__(self) -> int:
        return len(self._items)

    def put(
        self,
        event_type: str,
        message: str,
        severity: str,
        details: Any,
        source: str | None,
        when: datetime,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> bool:
        """Append one event with a fresh idempotency key; ``False`` if it was dropped."""
        with self._room:
            if len(self._items) >= self.max_queue and not self._make_room():
                self.dropped += 1
                return False
            self.queued += 1
            key = f"{self._key_prefix}-{self.queued:x}"
            self._items.append(
                (event_type, message, severity, details, source, when, trace_id, span_id, key)
            )
        return True

    def _make_room(self) -> bool:
        """Decide, holding the lock with the queue full, whether the event may be queued."""
        if self.overflow == "drop_oldest":
            # The writer pops without the lock: the queue may have emptied meanwhile.
            with contextlib.suppress(IndexError):
                self._items.popleft()
                self.dropped += 1
                self.evicted += 1
            return True
        if self.overflow == "block" and threading.get_ident() != self.writer_thread:
            deadline = time.monotonic() + self.block_timeout
            while len(self._items) >= self.max_queue:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(left)
            return True
        return False

    def take(self, limit: int) -> list[Item]:
        """Up to ``limit`` items, oldest first."""
        batch: list[Item] = []
        items = self._items
        with contextlib.suppress(IndexError):
            while len(batch) < limit:
                batch.append(items.popleft())
        if self.overflow == "block":
            with self._room:
                self._room.notify_all()
        return batch

    def drain(self) -> list[Item]:
        """Every item left."""
        return self.take(len(self._items) + 1_000_000)
