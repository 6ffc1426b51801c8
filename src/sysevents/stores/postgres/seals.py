"""PostgreSQL's sealing side: rows in (``ingest_xid``, ``id``) order, digests in a table.

Fingerprints are computed by the database, in the statement that reads the
rows: the canonical form of ``sysevents.integrity.canonical`` written in SQL
(:func:`fingerprint_sql`, derived from ``sysevents.columns``), hashed with
``sha256``. Only the fingerprints travel, so sealing and verifying read a
few dozen bytes per event. The SQL is inline, from this module: no function
stored in the database takes part.
"""

# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, LiteralString

from sysevents.columns import COLUMNS, Column, Kind
from sysevents.integrity import Backdating, Difference, Digest, Entry, Horizon, Position, Run
from sysevents.model import Event
from sysevents.rules import MAX_EVENT_ID

from .pool import PostgresPool
from .rows import SELECT_LIST, event_rows, sql_name
from .tail import HORIZON

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SQL_TYPE: dict[Kind, LiteralString] = {
    Kind.ID: "bigint",
    Kind.TEXT: "text",
    Kind.SEVERITY: "text",
    Kind.JSON: "jsonb",
    Kind.TIME: "timestamptz",
}
_PREFIX: LiteralString = "'sysevents-event-v1' || chr(10)"  # canonical.PREFIX


def _item(column: Column, alias: LiteralString) -> LiteralString:
    name = alias + sql_name(column)
    if column.kind is Kind.TIME:
        return "(extract(epoch FROM " + name + ") * 1000000)::bigint"
    return name


def fingerprint_sql(alias: LiteralString = "") -> LiteralString:
    """The fingerprint of the event in the row (of the table aliased ``alias``), in SQL."""
    prefix: LiteralString = alias + "." if alias else ""
    items = ", ".join(_item(c, prefix) for c in COLUMNS)
    return (
        "substring(sha256(convert_to("
        + _PREFIX
        + " || json_build_array("
        + items
        + ")::text, 'UTF8')) FROM 1 FOR 16)"
    )


# A digest entry, packed as sysevents.integrity.digest.Entry packs it (the severities'
# order is Severity's; tests/test_integrity.py holds the two equal).
_SEVERITY_BYTE: LiteralString = (
    "CASE severity WHEN 'debug' THEN '\\x00'::bytea WHEN 'info' THEN '\\x01'::bytea "
    "WHEN 'warning' THEN '\\x02'::bytea WHEN 'error' THEN '\\x03'::bytea "
    "WHEN 'critical' THEN '\\x04'::bytea END"
)
_ENTRY: LiteralString = (
    'int8send(id) || int8send((extract(epoch FROM "timestamp") * 1000000)::bigint) || '
    + _SEVERITY_BYTE
    + " || fp || int2send(octet_length(event_type)::int2) || convert_to(event_type, 'UTF8')"
)
_AFTER: LiteralString = "ingest_xid >= %s AND (ingest_xid, id) > (%s, %s)"
# The next run to seal, packed by the database: only the entries travel.
_RUN: LiteralString = (
    'WITH run AS (SELECT ingest_xid, id, "timestamp", severity, event_type, '
    + fingerprint_sql()
    + " AS fp FROM system_events WHERE "
    + _AFTER
    + " AND ingest_xid < %s ORDER BY ingest_xid, id LIMIT %s) "
    "SELECT count(*), min(id), max(id), "
    "(array_agg(ingest_xid ORDER BY ingest_xid DESC, id DESC))[1], "
    "(array_agg(id ORDER BY ingest_xid DESC, id DESC))[1], "
    "string_agg(" + _ENTRY + ", ''::bytea ORDER BY ingest_xid, id) FROM run"
)
# The rows of a digest's range beside its entries; only the differences come back.
_DIFFERENCES: LiteralString = (
    "WITH sealed AS (SELECT * FROM unnest(%s::bigint[], %s::bytea[]) AS s (id, fp)), "
    "stored AS (SELECT id, "
    + fingerprint_sql()
    + " AS fp, ingest_xid >= %s AND created_at < %s AS backdated FROM system_events WHERE "
    + _AFTER
    + " AND ingest_xid <= %s AND (ingest_xid, id) <= (%s, %s)) "
    "SELECT coalesce(stored.id, sealed.id), CASE WHEN sealed.id IS NULL THEN 'added' "
    "WHEN stored.id IS NULL THEN 'removed' ELSE 'changed' END "
    "FROM stored FULL JOIN sealed ON stored.id = sealed.id "
    "WHERE stored.fp IS DISTINCT FROM sealed.fp "
    "UNION ALL SELECT id, 'backdated' FROM stored WHERE backdated"
)
_UNSEALED: LiteralString = (
    "SELECT count(*) FROM (SELECT 1 FROM system_events WHERE " + _AFTER + " LIMIT %s) AS waiting"
)
_OF_FIELDS: LiteralString = (
    "SELECT "
    + fingerprint_sql("e")
    + " FROM (SELECT "
    + ", ".join("%s::" + _SQL_TYPE[c.kind] + " AS " + sql_name(c) for c in COLUMNS)
    + ") AS e"
)
_DIGEST_COLUMNS: LiteralString = (
    "seq, after_xid, after_id, last_xid, last_id, count, min_id, max_id, events_sha256, "
    "previous, sealed_at, next_xid, key, signature, entries"
)
_ADD = (
    "INSERT INTO sysevents_digests ("
    + _DIGEST_COLUMNS
    + ") VALUES ("
    + ", ".join(["%s"] * 15)
    + ") ON CONFLICT (seq) DO NOTHING RETURNING seq"
)


