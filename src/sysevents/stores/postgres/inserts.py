"""How events go into ``system_events``: one INSERT, one multi-row INSERT, or a COPY.

Each function runs on a connection from :class:`~sysevents.stores.postgres.pool.PostgresPool`
and returns the stored events in input order; idempotency keys follow the one
rule of :func:`sysevents.stores.base.replayed`.
"""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

from psycopg.rows import dict_row

from sysevents.columns import GIVEN, STAMPED, Column, Kind
from sysevents.errors import StoreError
from sysevents.model import Event, NewEvent
from sysevents.stores.base import first_of_each_key, replayed

from .ids import MONTH_SHIFT, compose, month_index
from .pool import Connection
from .rows import (
    GIVEN_NAMES,
    SELECT_LIST,
    STAMPED_NAMES,
    array_type,
    as_stored,
    event_of,
    event_rows,
    given_values,
    placeholder,
    select_list,
    sql_name,
    stamps,
)

# One event without an idempotency key: every given column but the key, and who wrote it.
_ONE = [c for c in GIVEN if c.name != "idempotency_key"]
_INSERT_ONE = (
    "INSERT INTO system_events (id, "
    + ", ".join(sql_name(c) for c in _ONE)
    + ", "
    + STAMPED_NAMES
    + ") VALUES (%s::bigint << 36 | nextval('system_events_seq'), "
    + ", ".join(placeholder(c) for c in [*_ONE, *STAMPED])
    + ") RETURNING "
    + SELECT_LIST
)
# A key is taken when it is free or older than the window (the caller's
# window, in seconds, is the statement's last parameter).
_CLAIM = (
    "ON CONFLICT (caller, key) DO UPDATE SET id = EXCLUDED.id, "
    '"timestamp" = EXCLUDED."timestamp", created_at = now() '
    "WHERE k.created_at < now() - %s * interval '1 second' RETURNING key"
)


def _as_written(column: Column) -> LiteralString:
    """A column of ``numbered`` as the INSERT writes it (JSON travels as text)."""
    name: LiteralString = sql_name(column)
    return name + "::jsonb" if column.kind is Kind.JSON else name


# One statement, so one round trip and atomic. Within the batch the first
# event of a key wins; the ids are drawn in input order. A key another event
# holds is read afterwards (rare: a retried batch), which costs less than
# looking every key up in the same statement.
_INSERT_MANY = (
    "WITH input AS MATERIALIZED (SELECT t.*, row_number() OVER (PARTITION BY "
    "t.idempotency_key ORDER BY t.ord) AS nth FROM unnest("
    + ", ".join("%s::" + array_type(c) for c in GIVEN)
    + ", %s::bigint[]) WITH ORDINALITY AS t("
    + GIVEN_NAMES
    + ", month, ord)), "
    "numbered AS MATERIALIZED (SELECT o.*, o.month << 36 | nextval('system_events_seq') AS id "
    "FROM (SELECT * FROM input WHERE idempotency_key IS NULL OR nth = 1 ORDER BY ord) AS o), "
    'claimed AS (INSERT INTO system_event_keys AS k (caller, key, id, "timestamp") '
    'SELECT %s, idempotency_key, id, "timestamp" FROM numbered '
    "WHERE idempotency_key IS NOT NULL " + _CLAIM + ") "
    "INSERT INTO system_events (id, "
    + GIVEN_NAMES
    + ", "
    + STAMPED_NAMES
    + ", idempotency_caller) "
    "SELECT id, "
    + ", ".join(_as_written(c) for c in GIVEN)
    + ", "
    + ", ".join("%s" for _ in STAMPED)
    + ", %s FROM numbered WHERE idempotency_key IS NULL "
    "OR idempotency_key IN (SELECT key FROM claimed) ORDER BY ord "
    # The rest of each stored event is what was sent: nothing else is read back.
    "RETURNING id, idempotency_key, created_at"
)
COPY_FROM = 64
"""Batches this large (with distinct idempotency keys) go by COPY: faster than a
multi-row INSERT once the rows outnumber the extra round trips."""
# The numbers drawn are returned as a range when they are contiguous (nobody
# else drew one meanwhile), and only otherwise as the whole list.
_DRAW_IDS = (
    "SELECT now(), min(n), CASE WHEN max(n) - min(n) + 1 = count(*) THEN NULL "
    "ELSE array_agg(n ORDER BY n) END FROM (SELECT nextval('system_events_seq') AS n "
    "FROM generate_series(1, %s)) AS drawn"
)
_CLAIM_MANY = (
    'INSERT INTO system_event_keys AS k (caller, key, id, "timestamp") '
    "SELECT %s, * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[]) " + _CLAIM
)
_COPY = (
    "COPY system_events (id, " + GIVEN_NAMES + ", " + STAMPED_NAMES + ", idempotency_caller) "
    "FROM STDIN"
)
# The event of each key; a key whose event is gone (removed by retention with
# its partition) comes back with a NULL event and is given up.
_BY_KEYS = (
    "SELECT " + select_list("e") + ", k.key AS held_key, k.id AS held_by FROM system_event_keys k "
    'LEFT JOIN system_events e ON e.id = k.id AND e."timestamp" = k."timestamp" '
    "WHERE k.caller = %s AND k.key = ANY(%s::text[])"
)
_GIVE_UP = "DELETE FROM system_event_keys WHERE caller = %s AND key = %s AND id = %s"
# A key already stored, or stored by a concurrent writer during the insert, is
# not returned by _INSERT_MANY: it is read (and, if deleted meanwhile, inserted again).
_KEY_ATTEMPTS = 5
_LOW = (1 << MONTH_SHIFT) - 1  # the part of an id drawn in order


