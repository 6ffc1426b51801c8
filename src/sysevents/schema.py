"""The ``system_events`` table, declared once; migrations and tests read it from here."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from .keys import MAX_NAME_LENGTH
from .model import Severity
from .rules import MAX_EVENT_TYPE_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_SOURCE_LENGTH

SEVERITY_NAMES = tuple(s.value for s in Severity)
"""The severity names the ``severity`` column accepts, lowest first."""

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)
"""The metadata holding every table sysevents owns."""

system_events = Table(
    "system_events",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("event_type", String(MAX_EVENT_TYPE_LENGTH), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSONB, nullable=True),
    Column("source", String(MAX_SOURCE_LENGTH), nullable=True),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("idempotency_key", String(MAX_IDEMPOTENCY_KEY_LENGTH), nullable=True),
    Column("idempotency_caller", String(MAX_NAME_LENGTH), nullable=False, server_default=""),
    CheckConstraint(
        "severity IN (" + ", ".join(f"'{name}'" for name in SEVERITY_NAMES) + ")",
        name="severity",
    ),
)
"""One row per event; ``id`` is a 64-bit identity."""

_c = system_events.c
# Every listing orders by (timestamp, id): each index ends with both, descending,
# so a filtered first page and a keyset page are index range scans.
Index("ix_system_events_timestamp_id", _c.timestamp.desc(), _c.id.desc())
Index(
    "ix_system_events_type_severity_timestamp_id",
    _c.event_type,
    _c.severity,
    _c.timestamp.desc(),
    _c.id.desc(),
)
Index("ix_system_events_severity_timestamp_id", _c.severity, _c.timestamp.desc(), _c.id.desc())
Index("ix_system_events_source_timestamp_id", _c.source, _c.timestamp.desc(), _c.id.desc())
# At most one event per idempotency key of each caller; most events have none,
# so the index skips them.
Index(
    "ix_system_events_idempotency_caller_idempotency_key",
    _c.idempotency_caller,
    _c.idempotency_key,
    unique=True,
    postgresql_where=_c.idempotency_key.isnot(None),
)


system_event_rollups = Table(
    "system_event_rollups",
    metadata,
    Column("level", SmallInteger, nullable=False),
    Column("bucket", DateTime(timezone=True), nullable=False),
    Column("event_type", String(MAX_EVENT_TYPE_LENGTH), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("source", String(MAX_SOURCE_LENGTH), nullable=False),
    Column("stripe", SmallInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
    PrimaryKeyConstraint("level", "bucket", "event_type", "severity", "source", "stripe"),
)
"""Event counts per (level, bucket, event_type, severity, source), kept exact by triggers.

The levels are those of ``sysevents.postgres.rollups.Level``.

Statement-level triggers on ``system_events`` (migration 0003) add each
statement's aggregated changes to the stripe of the writing backend (1–8), so
concurrent writers never wait on one row; now and then a writer folds the
stripes into stripe 0. A count is the sum over stripes and may be 0.
"""

# Finds the unfolded stripes without reading the folded rows.
Index(
    "ix_system_event_rollups_stripe",
    system_event_rollups.c.stripe,
    postgresql_where=system_event_rollups.c.stripe > 0,
)


api_keys = Table(
    "sysevents_api_keys",
    metadata,
    Column("key_id", String(12), primary_key=True),
    Column("name", String(MAX_NAME_LENGTH), nullable=False, unique=True),
    Column("scopes", ARRAY(String(10)), nullable=False),
    Column("digest", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
"""API keys (``sysevents.keys``): the secret of each only as its SHA-256."""

secrets = Table(
    "sysevents_secrets",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""Secrets the database keeps for every replica: the cursor secret (``cursor``)."""
