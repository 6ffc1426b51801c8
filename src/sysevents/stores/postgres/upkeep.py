"""The store's upkeep in PostgreSQL, each part in bounded steps of its own.

Partitions made ahead, month tables that retention detached dropped, rollup
rows that count nothing removed, expired idempotency keys forgotten. Every
statement is one step with its own timeout (see
:meth:`~sysevents.stores.postgres.pool.PostgresPool.step`), or one call on a
pooled connection of its own: a backlog of any size is worked off step after
step, never cut short by one deadline over the whole run.
"""

# ruff: noqa: S608

from __future__ import annotations

import re
from datetime import datetime
from typing import LiteralString

from sysevents.errors import StoreError

from .partitions import ensure_ahead
from .pool import Connection, PostgresPool

DETACHED_MARK: LiteralString = "sysevents: detached by retention, to be dropped"
"""The comment retention puts on a month table it detaches, in the same transaction.

Only tables carrying it are dropped: a month table an operator detached (to
archive it, say) is left alone.
"""
_AHEAD_STATEMENTS = 4
"""What making the partitions ahead may take, in statement timeouts (most take far less)."""
KEY_BATCH = 5000
"""Idempotency keys forgotten per statement."""
_MONTH_TABLE: LiteralString = "system_(events|event_rollups)_p[0-9]{4}_[0-9]{2}"
"""The name of a month's table of events or of counts (a regular expression)."""
_DETACHED = (
    "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND NOT c.relispartition "
    "AND c.relnamespace = current_schema()::regnamespace "
    "AND c.relname ~ '^" + _MONTH_TABLE + "$' "
    "AND obj_description(c.oid, 'pg_class') = '" + DETACHED_MARK + "'"
)
_FORGET_KEYS = (
    "DELETE FROM system_event_keys WHERE (caller, key) IN (SELECT caller, key "
    "FROM system_event_keys WHERE created_at < now() - %s * interval '1 second' LIMIT %s)"
)
_EMPTY_SERIES = "DELETE FROM system_event_rollups WHERE level = 3 AND n = 0"
"""The all-time rows counting nothing (every event of their series removed).

A fold or a correction racing with it is safe: the row is deleted only if it
still counts nothing, and a count that comes later inserts it again.
"""


def month_table(name: str) -> LiteralString:
    """``name``, checked to be a month table's: only such names reach SQL."""
    if not re.fullmatch(_MONTH_TABLE, name):
        raise ValueError(f"not a month table: {name!r}")
    return name


async def mark_detached(conn: Connection, name: str) -> None:
    """Mark month table ``name`` as detached by retention (in the transaction detaching it)."""
    await conn.execute("COMMENT ON TABLE " + month_table(name) + " IS '" + DETACHED_MARK + "'")


async def maintain(
    db: PostgresPool, window: float, now: datetime | None = None
) -> tuple[list[str], int]:
    """One run of the upkeep; the partitions made and the keys forgotten.

    Each part runs even when one before it failed (the first failure is
    raised at the end); the long one (a backlog of keys) comes last.
    """
    made: list[str] = []
    forgotten = 0
    failed: StoreError | None = None
    async with db.session() as conn:
        try:
            async with db.step(_AHEAD_STATEMENTS):
                made = await ensure_ahead(conn, now, db.timeout)
        except StoreError as exc:
            failed = failed or exc
        for part in (drop_detached, drop_empty_series):
            try:
                await part(db, conn)
            except StoreError as exc:
                failed = failed or exc
    try:
        forgotten = await forget_keys(db, window)
    except StoreError as exc:
        failed = failed or exc
    if failed is not None:
        raise failed
    return made, forgotten


async def drop_detached(db: PostgresPool, conn: Connection) -> list[str]:
    """Drop the month tables retention detached (also those a crash left behind); their names."""
    async with db.step():
        cur = await conn.execute(_DETACHED)
        names = [str(row[0]) for row in await cur.fetchall()]
    for name in names:
        async with db.step():
            await conn.execute("DROP TABLE IF EXISTS " + month_table(name))
    return names


async def drop_empty_series(db: PostgresPool, conn: Connection) -> int:
    """Remove the all-time rollup rows at zero; how many.

    A writer that made many series which were then deleted or expired
    leaves no trace in what every all-time count reads.
    """
    async with db.step():
        cur = await conn.execute(_EMPTY_SERIES)
    return max(cur.rowcount, 0)


async def forget_keys(db: PostgresPool, window: float, batch: int = KEY_BATCH) -> int:
    """Delete idempotency keys older than ``window`` seconds, ``batch`` per statement; how many.

    Each batch takes a pooled connection of its own and gives it back: a long
    backlog holds none of the pool's connections for longer than a batch.
    """
    total = 0
    while True:
        async with db.connection() as conn:
            cur = await conn.execute(_FORGET_KEYS, (window, batch))
        total += cur.rowcount
        if cur.rowcount < batch:
            return total