class KeyTaken(Exception):
    """A COPY met an idempotency key that is already stored; nothing was stored."""


async def insert_one(conn: Connection, new: NewEvent, caller: str) -> Event:
    """Store one event without an idempotency key, written by ``caller`` (``""``: nobody said)."""
    params = [month_index(new.timestamp), *(c.value_of(new) for c in _ONE), *stamps(caller)]
    async with conn.cursor(row_factory=event_rows) as cur:
        await cur.execute(_INSERT_ONE, params)
        event = await cur.fetchone()
    assert event is not None
    return event


def _batch_params(news: Sequence[NewEvent], caller: str, window: float) -> list[Any]:
    """The parameters of ``_INSERT_MANY``.

    The arrays it unnests (one per column, then the months), the caller, the
    key window and the caller again.
    """
    arrays: list[Any] = [[c.value_of(n) for n in news] for c in GIVEN]
    months = [month_index(n.timestamp) for n in news]
    return [*arrays, months, caller, window, *stamps(caller), caller]


async def insert_batch(
    conn: Connection, news: Sequence[NewEvent], caller: str, window: float
) -> list[Event]:
    """Store ``news`` by one multi-row INSERT (inside a transaction when keys are given).

    A key of ``caller`` stored less than ``window`` seconds ago returns the
    stored event if ``news`` holds a retry of it, and raises
    ``IdempotencyConflictError`` (the transaction then rolls back) if it holds
    a different event.
    """
    first_of_key = first_of_each_key(news)
    keys = list(first_of_key)
    cur = await conn.execute(_INSERT_MANY, _batch_params(news, caller, window))
    rows = await cur.fetchall()
    by_key = {
        key: as_stored(first_of_key[key], event_id, created_at, caller)
        for event_id, key, created_at in rows
        if key is not None
    }
    missing = [k for k in keys if k not in by_key]
    for _ in range(_KEY_ATTEMPTS):
        if not missing:
            break
        async with conn.cursor(row_factory=dict_row) as by_keys:
            await by_keys.execute(_BY_KEYS, (caller, missing))
            held = await by_keys.fetchall()
        for row in held:
            key = row["held_key"]
            if row["id"] is None:
                await conn.execute(_GIVE_UP, (caller, key, row["held_by"]))
            else:
                by_key[key] = replayed(first_of_key[key], event_of(row))
        lost = [first_of_key[k] for k in missing if k not in by_key]
        if lost:
            cur = await conn.execute(_INSERT_MANY, _batch_params(lost, caller, window))
            by_key.update(
                (key, as_stored(first_of_key[key], event_id, created_at, caller))
                for event_id, key, created_at in await cur.fetchall()
            )
        missing = [k for k in keys if k not in by_key]
    if missing:
        raise StoreError(f"could not store or read events with keys {missing[:5]}")
    # Unkeyed events got their ids in input order.
    plain = iter(sorted((row for row in rows if row[1] is None), key=lambda row: row[0] & _LOW))
    events = []
    for n in news:
        if n.idempotency_key:
            events.append(by_key[n.idempotency_key])
        else:
            event_id, _, created_at = next(plain)
            events.append(as_stored(n, event_id, created_at, caller))
    return events


async def copy_batch(
    conn: Connection, news: Sequence[NewEvent], caller: str, window: float
) -> list[Event]:
    """COPY the events with ids drawn beforehand: nothing needs to be read back.

    Runs inside a transaction of its own caller's. Raises ``KeyTaken`` if an
    idempotency key is held already; the transaction then rolls back.

    The ids are drawn in input order; the stored values are those of
    ``news`` (validated as PostgreSQL keeps them) and ``created_at`` is the
    transaction's ``now()``, the column default.
    """
    cur = await conn.execute(_DRAW_IDS, (len(news),))
    drawn = await cur.fetchone()
    assert drawn is not None
    created_at, first, listed = drawn
    numbers = range(first, first + len(news)) if listed is None else listed
    ids = [compose(month_index(n.timestamp), k) for n, k in zip(news, numbers, strict=True)]
    keyed = [
        (n.idempotency_key, i, n.timestamp)
        for n, i in zip(news, ids, strict=True)
        if n.idempotency_key
    ]
    if keyed:
        keys, key_ids, times = (list(column) for column in zip(*keyed, strict=True))
        cur = await conn.execute(_CLAIM_MANY, (caller, keys, key_ids, times, window))
        if len(await cur.fetchall()) < len(keyed):
            raise KeyTaken
    async with conn.cursor() as copy_cur, copy_cur.copy(_COPY) as copy:
        write = copy.write_row
        for event_id, n in zip(ids, news, strict=True):
            await write((event_id, *given_values(n), *stamps(caller), caller))
    return [
        as_stored(n, event_id, created_at, caller) for event_id, n in zip(ids, news, strict=True)
    ]
