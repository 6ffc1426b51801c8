"""Add system_event_rollups: event counts per hour, day, month and overall, kept by triggers.

Statistics then read a few thousand rollup rows plus the raw events of the
partial hours at the edges of a range, whatever the size of the table.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

# The SQL is assembled from constants of this module only.
# ruff: noqa: S608

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("sysevents.migrate")

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "level, bucket, event_type, severity, source, stripe"
# One row per level for each event; the "all" level has a single bucket.
# Levels 4 and 5 are hours and days without the source: counts over a day or
# so (last_hour, last_24h) then read at most types x severities rows an hour.
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
# Writers add to their own stripe (1-8), so concurrent inserts do not queue on
# one row; rows are upserted in key order, so two writers sharing a stripe
# cannot deadlock.
STRIPE = "(pg_backend_pid() % 8 + 1)::smallint"
# About one statement in this many folds the stripes into stripe 0, which keeps
# the table (and what statistics read) small.
FOLD_EVERY = 32


def _changes(source: str) -> str:
    """SQL adding the counts of ``source`` (rows of e with a column d: +1 or -1)."""
    return f"""
    INSERT INTO system_event_rollups AS r ({KEY}, n)
    SELECT l.level, {BUCKET}, e.event_type, e.severity, {SOURCE}, {STRIPE}, sum(e.d)
    FROM ({source}) AS e CROSS JOIN {LEVELS}
    GROUP BY 1, 2, 3, 4, 5
    HAVING sum(e.d) <> 0
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + EXCLUDED.n;
    """


def _trigger_function(name: str, source: str) -> str:
    return f"""
    CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_changes(source)}
        IF random() < 1.0 / {FOLD_EVERY} THEN
            PERFORM system_event_rollups_fold();
        END IF;
        RETURN NULL;
    END $$;
    """


NEW_ROWS = 'SELECT "timestamp", event_type, severity, source, 1 AS d FROM new_rows'
OLD_ROWS = 'SELECT "timestamp", event_type, severity, source, -1 AS d FROM old_rows'

FOLD = f"""
CREATE FUNCTION system_event_rollups_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- One folder at a time, and nobody waits for it: rows another writer holds
    -- are left for the next fold.
    IF NOT pg_try_advisory_xact_lock(hashtext('sysevents-rollups-fold')) THEN
        RETURN;
    END IF;
    WITH taken AS (
        SELECT ctid FROM system_event_rollups WHERE stripe > 0 FOR UPDATE SKIP LOCKED
    ), moved AS (
        DELETE FROM system_event_rollups r USING taken WHERE r.ctid = taken.ctid
        RETURNING r.level, r.bucket, r.event_type, r.severity, r.source, r.n
    )
    INSERT INTO system_event_rollups AS r ({KEY}, n)
    SELECT level, bucket, event_type, severity, source, 0, sum(n) FROM moved
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + EXCLUDED.n;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "system_event_rollups",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("stripe", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "level",
            "bucket",
            "event_type",
            "severity",
            "source",
            "stripe",
            name=op.f("pk_system_event_rollups"),
        ),
    )
    op.create_index(
        op.f("ix_system_event_rollups_stripe"),
        "system_event_rollups",
        ["stripe"],
        postgresql_where=sa.text("stripe > 0"),
    )
    # No writes between the backfill and the triggers.
    op.execute("LOCK TABLE system_events IN SHARE ROW EXCLUSIVE MODE")
    bind = op.get_bind()
    stored = bind.execute(sa.text("SELECT count(*) FROM system_events")).scalar_one()
    log.info(
        "counting the %d stored event(s) into the rollups, in one statement "
        "(writers wait until it ends)",
        stored,
    )
    started = time.monotonic()
    bind.execute(
        sa.text(
            f"INSERT INTO system_event_rollups ({KEY}, n) "
            f"SELECT l.level, {BUCKET}, e.event_type, e.severity, {SOURCE}, 0, count(*) "
            # In key order: the rows a statistic reads together sit on the same pages,
            # as they do when the triggers create them hour by hour.
            f"FROM system_events e CROSS JOIN {LEVELS} "
            "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
        )
    )
    log.info("counted %d event(s) in %.1f s", stored, time.monotonic() - started)
    op.execute(FOLD)
    op.execute(_trigger_function("system_events_rollup_insert", NEW_ROWS))
    op.execute(_trigger_function("system_events_rollup_delete", OLD_ROWS))
    op.execute(_trigger_function("system_events_rollup_update", f"{NEW_ROWS} UNION ALL {OLD_ROWS}"))
    op.execute(
        """
        CREATE FUNCTION system_events_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            TRUNCATE system_event_rollups;
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER system_events_rollup_insert AFTER INSERT ON system_events "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION system_events_rollup_insert()"
    )
    op.execute(
        "CREATE TRIGGER system_events_rollup_update AFTER UPDATE ON system_events "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION system_events_rollup_update()"
    )
    op.execute(
        "CREATE TRIGGER system_events_rollup_delete AFTER DELETE ON system_events "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION system_events_rollup_delete()"
    )
    op.execute(
        "CREATE TRIGGER system_events_rollup_truncate AFTER TRUNCATE ON system_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION system_events_rollup_truncate()"
    )


def downgrade() -> None:
    for op_name in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER system_events_rollup_{op_name} ON system_events")
        op.execute(f"DROP FUNCTION system_events_rollup_{op_name}()")
    op.execute("DROP FUNCTION system_event_rollups_fold()")
    op.drop_table("system_event_rollups")
