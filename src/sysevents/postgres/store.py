"""The PostgreSQL event store: the repository protocol on top of the pool and the SQL."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sysevents._base import Listing, RepositoryBase
from sysevents.audit import delete_record, update_record
from sysevents.errors import InvalidEventError, NotFoundError
from sysevents.model import Event, EventPatch, EventStats, NewEvent
from sysevents.query import EventFilter, EventQuery, page_total
from sysevents.rules import is_event_id

from . import sql
from .inserts import COPY_FROM, KeyTaken, copy_batch, insert_batch, insert_one
from .keys import PostgresKeyStore, database_secret
from .pool import Connection, PostgresPool

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from sysevents.settings import Settings


class PostgresEventRepository(RepositoryBase):
    """Events in the PostgreSQL table ``system_events`` (see ``sysevents.schema``).

    The connection options (``min_size``, ``max_size``, ``timeout``,
    ``reconnect_timeout``, ``prepare_threshold``, ``check_after_idle``) are
    those of :class:`~sysevents.postgres.pool.PostgresPool`: a database that is
    down or too slow raises ``StoreUnavailableError``, and the pool reconnects
    by itself when it returns.
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
        self.timeout = timeout
        self._db = PostgresPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            reconnect_timeout=reconnect_timeout,
            prepare_threshold=prepare_threshold,
            check_after_idle=check_after_idle,
        )
        self._secrets_loaded = False
        self.keys = PostgresKeyStore(self._db)
        """The API keys kept in this database (see ``sysevents.keys``)."""

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
            cursor_secret=settings.cursor_secrets,
            stats_top=settings.stats_top,
            append_only=settings.append_only,
        )

    # -- lifecycle ------------------------------------------------------------

    @property
    def pool(self) -> AsyncConnectionPool[Connection] | None:
        """The psycopg connection pool, once opened."""
        return self._db.pool

    async def open(self) -> None:
        """Start the pool without waiting for it: a database that is down does not fail this."""
        self._closed = False
        await self._db.open()

    async def close(self) -> None:
        """Close the pool; safe to call twice."""
        self._closed = True
        await self._db.close()

    # -- writes ---------------------------------------------------------------

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event."""
        self._ensure_open()
        self._check_sizes([new], loc_prefix=False)
        if new.idempotency_key is not None:
            return (await self._add_keyed([new], caller or ""))[0]
        async with self._db.connection() as conn:
            return await insert_one(conn, new)

    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events in one transaction: all or none, in the order given."""
        self._ensure_open()
        self._check_sizes(news, loc_prefix=True)
        if not news:
            return []
        keys = [n.idempotency_key for n in news if n.idempotency_key is not None]
        if len(news) >= COPY_FROM and len(set(keys)) == len(keys):
            try:
                async with self._db.transaction() as conn:
                    return await copy_batch(conn, news, caller or "")
            except KeyTaken:
                pass  # a key is stored already (a retried batch): the path below reads it
        if not keys:
            async with self._db.connection() as conn:  # one statement: atomic by itself
                return await insert_batch(conn, news)
        return await self._add_keyed(news, caller or "")

    async def _add_keyed(self, news: Sequence[NewEvent], caller: str) -> builtins.list[Event]:
        # In a transaction: a key reused with another event rolls the batch back.
        async with (
            self._db.connection() as conn,
            conn.pipeline(),  # BEGIN rides with the INSERT
            conn.transaction(),
        ):
            return await insert_batch(conn, news, caller)

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the given fields; ``id`` and ``created_at`` never change.

        With an ``actor``, the change is recorded as an audit event in the same
        transaction (see ``sysevents.audit``).
        """
        self._ensure_open()
        self._check_changes_allowed()
        if not is_event_id(event_id):
            raise NotFoundError(event_id)
        try:
            self._check_sizes([patch], loc_prefix=False)
        except InvalidEventError:
            # A missing event is reported first, as by every backend.
            if await self.get(event_id) is None:
                raise NotFoundError(event_id) from None
            raise
        statement = sql.update_statement(event_id, patch)
        if statement is None:
            current = await self.get(event_id)
            if current is None:
                raise NotFoundError(event_id)
            return current
        if actor is None:
            async with self._db.connection() as conn:
                cur = await conn.execute(statement.sql, statement.params)
                row = await cur.fetchone()
            if row is None:
                raise NotFoundError(event_id)
            return sql.event_from_row(row)
        async with self._db.transaction() as conn:
            cur = await conn.execute(sql.GET_FOR_UPDATE, (event_id,))
            old = await cur.fetchone()
            if old is None:
                raise NotFoundError(event_id)
            cur = await conn.execute(statement.sql, statement.params)
            row = await cur.fetchone()
            assert row is not None
            before, after = sql.event_from_row(old), sql.event_from_row(row)
            await insert_one(conn, update_record(before, after, actor))
        return after

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event; with an ``actor``, record it in the same transaction."""
        self._ensure_open()
        self._check_changes_allowed()
        if not is_event_id(event_id):
            raise NotFoundError(event_id)
        if actor is None:
            async with self._db.connection() as conn:
                cur = await conn.execute(sql.DELETE, (event_id,))
                deleted = cur.rowcount
            if deleted == 0:
                raise NotFoundError(event_id)
            return
        async with self._db.transaction() as conn:
            cur = await conn.execute(sql.DELETE_RETURNING, (event_id,))
            row = await cur.fetchone()
            if row is None:
                raise NotFoundError(event_id)
            await insert_one(conn, delete_record(sql.event_from_row(row), actor))

    # -- reads ----------------------------------------------------------------

    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None``."""
        self._ensure_open()
        if not is_event_id(event_id):
            return None
        async with self._db.connection() as conn:
            cur = await conn.execute(sql.GET, (event_id,))
            row = await cur.fetchone()
        return None if row is None else sql.event_from_row(row)

    async def _listing(self, query: EventQuery) -> Listing:
        """The rows of one page (newest or oldest first by (timestamp, id)), and the count."""
        if not self._secrets_given and not self._secrets_loaded:
            # The database's own cursor secret: every replica signs alike.
            self._secrets = [(await database_secret(self._db, "cursor")).encode()]
            self._secrets_loaded = True
        page = sql.page_statement(query, self._position(query))
        count = sql.count_statement(query, self.count_cap)
        counted: int | None = None
        async with self._db.connection() as conn:
            if count is None:
                cur = await conn.execute(page.sql, page.params, prepare=False)
                rows = await cur.fetchall()
            else:
                async with conn.pipeline():
                    page_cur = await conn.execute(page.sql, page.params, prepare=False)
                    count_cur = await conn.execute(count.sql, count.params, prepare=False)
                rows = await page_cur.fetchall()
                count_row = await count_cur.fetchone()
                assert count_row is not None
                counted = int(count_row[0])
        total, exact = page_total(query.count, counted, self.count_cap)
        return Listing([sql.event_from_row(row) for row in rows], total, exact)

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the matching events, from the rollups and the raw edges of the range.

        Everything is read by one statement, so from one snapshot.
        """
        self._ensure_open()
        statement = sql.stats_statement(query or EventFilter())
        async with self._db.connection() as conn:
            cur = await conn.execute(statement.sql, statement.params, prepare=False)
            rows = await cur.fetchall()
        return sql.stats_from_rows(rows, self.stats_top)

    async def ping(self) -> None:
        """Check the database answers and is migrated; ``StoreUnavailableError`` if not."""
        self._ensure_open()
        async with self._db.connection() as conn:
            await conn.execute(sql.PING)
