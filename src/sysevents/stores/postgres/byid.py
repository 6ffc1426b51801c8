"""Finding an event by id in one partition: its month from the id, else from the locator.

An id made by the store names the month of the event's ``timestamp`` (see
``sysevents.stores.postgres.ids``): the statement then reads one partition. An event
moved to another month by an update, or stored before partitioning, is in
the locator, which gives its exact ``timestamp``. Only an id the store never
made (hand-written SQL) is looked for in every partition.
"""

# Statements are built from constants and partition names made by partition_name().
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString

from .ids import id_month, month_end, month_start
from .partitions import partition_name
from .pool import Connection, MissingTable, translated
from .rows import StoredRow, stored_rows

_IN_MONTH: LiteralString = 'id = %s AND "timestamp" >= %s AND "timestamp" < %s'
_AT: LiteralString = 'id = %s AND "timestamp" = %s'
_ANYWHERE: LiteralString = "id = %s"
_LOCATE = 'SELECT "timestamp" FROM system_event_locator WHERE id = %s'


async def _one(conn: Connection, sql: LiteralString, params: Sequence[Any]) -> StoredRow | None:
    """The first row of a statement selecting an event's columns, then others."""
    async with conn.cursor(row_factory=stored_rows) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()


async def by_id(
    conn: Connection,
    event_id: int,
    head: LiteralString,
    tail: LiteralString = "",
    params: Sequence[Any] = (),
) -> StoredRow | None:
    """Run ``head`` + the condition that finds ``event_id`` + ``tail``; the first row.

    The statement selects (or returns) the event's columns first. ``params``
    are those of ``head``. A statement that changes the row must return it
    (``RETURNING``): a row back means the event was found.
    """
    month = id_month(event_id)
    if month is not None:
        end = month_end(month)
        if end is not None:
            row = await _one(
                conn, head + _IN_MONTH + tail, [*params, event_id, month_start(month), end]
            )
            if row is not None:
                return row
    cur = await conn.execute(_LOCATE, (event_id,))
    located = await cur.fetchone()
    if located is not None:
        return await _one(conn, head + _AT + tail, [*params, event_id, located[0]])
    if month is None:
        return await _one(conn, head + _ANYWHERE + tail, [*params, event_id])
    return None


def needs_locator(event_id: int, month: int) -> bool:
    """Whether an event stored in ``month`` must be in the locator to be found by id."""
    return id_month(event_id) != month


async def read_by_id(
    conn: Connection, event_id: int, columns: LiteralString, history_end: datetime | None
) -> StoredRow | None:
    """The row of ``event_id`` (``columns`` of it), reading its month's partition by name.

    A plain read of the partition table skips what a statement on the parent
    costs per partition (a generic plan locks every partition before pruning
    them): half the time of a read by id on a two-year table. ``history_end``
    is where the history partition ends (months before it have no partition
    of their own). Whatever this does not find (a partition gone, an event
    moved to another month) is looked for by :func:`by_id`, whose answer it
    always equals (tests/test_partitions.py). ``conn`` must not be in a
    transaction: a missing partition is an error, which would end it.
    """
    month = id_month(event_id)
    if month is not None and history_end is not None and month_start(month) >= history_end:
        table = partition_name(month)
        assert table.isidentifier()  # digits, letters and underscores only
        try:
            with translated():
                row = await _one(
                    conn, "SELECT " + columns + " FROM " + table + " WHERE id = %s", (event_id,)
                )
        except MissingTable:
            row = None
        if row is not None:
            return row
    return await by_id(conn, event_id, "SELECT " + columns + " FROM system_events WHERE ")
