"""Who runs the background work: one process at a time, across workers and machines.

Several processes may share one database (``serve --workers``, replicas behind
a balancer). The fold, the upkeep and retention need to run in one of them:
the one holding the session advisory lock ``sysevents-background`` on a
connection of its own. When that process ends (or its connection does),
PostgreSQL releases the lock and another process takes it at its next try,
within :data:`RETRY` seconds.
"""

from __future__ import annotations

import time

from sysevents.errors import StoreError

from .pool import Connection, connect, translated

_TAKE = "SELECT pg_try_advisory_lock(hashtext('sysevents-background'))"
_ALIVE = "SELECT 1"
RETRY = 5.0
"""Seconds between two tries of a process that does not hold the lease."""


class Lease:
    """The background lease of one store (see the module)."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._conn: Connection | None = None
        self._tried_at = -RETRY

    async def held(self) -> bool:
        """Whether this process holds the lease now (taking it if it is free)."""
        conn = self._conn
        if conn is not None:
            try:
                with translated(self._timeout):
                    await conn.execute(_ALIVE)
                return True
            except StoreError:  # the connection died, and the lock with it
                await self._drop()
        now = time.monotonic()
        if now - self._tried_at < RETRY:
            return False
        self._tried_at = now
        try:
            conn = await connect(self._url, self._timeout, "sysevents-lease")
        except StoreError:
            return False
        try:
            with translated(self._timeout):
                cur = await conn.execute(_TAKE)
                row = await cur.fetchone()
        except StoreError:
            await conn.close()
            return False
        if row is None or not row[0]:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()

    async def release(self) -> None:
        """Give the lease up (closing its connection releases the lock)."""
        await self._drop()
