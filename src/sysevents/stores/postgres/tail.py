"""Live tails over PostgreSQL: exactly once, in order, whichever replica wrote the events.

The order is ``(ingest_xid, id)``: the writing transaction, then the id. A
tail only emits rows whose ``ingest_xid`` is below :data:`HORIZON`, read
before the rows: every transaction of this database below it has ended, so no
row can appear later behind the tail's position, however writers interleave
and whatever ids they drew. The position ``"XID-ID"`` is the last row emitted
(or a point past rows that did not match).

``NOTIFY sysevents_events`` (sent by a statement trigger after inserts, at
most once per ``sysevents.notify_interval`` per session: migrations 0008 and
0009) wakes the tails of every replica through one listening connection per
repository. The table is the truth: a woken tail looks again 20, 60, 140 and
300 ms later and polls besides, so an insert that did not notify, a lost
notification or a long transaction of this database only delays them.
"""

# ruff: noqa: S608

from __future__ import annotations

import asyncio
import contextlib
import logging

from sysevents.errors import StoreError
from sysevents.query import EventFilter
from sysevents.rules import MAX_EVENT_ID
from sysevents.tail import bad_position

from .pool import PostgresPool, notifications
from .rows import SELECT_LIST, StoredRow, stored_rows
from .sql import Statement, where

log = logging.getLogger("sysevents.stores.postgres")

CHANNEL = "sysevents_events"
"""The channel the trigger of migrations 0008 and 0009 notifies after inserts."""
HORIZON = (
    "SELECT least(pg_snapshot_xmax(s)::text::bigint, (SELECT min(x::text::bigint) "
    "FROM pg_snapshot_xip(s) AS x WHERE x::text::bigint % 4294967296 IN ("
    "SELECT backend_xid::text::bigint FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_xid IS NOT NULL UNION ALL "
    "SELECT transaction::text::bigint FROM pg_prepared_xacts "
    "WHERE database = current_database()))) FROM pg_current_snapshot() AS s"
)
"""Every transaction of this database below this had ended when it was read.

Only this database's transactions count (those still running, prepared ones
too): a long write elsewhere on the server holds nothing back. Rows are read
by a later statement, which sees every one of them.
"""
BATCH = 500
"""Rows read at a time."""

Position = tuple[int, int]


def parse_position(after: str) -> Position:
    """The ``(xid, id)`` of a position text ``"XID-ID"``; ``InvalidEventError`` if malformed."""
    xid, _, event_id = after.partition("-")
    for part in (xid, event_id):
        if not (part.isascii() and part.isdigit() and len(part) <= 19):
            raise bad_position(after)
    position = int(xid), int(event_id)
    if position[0] > MAX_EVENT_ID or position[1] > MAX_EVENT_ID:
        raise bad_position(after)
    return position


def position_text(position: Position) -> str:
    """The text of a position."""
    return f"{position[0]}-{position[1]}"


def start_after(horizon: int) -> Position:
    """Where a tail started now begins: after every transaction ended before it."""
    return horizon - 1, MAX_EVENT_ID


def rows_statement(
    query: EventFilter, after: Position, horizon: int, upto: Position | None = None
) -> Statement:
    """The next rows of ``query`` after ``after``, below ``horizon`` (and up to ``upto``)."""
    w = where(query)
    sql = (
        "SELECT " + SELECT_LIST + ", ingest_xid FROM system_events WHERE ingest_xid >= %s "
        "AND ingest_xid < %s AND (ingest_xid, id) > (%s, %s)" + w.and_sql
    )
    params: list[object] = [after[0], horizon, after[0], after[1], *w.params]
    if upto is not None:
        sql += " AND (ingest_xid, id) <= (%s, %s)"
        params += [upto[0], upto[1]]
    return Statement(sql + " ORDER BY ingest_xid, id LIMIT %s", [*params, BATCH])


async def read_rows(
    db: PostgresPool, query: EventFilter, after: Position | None, upto: Position | None = None
) -> tuple[list[StoredRow], int]:
    """The next rows of ``query`` (all, read by one statement after the horizon) and the horizon.

    ``after`` ``None``: from the horizon on (no rows yet). A read: it takes its
    connection within the reads' share of the pool.
    """
    async with db.connection(read=True) as conn:
        cur = await conn.execute(HORIZON)
        row = await cur.fetchone()
        assert row is not None
        horizon = int(row[0])
        if after is None:
            return [], horizon
        if upto is not None:
            horizon = min(horizon, upto[0] + 1)
        statement = rows_statement(query, after, horizon, upto)
        async with conn.cursor(row_factory=stored_rows) as rows_cur:
            await rows_cur.execute(statement.sql, statement.params, prepare=False)
            return await rows_cur.fetchall(), horizon


def row_position(stored: StoredRow) -> Position:
    """Where a row read by :func:`read_rows` stands in tail order."""
    return int(stored.extra["ingest_xid"]), stored.event.id


class Listener:
    """One listening connection that wakes every tail of a repository on each notification."""

    def __init__(self, conninfo: str, connect_timeout: float) -> None:
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listening in the background (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._listen_forever(), name="sysevents-tail-listener"
            )

    async def stop(self) -> None:
        """Stop listening, waking every tail; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ring()

    def signal(self) -> asyncio.Event:
        """The event the next notification sets: take it before reading, then wait on it."""
        return self._wake

    def _ring(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def _listen_forever(self) -> None:
        pause = 0.1
        while True:
            try:
                # The first wake-up comes once listening: anything written
                # while not listening is read now.
                async for _ in notifications(self._conninfo, CHANNEL, self._connect_timeout):
                    pause = 0.1
                    self._ring()
            except StoreError as exc:
                log.debug("tail listener: %s; polling until it reconnects", exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
