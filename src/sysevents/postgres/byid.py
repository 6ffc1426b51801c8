"""Finding an event by id in one partition: its month from the id, else from the locator.

An id made by the store names the month of the event's ``timestamp`` (see
``sysevents.postgres.ids``): the statement then reads one partition. An event
moved to another month by an update, or stored before partitioning, is in
the locator, which gives its exact ``timestamp``. Only an id the store never
made (hand-written SQL) is looked for in every partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

from .ids import id_month, month_end, month_start
from .pool import Connection, Row

_IN_MONTH: LiteralString = 'id = %s AND "timestamp" >= %s AND "timestamp" < %s'
_AT: LiteralString = 'id = %s AND "timestamp" = %s'
_ANYWHERE: LiteralString = "id = %s"
_LOCATE = 'SELECT "timestamp" FROM system_event_locator WHERE id = %s'


async def _one(conn: Connection, sql: LiteralString, params: Sequence[Any]) -> Row | None:
    cur = await conn.execute(sql, params)
    return await cur.fetchone()


async def by_id(
    conn: Connection,
    event_id: int,
    head: LiteralString,
    tail: LiteralString = "",
    params: Sequence[Any] = (),
) -> Row | None:
    """Run ``head`` + the condition that finds ``event_id`` + ``tail``; the first row.

    ``params`` are those of ``head``. A statement that changes the row must
    return it (``RETURNING``): a row back means the event was found.
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
    located = await _one(conn, _LOCATE, (event_id,))
    if located is not None:
        return await _one(conn, head + _AT + tail, [*params, event_id, located[0]])
    if month is None:
        return await _one(conn, head + _ANYWHERE + tail, [*params, event_id])
    return None


def needs_locator(event_id: int, month: int) -> bool:
    """Whether an event stored in ``month`` must be in the locator to be found by id."""
    return id_month(event_id) != month
