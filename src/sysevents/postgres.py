"""The PostgreSQL event store: raw psycopg 3 SQL over an async connection pool."""

# SQL is assembled only from LiteralString fragments (mypy checks it); every
# value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, LiteralString
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed

from ._base import RepositoryBase
from ._rollups import stats_from_rows, stats_statement
from .errors import InvalidEventError, NotFoundError, StoreError, StoreUnavailableError
from .model import (
    MAX_EVENT_ID,
    Event,
    EventFilter,
    EventPage,
    EventPatch,
    EventQuery,
    EventStats,
    NewEvent,
    Severity,
)

if TYPE_CHECKING:
    from .settings import Settings

Row = tuple[Any, ...]
Connection = psycopg.AsyncConnection[Row]

_COLUMNS = (
    'id, event_type, severity, message, details, source, "timestamp", created_at, idempotency_key'
)
_SEVERITY = {s.value: s for s in Severity}
# Columns an EventPatch may set, and the SQL placeholder each takes.
_SETTERS: dict[str, LiteralString] = {
    "event_type": "event_type = %s",
    "severity": "severity = %s",
    "message": "message = %s",
    "details": "details = %s::jsonb",
    "source": "source = %s",
    "timestamp": '"timestamp" = %s',
}

_INSERT_ONE = (
    'INSERT INTO system_events (event_type, severity, message, details, source, "timestamp") '
    "VALUES (%s, %s, %s, %s::jsonb, %s, %s) RETURNING " + _COLUMNS
)
# One statement, so one round trip and atomic; ORDER BY ord makes the identity
# values follow the input order. Within the batch the first event of a key wins;
# a key already stored is read afterwards (rare: a retried batch), which costs
# less than looking every key up in the same statement.
_INSERT_MANY = (
    "WITH input AS (SELECT t.*, row_number() OVER (PARTITION BY t.key ORDER BY t.ord) AS nth "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::timestamptz[], %s::text[]) WITH ORDINALITY "
    "AS t(event_type, severity, message, details, source, ts, key, ord)) "
    "INSERT INTO system_events "
    '(event_type, severity, message, details, source, "timestamp", idempotency_key) '
    "SELECT event_type, severity, message, details::jsonb, source, ts, key FROM input "
    "WHERE key IS NULL OR nth = 1 ORDER BY ord "
    "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
    # The rest of each stored event is what was sent: nothing else is read back.
    "RETURNING id, idempotency_key, created_at"
)
# Batches this large (and without idempotency keys) go by COPY: faster than a
# multi-row INSERT once the rows outnumber the extra round trips.
_COPY_FROM = 64
# The ids drawn are returned as a range when they are contiguous (nobody else
# drew one meanwhile), and only otherwise as the whole list.
_DRAW_IDS = (
    "SELECT now(), min(id), CASE WHEN max(id) - min(id) + 1 = count(*) THEN NULL "
    "ELSE array_agg(id ORDER BY id) END FROM (SELECT "
    "nextval(pg_get_serial_sequence('system_events', 'id')) AS id "
    "FROM generate_series(1, %s)) AS drawn"
)
_COPY = (
    "COPY system_events "
    '(id, event_type, severity, message, details, source, "timestamp", idempotency_key) '
    "FROM STDIN"
)
_BY_KEYS = "SELECT " + _COLUMNS + " FROM system_events WHERE idempotency_key = ANY(%s::text[])"
# A key already stored, or stored by a concurrent writer during the insert, is
# not returned by _INSERT_MANY: it is read (and, if deleted meanwhile, inserted again).
_KEY_ATTEMPTS = 5


class _KeyTaken(Exception):
    """A COPY met an idempotency key that is already stored."""


def _in_range(event_id: int) -> bool:
    # Ids outside bigint would be sent as numeric (a table scan) or overflow.
    return 0 < event_id <= MAX_EVENT_ID


