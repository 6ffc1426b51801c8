"""The rollup fold works in bounded steps, so it always catches up.

Until now one call of ``system_event_rollups_fold()`` counted every row of
every ended transaction past the watermark in one statement: after a bulk
load (one ``COPY`` of a million rows is one transaction) that statement ran
longer than the caller's statement timeout, was cancelled, and started over
for ever. The watermark is now a position in (``ingest_xid``, ``id``) order:
every row below (``watermark``, ``watermark_id``) is counted, and
``system_event_rollups_fold(max_rows)`` counts at most ``max_rows`` rows past
it, in that order, and moves it to just after the last one (without an
argument: every row, as before). It returns how many it counted (a step that
counted fewer than ``max_rows`` caught up), or NULL when another process was
folding. The index on ``ingest_xid`` becomes
one on (``ingest_xid``, ``id``), which serves the steps and the live tails.

The triggers that correct the counts of rows changed after they were
counted compare the same position.

Revision ID: 0010
Revises: 0009
Create Date: 2025-06-01
"""

# The SQL is assembled from constants of this module only.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "level, bucket, event_type, severity, source"
LEVELS = (
    "(VALUES (0::smallint), (1::smallint), (2::smallint), (3::smallint), (4::smallint), "
    "(5::smallint)) AS l(level)"
)
BUCKET = (
    "CASE WHEN l.level IN (0, 4) THEN date_trunc('hour', e.\"timestamp\", 'UTC') "
    "WHEN l.level IN (1, 5) THEN date_trunc('day', e.\"timestamp\", 'UTC') "
    "WHEN l.level = 2 THEN date_trunc('month', e.\"timestamp\", 'UTC') "
    "ELSE '1970-01-01 00:00:00+00'::timestamptz END"
)
SOURCE = "CASE WHEN l.level >= 4 THEN '' ELSE coalesce(e.source, '') END"

HORIZON = """
    SELECT least(pg_snapshot_xmax(s)::text::bigint, (SELECT min(x::text::bigint)
        FROM pg_snapshot_xip(s) AS x WHERE x::text::bigint % 4294967296 IN (
            SELECT backend_xid::text::bigint FROM pg_stat_activity
            WHERE datname = current_database() AND backend_xid IS NOT NULL
            UNION ALL SELECT transaction::text::bigint FROM pg_prepared_xacts
            WHERE database = current_database())))
    INTO upto FROM pg_current_snapshot() AS s;
"""

FOLD = f"""
CREATE FUNCTION system_event_rollups_fold(max_rows integer DEFAULT 2147483647) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    done_xid bigint;
    done_id bigint;
    upto bigint;
    counted bigint;
    last_xid bigint;
    last_id bigint;
BEGIN
    -- One folder at a time; the others return at once.
    IF NOT pg_try_advisory_xact_lock(hashtext('sysevents-rollups-fold')) THEN
        RETURN NULL;
    END IF;
    -- Waits for the transactions correcting counted rows (they hold it FOR SHARE).
    SELECT watermark, watermark_id INTO done_xid, done_id
    FROM system_event_rollup_state WHERE id = 1 FOR UPDATE;
    -- Every transaction of this database below this one has ended: the rows
    -- they wrote are final (a long transaction elsewhere on the server holds
    -- nothing back). The rows are counted by a later statement, which sees them.
    {HORIZON}
    IF upto <= done_xid THEN
        RETURN 0;
    END IF;
    -- The next rows in (ingest_xid, id) order, at most max_rows: the bounds as
    -- literals, so the planner sees how few rows lie between them.
    EXECUTE format($q$
        WITH step AS MATERIALIZED (
            SELECT ingest_xid, id, "timestamp", event_type, severity, source
            FROM system_events
            WHERE ingest_xid >= %1$s AND (ingest_xid, id) >= (%1$s, %2$s) AND ingest_xid < %3$s
            ORDER BY ingest_xid, id LIMIT %4$s
        ), counted AS (
            INSERT INTO system_event_rollups AS r ({KEY}, n)
            SELECT l.level, {BUCKET}, e.event_type, e.severity, {SOURCE}, count(*)
            FROM step e CROSS JOIN {LEVELS}
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + EXCLUDED.n
        )
        SELECT count(*), (array_agg(ingest_xid ORDER BY ingest_xid DESC, id DESC))[1],
               (array_agg(id ORDER BY ingest_xid DESC, id DESC))[1]
        FROM step
    $q$, done_xid, done_id, upto, max_rows) INTO counted, last_xid, last_id;
    IF counted < max_rows THEN
        -- Every ended transaction is counted: the next step starts at the horizon.
        UPDATE system_event_rollup_state SET watermark = upto, watermark_id = 0 WHERE id = 1;
    ELSE
        UPDATE system_event_rollup_state
        SET watermark = last_xid, watermark_id = last_id + 1 WHERE id = 1;
    END IF;
    RETURN counted;
END $$;
"""


def _correct(name: str, changed: str) -> str:
    """A statement trigger adding ``changed`` (rows with a ``d`` of +1 or -1) to the
    counts, for the rows a fold has counted already."""
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mark bigint;
    mark_id bigint;
BEGIN
    SELECT watermark, watermark_id INTO mark, mark_id
    FROM system_event_rollup_state WHERE id = 1 FOR SHARE;
    INSERT INTO system_event_rollups AS r ({KEY}, n)
    SELECT l.level, {BUCKET}, e.event_type, e.severity, {SOURCE}, sum(e.d)
    FROM ({changed}) AS e CROSS JOIN {LEVELS}
    WHERE (e.ingest_xid, e.id) < (mark, mark_id)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(e.d) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;
"""


_ROW = 'SELECT "timestamp", event_type, severity, source, ingest_xid, id'
CORRECTIONS = {
    "system_events_deleted": f"{_ROW}, -1 AS d FROM gone",
    "system_events_updated": f"{_ROW}, -1 AS d FROM gone UNION ALL {_ROW}, 1 FROM added",
}


def upgrade() -> None:
    op.execute(
        "ALTER TABLE system_event_rollup_state ADD COLUMN watermark_id bigint NOT NULL DEFAULT 0"
    )
    op.execute("ALTER TABLE system_event_rollup_state ALTER COLUMN watermark_id DROP DEFAULT")
    op.execute("CREATE INDEX ix_system_events_ingest_xid_id ON system_events (ingest_xid, id)")
    op.execute("DROP INDEX ix_system_events_ingest_xid")
    op.execute("DROP FUNCTION system_event_rollups_fold()")
    op.execute(FOLD)
    for name, changed in CORRECTIONS.items():
        op.execute(_correct(name, changed))


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    # The functions of migration 0006, as they were.
    path = Path(__file__).with_name("0006_switch_to_partitioned.py")
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    assert spec is not None
    assert spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    # Rows of a transaction folded only in part go uncounted by a
    # watermark of transactions alone: finish that transaction first.
    op.execute(
        "SELECT system_event_rollups_fold(2147483647) FROM system_event_rollup_state "
        "WHERE watermark_id <> 0"
    )
    op.execute("DROP FUNCTION system_event_rollups_fold(integer)")
    op.execute(old.FOLD)
    for function in old.CORRECTIONS.values():
        op.execute(function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("CREATE INDEX ix_system_events_ingest_xid ON system_events (ingest_xid)")
    op.execute("DROP INDEX ix_system_events_ingest_xid_id")
    op.execute("ALTER TABLE system_event_rollup_state DROP COLUMN watermark_id")
