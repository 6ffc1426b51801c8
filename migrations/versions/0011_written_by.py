"""Who wrote each event: ``written_by``, set by the store, filterable.

The REST API stores the id of the API key that wrote the event (``anonymous``
on an open server), the library the ``caller`` its user passes. Events
stored before this migration have none. The index serves ``written_by=``
filters as the others serve theirs: newest first by (``timestamp``, ``id``).

Revision ID: 0011
Revises: 0010
Create Date: 2025-07-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE system_events ADD COLUMN written_by varchar(100)")
    op.execute(
        "CREATE INDEX ix_system_events_written_by_timestamp_id ON system_events "
        '(written_by, "timestamp" DESC, id DESC)'
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_system_events_written_by_timestamp_id")
    op.execute("ALTER TABLE system_events DROP COLUMN written_by")
