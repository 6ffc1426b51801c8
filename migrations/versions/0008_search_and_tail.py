"""Search and live tail: a trigram index for ``q``, a GIN index on details, a wake-up for tails.

- ``pg_trgm`` (shipped with PostgreSQL; trusted, so the database owner may
  create it) and ``ix_system_events_message_trgm``: a trigram GIN index over
  the message lowered under the ICU root collation, the expression ``q``
  searches (see ``sysevents.search``);
- ``ix_system_events_details``: a GIN index (``jsonb_path_ops``) serving the
  containment that ``details.PATH=VALUE`` filters start with;
- ``system_events_notify``: after every statement that inserts events, a
  ``NOTIFY sysevents_events`` (sent at commit, merged within a transaction)
  wakes the live tails of every replica. It carries nothing: the table is the
  truth, and tails also poll.

The downgrade leaves the extension in place: something else may use it.

Revision ID: 0008
Revises: 0007
Create Date: 2025-04-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "sysevents_events"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        "CREATE INDEX ix_system_events_message_trgm ON system_events "
        'USING gin (lower(message COLLATE "und-x-icu") gin_trgm_ops)'
    )
    op.execute(
        "CREATE INDEX ix_system_events_details ON system_events USING gin (details jsonb_path_ops)"
    )
    op.execute(
        "CREATE FUNCTION system_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER system_events_notify AFTER INSERT ON system_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION system_events_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS system_events_notify ON system_events")
    op.execute("DROP FUNCTION IF EXISTS system_events_notify()")
    op.execute("DROP INDEX IF EXISTS ix_system_events_details")
    op.execute("DROP INDEX IF EXISTS ix_system_events_message_trgm")
