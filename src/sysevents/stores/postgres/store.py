"""The PostgreSQL event store: the repository protocol on top of the pool and the SQL."""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from sysevents.errors import InvalidEventError, NotFoundError
from sysevents.histogram import EventHistogram, plan_histogram
from sysevents.model import Event, EventPatch, EventStats, NewEvent
from sysevents.query import EventFilter, EventQuery, page_total
from sysevents.rules import is_event_id
from sysevents.settings import Settings
from sysevents.store import PoolStats, ReplicaState
from sysevents.stores.base import Listing, check_caller
from sysevents.tail import Tailed

from . import changes, sql
from .background import PostgresBackground
from .byid import read_by_id
from .fanout import TailHub, follow_hub
from .fold import Watermark
from .histogram import histogram_statement
from .keys import PostgresKeyStore, database_secret
from .pages import read_page
from .partitions import history_end
from .pool import Connection, ConnectionWaits, PostgresPool
from .replicas import ReplicaSet, reading
from .series import known_series
from .tail import Listener, Position, parse_position

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("sysevents.stores.postgres")


class PostgresEventRepository(PostgresBackground):
    """Events in the PostgreSQL table ``system_events`` (see ``sysevents.schema``).

    Configured by ``settings`` (``url`` is their ``database_url``) and
    ``overrides`` of their fields: ``PostgresEventRepository(url, timeout=2)``.
    The pool (``pool_min_size`` to ``pool_max_size`` connections) is a
    :class:`~sysevents.stores.postgres.pool.PostgresPool`: a database that is
    down or slower than ``timeout`` raises ``StoreUnavailableError``, and the
    pool reconnects by itself when it returns.

    While open, it folds the rows written since the last fold into the
    rollups every ``fold_interval`` seconds, in steps of ``fold_step`` rows
    (one process at a time does; ``0``: never). Statistics are exact either
    way; folding keeps them fast. That work, sealing and the maintenance
    calls are its base's (``sysevents.stores.postgres.background``).

    Live tails (:meth:`follow`) are fed by one reader of new rows per
    repository, woken by ``NOTIFY`` and polling every ``tail_poll`` seconds
    besides (see ``sysevents.stores.postgres.tail`` and ``.fanout``).
    """

    def __init__(
        self, url: str | None = None, settings: Settings | None = None, **overrides: Any
    ) -> None:
        if url is not None:
            overrides["database_url"] = url
        super().__init__(settings, **overrides)
        settings = self.settings
        self.url = settings.database_url
        self.tail_poll = settings.tail_poll
        self._listener: Listener | None = None
        self._hub: TailHub | None = None
        self.timeout = settings.timeout
        self.fold_interval = settings.fold_interval
        self._history_end = None
        self._history_read = False
        self._db = PostgresPool(
            self.url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.timeout,
            write_reserve=settings.pool_write_reserve,
            # An append-only store makes the database refuse changes too (migration 0012).
            on_connect=[sql.APPEND_ONLY_ON] if settings.append_only else [],
        )
        self._secrets_loaded = False
        self._api_keys = PostgresKeyStore(self._db)
        self._prepare_background(self.url, settings)
        self._replicas = (
            ReplicaSet(
                list(settings.read_database_url),
                timeout=settings.timeout,
                max_lag=settings.max_replica_lag,
                max_size=settings.pool_max_size,
            )
            if settings.read_database_url
            else None
        )

    # -- lifecycle ------------------------------------------------------------

    @property
    def keys(self) -> PostgresKeyStore:
        """The API keys kept in this database (see ``sysevents.keys``)."""
        return self._api_keys

    @property
    def pool(self) -> AsyncConnectionPool[Connection] | None:
        """The psycopg connection pool, once opened."""
        return self._db.pool

    def pool_stats(self) -> PoolStats | None:
        """The connections open and idle, once the pool is open."""
        pool = self._db.pool
        if pool is None:
            return None
        stats = pool.get_stats()
        return PoolStats(
            size=stats["pool_size"],
            idle=stats["pool_available"],
            reads_in_use=self._db.reads_in_use,
            reads_waiting=self._db.reads_waiting,
        )

    @property
    def waits(self) -> ConnectionWaits:
        """The longest waits for a pooled connection, reads and writes apart."""
        return self._db.waits

    def replicas(self) -> builtins.list[ReplicaState]:
        """The read replicas (``read_database_url``), as last seen."""
        return [] if self._replicas is None else self._replicas.states()

    async def open(self) -> None:
        """Start the pool without waiting for it: a database that is down does not fail this."""
        self._closed = False
        await self._db.open()
        if self._replicas is not None:
            await self._replicas.open()
        self._start_background()

    async def close(self) -> None:
        """Close the pool; safe to call twice."""
        self._closed = True
        listener, self._listener = self._listener, None
        hub, self._hub = self._hub, None
        if hub is not None:
            await hub.stop()
        if listener is not None:
            await listener.stop()
        await self._stop_background()
        if self._replicas is not None:
            await self._replicas.close()
        await self._db.close()

    async def known_series(
        self, pairs: Sequence[tuple[str, str | None]]
    ) -> set[tuple[str, str | None]]:
        """Those (event_type, source) pairs some stored event has."""
        self._ensure_open()
        async with self._db.connection() as conn:
            return await known_series(conn, pairs)

    # -- writes ---------------------------------------------------------------

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event."""
        self._ensure_open()
        self._check_written([new], loc_prefix=False)
        event = await changes.add_one(self._db, new, check_caller(caller), self._window)
        await self._wrote()
        return event

    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events in one transaction: all or none, in the order given."""
        self._ensure_open()
        self._check_written(news, loc_prefix=True)
        who = check_caller(caller)
        if not news:
            return []
        events = await changes.add_batch(self._db, news, who, self._window)
        await self._wrote()
        return events

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
            self._check_written([patch], loc_prefix=False)
        except InvalidEventError:
            # A missing event is reported first, as by every backend.
            if await self.get(event_id) is None:
                raise NotFoundError(event_id) from None
            raise
        if not patch.changes():
            current = await self.get(event_id)
            if current is None:
                raise NotFoundError(event_id)
            return current
        event = await changes.update(self._db, event_id, patch, actor)
        await self._wrote()
        return event

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event; with an ``actor``, record it in the same transaction."""
        self._ensure_open()
        self._check_changes_allowed()
        if not is_event_id(event_id):
            raise NotFoundError(event_id)
        await changes.delete(self._db, event_id, actor)
        await self._wrote()

    async def _wrote(self) -> None:
        """With read replicas, note where the write just made is in the log (read-your-writes)."""
        if self._replicas is not None:
            await self._replicas.note_write(self._db)

    # -- reads ----------------------------------------------------------------

    def _reading(self) -> AbstractAsyncContextManager[tuple[Connection, Watermark]]:
        """A connection for a read (a replica's where one may serve it), and its watermarks."""
        return reading(self._db, self._replicas, self._folder.mark)

    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None``; reads one partition."""
        self._ensure_open()
        if not is_event_id(event_id):
            return None
        async with self._db.connection(read=True) as conn:
            if not self._history_read:
                self._history_end, self._history_read = await history_end(conn), True
            row = await read_by_id(conn, event_id, sql.SELECTED, self._history_end)
        return None if row is None else row.event

    async def _listing(self, query: EventQuery) -> Listing:
        """The rows of one page (newest or oldest first by (timestamp, id)), and the count."""
        if not self._secrets_given and not self._secrets_loaded:
            # The database's own cursor secret: every replica signs alike.
            self._secrets = [(await database_secret(self._db, "cursor")).encode()]
            self._secrets_loaded = True
        async with self._reading() as (conn, _):
            rows, counted = await read_page(conn, query, self._position(query), self.count_cap)
        total, exact = page_total(query.count, counted, self.count_cap)
        return Listing(rows, total, exact)

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the matching events, from the rollups and the raw edges of the range.

        Everything is read by one statement, so from one snapshot.
        """
        self._ensure_open()
        async with self._reading() as (conn, marks):
            mark = await marks.known(conn)
            statement = sql.stats_statement(query or EventFilter(), mark)
            cur = await conn.execute(statement.sql, statement.params, prepare=False)
            rows = await cur.fetchall()
        stats, mark = sql.stats_from_rows(rows, self.stats_top)
        marks.learn(mark)
        return stats

    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts by severity per bucket: hours and days from the rollups, like stats.

        Minute buckets, and searches (``q``, ``details``), count the rows of the range.
        """
        self._ensure_open()
        query = query or EventFilter()
        plan = plan_histogram(query, interval)
        if not plan.starts():
            return plan.histogram([])
        async with self._reading() as (conn, marks):
            mark = await marks.known(conn)
            statement = histogram_statement(query, plan, mark)
            cur = await conn.execute(statement.sql, statement.params, prepare=False)
            rows = await cur.fetchall()
        return plan.histogram(rows)

    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:
        """New matching events in (writing transaction, id) order; exactly once across replicas."""
        start = None if after is None else parse_position(after)
        return self._follow(query or EventFilter(), start, idle)

    async def _follow(
        self, query: EventFilter, position: Position | None, idle: float | None
    ) -> AsyncIterator[Tailed]:
        self._ensure_open()
        if self._listener is None or self._hub is None:
            self._listener = Listener(self.url, self.timeout)
            self._listener.start()
            self._hub = TailHub(self._db, self._listener, self.tail_poll)
        async for item in follow_hub(self._hub, self._db, query, position, idle, self._ensure_open):
            yield item

    @property
    def tail_hub(self) -> TailHub | None:
        """The one reader of new rows that feeds every live tail, once one has started."""
        return self._hub

    async def ping(self) -> None:
        """Check the database answers and is migrated; ``StoreUnavailableError`` if not."""
        self._ensure_open()
        async with self._db.connection(read=True) as conn:
            await conn.execute(sql.PING)
