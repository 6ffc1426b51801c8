"""SQLite's sealing side: rows in id order (the commit order of one writer), digests in a table.

One process writes at a time and ids only grow, so a committed row's
predecessors are all committed: a position is ``(0, id)``, as in memory,
and every row is ready to seal once visible (no transaction is ever still
open below it).
"""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
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
from sysevents.model import Event

from .db import Database
from .rows import SELECT_LIST, event_of, from_micros, micros

_DIGEST_COLUMNS = (
    "seq, after_id, last_id, count, min_id, max_id, events_sha256, previous, sealed_at, "
    "next_xid, key, signature, entries"
)


def _digest(row: Sequence[Any]) -> Digest:
    return Digest(
        seq=row[0],
        after=(0, row[1]),
        last=(0, row[2]),
        count=row[3],
        min_id=row[4],
        max_id=row[5],
        events_sha256=bytes(row[6]),
        previous=bytes(row[7]),
        sealed_at=from_micros(row[8]),
        next_xid=row[9],
        key=row[10],
        signature=None if row[11] is None else bytes(row[11]),
        entries=bytes(row[12]),
    )


def _rows(conn: sqlite3.Connection, after: int, upto: int | None, limit: int) -> list[Event]:
    sql = f"SELECT {SELECT_LIST} FROM events WHERE id > ?"
    params: list[Any] = [after]
    if upto is not None:
        sql += " AND id <= ?"
        params.append(upto)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return [event_of(r) for r in conn.execute(sql, params)]


class SqliteSeals:
    """Seals the events of a SQLite file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def horizon(self) -> Horizon:
        """Everything visible is ready: transaction 0 has always ended."""
        return Horizon(below=1, next_xid=1, now=datetime.now(UTC))

    async def next_run(self, after: Position, *, below: int, limit: int) -> Run | None:
        """The next events after ``after`` in id order, at most ``limit``, as entries."""
        events = await self._db.read(lambda c: _rows(c, after[1], None, limit))
        entries = [
            Entry(e.id, micros(e.timestamp), e.severity, e.event_type, fingerprint(canonical(e)))
            for e in events
        ]
        return Run.of(entries, (0, entries[-1].id)) if entries else None

    async def differences(
        self, digest: Digest, entries: Sequence[Entry], backdating: Backdating | None
    ) -> list[Difference]:
        """The events of ``digest``'s range that differ from its entries."""
        sealed = {e.id: e.fingerprint for e in entries}
        found: list[Difference] = []
        after, upto = digest.after[1], digest.last[1]
        while True:
            events = await self._db.read(partial(_rows, after=after, upto=upto, limit=1000))
            for event in events:
                expected = sealed.pop(event.id, None)
                if expected is None:
                    found.append(Difference(event.id, "added"))
                elif fingerprint(canonical(event)) != expected:
                    found.append(Difference(event.id, "changed"))
            if len(events) < 1000:
                break
            after = events[-1].id
        found += [Difference(event_id, "removed") for event_id in sealed]
        return found

    async def unsealed(self, after: Position, cap: int) -> int:
        """How many events there are after ``after`` (up to ``cap``)."""
        row = await self._db.read(
            lambda c: c.execute(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE id > ? LIMIT ?)",
                (after[1], cap),
            ).fetchone()
        )
        return int(row[0])

    async def last_digest(self) -> Digest | None:
        """The newest digest."""
        row = await self._db.read(
            lambda c: c.execute(
                f"SELECT {_DIGEST_COLUMNS} FROM digests ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        )
        return None if row is None else _digest(row)

    async def add_digest(self, digest: Digest) -> bool:
        """Keep a digest that follows the last one (``False``: another sealer won)."""
        values = (
            digest.seq,
            digest.after[1],
            digest.last[1],
            digest.count,
            digest.min_id,
            digest.max_id,
            digest.events_sha256,
            digest.previous,
            micros(digest.sealed_at),
            digest.next_xid,
            digest.key,
            digest.signature,
            digest.entries,
        )

        def add(conn: sqlite3.Connection) -> bool:
            last = conn.execute("SELECT max(seq) FROM digests").fetchone()[0] or 0
            if digest.seq != last + 1:
                return False
            conn.execute(
                f"INSERT INTO digests ({_DIGEST_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                values,
            )
            return True

        return await self._db.write(add)

    async def digests(
        self, *, after: int = 0, limit: int = 1000, since: datetime | None = None
    ) -> list[Digest]:
        """Digests after ``after`` (sealed at ``since`` or later), oldest first."""
        floor = -(2**62) if since is None else micros(since)
        rows = await self._db.read(
            lambda c: c.execute(
                f"SELECT {_DIGEST_COLUMNS} FROM digests WHERE seq > ? AND sealed_at >= ? "
                "ORDER BY seq LIMIT ?",
                (after, floor, limit),
            ).fetchall()
        )
        return [_digest(r) for r in rows]

    async def fingerprint_of(self, fields: dict[str, Any]) -> bytes:
        """The fingerprint of an event given by its fields."""
        return fingerprint(canonical_of(fields))

    async def own_records(self, event_types: Sequence[str]) -> list[Event]:
        """Every stored event of these types, oldest first."""
        if not event_types:
            return []
        marks = ", ".join("?" * len(event_types))
        rows = await self._db.read(
            lambda c: c.execute(
                f"SELECT {SELECT_LIST} FROM events WHERE event_type IN ({marks}) ORDER BY id",
                list(event_types),
            ).fetchall()
        )
        return [event_of(r) for r in rows]

    async def event(self, event_id: int) -> Event | None:
        """The event as stored now."""
        row = await self._db.read(
            lambda c: c.execute(
                f"SELECT {SELECT_LIST} FROM events WHERE id = ?", (event_id,)
            ).fetchone()
        )
        return None if row is None else event_of(row)
