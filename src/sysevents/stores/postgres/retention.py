"""Applying a retention policy to PostgreSQL: whole partitions dropped, the rest in small batches.

A monthly partition whose every event has expired, whatever its rule, is
dropped, its counts taken out of the rollups in the same transaction: the cost
does not grow with the number of events. Only the partition is locked while
its counts are taken out; the whole table is locked for the drop alone. Rules
that cut inside a partition delete in batches of :data:`BATCH`, each its own
short transaction (a trigger corrects the rollups for the rows it removes).
"""

# ruff: noqa: S608

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any, LiteralString

from sysevents.errors import StoreError
from sysevents.retention import RetentionPolicy, RetentionReport, Rule

from .partitions import HISTORY, ROLLUPS, Partition, monthly_partitions, rollup_partition_name
from .pool import Connection, LockTimeout, PostgresPool, statement_timeout, translated
from .rollups import ROLLUP_KEY
from .sql import WATERMARK_SHARE
from .upkeep import drop_detached, drop_empty_series, mark_detached, month_table

log = logging.getLogger("sysevents.retention")

BATCH = 1000
"""Events removed per transaction by a rule that cuts inside a partition."""
LOCK_TIMEOUT_MS = 50
"""How long dropping a partition waits for the table's lock (writers wait behind it)."""
DROP_ATTEMPTS = 3
_DROP_STATEMENTS = 15
"""The statements of the transaction detaching a month, each within the timeout."""
_LOCK = "SELECT pg_try_advisory_lock(hashtext('sysevents-retention'))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('sysevents-retention'))"
_ALL_BUCKET = "'1970-01-01 00:00:00+00'::timestamptz"


def rule_condition(policy: RetentionPolicy, rule: Rule) -> tuple[LiteralString, list[Any]]:
    """The SQL selecting the events ``rule`` governs (no more specific rule matches them)."""
    types = [r.like_pattern() for r in policy.rules if r.kind == "type"]
    clauses: list[LiteralString] = []
    params: list[Any] = []
    if rule.kind == "type":
        clauses.append("event_type LIKE %s")
        params.append(rule.like_pattern())
        earlier = types[: types.index(rule.like_pattern())]
    else:
        earlier = types
        if rule.kind == "severity":
            clauses.append("severity = %s")
            params.append(rule.pattern)
        else:
            severities = [r.pattern for r in policy.rules if r.kind == "severity"]
            if severities:
                clauses.append("severity <> ALL(%s::text[])")
                params.append(severities)
    if earlier:
        clauses.append("NOT (event_type LIKE ANY(%s::text[]))")
        params.append(earlier)
    return (" AND ".join(clauses) or "TRUE"), params


def _delete_batch(condition: LiteralString) -> LiteralString:
    # Oldest first, after the last batch's position: no batch reads again
    # what an earlier one skipped or removed.
    return (
        # The counts follow by the DELETE trigger (migration 0006).
        'WITH victims AS MATERIALIZED (SELECT id, "timestamp" FROM system_events WHERE '
        + condition
        + ' AND "timestamp" < %s AND "timestamp" >= %s AND ("timestamp", id) > (%s, %s) '
        'ORDER BY "timestamp", id LIMIT %s), '
        "gone AS (DELETE FROM system_events e USING victims v "
        'WHERE e.id = v.id AND e."timestamp" = v."timestamp" RETURNING e.*), '
        "located AS (DELETE FROM system_event_locator l USING gone g WHERE l.id = g.id), "
        "keyed AS (DELETE FROM system_event_keys k USING gone g WHERE k.id = g.id "
        "AND k.caller = g.idempotency_caller AND k.key = g.idempotency_key) "
        'SELECT (SELECT count(*) FROM gone), "timestamp", id FROM victims '
        'ORDER BY "timestamp" DESC, id DESC LIMIT 1'
    )


