"""Create the system_events table and its indexes.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than read from sysevents.schema: a migration is a fixed
# point in history, and the schema module moves on.
SEVERITIES = ("debug", "info", "warning", "error", "critical")
TS_DESC = sa.text('"timestamp" DESC')
ID_DESC = sa.text("id DESC")


def upgrade() -> None:
    op.create_table(
        "system_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", JSONB(), nullable=True),
        sa.Column("source", sa.String(100), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_events")),
        sa.CheckConstraint(
            "severity IN (" + ", ".join(f"'{s}'" for s in SEVERITIES) + ")",
            name=op.f("ck_system_events_severity"),
        ),
    )
    op.create_index(op.f("ix_system_events_timestamp_id"), "system_events", [TS_DESC, ID_DESC])
    op.create_index(
        op.f("ix_system_events_type_severity_timestamp_id"),
        "system_events",
        ["event_type", "severity", TS_DESC, ID_DESC],
    )
    op.create_index(
        op.f("ix_system_events_severity_timestamp_id"),
        "system_events",
        ["severity", TS_DESC, ID_DESC],
    )
    op.create_index(
        op.f("ix_system_events_source_timestamp_id"),
        "system_events",
        ["source", TS_DESC, ID_DESC],
    )


def downgrade() -> None:
    op.drop_table("system_events")
