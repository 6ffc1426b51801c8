"""The rollup fold: counting the rows written since the last fold into the rollups.

An open store folds in the background every ``fold_interval`` seconds (see
docs/internals.md, "Statistics that stay flat"); statistics are exact either
way, folding keeps them fast. A fold works in steps of at most ``fold_step``
rows (migration 0010), each one statement well within the statement timeout,
back to back until it has caught up: a backlog of any size (a bulk load, a
burst, a fold held back by a long transaction) is worked off.

A fold that fails is retried at the next interval; it is logged at WARNING at
most once a minute, and counted in :meth:`Folder.backlog`.
"""

# ruff: noqa: S608

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sysevents._tasks import InBackground, Periodic
from sysevents.errors import StoreUnavailableError
from sysevents.store import Backlog

from .pool import Connection, PostgresPool
from .sql import WATERMARK

log = logging.getLogger("sysevents.stores.postgres")

FOLD = "SELECT system_event_rollups_fold(%s)"
BACKLOG_CAP = 100_000
"""Rows counted at most when measuring the backlog (past it, the figure is a lower bound)."""
# The rows not folded yet, oldest first: how many (up to the cap) and since when.
_BACKLOG = (
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM ("
    "SELECT created_at FROM system_events WHERE ingest_xid >= (SELECT watermark FROM "
    "system_event_rollup_state WHERE id = 1) AND (ingest_xid, id) >= (" + WATERMARK + ") "
    "ORDER BY ingest_xid, id LIMIT %s) AS waiting"
)


class Watermark:
    """A watermark the rollups of one database have reached (the primary's, a replica's).

    Read once, then later ones learnt as folds and statistics go: statistics
    count the rows past it raw, so an older one is never wrong, only slower.
    """

    def __init__(self) -> None:
        self.value = 0

    async def known(self, conn: Connection) -> int:
        """The watermark: read on ``conn`` the first time."""
        if not self.value:
            cur = await conn.execute(WATERMARK)
            row = await cur.fetchone()
            if row is None:
                raise StoreUnavailableError("the rollup state is missing: run `sysevents migrate`")
            self.value = int(row[0])
        return self.value

    def learn(self, mark: int) -> None:
        """Remember a watermark read there since (a later one only)."""
        self.value = max(self.value, mark)


class Folder(InBackground):
    """Folds new rows into the rollups, now (:meth:`fold`) or in the background."""

    def __init__(
        self,
        db: PostgresPool,
        interval: float,
        step: int,
        leads: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._db = db
        self.step = step
        self.mark = Watermark()
        """The watermark the primary's rollups are known to have reached (stats read from it on)."""
        self._loop = Periodic(
            "the statistics fold",
            self.fold,
            interval,
            "statistics stay exact but slow down while rows wait to be folded: check that "
            "the database is up and not overloaded, or lower fold_step if each step times out",
            logger=log,
            task_name="sysevents-rollup-folder",
            leads=leads,
        )

    async def fold(self) -> int | None:
        """Fold until caught up, step after step; the rows counted.

        ``None`` when another process was folding at that moment.
        """
        total = 0
        while True:
            async with self._db.connection() as conn:
                cur = await conn.execute(FOLD, (self.step,))
                row = await cur.fetchone()
                counted = None if row is None or row[0] is None else int(row[0])
                if counted is None:
                    return None if total == 0 else total
                total += counted
                if counted < self.step or self._loop.stopping:
                    cur = await conn.execute(WATERMARK)
                    mark = await cur.fetchone()
                    if mark is not None:
                        self.mark.learn(int(mark[0]))
                    return total

    async def backlog(self) -> Backlog:
        """The rows not folded yet (up to :data:`BACKLOG_CAP`), the age of the oldest."""
        async with self._db.connection() as conn:
            cur = await conn.execute(_BACKLOG, (BACKLOG_CAP,))
            row = await cur.fetchone()
        rows, seconds = (0, 0.0) if row is None else (int(row[0]), float(row[1]))
        return Backlog(rows=rows, seconds=round(seconds, 3), failures=self.failures)