async def apply(
    db: PostgresPool, policy: RetentionPolicy, *, now: datetime | None, dry_run: bool
) -> RetentionReport:
    """Apply ``policy`` at ``now`` (see the module); one process at a time."""
    now = now or datetime.now(UTC)
    if not policy:
        return RetentionReport.from_counts(policy, now, {}, dry_run=dry_run)
    # One session (the advisory lock is the session's), no deadline over the
    # whole run: every statement has its own.
    async with db.session() as conn:
        async with db.step():
            cur = await conn.execute(_LOCK)
            row = await cur.fetchone()
        if not (row and row[0]):
            return RetentionReport(now=now, dry_run=dry_run, busy=True)
        try:
            if dry_run:
                return await _count(db, conn, policy, now)
            # What this session removes is retention's: an append-only
            # database lets it through (migration 0012).
            await conn.execute("SET sysevents.retention = 'on'")
            report = await _remove(db, conn, policy, now)
            try:
                await drop_empty_series(db, conn)
            except StoreError as exc:  # what was removed is removed: the upkeep sweeps later
                log.warning("all-time rows at zero not removed yet (%s)", exc)
            return report
        finally:
            async with db.step():
                await conn.execute("RESET sysevents.retention")
                await conn.execute(_UNLOCK)


async def _count(
    db: PostgresPool, conn: Connection, policy: RetentionPolicy, now: datetime
) -> RetentionReport:
    counts: Counter[str] = Counter()
    for rule in policy.rules:
        condition, params = rule_condition(policy, rule)
        async with db.step():
            cur = await conn.execute(
                "SELECT count(*) FROM system_events WHERE " + condition + ' AND "timestamp" < %s',
                [*params, now - rule.age],
            )
            row = await cur.fetchone()
        counts[rule.text] = int(row[0]) if row else 0
    return RetentionReport.from_counts(policy, now, counts, dry_run=True)


async def _remove(
    db: PostgresPool, conn: Connection, policy: RetentionPolicy, now: datetime
) -> RetentionReport:
    counts: Counter[str] = Counter()
    dropped: list[str] = []
    floor = datetime.min.replace(tzinfo=UTC)
    whole = policy.whole_before(now)
    if whole is not None:
        async with db.step():
            months = await monthly_partitions(conn)
        for partition in months:
            if partition.end > whole:
                break
            removed = await _drop_with_retries(db, conn, partition, policy)
            if removed is None:
                # Left for the next run; meanwhile its rows are not removed one by one.
                floor = partition.end
                continue
            counts.update(removed)
            dropped.append(partition.name)
    for rule in policy.rules:
        counts[rule.text] += await _delete_rule(db, conn, policy, rule, now - rule.age, floor)
    return RetentionReport.from_counts(policy, now, counts, dry_run=False, partitions=dropped)


async def _delete_rule(
    db: PostgresPool,
    conn: Connection,
    policy: RetentionPolicy,
    rule: Rule,
    cutoff: datetime,
    floor: datetime,
) -> int:
    condition, params = rule_condition(policy, rule)
    statement = _delete_batch(condition)
    total = 0
    position: tuple[datetime, int] = (floor, 0)
    while True:
        async with db.step():
            cur = await conn.execute(
                statement, [*params, cutoff, floor, position[0], position[1], BATCH]
            )
            row = await cur.fetchone()
        if row is None or not row[0]:
            return total
        total += int(row[0])
        position = (row[1], int(row[2]))
        if row[0] < BATCH:
            return total


async def _drop_with_retries(
    db: PostgresPool, conn: Connection, partition: Partition, policy: RetentionPolicy
) -> Counter[str] | None:
    for attempt in range(DROP_ATTEMPTS):
        try:
            with translated():
                removed = await _drop(db, conn, partition, policy)
            # Detached, the tables are no one's: removing their files (the part
            # that grows with the month's size) holds no lock anyone waits for.
            try:
                await drop_detached(db, conn)
            except StoreError as exc:  # detached and marked: the upkeep drops it later
                log.warning(
                    "partition %s is detached but not dropped yet (%s)", partition.name, exc
                )
            log.info("dropped partition %s (%d events)", partition.name, sum(removed.values()))
            return removed
        except LockTimeout:
            # Its transaction is rolled back: nothing was dropped or counted.
            await asyncio.sleep(0.05 * (attempt + 1))
    log.warning("partition %s is busy: it will be dropped another time", partition.name)
    return None