def _digest(row: Sequence[Any]) -> Digest:
    return Digest(
        seq=row[0],
        after=(row[1], row[2]),
        last=(row[3], row[4]),
        count=row[5],
        min_id=row[6],
        max_id=row[7],
        events_sha256=bytes(row[8]),
        previous=bytes(row[9]),
        sealed_at=row[10],
        next_xid=row[11],
        key=row[12],
        signature=None if row[13] is None else bytes(row[13]),
        entries=bytes(row[14]),
    )


def _param(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.kind is Kind.JSON:
        return json.dumps(value)
    if column.kind is Kind.SEVERITY:
        return getattr(value, "value", value)
    return value


class PostgresSeals:
    """Seals a PostgreSQL store (see the module)."""

    def __init__(self, db: PostgresPool) -> None:
        self._db = db

    async def horizon(self) -> Horizon:
        """Every transaction of this database below ``below`` has ended (see ``tail.HORIZON``)."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT (" + HORIZON + "), pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
                "statement_timestamp()"
            )
            row = await cur.fetchone()
        assert row is not None
        return Horizon(below=int(row[0]), next_xid=int(row[1]), now=row[2])

    async def next_run(self, after: Position, *, below: int, limit: int) -> Run | None:
        """The next rows after ``after`` in (``ingest_xid``, ``id``) order, packed as entries."""
        async with self._db.connection() as conn:
            cur = await conn.execute(_RUN, [after[0], after[0], after[1], below, limit])
            row = await cur.fetchone()
        if row is None or not row[0]:
            return None
        return Run(bytes(row[5]), int(row[0]), int(row[1]), int(row[2]), (int(row[3]), int(row[4])))

    async def differences(
        self, digest: Digest, entries: Sequence[Entry], backdating: Backdating | None
    ) -> list[Difference]:
        """The rows of ``digest``'s range that differ from its entries, found by the database.

        One statement per digest: the database computes each row's
        fingerprint and joins the rows with the entries, and only the
        differences travel.
        """
        xid, before = (
            (MAX_EVENT_ID, _EPOCH) if backdating is None else (backdating.xid, backdating.before)
        )
        after, last = digest.after, digest.last
        params = [
            [e.id for e in entries],
            [e.fingerprint for e in entries],
            xid,
            before,
            after[0],
            after[0],
            after[1],
            last[0],
            last[0],
            last[1],
        ]
        async with self._db.connection() as conn:
            cur = await conn.execute(_DIFFERENCES, params)
            return [Difference(r[0], r[1]) for r in await cur.fetchall()]

    async def unsealed(self, after: Position, cap: int) -> int:
        """Rows after ``after`` in commit order (counted up to ``cap``)."""
        async with self._db.connection() as conn:
            cur = await conn.execute(_UNSEALED, [after[0], after[0], after[1], cap])
            row = await cur.fetchone()
        return 0 if row is None else int(row[0])

    async def last_digest(self) -> Digest | None:
        """The newest digest."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT " + _DIGEST_COLUMNS + " FROM sysevents_digests ORDER BY seq DESC LIMIT 1"
            )
            row = await cur.fetchone()
        return None if row is None else _digest(row)

    async def add_digest(self, digest: Digest) -> bool:
        """Insert a digest; ``False`` if its ``seq`` is taken."""
        params = [
            digest.seq,
            *digest.after,
            *digest.last,
            digest.count,
            digest.min_id,
            digest.max_id,
            digest.events_sha256,
            digest.previous,
            digest.sealed_at,
            digest.next_xid,
            digest.key,
            digest.signature,
            digest.entries,
        ]
        async with self._db.connection() as conn:
            cur = await conn.execute(_ADD, params)
            return await cur.fetchone() is not None

    async def digests(
        self, *, after: int = 0, limit: int = 1000, since: datetime | None = None
    ) -> list[Digest]:
        """Digests after ``after`` (sealed at ``since`` or later), in ``seq`` order."""
        statement: LiteralString = (
            "SELECT " + _DIGEST_COLUMNS + " FROM sysevents_digests WHERE seq > %s"
        )
        params: list[Any] = [after]
        if since is not None:
            statement += " AND sealed_at >= %s"
            params.append(since)
        async with self._db.connection() as conn:
            cur = await conn.execute(statement + " ORDER BY seq LIMIT %s", [*params, limit])
            return [_digest(r) for r in await cur.fetchall()]

    async def fingerprint_of(self, fields: dict[str, Any]) -> bytes:
        """The fingerprint of an event given by its fields, computed as for stored rows."""
        params = [_param(c, fields.get(c.name)) for c in COLUMNS]
        async with self._db.connection() as conn:
            cur = await conn.execute(_OF_FIELDS, params)
            row = await cur.fetchone()
        assert row is not None
        return bytes(row[0])

    async def own_records(self, event_types: Sequence[str]) -> list[Event]:
        """Every event of these types, oldest first."""
        async with self._db.connection() as conn, conn.cursor(row_factory=event_rows) as cur:
            await cur.execute(
                "SELECT " + SELECT_LIST + " FROM system_events WHERE event_type = ANY(%s) "
                "ORDER BY id",
                [list(event_types)],
            )
            return await cur.fetchall()

    async def event(self, event_id: int) -> Event | None:
        """One event as stored now (read by id alone: a changed timestamp moves it)."""
        async with self._db.connection() as conn, conn.cursor(row_factory=event_rows) as cur:
            await cur.execute(
                "SELECT " + SELECT_LIST + " FROM system_events WHERE id = %s", [event_id]
            )
            return await cur.fetchone()
