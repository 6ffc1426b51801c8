"""Access control: API keys, a cursor secret kept in the database, idempotency keys per caller.

- ``sysevents_api_keys``: one row per key, its secret kept only as a SHA-256;
- ``sysevents_secrets``: the cursor secret made here, random, when none is
  configured, so that every replica signs and reads cursors alike;
- ``system_events.idempotency_caller``: whose idempotency key it is (the API
  key's name; empty for the library and anonymous callers): two callers never
  share a key.

Revision ID: 0004
Revises: 0003
Create Date: 2025-02-01
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sysevents_api_keys",
        sa.Column("key_id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("scopes", ARRAY(sa.String(10)), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_sysevents_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_sysevents_api_keys_name")),
    )
    op.create_table(
        "sysevents_secrets",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sysevents_secrets")),
    )
    op.execute(
        sa.text("INSERT INTO sysevents_secrets (name, value) VALUES ('cursor', :value)").bindparams(
            value=secrets.token_hex(32)
        )
    )
    # A column with a constant default is added without rewriting the table.
    op.add_column(
        "system_events",
        sa.Column("idempotency_caller", sa.String(50), server_default="", nullable=False),
    )
    op.drop_index(op.f("ix_system_events_idempotency_key"), table_name="system_events")
    op.create_index(
        op.f("ix_system_events_idempotency_caller_idempotency_key"),
        "system_events",
        ["idempotency_caller", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_system_events_idempotency_caller_idempotency_key"), table_name="system_events"
    )
    # Keys of different callers may now clash: the oldest event of a key keeps it.
    op.execute(
        "UPDATE system_events e SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM system_events o WHERE o.idempotency_key = e.idempotency_key "
        "AND o.id < e.id)"
    )
    op.create_index(
        op.f("ix_system_events_idempotency_key"),
        "system_events",
        ["idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_column("system_events", "idempotency_caller")
    op.drop_table("sysevents_secrets")
    op.drop_table("sysevents_api_keys")
