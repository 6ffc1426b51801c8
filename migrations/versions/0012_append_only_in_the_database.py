"""Append-only, in the database too: with the flag set, PostgreSQL refuses to change events.

A service configured ``append_only`` refuses updates and deletes itself; this
makes PostgreSQL refuse them as well, whoever sends them: ``UPDATE`` or
``DELETE`` of ``system_events`` (or of one of its partitions), and
``TRUNCATE``, fail with SQLSTATE ``SEA01`` while ``sysevents_flags`` holds
``append_only = true``. Retention still removes expired events: its sessions
set ``sysevents.retention`` to ``on``, and dropping a month is no row change.
A store opened with ``append_only`` sets the flag; ``sysevents append-only
off`` clears it.

Revision ID: 0012
Revises: 0011
Create Date: 2025-08-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSE = """
CREATE FUNCTION system_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('sysevents.retention', true) IS DISTINCT FROM 'on'
       AND EXISTS (SELECT FROM sysevents_flags WHERE name = 'append_only' AND value) THEN
        RAISE EXCEPTION 'system_events is append-only: events cannot be changed or deleted'
            USING ERRCODE = 'SEA01',
                  HINT = 'run `sysevents append-only off` to allow changes again';
    END IF;
    RETURN CASE WHEN TG_LEVEL = 'ROW' THEN coalesce(NEW, OLD) END;
END $$;
"""


def upgrade() -> None:
    op.execute(
        "CREATE TABLE sysevents_flags (name varchar(50) NOT NULL, value boolean NOT NULL, "
        "CONSTRAINT pk_sysevents_flags PRIMARY KEY (name))"
    )
    op.execute(REFUSE)
    op.execute(
        "CREATE TRIGGER system_events_append_only BEFORE UPDATE OR DELETE ON system_events "
        "FOR EACH ROW EXECUTE FUNCTION system_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER system_events_append_only_truncate BEFORE TRUNCATE ON system_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION system_events_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS system_events_append_only_truncate ON system_events")
    op.execute("DROP TRIGGER IF EXISTS system_events_append_only ON system_events")
    op.execute("DROP FUNCTION IF EXISTS system_events_append_only()")
    op.execute("DROP TABLE IF EXISTS sysevents_flags")
