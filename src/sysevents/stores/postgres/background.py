"""The work a PostgreSQL store does besides answering: folding, sealing, upkeep, retention.

:class:`PostgresBackground` is the base of
:class:`~sysevents.stores.postgres.store.PostgresEventRepository`: the
background tasks (the fold and the sealer, led by one process at a time
through the lease), and the maintenance calls the service and the command
line make (partitions, retention, room for imported months, append-only).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from sysevents.integrity import Digest, Sealer
from sysevents.retention import RetentionPolicy, RetentionReport
from sysevents.settings import Settings
from sysevents.store import Backlog
from sysevents.stores.base import RepositoryBase

from . import retention, sql, upkeep
from .fold import Folder
from .ids import month_index
from .lease import Lease
from .partitions import carve_history, ensure_partitions, history_end
from .pool import LockTimeout, PostgresPool
from .seals import PostgresSeals

log = logging.getLogger("sysevents.stores.postgres")


class PostgresBackground(RepositoryBase):
    """The fold, the sealer and the maintenance of a PostgreSQL store (its base class)."""

    _db: PostgresPool
    timeout: float
    # Where the history partition ends: read once, moved by make_room.
    _history_end: datetime | None
    _history_read: bool

    def _prepare_background(self, url: str, settings: Settings) -> None:
        """Make the lease, the folder and the sealer; the pool ``_db`` must exist."""
        self._room_made: set[int] = set()  # months make_room() saw to
        self._lease = Lease(url, settings.timeout)
        self._folder = Folder(
            self._db, settings.fold_interval, settings.fold_step, leads=self._lease.held
        )
        self._seals = PostgresSeals(self._db)
        self._sealer = Sealer.from_settings(self._seals, settings, leads=self._lease.held)

    def _start_background(self) -> None:
        self._folder.start()
        self._sealer.start()

    async def _stop_background(self) -> None:
        await self._folder.stop(self.timeout)
        await self._sealer.stop(self.timeout)
        await self._lease.release()

    async def _wrote(self) -> None:
        """Called after every write (the store notes its position for read replicas)."""

    async def fold(self) -> int | None:
        """Count the rows written since the last fold into the rollups, in steps; how many.

        ``None`` when another process was folding at that moment.
        """
        self._ensure_open()
        return await self._folder.fold()

    async def set_append_only(self, on: bool) -> None:
        """Make the database refuse (``True``) or allow changes and removals of events."""
        self._ensure_open()
        async with self._db.connection() as conn:
            await conn.execute(sql.APPEND_ONLY_ON if on else sql.APPEND_ONLY_OFF)

    async def leads(self) -> bool:
        """Whether this process holds the background lease (see ``lease``)."""
        return await self._lease.held()

    async def backlog(self) -> Backlog:
        """The rows not yet folded into the statistics, the oldest one's age, the failures.

        The failures count the sealer's too.
        """
        self._ensure_open()
        backlog = await self._folder.backlog()
        return replace(backlog, failures=backlog.failures + self._sealer.failures)

    @property
    def seals(self) -> PostgresSeals:
        """The digests of this database, and its rows in commit order."""
        return self._seals

    async def seal(self) -> list[Digest]:
        """Seal the rows committed since the last digest, now (one process at a time)."""
        self._ensure_open()
        return await self._sealer.seal()

    async def maintain(self, now: datetime | None = None) -> list[str]:
        """Create the partitions due soon, drop the months retention detached, forget old keys.

        Also removes the all-time rollup rows at zero. Returns the partitions
        created. Each statement has its own timeout: a large backlog of
        keys is worked off in batches. The service runs this and retention
        as two tasks, so that neither holds the other back.
        """
        self._ensure_open()
        made, _ = await upkeep.maintain(self._db, self._window, now)
        return made

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove the expired events: whole partitions where they can, batches elsewhere.

        One process at a time applies a policy; the others return a report that says it was busy.
        """
        self._ensure_open()
        report = await retention.apply(self._db, policy, now=now, dry_run=dry_run)
        if not dry_run:
            await self._wrote()
        return report

    async def make_room(self, times: Iterable[datetime]) -> builtins.list[str]:
        """Partitions for the months of ``times``, before the history's end too; those made.

        What an import of old events calls first, so that they land in their
        own months (which retention drops whole) rather than in the history
        partition: a month before the history's end gets its own partition
        where the history holds none of its rows (see
        ``partitions.carve_history``). Each month is tried once per store.
        """
        self._ensure_open()
        months = {month_index(t) for t in times} - self._room_made
        if not months:
            return []
        async with self._db.connection() as conn:
            try:
                made = await carve_history(conn, months)
            except LockTimeout:
                return []  # the table was busy: those events go to the history this time
            made += await ensure_partitions(conn, months)
            self._history_end, self._history_read = await history_end(conn), True
        self._room_made |= months
        if made:
            log.info("partitions made for imported months: %s", ", ".join(made))
        return made

    @property
    def _window(self) -> float:
        return self.idempotency_window.total_seconds()
