"""Writing events, run on the writer's connection inside its transaction (see ``db``).

Each function here is a job: it runs in a savepoint of the writer's
transaction, so raising undoes it alone. Ids are SQLite's ``AUTOINCREMENT``:
never reused, and given in commit order, since one process writes at a time.
"""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sysevents._fast import trusted_event
from sysevents.audit import delete_record, update_record
from sysevents.columns import COLUMNS, Kind
from sysevents.errors import NotFoundError
from sysevents.model import Event, EventPatch, NewEvent
from sysevents.stores.base import check_caller, first_of_each_key, replayed

from .rows import INSERT, SELECT_LIST, event_of, insert_values, micros, patch_setters

_KEYED = f"SELECT {SELECT_LIST} FROM events WHERE key_caller = ? AND idempotency_key = ?"
_BY_ID = f"SELECT {SELECT_LIST} FROM events WHERE id = ?"


def as_stored(new: NewEvent, event_id: int, created_at: datetime, caller: str) -> Event:
    """The event as stored from ``new``; its details are the caller's own copy."""
    values: dict[str, Any] = {}
    for column in COLUMNS:
        name = column.name
        if name == "id":
            values[name] = event_id
        elif name == "created_at":
            values[name] = created_at
        elif column.stamp:
            values[name] = caller or None
        elif column.kind is Kind.JSON:
            text = new.details_json
            values[name] = None if text is None else json.loads(text)
        else:
            values[name] = getattr(new, name)
    return trusted_event(Event, values)


def _keyed(
    conn: sqlite3.Connection, caller: str, key: str, now: datetime, window_us: int
) -> Event | None:
    """The event stored under this key, unless the window passed (then the key is forgotten)."""
    row = conn.execute(_KEYED, (caller, key)).fetchone()
    if row is None:
        return None
    event = event_of(row)
    if micros(event.created_at) < micros(now) - window_us:
        conn.execute("UPDATE events SET key_caller = NULL WHERE id = ?", (event.id,))
        return None
    return event


def _next_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return 1 if row is None else int(row[0]) + 1


def insert(
    conn: sqlite3.Connection,
    news: Sequence[NewEvent],
    caller: str,
    now: datetime,
    window_us: int,
) -> list[Event]:
    """Store ``news`` (all or none), replaying the events their keys already stored."""
    now_us = micros(now)
    if not any(n.idempotency_key is not None for n in news):
        # No key: one executemany; ids follow on from the sequence (one writer).
        first = _next_id(conn)
        conn.executemany(INSERT, [insert_values(n, now_us, caller) for n in news])
        return [as_stored(n, first + i, now, caller) for i, n in enumerate(news)]
    for first_key, earlier in first_of_each_key(news).items():
        stored = _keyed(conn, caller, first_key, now, window_us)
        if stored is not None:
            replayed(earlier, stored)
    out: list[Event] = []
    for new in news:
        key = new.idempotency_key
        if key is not None:
            stored = _keyed(conn, caller, key, now, window_us)
            if stored is not None:
                out.append(replayed(new, stored))
                continue
        cursor = conn.execute(INSERT, insert_values(new, now_us, caller))
        assert cursor.lastrowid is not None
        out.append(as_stored(new, cursor.lastrowid, now, caller))
    return out


_KEPT = INSERT.replace("INSERT INTO events (", "INSERT INTO events (id, ").replace(
    "VALUES (", "VALUES (?, "
)


def insert_kept(conn: sqlite3.Connection, pairs: Sequence[tuple[NewEvent, Event]]) -> int:
    """Store events copied from another store, keeping their ids where this file allows.

    ``pairs`` are each event to store (checked) with the event it copies. Its
    id is kept when no event has it and it is above every sealed id (a digest
    never gains an event later); else the file gives the next one. Its
    ``created_at`` and ``written_by`` are kept; its idempotency key is not
    remembered (it belongs to the store it came from). How many were stored.
    """
    row = conn.execute("SELECT max(last_id) FROM digests").fetchone()
    floor = int(row[0] or 0)
    for new, original in pairs:
        values = list(insert_values(new, micros(original.created_at), original.written_by or ""))
        values[-2] = None  # key_caller: the key is not remembered here
        free = original.id > floor and by_id(conn, original.id) is None
        if free:
            conn.execute(_KEPT, (original.id, *values))
        else:
            conn.execute(INSERT, values)
    return len(pairs)


def by_id(conn: sqlite3.Connection, event_id: int) -> Event | None:
    """The event with this id, or ``None``."""
    row = conn.execute(_BY_ID, (event_id,)).fetchone()
    return None if row is None else event_of(row)


def update(
    conn: sqlite3.Connection,
    event_id: int,
    patch: EventPatch,
    actor: str | None,
    now: datetime,
) -> Event:
    """Change the fields of ``patch``; with an ``actor``, record the change beside it."""
    before = by_id(conn, event_id)
    if before is None:
        raise NotFoundError(event_id)
    setters, params = patch_setters(patch)
    if setters:
        conn.execute(f"UPDATE events SET {setters} WHERE id = ?", (*params, event_id))
    after = by_id(conn, event_id)
    assert after is not None
    if actor is not None:
        record = update_record(before, after, actor)
        insert(conn, [record], check_caller(actor), now, 0)
    return after


def delete(conn: sqlite3.Connection, event_id: int, actor: str | None, now: datetime) -> None:
    """Remove the event (its key with it); with an ``actor``, record the removal."""
    gone = by_id(conn, event_id)
    if gone is None:
        raise NotFoundError(event_id)
    conn.execute("DELETE FROM events WHERE id = ?", (event_id,))
    if actor is not None:
        insert(conn, [delete_record(gone, actor)], check_caller(actor), now, 0)
