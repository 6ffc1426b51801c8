"""Retention on SQLite: batched deletes in short write transactions, and key forgetting.

What replaces PostgreSQL's partitions: rows are walked oldest first by the
``(ts, id)`` index, :data:`BATCH` at a time; each batch is one job of the
writer (see ``db``), so writers queued meanwhile commit between two batches
and none waits longer than one batch. Which rule governs a row, and whether
it has expired, is decided by ``RetentionPolicy`` itself, as in memory.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import datetime
from functools import partial

from sysevents.retention import RetentionPolicy, RetentionReport

from .db import Database
from .rows import from_micros, micros

BATCH = 50
"""Rows looked at (and at most deleted) by one write transaction."""

_SCAN = (
    "SELECT id, event_type, severity, ts FROM events "
    "WHERE ts < ? AND (ts, id) > (?, ?) ORDER BY ts, id LIMIT ?"
)

Position = tuple[int, int]


def _step(
    conn: sqlite3.Connection,
    policy: RetentionPolicy,
    now: datetime,
    after: Position,
    delete: bool,
    counts: Counter[str],
) -> Position | None:
    """Look at the next batch after ``after``; count (and delete) its expired rows."""
    horizon = micros(now - min(rule.age for rule in policy.rules))
    rows = conn.execute(_SCAN, (horizon, *after, BATCH)).fetchall()
    if not rows:
        return None
    expired: list[tuple[int]] = []
    for event_id, event_type, severity, ts in rows:
        rule = policy.rule_for(event_type, severity)
        if rule is not None and from_micros(ts) < now - rule.age:
            counts[rule.text] += 1
            expired.append((event_id,))
    if delete and expired:
        conn.executemany("DELETE FROM events WHERE id = ?", expired)
    last = rows[-1]
    return last[3], last[0]


async def apply(
    db: Database, policy: RetentionPolicy, now: datetime, dry_run: bool
) -> RetentionReport:
    """Remove (or, ``dry_run``, count) the events ``policy`` says expired at ``now``."""
    counts: Counter[str] = Counter()
    if policy.rules:
        position: Position | None = (-(2**62), 0)
        while position is not None:
            if dry_run:
                position = await db.read(
                    partial(
                        _step, policy=policy, now=now, after=position, delete=False, counts=counts
                    )
                )
            else:
                found: Counter[str] = Counter()
                step = partial(
                    _step, policy=policy, now=now, after=position, delete=True, counts=found
                )
                position = await db.write(step)
                counts += found
    return RetentionReport.from_counts(policy, now, counts, dry_run=dry_run)


def forget_keys(conn: sqlite3.Connection, before_us: int) -> None:
    """Forget the idempotency keys of events created before ``before_us``."""
    conn.execute(
        "UPDATE events SET key_caller = NULL WHERE key_caller IS NOT NULL AND created_at < ?",
        (before_us,),
    )
