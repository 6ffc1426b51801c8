"""Moving the rows of an unpartitioned ``system_events`` into the partitioned table, online.

Migration 0005 creates ``system_events_next`` and row triggers that repeat
every later change in it; :func:`move_rows` then copies the rows that were
there before, in small batches by id, each its own transaction, reporting its
progress. Migration 0006 copies what is left under a short lock and switches
the tables. Nothing here holds a lock on the table for longer than a batch.
"""

# ruff: noqa: S608

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

from .pool import conninfo

log = logging.getLogger("sysevents.migrate")

BATCH = 10_000
"""Rows moved per transaction."""
_COLUMNS = (
    'id, event_type, severity, message, details, source, "timestamp", created_at, '
    "idempotency_key, idempotency_caller"
)
# FOR SHARE: a concurrent update or delete of a row waits for the batch (its
# trigger then finds the row moved), or the batch waits for it and moves the
# row as it is afterwards.
_MOVE = (
    "WITH src AS MATERIALIZED (SELECT * FROM system_events WHERE id > %(lo)s AND id <= %(hi)s "
    "FOR SHARE), "
    f"ins AS (INSERT INTO system_events_next ({_COLUMNS}, ingest_xid) "
    f"SELECT {_COLUMNS}, 0 FROM src ON CONFLICT DO NOTHING), "
    'loc AS (INSERT INTO system_event_locator (id, "timestamp") '
    'SELECT id, "timestamp" FROM src ON CONFLICT (id) DO NOTHING), '
    'keys AS (INSERT INTO system_event_keys (caller, key, id, "timestamp", created_at) '
    'SELECT idempotency_caller, idempotency_key, id, "timestamp", created_at FROM src '
    "WHERE idempotency_key IS NOT NULL AND created_at > now() - interval '7 days' "
    "ON CONFLICT DO NOTHING), "
    "done AS (UPDATE sysevents_partition_move SET moved_up_to = %(hi)s) "
    "SELECT count(*) FROM src"
)


def pending(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether the database is between migrations 0005 and 0006."""
    row = conn.execute("SELECT to_regclass('sysevents_partition_move') IS NOT NULL").fetchone()
    return bool(row and row[0])


def estimate(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, int, int]:
    """``(ids moved up to, last id to move, rows in the table as estimated)``."""
    row = conn.execute(
        "SELECT (SELECT moved_up_to FROM sysevents_partition_move), "
        "(SELECT coalesce(max(id), 0) FROM system_events), "
        # The planner's estimate, or a count where the table was never analysed.
        "(SELECT CASE WHEN reltuples > 0 THEN reltuples::bigint "
        "ELSE (SELECT count(*) FROM system_events) END FROM pg_class "
        "WHERE oid = 'system_events'::regclass)"
    ).fetchone()
    assert row is not None
    start, end, rows = (int(v) for v in row)  # type: ignore[call-overload]
    return start, end, rows


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def move_rows(
    url: str,
    *,
    batch: int = BATCH,
    report: Callable[[str], None] = log.info,
    every: float = 1.0,
) -> int:
    """Copy the rows in batches, reporting rows done, rate and time left; the rows moved.

    Resumable: an interrupted run continues where the last batch ended.
    """
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        if not pending(conn):
            return 0
        start, end, total = estimate(conn)
        if start >= end:
            return 0
        report(f"moving about {total:,} event(s) into the partitioned table, {batch:,} at a time")
        began = last_report = time.monotonic()
        moved, position = 0, start
        while position < end:
            upper = min(position + batch, end)
            with conn.transaction():
                row = conn.execute(_MOVE, {"lo": position, "hi": upper}).fetchone()
            moved += int(row[0]) if row else 0
            position = upper
            now = time.monotonic()
            if now - last_report >= every or position >= end:
                last_report = now
                rate = moved / max(now - began, 1e-9)
                share = (position - start) / (end - start)
                left = (now - began) * (1 - share) / share if share else 0.0
                report(
                    f"moved {moved:,} event(s), {share:.0%} of the ids "
                    f"({rate:,.0f}/s, about {_duration(left)} left)"
                )
    return moved
