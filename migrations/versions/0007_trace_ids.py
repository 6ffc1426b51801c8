"""OpenTelemetry ids on events: ``trace_id`` and ``span_id``, and an index to find a trace.

Both columns are nullable and added to the partitioned parent, so every
partition gets them without a rewrite. The index is partial (only rows that
belong to a trace): looking a trace up reads a handful of index entries
instead of every partition (see ``bench/traces.py``).

Revision ID: 0007
Revises: 0006
Create Date: 2025-03-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("system_events", sa.Column("trace_id", sa.String(32), nullable=True))
    op.add_column("system_events", sa.Column("span_id", sa.String(16), nullable=True))
    op.create_index(
        "ix_system_events_trace_id",
        "system_events",
        ["trace_id"],
        postgresql_where=sa.text("trace_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_system_events_trace_id", table_name="system_events")
    op.drop_column("system_events", "span_id")
    op.drop_column("system_events", "trace_id")
