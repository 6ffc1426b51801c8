"""Partition system_events by time, step two: the partitioned table takes the old one's place.

Under a lock on ``system_events`` (short after ``sysevents migrate`` moved the
rows in batches; a plain ``alembic upgrade`` moves them all here): moves the
rows not moved yet, drops the old table and its triggers, and renames
``system_events_next`` to ``system_events``.

Rollups are no longer kept by triggers on every write, which made writers
queue on the same rollup rows. Each row carries the id of the transaction
that wrote it (``ingest_xid``); ``system_event_rollups_fold()`` counts, in
the background, the rows of every transaction that has ended since the last
fold, and moves the watermark past them. Statistics add the few rows past the
watermark, read from the events. An UPDATE or DELETE of counted rows, by the
library or by hand, corrects the counts in its own transaction (a statement
trigger reading the changed rows as a whole), holding the watermark row
``FOR SHARE`` so no fold runs meanwhile. Inserts, the common case, run no
trigger at all.

Revision ID: 0006
Revises: 0005
Create Date: 2025-03-01
"""

# The SQL is assembled from constants of this module only.
# ruff: noqa: S608

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("sysevents.migrate")

COLUMNS = (
    'id, event_type, severity, message, details, source, "timestamp", created_at, '
    "idempotency_key, idempotency_caller"
)
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
INDEXES = (
    "timestamp_id",
    "type_severity_timestamp_id",
    "severity_timestamp_id",
    "source_timestamp_id",
    "ingest_xid",
)

FOLD = f"""
CREATE FUNCTION system_event_rollups_fold() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    done bigint;
    upto bigint;
BEGIN
    -- One folder at a time; the others return at once.
    IF NOT pg_try_advisory_xact_lock(hashtext('sysevents-rollups-fold')) THEN
        RETURN NULL;
    END IF;
    -- Waits for the transactions correcting counted rows (they hold it FOR SHARE).
    SELECT watermark INTO done FROM system_event_rollup_state WHERE id = 1 FOR UPDATE;
    -- Every transaction of this database below this one has ended: the rows
    -- they wrote are final (a long transaction elsewhere on the server holds
    -- nothing back). The rows are counted by a later statement, which sees them.
    SELECT least(pg_snapshot_xmax(s)::text::bigint, (SELECT min(x::text::bigint)
        FROM pg_snapshot_xip(s) AS x WHERE x::text::bigint % 4294967296 IN (
            SELECT backend_xid::text::bigint FROM pg_stat_activity
            WHERE datname = current_database() AND backend_xid IS NOT NULL
            UNION ALL SELECT transaction::text::bigint FROM pg_prepared_xacts
            WHERE database = current_database())))
    INTO upto FROM pg_current_snapshot() AS s;
    IF upto <= done THEN
        RETURN done;
    END IF;
    -- The bounds as literals: the planner sees how few rows lie between them.
    EXECUTE format($q$
        INSERT INTO system_event_rollups AS r ({KEY}, n)
        SELECT l.level, {BUCKET}, e.event_type, e.severity, {SOURCE}, count(*)
        FROM system_events e CROSS JOIN {LEVELS}
        WHERE e.ingest_xid >= %s AND e.ingest_xid < %s
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + EXCLUDED.n
    $q$, done, upto);
    UPDATE system_event_rollup_state SET watermark = upto WHERE id = 1;
    RETURN upto;
END $$;
"""


def _correct(name: str, changed: str) -> str:
    """A statement trigger function adding ``changed`` (rows with a ``d`` of +1 or -1)
    to the counts, for the rows a fold has counted already."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mark bigint;
BEGIN
    SELECT watermark INTO mark FROM system_event_rollup_state WHERE id = 1 FOR SHARE;
    INSERT INTO system_event_rollups AS r ({KEY}, n)
    SELECT l.level, {BUCKET}, e.event_type, e.severity, {SOURCE}, sum(e.d)
    FROM ({changed}) AS e CROSS JOIN {LEVELS}
    WHERE e.ingest_xid < mark
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(e.d) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;
"""


_ROW = 'SELECT "timestamp", event_type, severity, source, ingest_xid'
CORRECTIONS = {
    "delete": _correct("system_events_deleted", f"{_ROW}, -1 AS d FROM gone"),
    "update": _correct(
        "system_events_updated",
        f"{_ROW}, -1 AS d FROM gone UNION ALL {_ROW}, 1 FROM added",
    ),
}
TRANSITIONS = {"delete": "OLD TABLE AS gone", "update": "OLD TABLE AS gone NEW TABLE AS added"}