async def _drop(
    db: PostgresPool, conn: Connection, partition: Partition, policy: RetentionPolicy
) -> Counter[str]:
    """Detach one partition (marked as retention's) and take its events out of the rollups.

    In one transaction, each statement within the store's timeout.
    """
    name = partition.name
    if name == HISTORY:  # pragma: no cover - monthly_partitions() never lists it
        raise ValueError("the history partition is never dropped whole")
    bounds = (partition.start, partition.end)
    removed: Counter[str] = Counter()
    async with db.step(_DROP_STATEMENTS), conn.transaction():
        await conn.execute(statement_timeout(db.timeout))
        await conn.execute("SET LOCAL lock_timeout = " + str(LOCK_TIMEOUT_MS))
        # No write reaches this partition from here on (writers elsewhere go
        # on): its counts can be taken out while the table stays open.
        await conn.execute("LOCK TABLE " + name + " IN SHARE MODE")
        cur = await conn.execute(WATERMARK_SHARE)
        mark = await cur.fetchone()
        assert mark is not None
        # What goes, for the report: the counted rows from the rollups, the rest raw.
        cur = await conn.execute(
            "SELECT event_type, severity, sum(n) FROM system_event_rollups "
            "WHERE level = 2 AND bucket >= %s AND bucket < %s GROUP BY 1, 2 UNION ALL "
            "SELECT event_type, severity, count(*) FROM " + name + " WHERE ingest_xid >= %s "
            "AND (ingest_xid, id) >= (%s, %s) GROUP BY 1, 2",
            [*bounds, mark[0], mark[0], mark[1]],
        )
        for event_type, severity, n in await cur.fetchall():
            rule = policy.rule_for(event_type, severity)
            if rule is not None and n:
                removed[rule.text] += int(n)
        await conn.execute(
            "INSERT INTO system_event_rollups AS r (" + ROLLUP_KEY + ", n) "
            "SELECT 3, " + _ALL_BUCKET + ", event_type, severity, source, -sum(n) "
            "FROM system_event_rollups WHERE level = 2 AND bucket >= %s AND bucket < %s "
            "GROUP BY 3, 4, 5 ORDER BY 3, 4, 5 "
            "ON CONFLICT (" + ROLLUP_KEY + ") DO UPDATE SET n = r.n + EXCLUDED.n",
            bounds,
        )
        counts = rollup_partition_name(partition.month)
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (counts,))
        separate = await cur.fetchone()
        if not (separate and separate[0]):  # the month's counts among others': deleted
            await conn.execute(
                "DELETE FROM system_event_rollups WHERE level <> 3 "
                "AND bucket >= %s AND bucket < %s",
                bounds,
            )
        await conn.execute(
            'DELETE FROM system_event_locator WHERE "timestamp" >= %s AND "timestamp" < %s',
            bounds,
        )
        # The table's strongest lock, held only to detach the month (a change
        # of the catalogue, however big the month). A writer holding the
        # table while it waits for this partition would deadlock with it:
        # lock_timeout ends this attempt first, and it is retried.
        await conn.execute("LOCK TABLE system_events IN ACCESS EXCLUSIVE MODE")
        await conn.execute("ALTER TABLE system_events DETACH PARTITION " + name)
        # Marked in the same transaction: only what retention detached is dropped.
        await mark_detached(conn, name)
        if separate and separate[0]:
            # The month's hour, day and month counts go as a table too.
            await conn.execute("LOCK TABLE " + ROLLUPS + " IN ACCESS EXCLUSIVE MODE")
            await conn.execute(
                "ALTER TABLE " + ROLLUPS + " DETACH PARTITION " + month_table(counts)
            )
            await mark_detached(conn, counts)
    return removed