# What Event.model_construct does when every field is given, without its
# per-field alias and default lookups: a fifth of the cost, which counts at a
# thousand events a call. Only for a model with nothing to run after init.
_FAST_EVENT = (
    tuple(Event.model_fields)
    == (
        "id",
        "event_type",
        "severity",
        "message",
        "details",
        "source",
        "timestamp",
        "created_at",
        "idempotency_key",
    )
    and not Event.__pydantic_post_init__
    and not Event.__private_attributes__
)
_EVENT_FIELDS = frozenset(Event.model_fields)
_new_object = object.__new__
_set_attribute = object.__setattr__


def _new_event(values: dict[str, Any]) -> Event:
    """An Event from values already valid (read from the table, or validated as stored)."""
    if not _FAST_EVENT:  # pragma: no cover - a model that needs the full path
        return Event.model_construct(**values)
    event: Event = _new_object(Event)
    _set_attribute(event, "__dict__", values)
    _set_attribute(event, "__pydantic_fields_set__", set(_EVENT_FIELDS))
    _set_attribute(event, "__pydantic_extra__", None)
    _set_attribute(event, "__pydantic_private__", None)
    return event


_FLAT = (str, int, float, bool, type(None))


def _own_copy(
    details: dict[str, Any] | None, text: str, loads: Callable[[str], Any]
) -> dict[str, Any] | None:
    """A copy of validated ``details`` that shares nothing mutable with them."""
    if details is not None and all(isinstance(v, _FLAT) for v in details.values()):
        return dict(details)
    return loads(text)  # type: ignore[no-any-return]


def _event(row: Row) -> Event:
    return _new_event(
        {
            "id": row[0],
            "event_type": row[1],
            "severity": _SEVERITY[row[2]],
            "message": row[3],
            "details": row[4],
            "source": row[5],
            "timestamp": row[6],
            "created_at": row[7],
            "idempotency_key": row[8],
        }
    )


def _as_stored(new: NewEvent, event_id: int, created_at: datetime) -> Event:
    """The event as stored from ``new``: its values are already as PostgreSQL keeps them.

    The caller gets its own copy of the details, as from a read.
    """
    text = new.details_json
    return _new_event(
        {
            "id": event_id,
            "event_type": new.event_type,
            "severity": new.severity,
            "message": new.message,
            "details": None if text is None else _own_copy(new.details, text, json.loads),
            "source": new.source,
            "timestamp": new.timestamp,
            "created_at": created_at,
            "idempotency_key": new.idempotency_key,
        }
    )


def _batch_params(news: Sequence[NewEvent]) -> tuple[list[Any], ...]:
    """The arrays ``_INSERT_MANY`` unnests, one per column."""
    return (
        [n.event_type for n in news],
        [n.severity.value for n in news],
        [n.message for n in news],
        [n.details_json for n in news],
        [n.source for n in news],
        [n.timestamp for n in news],
        [n.idempotency_key for n in news],
    )


def _where(f: EventFilter, *, times: bool = True) -> tuple[list[LiteralString], list[Any]]:
    """SQL conditions (joined by AND) and their parameters for the filters of ``f``.

    ``times=False`` leaves out ``since`` and ``until``.
    """
    clauses: list[LiteralString] = []
    params: list[Any] = []
    if f.event_type is not None:
        if len(f.event_type) == 1:
            clauses.append("event_type = %s")
            params.append(f.event_type[0])
        else:
            clauses.append("event_type = ANY(%s::text[])")
            params.append(list(f.event_type))
    severities = f.severities()
    if severities is not None:
        if len(severities) == 1:
            clauses.append("severity = %s")
            params.append(severities[0].value)
        else:
            clauses.append("severity = ANY(%s::text[])")
            params.append([s.value for s in severities])
    if f.source is not None:
        clauses.append("source = %s")
        params.append(f.source)
    if times and f.since is not None:
        clauses.append('"timestamp" >= %s')
        params.append(f.since)
    if times and f.until is not None:
        clauses.append('"timestamp" < %s')
        params.append(f.until)
    return clauses, params


