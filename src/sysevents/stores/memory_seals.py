"""The memory store's sealing side: its events in id order, its digests in a list."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sysevents.integrity import (
    Backdating,
    Difference,
    Digest,
    Entry,
    Horizon,
    Position,
    Run,
    canonical,
    canonical_of,
    fingerprint,
)
from sysevents.integrity.canonical import micros
from sysevents.model import Event


class MemorySeals:
    """Seals a memory store: every event is committed once stored, in id order.

    A position is ``(0, id)``; fingerprints are computed when sealed or
    verified, from the events as they are then.
    """

    def __init__(self, events: dict[int, Event], log: list[int]) -> None:
        self._events = events  # the store's own, by id
        self._log = log  # every id stored, in order
        self._digests: list[Digest] = []

    async def horizon(self) -> Horizon:
        """Everything stored is ready: transaction 0 has always ended."""
        return Horizon(below=1, next_xid=1, now=datetime.now(UTC))

    def _stored(self, after: Position, upto: Position | None = None) -> Iterator[Event]:
        """The stored events after ``after`` (to ``upto``), in id order."""
        log = self._log
        for event_id in log[bisect.bisect_right(log, after[1]) :]:
            if upto is not None and event_id > upto[1]:
                return
            event = self._events.get(event_id)
            if event is not None:
                yield event

    async def next_run(self, after: Position, *, below: int, limit: int) -> Run | None:
        """The next stored events after ``after`` in id order, at most ``limit``, as entries."""
        entries = [
            Entry(e.id, micros(e.timestamp), e.severity, e.event_type, fingerprint(canonical(e)))
            for e in itertools.islice(self._stored(after), limit)
        ]
        return Run.of(entries, (0, entries[-1].id)) if entries else None

    async def differences(
        self, digest: Digest, entries: Sequence[Entry], backdating: Backdating | None
    ) -> list[Difference]:
        """The events of ``digest``'s range that differ from its entries."""
        sealed = {e.id: e.fingerprint for e in entries}
        found: list[Difference] = []
        for event in self._stored(digest.after, digest.last):
            expected = sealed.pop(event.id, None)
            if expected is None:
                found.append(Difference(event.id, "added"))
            elif fingerprint(canonical(event)) != expected:
                found.append(Difference(event.id, "changed"))
            # Everything here is transaction 0, below any digest's next_xid: never backdated.
        found += [Difference(event_id, "removed") for event_id in sealed]
        return found

    async def unsealed(self, after: Position, cap: int) -> int:
        """How many events were stored after ``after`` (up to ``cap``)."""
        return sum(1 for _ in itertools.islice(self._stored(after), cap))

    async def last_digest(self) -> Digest | None:
        """The newest digest."""
        return self._digests[-1] if self._digests else None

    async def add_digest(self, digest: Digest) -> bool:
        """Keep a digest that follows the last one."""
        if digest.seq != len(self._digests) + 1:
            return False
        self._digests.append(digest)
        return True

    async def digests(
        self, *, after: int = 0, limit: int = 1000, since: datetime | None = None
    ) -> list[Digest]:
        """Digests after ``after`` (sealed at ``since`` or later), oldest first."""
        chosen = [d for d in self._digests[after:] if since is None or d.sealed_at >= since]
        return chosen[:limit]

    async def fingerprint_of(self, fields: dict[str, Any]) -> bytes:
        """The fingerprint of an event given by its fields."""
        return fingerprint(canonical_of(fields))

    async def own_records(self, event_types: Sequence[str]) -> list[Event]:
        """Every stored event of these types, oldest first."""
        wanted = set(event_types)
        return [e for e in self._events.values() if e.event_type in wanted]

    async def event(self, event_id: int) -> Event | None:
        """The event as stored now."""
        return self._events.get(event_id)
