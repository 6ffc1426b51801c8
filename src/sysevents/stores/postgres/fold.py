"""The rollup fold: counting the rows written since the last fold into the rollups.

An open store runs :meth:`Folder.run_forever` in the background every
``fold_interval`` seconds (see docs/internals.md, "Statistics that stay
flat"); statistics are exact either way, folding keeps them fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sysevents._tasks import finish
from sysevents.errors import StoreError, StoreUnavailableError

from .pool import Connection, PostgresPool
from .sql import WATERMARK

log = logging.getLogger("sysevents.stores.postgres")

FOLD = "SELECT system_event_rollups_fold()"


class Folder:
    """Folds new rows into the rollups, now (:meth:`fold`) or in the background."""

    def __init__(self, db: PostgresPool, interval: float) -> None:
        self._db = db
        self.interval = interval
        self.watermark = 0
        """A watermark the rollups are known to have reached (the stats read from it on)."""
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        """Fold every ``interval`` seconds in the background (never with an interval of 0)."""
        if self.interval > 0 and self._task is None:
            self._stop = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._fold_forever(), name="sysevents-rollup-folder"
            )

    async def stop(self, grace: float) -> None:
        """Stop folding; a fold under way ends first (within ``grace`` seconds)."""
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            await finish(task, grace)

    async def _fold_forever(self) -> None:
        # Stopped by an event, not cancelled: a fold under way ends first.
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)
                return
            try:
                await self.fold()
            except StoreError as exc:
                log.debug("rollup fold skipped: %s", exc)

    async def fold(self) -> int | None:
        """Fold now; the new watermark, or ``None`` when another process was folding."""
        async with self._db.connection() as conn:
            cur = await conn.execute(FOLD)
            row = await cur.fetchone()
        mark = None if row is None or row[0] is None else int(row[0])
        if mark is not None:
            self.learn(mark)
        return mark

    async def known(self, conn: Connection) -> int:
        """A watermark the rollups have reached: read once, later ones learnt as stats go."""
        if not self.watermark:
            cur = await conn.execute(WATERMARK)
            row = await cur.fetchone()
            if row is None:
                raise StoreUnavailableError("the rollup state is missing: run `sysevents migrate`")
            self.watermark = int(row[0])
        return self.watermark

    def learn(self, mark: int) -> None:
        """Remember a watermark read elsewhere (a later one only)."""
        self.watermark = max(self.watermark, mark)
