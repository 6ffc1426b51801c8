"""How events go into ``system_events``: one INSERT, one multi-row INSERT, or a COPY.

Each function runs on a connection from :class:`~sysevents.postgres.pool.PostgresPool`
and returns the stored events in input order; idempotency keys follow the one
rule of :func:`sysevents._base.replayed`.
"""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from sysevents._base import first_of_each_key, replayed
from sysevents.errors import StoreError
from sysevents.model import Event, NewEvent

from .pool import Connection
from .sql import COLUMNS, as_stored, event_from_row

_INSERT_ONE = (
    'INSERT INTO system_events (event_type, severity, message, details, source, "timestamp") '
    "VALUES (%s, %s, %s, %s::jsonb, %s, %s) RETURNING " + COLUMNS
)
# One statement, so one round trip and atomic; ORDER BY ord makes the identity
# values follow the input order. Within the batch the first event of a key wins;
# a key already stored is read afterwards (rare: a retried batch), which costs
# less than looking every key up in the same statement.
_INSERT_MANY = (
    "WITH input AS (SELECT t.*, row_number() OVER (PARTITION BY t.key ORDER BY t.ord) AS nth "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::timestamptz[], %s::text[]) WITH ORDINALITY "
    "AS t(event_type, severity, message, details, source, ts, key, ord)) "
    "INSERT INTO system_events (event_type, severity, message, details, source, "
    '"timestamp", idempotency_key, idempotency_caller) '
    "SELECT event_type, severity, message, details::jsonb, source, ts, key, %s FROM input "
    "WHERE key IS NULL OR nth = 1 ORDER BY ord "
    "ON CONFLICT (idempotency_caller, idempotency_key) WHERE idempotency_key IS NOT NULL "
    "DO NOTHING "
    # The rest of each stored event is what was sent: nothing else is read back.
    "RETURNING id, idempotency_key, created_at"
)
COPY_FROM = 64
"""Batches this large (with distinct idempotency keys) go by COPY: faster than a
multi-row INSERT once the rows outnumber the extra round trips."""
# The ids drawn are returned as a range when they are contiguous (nobody else
# drew one meanwhile), and only otherwise as the whole list.
_DRAW_IDS = (
    "SELECT now(), min(id), CASE WHEN max(id) - min(id) + 1 = count(*) THEN NULL "
    "ELSE array_agg(id ORDER BY id) END FROM (SELECT "
    "nextval(pg_get_serial_sequence('system_events', 'id')) AS id "
    "FROM generate_series(1, %s)) AS drawn"
)
_COPY = (
    "COPY system_events (id, event_type, severity, message, details, source, "
    '"timestamp", idempotency_key, idempotency_caller) FROM STDIN'
)
_BY_KEYS = (
    "SELECT " + COLUMNS + " FROM system_events "
    "WHERE idempotency_caller = %s AND idempotency_key = ANY(%s::text[])"
)
# A key already stored, or stored by a concurrent writer during the insert, is
# not returned by _INSERT_MANY: it is read (and, if deleted meanwhile, inserted again).
_KEY_ATTEMPTS = 5


class KeyTaken(Exception):
    """A COPY met an idempotency key that is already stored; nothing was stored."""


async def insert_one(conn: Connection, new: NewEvent) -> Event:
    """Store one event without an idempotency key."""
    params = (
        new.event_type,
        new.severity.value,
        new.message,
        new.details_json,
        new.source,
        new.timestamp,
    )
    cur = await conn.execute(_INSERT_ONE, params)
    row = await cur.fetchone()
    assert row is not None
    return event_from_row(row)


def _batch_params(news: Sequence[NewEvent], caller: str) -> tuple[Any, ...]:
    """The arrays ``_INSERT_MANY`` unnests, one per column, and the caller."""
    return (
        [n.event_type for n in news],
        [n.severity.value for n in news],
        [n.message for n in news],
        [n.details_json for n in news],
        [n.source for n in news],
        [n.timestamp for n in news],
        [n.idempotency_key for n in news],
        caller,
    )


async def insert_batch(conn: Connection, news: Sequence[NewEvent], caller: str = "") -> list[Event]:
    """Store ``news`` by one multi-row INSERT (inside a transaction when keys are given).

    A key of ``caller`` already stored returns the stored event if ``news``
    holds a retry of it, and raises ``IdempotencyConflictError`` (the
    transaction then rolls back) if it holds a different event.
    """
    first_of_key = first_of_each_key(news)
    keys = list(first_of_key)
    cur = await conn.execute(_INSERT_MANY, _batch_params(news, caller))
    rows = await cur.fetchall()
    by_key = {
        key: as_stored(first_of_key[key], event_id, created_at)
        for event_id, key, created_at in rows
        if key is not None
    }
    missing = [k for k in keys if k not in by_key]
    for _ in range(_KEY_ATTEMPTS):
        if not missing:
            break
        cur = await conn.execute(_BY_KEYS, (caller, missing))
        by_key.update(
            (row[8], replayed(first_of_key[row[8]], event_from_row(row)))
            for row in await cur.fetchall()
        )
        lost = [first_of_key[k] for k in missing if k not in by_key]
        if lost:
            cur = await conn.execute(_INSERT_MANY, _batch_params(lost, caller))
            by_key.update(
                (key, as_stored(first_of_key[key], event_id, created_at))
                for event_id, key, created_at in await cur.fetchall()
            )
        missing = [k for k in keys if k not in by_key]
    if missing:
        raise StoreError(f"could not store or read events with keys {missing[:5]}")
    # Unkeyed events got their ids in input order.
    plain = iter(sorted((row for row in rows if row[1] is None), key=lambda row: row[0]))
    events = []
    for n in news:
        if n.idempotency_key:
            events.append(by_key[n.idempotency_key])
        else:
            event_id, _, created_at = next(plain)
            events.append(as_stored(n, event_id, created_at))
    return events


async def copy_batch(conn: Connection, news: Sequence[NewEvent], caller: str = "") -> list[Event]:
    """COPY the events with ids drawn beforehand: nothing needs to be read back.

    Runs inside a transaction of its own caller's. Raises ``KeyTaken`` if an
    idempotency key is already in the table; the transaction then rolls back.

    The ids come from the table's own identity sequence, in input order; the
    stored values are those of ``news`` (validated as PostgreSQL keeps them)
    and ``created_at`` is the transaction's ``now()``, the column default.
    """
    texts = [n.details_json for n in news]
    cur = await conn.execute(_DRAW_IDS, (len(news),))
    drawn = await cur.fetchone()
    assert drawn is not None
    created_at, first, listed = drawn
    ids = range(first, first + len(news)) if listed is None else listed
    try:
        async with conn.cursor() as copy_cur, copy_cur.copy(_COPY) as copy:
            write = copy.write_row
            for event_id, n, text in zip(ids, news, texts, strict=True):
                await write(
                    (
                        event_id,
                        n.event_type,
                        n.severity.value,
                        n.message,
                        text,
                        n.source,
                        n.timestamp,
                        n.idempotency_key,
                        caller,
                    )
                )
    except psycopg.errors.UniqueViolation as exc:
        raise KeyTaken from exc
    return [as_stored(n, event_id, created_at) for event_id, n in zip(ids, news, strict=True)]
