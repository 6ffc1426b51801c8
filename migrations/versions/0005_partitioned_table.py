"""Partition system_events by time, step one: the new table beside the old one, kept in step.

Creates ``system_events_next``, range-partitioned by ``"timestamp"``: a
``system_events_history`` partition for everything before the first month,
then one partition per UTC month (``system_events_pYYYY_MM``) from the first
month holding events (last month on an empty table; at most ten years back)
to three months ahead. Beside it: the sequence of the new ids, the locator of
ids that do not name their month, and the table of idempotency keys.

Row triggers on ``system_events`` repeat every insert, update and delete in
the new table from now on, so the rows already there can be moved in small
batches while the service keeps writing (``sysevents migrate`` does so, with
progress; see ``sysevents.stores.postgres.move``). Migration 0006 moves what is
left, under a short lock, and puts the new table in the old one's place.

Revision ID: 0005
Revises: 0004
Create Date: 2025-03-01
"""

# The SQL is assembled from constants of this module and computed month bounds.
# ruff: noqa: S608

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("sysevents.migrate")

AHEAD_MONTHS = 3
MAX_MONTHS_BACK = 120
SEQUENCE_MAX = 2**36 - 1
SEVERITIES = ("debug", "info", "warning", "error", "critical")
COLUMNS = (
    'id, event_type, severity, message, details, source, "timestamp", created_at, '
    "idempotency_key, idempotency_caller"
)
# Keys of events stored this recently are carried over (the default window is a day).
KEYS_SINCE = "now() - interval '7 days'"

MIRROR = f"""
CREATE FUNCTION system_events_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM system_events_next WHERE id = OLD.id AND "timestamp" = OLD."timestamp";
        DELETE FROM system_event_locator WHERE id = OLD.id;
        DELETE FROM system_event_keys
        WHERE caller = OLD.idempotency_caller AND key = OLD.idempotency_key AND id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- ingest_xid 0: the old table's triggers have counted the row already.
        INSERT INTO system_events_next ({COLUMNS}, ingest_xid)
        VALUES (NEW.id, NEW.event_type, NEW.severity, NEW.message, NEW.details, NEW.source,
                NEW."timestamp", NEW.created_at, NEW.idempotency_key, NEW.idempotency_caller, 0)
        ON CONFLICT DO NOTHING;
        INSERT INTO system_event_locator (id, "timestamp") VALUES (NEW.id, NEW."timestamp")
        ON CONFLICT (id) DO UPDATE SET "timestamp" = EXCLUDED."timestamp";
        IF NEW.idempotency_key IS NOT NULL THEN
            INSERT INTO system_event_keys (caller, key, id, "timestamp", created_at)
            VALUES (NEW.idempotency_caller, NEW.idempotency_key, NEW.id, NEW."timestamp",
                    NEW.created_at)
            ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    RETURN NULL;
END $$;
"""


def _month(index: int) -> datetime:
    return datetime(index // 12 + 1, index % 12 + 1, 1, tzinfo=UTC)


def _index(t: datetime) -> int:
    t = t.astimezone(UTC)
    return (t.year - 1) * 12 + t.month - 1


def first_month(oldest: datetime | None, now: datetime) -> int:
    """The first monthly partition: the oldest event's month, within bounds."""
    current = _index(now)
    first = current - 1 if oldest is None else min(_index(oldest), current - 1)
    return max(first, current - MAX_MONTHS_BACK)


def upgrade() -> None:
    bind = op.get_bind()
    now = bind.execute(sa.text("SELECT now()")).scalar_one()
    oldest = bind.execute(sa.text('SELECT min("timestamp") FROM system_events')).scalar_one()
    first, last = first_month(oldest, now), _index(now) + AHEAD_MONTHS
    op.execute(f"CREATE SEQUENCE system_events_seq MAXVALUE {SEQUENCE_MAX}")
    op.execute(
        f"""
        CREATE TABLE system_events_next (
            id bigint NOT NULL DEFAULT nextval('system_events_seq'),
            event_type varchar(50) NOT NULL,
            severity varchar(10) NOT NULL,
            message text NOT NULL,
            details jsonb,
            source varchar(100),
            "timestamp" timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            idempotency_key varchar(100),
            idempotency_caller varchar(50) NOT NULL DEFAULT '',
            ingest_xid bigint NOT NULL DEFAULT txid_current(),
            CONSTRAINT pk_system_events_next PRIMARY KEY (id, "timestamp"),
            CONSTRAINT ck_system_events_next_severity
                CHECK (severity IN ({", ".join(f"'{s}'" for s in SEVERITIES)}))
        ) PARTITION BY RANGE ("timestamp")
        """
    )
    for name, columns in (
        ("timestamp_id", '"timestamp" DESC, id DESC'),
        ("type_severity_timestamp_id", 'event_type, severity, "timestamp" DESC, id DESC'),
        ("severity_timestamp_id", 'severity, "timestamp" DESC, id DESC'),
        ("source_timestamp_id", 'source, "timestamp" DESC, id DESC'),
        ("ingest_xid", "ingest_xid"),
    ):
        op.execute(f"CREATE INDEX ix_system_events_next_{name} ON system_events_next ({columns})")
    op.execute(
        "CREATE TABLE system_events_history PARTITION OF system_events_next "
        f"FOR VALUES FROM (MINVALUE) TO ('{_month(first).isoformat()}')"
    )
    for month in range(first, last + 1):
        start = _month(month)
        op.execute(
            f"CREATE TABLE system_events_p{start:%Y_%m} PARTITION OF system_events_next "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{_month(month + 1).isoformat()}')"
        )
    log.info(
        "partitioned table created: history before %s, then %d monthly partitions to %s",
        f"{_month(first):%Y-%m}",
        last - first + 1,
        f"{_month(last):%Y-%m}",
    )
    op.create_table(
        "system_event_locator",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_event_locator")),
    )
    op.create_index(
        op.f("ix_system_event_locator_timestamp"), "system_event_locator", ["timestamp"]
    )
    op.create_table(
        "system_event_keys",
        sa.Column("caller", sa.String(50), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("caller", "key", name=op.f("pk_system_event_keys")),
    )
    op.create_index(op.f("ix_system_event_keys_created_at"), "system_event_keys", ["created_at"])
    # How far the batches have moved the rows (by id); 0006 moves the rest.
    op.execute(
        "CREATE TABLE sysevents_partition_move "
        "(id smallint PRIMARY KEY, moved_up_to bigint NOT NULL)"
    )
    op.execute("INSERT INTO sysevents_partition_move VALUES (1, 0)")
    op.execute(MIRROR)
    op.execute(
        "CREATE TRIGGER system_events_mirror AFTER INSERT OR UPDATE OR DELETE ON system_events "
        "FOR EACH ROW EXECUTE FUNCTION system_events_mirror()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS system_events_mirror ON system_events")
    op.execute("DROP FUNCTION IF EXISTS system_events_mirror()")
    op.execute("DROP TABLE IF EXISTS sysevents_partition_move")
    op.drop_table("system_event_keys")
    op.drop_table("system_event_locator")
    op.execute("DROP TABLE IF EXISTS system_events_next")
    op.execute("DROP SEQUENCE IF EXISTS system_events_seq")
