"""Who runs the background work among the processes sharing one SQLite file.

Retention, upkeep and sealing need to run in one process at a time (``serve
--workers``, the CLI beside a server). The holder writes its name and a
deadline :data:`TTL` seconds ahead in ``leases``, renewing it every
:data:`RENEW` seconds while it asks; a process takes the lease when it is
free or its deadline passed: within :data:`TTL` seconds of its holder's end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time

from sysevents.errors import StoreError

from .db import Database

TTL = 15.0
"""Seconds a lease lasts unless renewed."""
RENEW = 5.0
"""Seconds between two renewals by its holder."""

_TAKE = (
    "INSERT INTO leases (name, holder, until) VALUES ('background', ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until "
    "WHERE leases.holder = excluded.holder OR leases.until < ?"
)


class Lease:
    """The background lease of one store (see the module)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._me = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._renewed = -RENEW  # monotonic time of the last renewal that held

    def _take(self, conn: sqlite3.Connection) -> bool:
        now = time.time()
        conn.execute(_TAKE, (self._me, now + TTL, now))
        row = conn.execute("SELECT holder FROM leases WHERE name = 'background'").fetchone()
        return row is not None and row[0] == self._me

    async def held(self) -> bool:
        """Whether this process holds the lease now (taking it if it is free)."""
        if time.monotonic() - self._renewed < RENEW:
            return True
        try:
            held = await self._db.write(self._take)
        except StoreError:
            return False
        if held:
            self._renewed = time.monotonic()
        return held

    async def release(self) -> None:
        """Give the lease up, so that another process takes it at once."""
        if time.monotonic() - self._renewed >= TTL:
            return
        self._renewed = -RENEW
        me = self._me
        with contextlib.suppress(StoreError):  # if not, the deadline frees it
            await self._db.write(lambda c: c.execute("DELETE FROM leases WHERE holder = ?", (me,)))
