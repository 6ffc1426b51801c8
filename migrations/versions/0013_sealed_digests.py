"""Sealed digests: the chain of digests that shows events changed behind the store's back.

``sysevents_digests`` keeps one row per digest (see ``sysevents.integrity``):
the run of events it covers in (``ingest_xid``, ``id``) order, their hash
and entries, the previous digest's hash and the signature. Sealing inserts
rows; nothing updates or deletes them (retention leaves them: a dropped
month's digests stay verifiable).

Revision ID: 0013
Revises: 0012
Create Date: 2025-08-15
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sysevents_digests (
            seq bigint NOT NULL,
            after_xid bigint NOT NULL,
            after_id bigint NOT NULL,
            last_xid bigint NOT NULL,
            last_id bigint NOT NULL,
            count integer NOT NULL,
            min_id bigint NOT NULL,
            max_id bigint NOT NULL,
            events_sha256 bytea NOT NULL,
            previous bytea NOT NULL,
            sealed_at timestamp with time zone NOT NULL,
            next_xid bigint NOT NULL,
            key varchar(64) NOT NULL,
            signature bytea,
            entries bytea NOT NULL,
            CONSTRAINT pk_sysevents_digests PRIMARY KEY (seq)
        )
        """
    )
    op.execute("CREATE INDEX ix_sysevents_digests_sealed_at ON sysevents_digests (sealed_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS sysevents_digests")