def _sql_where(clauses: list[LiteralString]) -> LiteralString:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def _conninfo(url: str) -> str:
    """``url`` as libpq takes it: ``postgresql+psycopg://`` loses its driver suffix."""
    parts = urlsplit(url)
    if "+" in parts.scheme:
        return urlunsplit(parts._replace(scheme=parts.scheme.partition("+")[0]))
    return url


class PostgresEventRepository(RepositoryBase):
    """Events in the PostgreSQL table ``system_events`` (see ``sysevents.schema``).

    ``timeout`` bounds every call: waiting for a pooled connection, the
    statement itself (``statement_timeout``) and connecting. A database that is
    down or too slow raises ``StoreUnavailableError``; the pool reconnects by
    itself when it returns. ``reconnect_timeout`` is how long the pool retries a
    lost connection in the background (with growing pauses) before leaving it
    to the next request: kept short, so that recovery does not wait out a long
    pause. ``prepare_threshold=None`` suits PgBouncer in transaction mode.

    A pooled connection idle for more than ``check_after_idle`` seconds is
    checked (an empty query) before it is handed out, so that connections the
    server dropped while they sat in the pool (a restart) never surface as
    errors. One used moments ago is not: under load the check would double the
    round trips of every call. ``0`` checks every time.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        timeout: float = 5.0,
        reconnect_timeout: float = 5.0,
        prepare_threshold: int | None = 5,
        check_after_idle: float = 0.25,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self.reconnect_timeout = reconnect_timeout
        self.prepare_threshold = prepare_threshold
        self.check_after_idle = check_after_idle
        self._returned: dict[int, float] = {}
        self._pool: AsyncConnectionPool[Connection] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresEventRepository:
        """A repository configured by ``settings``."""
        return cls(
            settings.database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.timeout,
            limits=settings.limits,
            count_cap=settings.count_cap,
            cursor_secret=settings.cursor_secret,
        )

    # -- lifecycle ------------------------------------------------------------

    @property
    def pool(self) -> AsyncConnectionPool[Connection] | None:
        """The connection pool, once opened."""
        return self._pool

    async def open(self) -> None:
        """Start the pool without waiting for it: a database that is down does not fail this.

        Connections are made in the background and retried until the database answers.
        """
        self._closed = False
        if self._pool is not None:
            return
        statement_ms = max(1, math.ceil(self.timeout * 1000))
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            _conninfo(self.url),
            open=False,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            reconnect_timeout=self.reconnect_timeout,
            check=self._check,
            # No reset callback: with one, the pool hands every returned
            # connection to a worker task (a queue hop per call, and the
            # connection comes back later); _connection stamps returns itself.
            configure=self._configure,
            name="sysevents",
            kwargs={
                "autocommit": True,
                "prepare_threshold": self.prepare_threshold,
                # libpq takes whole seconds, and treats less than 2 as 2.
                "connect_timeout": max(2, math.ceil(self.timeout)),
                "application_name": "sysevents",
                # Lists and stats run unprepared (custom plans: their filters are
                # skewed, and a generic plan was much slower for them); lookups by
                # id and inserts are prepared, planned once.
                "options": f"-c statement_timeout={statement_ms} -c TimeZone=UTC",
            },
        )
        self._pool = pool
        try:
            await pool.open(wait=False)
        except psycopg.Error as exc:  # pragma: no cover - open(wait=False) does not connect
            self._pool = None
            raise StoreUnavailableError(f"cannot open the connection pool: {exc}") from exc

    async def _check(self, conn: Connection) -> None:
        returned = self._returned.pop(id(conn), None)
        if returned is None or time.monotonic() - returned > self.check_after_idle:
            await AsyncConnectionPool.check_connection(conn)

    def _stamp_return(self, conn: Connection) -> None:
        if len(self._returned) > 4 * self.max_size:
            self._returned.clear()  # stamps of connections closed while idle: all checked again
        self._returned[id(conn)] = time.monotonic()

    async def _configure(self, conn: Connection) -> None:
        # Loaded as plain UTC datetimes, whatever the server's TimeZone.
        if conn.info.timezone.utcoffset(None) != timedelta(0):  # pragma: no cover
            await conn.execute("SET TimeZone = 'UTC'")

    async def close(self) -> None:
        """Close the pool; safe to call twice."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=self.timeout)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """A pooled connection; every driver error is translated here, and only here."""
        self._ensure_open()
        if self._pool is None:
            await self.open()
        pool = self._pool
        assert pool is not None
        taken: Connection | None = None
        try:
            async with asyncio.timeout(self.timeout), pool.connection() as conn:
                taken = conn
                yield conn
        except PoolClosed as exc:
            raise StoreUnavailableError("the repository is closed") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailableError(f"PostgreSQL is unavailable: {exc}") from exc
        except TimeoutError as exc:
            raise StoreUnavailableError(
                f"PostgreSQL did not answer within {self.timeout:g} s"
            ) from exc
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            # A database nobody migrated: unusable until someone does, and the
            # one thing to say is how.
            raise StoreUnavailableError(
                "the sysevents tables are missing or out of date in this database: "
                "run `sysevents migrate --database-url ...`"
            ) from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL failed: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise StoreUnavailableError(f"PostgreSQL is unreachable: {exc}") from exc
        finally:
            if taken is not None:
                # Back in the pool already (putconn does not wait): used just now.
                self._stamp_return(taken)

    # -- writes ---------------------------------------------------------------

    async def add(self, new: NewEvent) -> Event:
        """Store one event."""
        self._ensure_open()
        self._check_sizes([new], loc_prefix=False)
        if new.idempotency_key is not None:
            return (await self._add_batch([new]))[0]
        params = (
            new.event_type,
            new.severity.value,
            new.message,
            new.details_json,
            new.source,
            new.timestamp,
        )
        async with self._connection() as conn:
            cur = await conn.execute(_INSERT_ONE, params)
            row = await cur.fetchone()
        assert row is not None
        return _event(row)

    async def add_many(self, news: Sequence[NewEvent]) -> list[Event]:
        """Store several events in one transaction: all or none, in the order given."""
        self._ensure_open()
        self._check_sizes(news, loc_prefix=True)
        if not news:
            return []
        if len(news) < _COPY_FROM:
            return await self._add_batch(news)
        keys = [n.idempotency_key for n in news if n.idempotency_key is not None]
        if len(set(keys)) < len(keys):
            return await self._add_batch(news)  # the first event of a key wins
        try:
            return await self._copy_batch(news)
        except _KeyTaken:
            # A key is stored already (a retried batch): the slow path returns
            # the stored events for those keys and stores the rest.
            return await self._add_batch(news)

    async def _copy_batch(self, news: Sequence[NewEvent]) -> list[Event]:
        """COPY the events with ids drawn beforehand: nothing needs to be read back.

        Raises ``_KeyTaken``, having stored nothing, if an idempotency key is
        already in the table.

        The ids come from the table's own identity sequence, in input order; the
        stored values are those of ``news`` (validated as PostgreSQL keeps them)
        and ``created_at`` is the transaction's ``now()``, the column default.
        """
        texts = [n.details_json for n in news]
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(_DRAW_IDS, (len(news),))
            drawn = await cur.fetchone()
            assert drawn is not None
            created_at, first, listed = drawn
            ids = range(first, first + len(news)) if listed is None else listed
            try:
                async with conn.cursor() as copy_cur, copy_cur.copy(_COPY) as copy:
                    write = copy.write_row
                    for event_id, n, text in zip(ids, news, texts, strict=True):
                        await write(
                            (
                                event_id,
                                n.event_type,
                                n.severity.value,
                                n.message,
                                text,
                                n.source,
                                n.timestamp,
                                n.idempotency_key,
                            )
                        )
            except psycopg.errors.UniqueViolation as exc:
                raise _KeyTaken from exc  # the transaction is rolled back: nothing stored
        return [_as_stored(n, event_id, created_at) for event_id, n in zip(ids, news, strict=True)]

    async def _add_batch(self, news: Sequence[NewEvent]) -> list[Event]:
        # Within the batch the first event of a key is the one stored.
        first_of_key = {n.idempotency_key: n for n in reversed(news) if n.idempotency_key}
        keys = list(dict.fromkeys(n.idempotency_key for n in news if n.idempotency_key))
        async with self._connection() as conn:
            cur = await conn.execute(_INSERT_MANY, _batch_params(news))
            rows = await cur.fetchall()
            by_key = {
                key: _as_stored(first_of_key[key], event_id, created_at)
                for event_id, key, created_at in rows
                if key is not None
            }
            missing = [k for k in keys if k not in by_key]
            for _ in range(_KEY_ATTEMPTS):
                if not missing:
                    break
                cur = await conn.execute(_BY_KEYS, (missing,))
                by_key.update((row[8], _event(row)) for row in await cur.fetchall())
                lost = [first_of_key[k] for k in missing if k not in by_key]
                if lost:
                    cur = await conn.execute(_INSERT_MANY, _batch_params(lost))
                    by_key.update(
                        (key, _as_stored(first_of_key[key], event_id, created_at))
                        for event_id, key, created_at in await cur.fetchall()
                    )
                missing = [k for k in keys if k not in by_key]
            if missing:
                raise StoreError(f"could not store or read events with keys {missing[:5]}")
        # Unkeyed events got their ids in input order.
        plain = iter(sorted((row for row in rows if row[1] is None), key=lambda row: row[0]))
        events = []
        for n in news:
            if n.idempotency_key:
                events.append(by_key[n.idempotency_key])
            else:
                event_id, _, created_at = next(plain)
                events.append(_as_stored(n, event_id, created_at))
        return events

    async def update(self, event_id: int, patch: EventPatch) -> Event:
        """Change the given fields; ``id`` and ``created_at`` never change."""
        self._ensure_open()
        if not _in_range(event_id):
            raise NotFoundError(event_id)
        try:
            self._check_sizes([patch], loc_prefix=False)
        except InvalidEventError:
            # A missing event is reported first, as by every backend.
            if await self.get(event_id) is None:
                raise NotFoundError(event_id) from None
            raise
        changes = patch.changes()
        if not changes:
            current = await self.get(event_id)
            if current is None:
                raise NotFoundError(event_id)
            return current
        setters: list[LiteralString] = []
        params: list[Any] = []
        for name in _SETTERS:
            if name not in changes:
                continue
            setters.append(_SETTERS[name])
            value = changes[name]
            if name == "details":
                value = patch.details_json
            elif name == "severity":
                value = value.value
            params.append(value)
        params.append(event_id)
        sql: LiteralString = (
            "UPDATE system_events SET "
            + ", ".join(setters)
            + " WHERE id = %s RETURNING "
            + _COLUMNS
        )
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError(event_id)
        return _event(row)

    async def delete(self, event_id: int) -> None:
        """Remove the event."""
        self._ensure_open()
        if not _in_range(event_id):
            raise NotFoundError(event_id)
        async with self._connection() as conn:
            cur = await conn.execute("DELETE FROM system_events WHERE id = %s", (event_id,))
            deleted = cur.rowcount
        if deleted == 0:
            raise NotFoundError(event_id)

    # -- reads ----------------------------------------------------------------

    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None``."""
        self._ensure_open()
        if not _in_range(event_id):
            return None
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT " + _COLUMNS + " FROM system_events WHERE id = %s", (event_id,)
            )
            row = await cur.fetchone()
        return None if row is None else _event(row)

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of matching events, newest or oldest first by (timestamp, id)."""
        self._ensure_open()
        query = query or EventQuery()
        position = self._position(query)
        clauses, params = _where(query)
        count_sql: LiteralString | None = None
        count_params: list[Any] = list(params)
        if query.count == "exact":
            count_sql = "SELECT count(*) FROM system_events" + _sql_where(clauses)
        elif query.count == "capped":
            # Counting stops one past the cap: enough to know the total is not exact.
            count_sql = (
                "SELECT count(*) FROM (SELECT 1 FROM system_events"
                + _sql_where(clauses)
                + " LIMIT %s) AS capped"
            )
            count_params.append(self.count_cap + 1)

        newest = query.order == "newest"
        if position is not None:
            ts, last_id = position
            # The plain timestamp bound lets the planner use the index range.
            if newest:
                clauses = [*clauses, '"timestamp" <= %s', '("timestamp", id) < (%s, %s)']
            else:
                clauses = [*clauses, '"timestamp" >= %s', '("timestamp", id) > (%s, %s)']
            params = [*params, ts, ts, last_id]
        order: LiteralString = '"timestamp" DESC, id DESC' if newest else '"timestamp", id'
        page_sql: LiteralString = (
            "SELECT "
            + _COLUMNS
            + " FROM system_events"
            + _sql_where(clauses)
            + " ORDER BY "
            + order
            + " LIMIT %s OFFSET %s"
        )
        params = [*params, query.limit + 1, query.offset]

        counted: int | None = None
        async with self._connection() as conn:
            if count_sql is None:
                cur = await conn.execute(page_sql, params, prepare=False)
                rows = await cur.fetchall()
            else:
                async with conn.pipeline():
                    page_cur = await conn.execute(page_sql, params, prepare=False)
                    count_cur = await conn.execute(count_sql, count_params, prepare=False)
                rows = await page_cur.fetchall()
                count_row = await count_cur.fetchone()
                assert count_row is not None
                counted = int(count_row[0])

        total: int | None = None
        exact = False
        if query.count == "exact":
            total, exact = counted, True
        elif query.count == "capped":
            assert counted is not None
            exact = counted <= self.count_cap
            total = counted if exact else self.count_cap
        return self._page(query, [_event(row) for row in rows], total, exact)

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the matching events, from the rollups and the raw edges of the range.

        Whole hours, days and months come from ``system_event_rollups``; only the
        partial hours at the edges of each range are counted from the events
        themselves. Everything is read by one statement, so from one snapshot.
        """
        self._ensure_open()
        query = query or EventFilter()
        clauses, params = _where(query, times=False)
        time_clauses, time_params = _where(query)
        edge_clauses, edge_params = clauses, params
        if query.event_type is not None and query.severities() is None:
            # Every severity, spelled out: the edge hours of a type are then range
            # scans of the (type, severity, timestamp) index, counts index-only,
            # instead of every event of the hour read and filtered.
            edge_clauses = [*clauses, "severity = ANY(%s::text[])"]
            edge_params = [*params, [s.value for s in Severity]]
        sql, args = stats_statement(
            query,
            clauses,
            params,
            "FROM system_events" + _sql_where(time_clauses),
            time_params,
            edge_clauses,
            edge_params,
        )
        async with self._connection() as conn:
            cur = await conn.execute(sql, args, prepare=False)
            rows = await cur.fetchall()
        return stats_from_rows(rows)

    async def ping(self) -> None:
        """Check the database answers and is migrated; ``StoreUnavailableError`` if not."""
        async with self._connection() as conn:
            # Reads no row, but fails on a database without the table.
            await conn.execute("SELECT 1 FROM system_events LIMIT 0")