TRUNCATE_DERIVED = """
CREATE FUNCTION system_events_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A table the same TRUNCATE named is empty already (and may not be
    -- truncated twice in one statement).
    IF EXISTS (SELECT FROM system_event_rollups) THEN
        TRUNCATE system_event_rollups;
    END IF;
    IF EXISTS (SELECT FROM system_event_locator) THEN
        TRUNCATE system_event_locator;
    END IF;
    IF EXISTS (SELECT FROM system_event_keys) THEN
        TRUNCATE system_event_keys;
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    bind = op.get_bind()
    op.execute("LOCK TABLE system_events IN ACCESS EXCLUSIVE MODE")
    moved = bind.execute(
        sa.text(
            "WITH src AS (SELECT * FROM system_events "
            "WHERE id > (SELECT moved_up_to FROM sysevents_partition_move)), "
            f"ins AS (INSERT INTO system_events_next ({COLUMNS}, ingest_xid) "
            f"SELECT {COLUMNS}, 0 FROM src ON CONFLICT DO NOTHING), "
            'loc AS (INSERT INTO system_event_locator (id, "timestamp") '
            'SELECT id, "timestamp" FROM src ON CONFLICT (id) DO NOTHING), '
            'keys AS (INSERT INTO system_event_keys (caller, key, id, "timestamp", created_at) '
            'SELECT idempotency_caller, idempotency_key, id, "timestamp", created_at FROM src '
            "WHERE idempotency_key IS NOT NULL AND created_at > now() - interval '7 days' "
            "ON CONFLICT DO NOTHING) "
            "SELECT count(*) FROM src"
        )
    ).scalar_one()
    log.info("moved the last %d event(s) into the partitioned table", moved)
    op.execute(
        "SELECT setval('system_events_seq', coalesce((SELECT max(id) FROM system_events), 0) + 1, "
        "false)"
    )
    # The rollups lose their stripes (one row per key, folded) and are
    # partitioned by month as the events are: a month's counts go with it.
    op.execute(
        "CREATE TABLE system_event_rollups_next (level smallint NOT NULL, "
        "bucket timestamptz NOT NULL, event_type varchar(50) NOT NULL, "
        "severity varchar(10) NOT NULL, source varchar(100) NOT NULL, n bigint NOT NULL) "
        "PARTITION BY RANGE (bucket)"
    )
    months = bind.execute(
        sa.text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'system_events_next'::regclass"
        )
    ).all()
    for name, bound in months:
        op.execute(
            f"CREATE TABLE {name.replace('system_events_', 'system_event_rollups_', 1)} "
            f"PARTITION OF system_event_rollups_next {bound}"
        )
    op.execute(
        f"INSERT INTO system_event_rollups_next ({KEY}, n) SELECT {KEY}, sum(n) "
        "FROM system_event_rollups GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5"
    )
    for name in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER system_events_rollup_{name} ON system_events")
        op.execute(f"DROP FUNCTION system_events_rollup_{name}()")
    op.execute("DROP FUNCTION system_event_rollups_fold()")
    op.execute("DROP TABLE system_event_rollups")
    op.execute("ALTER TABLE system_event_rollups_next RENAME TO system_event_rollups")
    op.execute(
        "ALTER TABLE system_event_rollups "
        f"ADD CONSTRAINT pk_system_event_rollups PRIMARY KEY ({KEY})"
    )
    op.execute("DROP TRIGGER system_events_mirror ON system_events")
    op.execute("DROP FUNCTION system_events_mirror()")
    op.execute("DROP TABLE system_events")
    op.execute("DROP TABLE sysevents_partition_move")
    op.execute("ALTER TABLE system_events_next RENAME TO system_events")
    op.execute(
        "ALTER TABLE system_events RENAME CONSTRAINT pk_system_events_next TO pk_system_events"
    )
    op.execute(
        "ALTER TABLE system_events RENAME CONSTRAINT ck_system_events_next_severity "
        "TO ck_system_events_severity"
    )
    for name in INDEXES:
        op.execute(f"ALTER INDEX ix_system_events_next_{name} RENAME TO ix_system_events_{name}")
    op.execute(
        "CREATE TABLE system_event_rollup_state (id smallint NOT NULL, watermark bigint NOT NULL, "
        "CONSTRAINT pk_system_event_rollup_state PRIMARY KEY (id))"
    )
    # Every transaction below this one has ended, and wrote to the old table:
    # its rows are counted. Whatever writes to the new table comes after.
    op.execute(
        "INSERT INTO system_event_rollup_state VALUES "
        "(1, pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"
    )
    op.execute(FOLD)
    # TRUNCATE empties what is derived from the events with them (and, with
    # RESTART IDENTITY, restarts the sequence the column owns).
    op.execute("ALTER SEQUENCE system_events_seq OWNED BY system_events.id")
    op.execute(TRUNCATE_DERIVED)
    op.execute(
        "CREATE TRIGGER system_events_truncate AFTER TRUNCATE ON system_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION system_events_truncate()"
    )
    for change, function in CORRECTIONS.items():
        op.execute(function)
        op.execute(
            f"CREATE TRIGGER system_events_{change}d AFTER {change.upper()} ON system_events "
            f"REFERENCING {TRANSITIONS[change]} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION system_events_{change}d()"
        )


# -- back to one table kept by triggers (migration 0003's) -----------------------


def _changes(source: str) -> str:
    stripe = "(pg_backend_pid() % 8 + 1)::smallint"
    return f"""
    INSERT INTO system_event_rollups AS r ({KEY}, stripe, n)
    SELECT l.level, {BUCKET}, e.event_type, e.severity, {SOURCE}, {stripe}, sum(e.d)
    FROM ({source}) AS e CROSS JOIN {LEVELS}
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(e.d) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({KEY}, stripe) DO UPDATE SET n = r.n + EXCLUDED.n;
    """


def _trigger_function(name: str, source: str) -> str:
    return f"""
    CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_changes(source)}
        IF random() < 1.0 / 32 THEN
            PERFORM system_event_rollups_fold();
        END IF;
        RETURN NULL;
    END $$;
    """


OLD_FOLD = f"""
CREATE FUNCTION system_event_rollups_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('sysevents-rollups-fold')) THEN
        RETURN;
    END IF;
    WITH taken AS (
        SELECT ctid FROM system_event_rollups WHERE stripe > 0 FOR UPDATE SKIP LOCKED
    ), moved AS (
        DELETE FROM system_event_rollups r USING taken WHERE r.ctid = taken.ctid
        RETURNING r.level, r.bucket, r.event_type, r.severity, r.source, r.n
    )
    INSERT INTO system_event_rollups AS r ({KEY}, stripe, n)
    SELECT level, bucket, event_type, severity, source, 0, sum(n) FROM moved
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({KEY}, stripe) DO UPDATE SET n = r.n + EXCLUDED.n;
END $$;
"""
NEW_ROWS = 'SELECT "timestamp", event_type, severity, source, 1 AS d FROM new_rows'
OLD_ROWS = 'SELECT "timestamp", event_type, severity, source, -1 AS d FROM old_rows'


def downgrade() -> None:
    op.execute("LOCK TABLE system_events IN ACCESS EXCLUSIVE MODE")
    for name in ("truncate", "deleted", "updated"):
        op.execute(f"DROP TRIGGER system_events_{name} ON system_events")
        op.execute(f"DROP FUNCTION system_events_{name}()")
    op.execute("ALTER SEQUENCE system_events_seq OWNED BY NONE")
    op.execute("DROP FUNCTION system_event_rollups_fold()")
    op.execute("DROP TABLE system_event_rollup_state")
    op.execute("ALTER TABLE system_events RENAME TO system_events_next")
    op.execute(
        "ALTER TABLE system_events_next RENAME CONSTRAINT pk_system_events TO pk_system_events_next"
    )
    op.execute(
        "ALTER TABLE system_events_next RENAME CONSTRAINT ck_system_events_severity "
        "TO ck_system_events_next_severity"
    )
    for name in INDEXES:
        op.execute(f"ALTER INDEX ix_system_events_{name} RENAME TO ix_system_events_next_{name}")
    op.execute(
        """
        CREATE TABLE system_events (
            id bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL,
            event_type varchar(50) NOT NULL,
            severity varchar(10) NOT NULL,
            message text NOT NULL,
            details jsonb,
            source varchar(100),
            "timestamp" timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            idempotency_key varchar(100),
            idempotency_caller varchar(50) NOT NULL DEFAULT '',
            CONSTRAINT pk_system_events PRIMARY KEY (id),
            CONSTRAINT ck_system_events_severity
                CHECK (severity IN ('debug', 'info', 'warning', 'error', 'critical'))
        )
        """
    )
    # Keys of different partitions may clash: the oldest event of a key keeps it.
    op.execute(
        f"INSERT INTO system_events ({COLUMNS}) SELECT {COLUMNS} FROM ("
        f"SELECT {COLUMNS}, row_number() OVER (PARTITION BY idempotency_caller, idempotency_key "
        "ORDER BY id) AS nth FROM system_events_next) AS e WHERE nth = 1 "
        "OR idempotency_key IS NULL ORDER BY id"
    )
    op.execute(
        "SELECT setval(pg_get_serial_sequence('system_events', 'id'), "
        "coalesce((SELECT max(id) FROM system_events), 0) + 1, false)"
    )
    op.execute(
        'CREATE INDEX ix_system_events_timestamp_id ON system_events ("timestamp" DESC, id DESC)'
    )
    op.execute(
        "CREATE INDEX ix_system_events_type_severity_timestamp_id ON system_events "
        '(event_type, severity, "timestamp" DESC, id DESC)'
    )
    op.execute(
        "CREATE INDEX ix_system_events_severity_timestamp_id ON system_events "
        '(severity, "timestamp" DESC, id DESC)'
    )
    op.execute(
        "CREATE INDEX ix_system_events_source_timestamp_id ON system_events "
        '(source, "timestamp" DESC, id DESC)'
    )
    op.execute(
        "CREATE UNIQUE INDEX ix_system_events_idempotency_caller_idempotency_key ON system_events "
        "(idempotency_caller, idempotency_key) WHERE idempotency_key IS NOT NULL"
    )
    # Counted afresh from the events, as migration 0003 did.
    op.execute("DROP TABLE system_event_rollups")
    op.execute(
        "CREATE TABLE system_event_rollups (level smallint NOT NULL, bucket timestamptz NOT NULL, "
        "event_type varchar(50) NOT NULL, severity varchar(10) NOT NULL, "
        "source varchar(100) NOT NULL, stripe smallint NOT NULL, n bigint NOT NULL, "
        f"CONSTRAINT pk_system_event_rollups PRIMARY KEY ({KEY}, stripe))"
    )
    op.execute(
        "CREATE INDEX ix_system_event_rollups_stripe ON system_event_rollups (stripe) "
        "WHERE stripe > 0"
    )
    op.execute(
        f"INSERT INTO system_event_rollups ({KEY}, stripe, n) "
        f"SELECT l.level, {BUCKET}, e.event_type, e.severity, {SOURCE}, 0, count(*) "
        f"FROM system_events e CROSS JOIN {LEVELS} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
    )
    op.execute(OLD_FOLD)
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
    for name, event, referencing in (
        ("insert", "INSERT", "REFERENCING NEW TABLE AS new_rows"),
        ("update", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("delete", "DELETE", "REFERENCING OLD TABLE AS old_rows"),
        ("truncate", "TRUNCATE", ""),
    ):
        op.execute(
            f"CREATE TRIGGER system_events_rollup_{name} AFTER {event} ON system_events "
            f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION system_events_rollup_{name}()"
        )
    # Back to the state after 0005: the partitioned table is emptied, kept in step.
    op.execute("TRUNCATE system_events_next, system_event_locator, system_event_keys")
    op.execute(
        "CREATE TABLE sysevents_partition_move "
        "(id smallint PRIMARY KEY, moved_up_to bigint NOT NULL)"
    )
    op.execute("INSERT INTO sysevents_partition_move VALUES (1, 0)")
    op.execute(_step_one().MIRROR)
    op.execute(
        "CREATE TRIGGER system_events_mirror AFTER INSERT OR UPDATE OR DELETE ON system_events "
        "FOR EACH ROW EXECUTE FUNCTION system_events_mirror()"
    )


def _step_one() -> ModuleType:
    """Migration 0005, whose trigger a downgrade puts back."""
    path = Path(__file__).with_name("0005_partitioned_table.py")
    spec = importlib.util.spec_from_file_location("sysevents_migration_0005", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
