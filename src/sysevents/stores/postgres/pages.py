"""Pages of a listing, newest months first.

``system_events`` has a partition per month, and a statement that may read
every partition costs some planning and an index probe per partition: at 29
months that was most of a first page. A newest-first page (and its capped
count) is therefore first read from the latest months alone, the statement
bounded below by the start of the month before the newest one it can reach
(now, or the cursor's time): the partitions left out are pruned before
planning. That try is enough whenever those months hold the page (and more
events than the count's cap); otherwise the page or the count is read again
from every month. Either way the answer is the one the whole table gives.
"""

# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, LiteralString

from sysevents.model import Event
from sysevents.query import EventQuery

from .ids import month_index, month_start
from .pool import Connection
from .rows import SELECT_LIST, event_rows
from .sql import Statement, Where, where

RECENT_MONTHS = 2
"""How many of the latest months a first try reads (the newest month may have just begun)."""


def page_statement(
    query: EventQuery, position: tuple[datetime, int] | None, floor: datetime | None = None
) -> Statement:
    """The page of ``query`` after ``position`` (a cursor's), one row more than the limit.

    ``floor`` bounds it to events at or after that time (a try of the latest months).
    """
    w = _bounded(where(query), floor)
    newest = query.order == "newest"
    if position is not None:
        ts, last_id = position
        # The plain timestamp bound lets the planner use the index range.
        if newest:
            w = w.add('"timestamp" <= %s', ts).add('("timestamp", id) < (%s, %s)', ts, last_id)
        else:
            w = w.add('"timestamp" >= %s', ts).add('("timestamp", id) > (%s, %s)', ts, last_id)
    order: LiteralString = '"timestamp" DESC, id DESC' if newest else '"timestamp", id'
    return Statement(
        "SELECT "
        + SELECT_LIST
        + " FROM system_events"
        + w.sql
        + " ORDER BY "
        + order
        # The extra row says whether another page follows.
        + " LIMIT %s OFFSET %s",
        [*w.params, query.limit + 1, query.offset],
    )


def count_statement(query: EventQuery, cap: int, floor: datetime | None = None) -> Statement | None:
    """The count a page of ``query`` reports (``None``: no count asked for)."""
    w = _bounded(where(query), floor)
    if query.count == "exact":
        return Statement("SELECT count(*) FROM system_events" + w.sql, w.params)
    if query.count == "capped":
        # Counting stops one past the cap: enough to know the total is not exact.
        return Statement(
            "SELECT count(*) FROM (SELECT 1 FROM system_events" + w.sql + " LIMIT %s) AS capped",
            [*w.params, cap + 1],
        )
    return None


def _bounded(w: Where, floor: datetime | None) -> Where:
    return w if floor is None else w.add('"timestamp" >= %s', floor)


def worth_preparing(query: EventQuery) -> bool:
    """Whether a page of ``query`` (and its count) runs as statements prepared on the connection.

    Planning costs something per partition, so a page filtered by time alone is
    prepared; after five runs PostgreSQL may plan it once for every value
    (a generic plan, whose partitions are pruned when it starts). A filter on
    a value whose frequency varies (a type, a severity, a source, a search of
    the message or the details, a trace) is planned for its value each time:
    one generic plan would be wrong for the rare values or for the common ones.
    """
    return (
        not query.searches
        and query.event_type is None
        and query.severities() is None
        and query.source is None
    )


def recent_floor(
    query: EventQuery, position: tuple[datetime, int] | None, now: datetime | None = None
) -> datetime | None:
    """Where a first try of a newest-first page starts; ``None``: read every month at once."""
    if query.order != "newest" or query.until is not None or query.count == "exact":
        return None
    latest = position[0] if position is not None else (now or datetime.now(UTC))
    floor = month_start(month_index(latest) - (RECENT_MONTHS - 1))
    if query.since is not None and query.since >= floor:
        return None  # the query is bounded as much already
    return floor


async def read_page(
    conn: Connection,
    query: EventQuery,
    position: tuple[datetime, int] | None,
    cap: int,
    *,
    now: datetime | None = None,
) -> tuple[list[Event], int | None]:
    """Up to ``limit + 1`` events of the page, and the count asked for (see the module)."""
    prepare = worth_preparing(query)
    floor = recent_floor(query, position, now)
    wanted = query.offset + query.limit + 1
    if floor is not None:
        # Planned for its bounds each time: the planner then leaves the older
        # months out altogether (a generic plan would lock every one of them).
        rows, counted = await _read(
            conn,
            page_statement(query, position, floor),
            count_statement(query, cap, floor),
            False,
        )
        page_held = len(rows) >= wanted
        count_held = counted is None or counted > cap
        if page_held and count_held:
            return rows, counted
        again, recount = await _read(
            conn,
            None if page_held else page_statement(query, position),
            None if count_held else count_statement(query, cap),
            prepare,
        )
        return (rows if page_held else again), (counted if count_held else recount)
    return await _read(conn, page_statement(query, position), count_statement(query, cap), prepare)


async def _read(
    conn: Connection, page: Statement | None, count: Statement | None, prepare: bool
) -> tuple[list[Event], int | None]:
    """The events of ``page`` and the number ``count`` gives, in one round trip."""
    rows: list[Event] = []
    counted: int | None = None
    async with conn.cursor(row_factory=event_rows) as cur:
        if count is None:
            if page is not None:
                await cur.execute(page.sql, page.params, prepare=prepare)
                rows = await cur.fetchall()
            return rows, None
        async with conn.pipeline():
            if page is not None:
                await cur.execute(page.sql, page.params, prepare=prepare)
            count_cur = await conn.execute(count.sql, count.params, prepare=prepare)
        if page is not None:
            rows = await cur.fetchall()
        row: Any = await count_cur.fetchone()
        assert row is not None
        counted = int(row[0])
    return rows, counted
