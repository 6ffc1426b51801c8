"""The ``system_events`` table, declared once; migrations and tests read it from here."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Sequence,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from .keys import MAX_NAME_LENGTH
from .model import Severity
from .rules import (
    MAX_CALLER_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_SOURCE_LENGTH,
)

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

system_events_seq = Sequence("system_events_seq", metadata=metadata)
"""Draws the low bits of event ids (see ``sysevents.stores.postgres.ids``)."""

system_events = Table(
    "system_events",
    metadata,
    # Defaults to nextval('system_events_seq') in the database (for rows written
    # by hand); reflection reports such a default as none, so none is declared.
    Column("id", BigInteger, nullable=False, autoincrement=False),
    Column("event_type", String(MAX_EVENT_TYPE_LENGTH), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSONB, nullable=True),
    Column("source", String(MAX_SOURCE_LENGTH), nullable=True),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("idempotency_key", String(MAX_IDEMPOTENCY_KEY_LENGTH), nullable=True),
    Column("idempotency_caller", String(MAX_NAME_LENGTH), nullable=False, server_default=""),
    # The writing transaction's id: rows past the rollups' watermark are not
    # counted in them yet (see system_event_rollup_state).
    Column("ingest_xid", BigInteger, nullable=False, server_default=func.txid_current()),
    # The OpenTelemetry trace and span the event happened in (lowercase hex).
    Column("trace_id", String(32), nullable=True),
    Column("span_id", String(16), nullable=True),
    # Who stored it (an API key's id, anonymous, or the library's caller): migration 0011.
    Column("written_by", String(MAX_CALLER_LENGTH), nullable=True),
    PrimaryKeyConstraint("id", "timestamp"),
    CheckConstraint(
        "severity IN (" + ", ".join(f"'{name}'" for name in SEVERITY_NAMES) + ")",
        name="severity",
    ),
    postgresql_partition_by='RANGE ("timestamp")',
)
"""One row per event, range-partitioned by ``timestamp``: one partition per UTC
month (``system_events_pYYYY_MM``) and ``system_events_history`` before them.

An ``id`` carries the month of the event's ``timestamp`` in its high bits, so
reading an event by id reads one partition (see ``sysevents.stores.postgres.ids``).
"""

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
Index(
    "ix_system_events_written_by_timestamp_id",
    _c.written_by,
    _c.timestamp.desc(),
    _c.id.desc(),
)
# The fold's steps and the live tails read rows in (ingest_xid, id) order.
Index("ix_system_events_ingest_xid_id", _c.ingest_xid, _c.id)
# Partial: most events belong to no trace, and those cost the index nothing.
Index("ix_system_events_trace_id", _c.trace_id, postgresql_where=_c.trace_id.is_not(None))
# Search (migration 0008): ``q`` by trigrams of the message as it is lowered
# for comparison (see sysevents.search), ``details.PATH=VALUE`` by containment.
Index(
    "ix_system_events_message_trgm",
    func.lower(_c.message.collate("und-x-icu")),
    postgresql_using="gin",
    postgresql_ops={"lower": "gin_trgm_ops"},
)
Index(
    "ix_system_events_details",
    _c.details,
    postgresql_using="gin",
    postgresql_ops={"details": "jsonb_path_ops"},
)


event_locator = Table(
    "system_event_locator",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("timestamp", DateTime(timezone=True), nullable=False),
)
"""The ``timestamp`` of each event whose id does not name its month: events
stored before partitioning, and events whose ``timestamp`` was changed to
another month."""
Index("ix_system_event_locator_timestamp", event_locator.c.timestamp)

idempotency_keys = Table(
    "system_event_keys",
    metadata,
    Column("caller", String(MAX_NAME_LENGTH), primary_key=True),
    Column("key", String(MAX_IDEMPOTENCY_KEY_LENGTH), primary_key=True),
    Column("id", BigInteger, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""Idempotency keys, each caller's once, for ``idempotency_window``: the event
table, partitioned by time, cannot hold a unique index on them."""
Index("ix_system_event_keys_created_at", idempotency_keys.c.created_at)


system_event_rollups = Table(
    "system_event_rollups",
    metadata,
    Column("level", SmallInteger, nullable=False),
    Column("bucket", DateTime(timezone=True), nullable=False),
    Column("event_type", String(MAX_EVENT_TYPE_LENGTH), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("source", String(MAX_SOURCE_LENGTH), nullable=False),
    Column("n", BigInteger, nullable=False),
    PrimaryKeyConstraint("level", "bucket", "event_type", "severity", "source"),
)
"""Event counts per (level, bucket, event_type, severity, source) of every row
below the watermark of ``system_event_rollup_state``.

The levels are those of ``sysevents.stores.postgres.rollups.Level``. Writers do not
touch this table: ``system_event_rollups_fold()`` counts the rows written
since the watermark, in the background; a change to a counted row (update,
delete, retention) corrects the counts in its own transaction. Statistics add
the rows past the watermark, read from the events.
"""

rollup_state = Table(
    "system_event_rollup_state",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("watermark", BigInteger, nullable=False),
    Column("watermark_id", BigInteger, nullable=False),
)
"""One row: every event below (``watermark``, ``watermark_id``) in (``ingest_xid``,
``id``) order is counted (migration 0010)."""


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

flags = Table(
    "sysevents_flags",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", Boolean, nullable=False),
)
"""Switches the database itself obeys: ``append_only`` (migration 0012) makes a trigger
refuse every change or removal of events but retention's."""

digests = Table(
    "sysevents_digests",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("after_xid", BigInteger, nullable=False),
    Column("after_id", BigInteger, nullable=False),
    Column("last_xid", BigInteger, nullable=False),
    Column("last_id", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("min_id", BigInteger, nullable=False),
    Column("max_id", BigInteger, nullable=False),
    Column("events_sha256", LargeBinary, nullable=False),
    Column("previous", LargeBinary, nullable=False),
    Column("sealed_at", DateTime(timezone=True), nullable=False),
    Column("next_xid", BigInteger, nullable=False),
    Column("key", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=True),
    Column("entries", LargeBinary, nullable=False),
)
"""The chain of sealed digests (migration 0013, ``sysevents.integrity``)."""
Index("ix_sysevents_digests_sealed_at", digests.c.sealed_at)
