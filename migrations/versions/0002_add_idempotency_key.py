"""Add idempotency_key: at most one event per client-chosen key.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("system_events", sa.Column("idempotency_key", sa.String(100), nullable=True))
    op.create_index(
        op.f("ix_system_events_idempotency_key"),
        "system_events",
        ["idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_system_events_idempotency_key"), table_name="system_events")
    op.drop_column("system_events", "idempotency_key")
