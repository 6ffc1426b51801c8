"""Connections to PostgreSQL: the pool, its checks, and the reads' share of it.

Driver errors are translated in :mod:`.driver` (``translated``), which the
pool's connections use; the names of that module are re-exported here for the
modules that take them with the pool.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, LiteralString

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from sysevents.errors import StoreUnavailableError

from .driver import (
    Connection,
    Duplicate,
    LockTimeout,
    MissingTable,
    NoPartition,
    Row,
    connect,
    conninfo,
    notifications,
    translated,
)

__all__ = [
    "Connection",
    "ConnectionWaits",
    "Duplicate",
    "LockTimeout",
    "MissingTable",
    "NoPartition",
    "PostgresPool",
    "Row",
    "connect",
    "conninfo",
    "notifications",
    "translated",
]


STEP_GRACE = 1.0
"""Seconds a step of a session waits past ``statement_timeout`` before giving up itself."""


def statement_timeout(seconds: float) -> LiteralString:
    """``SET LOCAL statement_timeout``: each statement of the transaction within ``seconds``."""
    return "SET LOCAL statement_timeout = " + str(max(1, math.ceil(seconds * 1000)))


class _Reachability:
    """Whether the last attempt to connect failed: then nobody waits long for a connection."""

    __slots__ = ("refused",)

    def __init__(self) -> None:
        self.refused = False


def _watched_connections(reach: _Reachability) -> type[Connection]:
    """A connection class that records in ``reach`` whether connecting works."""

    class WatchedConnection(psycopg.AsyncConnection[Row]):
        @classmethod
        async def connect(cls, *args: Any, **kwargs: Any) -> WatchedConnection:
            try:
                conn = await super().connect(*args, **kwargs)
            except Exception:
                reach.refused = True
                raise
            reach.refused = False
            return conn

    return WatchedConnection


class ConnectionWaits:
    """How long borrowers waited for a pooled connection: the longest wait of writes and of reads.

    Measured inside the pool, from asking to holding a connection, for the
    borrowers that queued (no connection was free, or reads held their whole
    share): what it shows is the pool's queue, not the rest of a request.
    """

    __slots__ = ("longest_read", "longest_write")

    def __init__(self) -> None:
        self.longest_write = 0.0
        self.longest_read = 0.0

    def reset(self) -> None:
        """Forget the waits seen so far."""
        self.longest_write = self.longest_read = 0.0

    def record(self, seconds: float, *, read: bool) -> None:
        """One borrowing waited ``seconds``."""
        if read:
            self.longest_read = max(self.longest_read, seconds)
        else:
            self.longest_write = max(self.longest_write, seconds)


class PostgresPool:
    """An async connection pool that never lets a driver exception out.

    ``timeout`` bounds every use: waiting for a connection, the statement
    itself (``statement_timeout``) and connecting. A database that is down or
    too slow raises ``StoreUnavailableError``; the pool reconnects by itself
    when it returns. ``reconnect_timeout`` is how long the pool retries a lost
    connection in the background (with growing pauses) before leaving it to
    the next request: kept short, so that recovery does not wait out a long
    pause. ``prepare_threshold=None`` suits PgBouncer in transaction mode.

    A pooled connection idle for more than ``check_after_idle`` seconds is
    checked (an empty query) before it is handed out, so that connections the
    server dropped while they sat in the pool (a restart) never surface as
    errors. One used moments ago is not: under load the check would double the
    round trips of every call. ``0`` checks every time.

    While the database refuses connections (the last attempt failed), a
    caller waits at most ``refused_wait`` seconds for a connection instead of
    ``timeout``: an outage answers fast, and the pool still reconnects by
    itself in the background.

    Reads (``connection(read=True)``) never hold more than ``max_size -
    write_reserve`` connections at once (at least one): the last
    ``write_reserve`` are kept for writes, so that slow reads, however many,
    never make a write wait for them. A read beyond its share waits its turn
    within ``timeout``, and fails like a pool that has no connection to give.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int,
        max_size: int,
        timeout: float,
        reconnect_timeout: float = 5.0,
        prepare_threshold: int | None = 5,
        check_after_idle: float = 0.25,
        refused_wait: float = 0.5,
        write_reserve: int = 0,
        on_connect: Sequence[LiteralString] = (),
    ) -> None:
        self._conninfo = conninfo(url)  # refuses an unreadable URL before anything connects
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self.reconnect_timeout = reconnect_timeout
        self.prepare_threshold = prepare_threshold
        self.check_after_idle = check_after_idle
        self.refused_wait = refused_wait
        self._on_connect = tuple(on_connect)
        self.read_share = max(1, max_size - write_reserve)
        self._reads: asyncio.Semaphore | None = None
        self.reads_in_use = 0
        self.reads_waiting = 0
        self.waits = ConnectionWaits()
        self._reach = _Reachability()
        # When each idle connection was last given back, by id(): set on return,
        # read by the check when the connection is handed out again.
        self._returned: dict[int, float] = {}
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._sentinel: asyncio.Task[None] | None = None

    @property
    def pool(self) -> AsyncConnectionPool[Connection] | None:
        """The psycopg pool, once opened."""
        return self._pool

    async def open(self) -> None:
        """Start the pool without waiting for it: a database that is down does not fail this.

        Connections are made in the background and retried until the database answers.
        """
        if self._pool is not None:
            return
        statement_ms = max(1, math.ceil(self.timeout * 1000))
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self._conninfo,
            connection_class=_watched_connections(self._reach),
            open=False,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            reconnect_timeout=self.reconnect_timeout,
            check=self._check,
            # No reset callback: with one, the pool hands every returned
            # connection to a worker task (a queue hop per call, and the
            # connection comes back later); connection() stamps returns itself.
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
        # Made here, not in __init__: a semaphore belongs to the loop that first waits on it.
        self._reads = asyncio.Semaphore(self.read_share)
        try:
            await pool.open(wait=False)
        except psycopg.Error as exc:  # pragma: no cover - open(wait=False) does not connect
            self._pool = None
            raise StoreUnavailableError(f"cannot open the connection pool: {exc}") from exc
        self._sentinel = asyncio.get_running_loop().create_task(
            self._close_when_the_loop_ends(pool), name="sysevents-pool-sentinel"
        )

    async def _close_when_the_loop_ends(self, pool: AsyncConnectionPool[Connection]) -> None:
        """Wait for ever; cancelled by a loop that ends (``asyncio.run``), close the pool.

        Nobody may have closed the repository: the pool's workers, retrying a
        database that hangs, would otherwise keep ``asyncio.run`` from ever
        returning. Closing the pool stops their retries.
        """
        try:
            await asyncio.Event().wait()
        finally:
            if self._pool is pool:
                self._pool = None
                await pool.close(timeout=1.0)

    async def close(self) -> None:
        """Close the pool; safe to call twice."""
        pool, self._pool = self._pool, None
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            sentinel.cancel()  # the pool is ours to close now
        if pool is not None:
            await pool.close(timeout=self.timeout)

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
        for statement in self._on_connect:
            await conn.execute(statement)

    async def _take(self, pool: AsyncConnectionPool[Connection], deadline: float) -> Connection:
        """A connection, waited for until ``deadline``, or ``refused_wait`` once connecting fails.

        The wait goes in slices of ``refused_wait``: a database that starts
        refusing while a caller waits fails that caller within one slice.
        """
        loop = asyncio.get_running_loop()
        while True:
            wait = min(deadline - loop.time(), self.refused_wait)
            try:
                return await pool.getconn(timeout=max(wait, 0.001))
            except PoolTimeout:
                if self._reach.refused or loop.time() >= deadline:
                    raise

    async def _enter_read(self, reads: asyncio.Semaphore, deadline: float) -> None:
        """Wait for a read's place among the ``read_share``; ``PoolTimeout`` past ``deadline``."""
        self.reads_waiting += 1
        try:
            async with asyncio.timeout_at(deadline):
                await reads.acquire()
        except TimeoutError:
            raise PoolTimeout(
                f"couldn't get a connection after {self.timeout:g} sec "
                f"(reads hold their share of {self.read_share})"
            ) from None
        finally:
            self.reads_waiting -= 1
        self.reads_in_use += 1

    def _leave_read(self, reads: asyncio.Semaphore) -> None:
        self.reads_in_use -= 1
        reads.release()

    @asynccontextmanager
    async def connection(self, *, read: bool = False) -> AsyncIterator[Connection]:
        """A pooled connection; every driver error is translated here, and only here.

        A ``read`` takes one only within the reads' share of the pool.
        """
        if self._pool is None:
            await self.open()
        pool, reads = self._pool, self._reads
        assert pool is not None
        assert reads is not None
        taken: Connection | None = None
        loop = asyncio.get_running_loop()
        asked = loop.time()
        deadline = asked + self.timeout
        entered = False
        try:
            with translated(self.timeout):
                # Whether this borrower queues: reads past their share, or no idle
                # connection. One that does not is handed one at once, and its
                # wait is none, whatever the event loop's own delays.
                queued = read and reads.locked()
                if read:
                    await self._enter_read(reads, deadline)
                    entered = True
                queued = queued or pool.get_stats()["pool_available"] == 0
                async with asyncio.timeout_at(deadline):
                    conn = await self._take(pool, deadline)
                    taken = conn
                    self.waits.record(loop.time() - asked if queued else 0.0, read=read)
                    try:
                        yield conn
                    finally:
                        await pool.putconn(conn)
        finally:
            if entered:
                self._leave_read(reads)
            if taken is not None:
                # Back in the pool already (putconn does not wait): used just now.
                self._stamp_return(taken)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Connection]:
        """A pooled connection for work made of many bounded steps (upkeep, retention).

        Taking it waits at most ``timeout``, as :meth:`connection`; the block
        as a whole has no deadline: each statement has its own
        (``statement_timeout``), and each :meth:`step` its own on this side.
        """
        if self._pool is None:
            await self.open()
        pool = self._pool
        assert pool is not None
        taken: Connection | None = None
        try:
            with translated(self.timeout):
                deadline = asyncio.get_running_loop().time() + self.timeout
                async with asyncio.timeout_at(deadline):
                    conn = await self._take(pool, deadline)
                taken = conn
                try:
                    yield conn
                finally:
                    await pool.putconn(conn)
        finally:
            if taken is not None:
                self._stamp_return(taken)

    @asynccontextmanager
    async def step(self, statements: int = 1) -> AsyncIterator[None]:
        """One step of a :meth:`session` (a statement, or a transaction of ``statements``).

        The server ends a statement past ``statement_timeout`` first; this
        bound (``timeout`` per statement, and a little longer) covers a server
        that stops answering altogether.
        """
        seconds = self.timeout * statements + STEP_GRACE
        with translated(seconds):
            async with asyncio.timeout(seconds):
                yield

    @asynccontextmanager
    async def transaction(self, *, read: bool = False) -> AsyncIterator[Connection]:
        """A pooled connection inside a transaction, committed when the block ends."""
        async with self.connection(read=read) as conn, conn.transaction():
            yield conn
