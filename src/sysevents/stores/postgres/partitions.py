"""The time partitions of ``system_events``: created ahead, created on demand, dropped whole.

Monthly partitions (UTC) are named ``system_events_pYYYY_MM``; the one
partition ``system_events_history`` holds everything before the first month
(its bound is fixed when the table is made). A new partition is made as a
table of its own and attached: attaching does not stop writers. Dropping one
takes the table's strongest lock, so it waits at most ``lock_timeout`` for
it (writers queue behind for that long at most) and is retried another time.
"""

# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from psycopg import sql

from .ids import month_end, month_index, month_start
from .pool import Connection, statement_timeout

AHEAD = 3
"""Months of partitions kept ready after the current one."""
HISTORY = "system_events_history"
ROLLUPS_HISTORY = "system_event_rollups_history"
CARVE_LOCK_TIMEOUT_MS = 2000
"""How long carving months out of the history waits for the table's lock before giving up."""
_NAME = re.compile(r"system_(?:events|event_rollups)_p([0-9]{4})_([0-9]{2})")
ROLLUPS = "system_event_rollups"
"""The rollups, partitioned by month like the events (``system_event_rollups_pYYYY_MM``)."""
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('sysevents-partitions'))"
_LIST = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = %s::regclass"
)
_HISTORY_END = (
    "SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]"
    "::timestamptz FROM pg_class c WHERE c.oid = to_regclass('" + HISTORY + "')"
)


@dataclass(frozen=True, slots=True)
class Partition:
    """One monthly partition."""

    name: str
    month: int
    """As counted by ``sysevents.stores.postgres.ids``."""

    @property
    def start(self) -> datetime:
        """Its first instant."""
        return month_start(self.month)

    @property
    def end(self) -> datetime:
        """The first instant after it."""
        end = month_end(self.month)
        assert end is not None
        return end


def partition_name(month: int) -> str:
    """The name of the partition of ``month``."""
    return f"system_events_p{month_start(month):%Y_%m}"


def rollup_partition_name(month: int) -> str:
    """The name of the rollups' partition of ``month``."""
    return f"system_event_rollups_p{month_start(month):%Y_%m}"


async def monthly_partitions(conn: Connection, parent: str = "system_events") -> list[Partition]:
    """The monthly partitions of ``parent``, oldest first."""
    cur = await conn.execute(_LIST, (parent,))
    found = []
    for (name,) in await cur.fetchall():
        match = _NAME.fullmatch(name)
        if match:
            found.append(Partition(name, (int(match[1]) - 1) * 12 + int(match[2]) - 1))
    return sorted(found, key=lambda p: p.month)


async def history_end(conn: Connection) -> datetime | None:
    """Where the history partition ends (the first month that has partitions of its own)."""
    cur = await conn.execute(_HISTORY_END)
    row = await cur.fetchone()
    return None if row is None else cast(datetime | None, row[0])


async def ensure_partitions(
    conn: Connection, months: Iterable[int], statement_seconds: float | None = None
) -> list[str]:
    """Create the partitions of ``months`` that are missing; their names.

    Months before the history partition's end need none. Runs in a
    transaction of its own on ``conn`` (which must not be in one), each
    statement within ``statement_seconds`` if given.
    """
    wanted = sorted(set(months))
    if not wanted:
        return []
    made = []
    async with conn.transaction():
        if statement_seconds is not None:
            await conn.execute(statement_timeout(statement_seconds))
        await conn.execute(_LOCK)
        floor = await history_end(conn)
        existing = {p.month for p in await monthly_partitions(conn)}
        counted = {p.month for p in await monthly_partitions(conn, ROLLUPS)}
        for month in wanted:
            end = month_end(month)
            if end is None or (floor is not None and end <= floor):
                continue
            if month not in existing:
                await _attach(conn, "system_events", partition_name(month), month)
                made.append(partition_name(month))
            if month not in counted:
                await _attach(conn, ROLLUPS, rollup_partition_name(month), month)
    return made


async def carve_history(conn: Connection, months: Iterable[int]) -> list[str]:
    """Give ``months`` before the history partition's end partitions of their own; their names.

    The history (of the events and of the rollups) is re-attached ending at
    the first of them, which it may only when it holds no row from there on:
    else nothing changes and those events keep going to the history. What
    this makes is what an import of old events needs (retention then drops
    their months whole). Detaching takes the table's strongest lock, waited
    for at most :data:`CARVE_LOCK_TIMEOUT_MS`; giving up changes nothing.
    ``conn`` must not be in a transaction.
    """
    wanted = sorted(set(months))
    if not wanted:
        return []
    async with conn.transaction():
        await conn.execute(_LOCK)
        floor = await history_end(conn)
        if floor is None:
            return []
        old = [m for m in wanted if month_start(m) < floor]
        if not old:
            return []
        new_floor = month_start(old[0])
        for table, column in ((HISTORY, '"timestamp"'), (ROLLUPS_HISTORY, "bucket")):
            cur = await conn.execute(
                "SELECT EXISTS (SELECT 1 FROM " + table + " WHERE " + column + " >= %s)",
                (new_floor,),
            )
            row = await cur.fetchone()
            if row is None or row[0]:
                return []
        await conn.execute("SET LOCAL lock_timeout = " + str(CARVE_LOCK_TIMEOUT_MS))
        for parent, table in (("system_events", HISTORY), (ROLLUPS, ROLLUPS_HISTORY)):
            await conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                    sql.Identifier(parent), sql.Identifier(table)
                )
            )
            await conn.execute(
                sql.SQL(
                    "ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM (MINVALUE) TO ({})"
                ).format(sql.Identifier(parent), sql.Identifier(table), sql.Literal(new_floor))
            )
        for month in old:
            await _attach(conn, "system_events", partition_name(month), month)
            await _attach(conn, ROLLUPS, rollup_partition_name(month), month)
    return [partition_name(m) for m in old]


async def _attach(conn: Connection, parent: str, name: str, month: int) -> None:
    # Made beside the table, then attached: attaching takes no lock that stops
    # writers (creating a partition in place would), and an empty table is not
    # scanned. DDL takes no parameters: the bounds go in as literals.
    await conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            sql.Identifier(name), sql.Identifier(parent)
        )
    )
    await conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(parent),
            sql.Identifier(name),
            sql.Literal(month_start(month)),
            sql.Literal(month_end(month)),
        )
    )


async def ensure_ahead(
    conn: Connection, now: datetime | None = None, statement_seconds: float | None = None
) -> list[str]:
    """Create the partitions of this month and the next ``AHEAD``; their names."""
    current = month_index(now or datetime.now(UTC))
    return await ensure_partitions(conn, range(current, current + AHEAD + 1), statement_seconds)
