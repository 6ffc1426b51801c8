"""Read replicas: reads served by streaming replicas that have replayed what the caller wrote.

Each replica is looked at every ``WATCH_EVERY`` seconds: how far it has
replayed the write-ahead log, and how long ago the last transaction it
replayed committed on the primary (zero when it has replayed everything the
primary wrote). A replica that does not answer, or that is further behind
than ``max_lag`` seconds, is left out until it catches up.

A read that must see a position (``sysevents.positions``) goes to a replica
that has replayed that far, waiting for one at most ``WAIT`` seconds, then to
the primary; a read without one goes to the replicas in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sysevents.errors import StoreError
from sysevents.positions import current, lsn_value
from sysevents.redact import redact_url
from sysevents.store import ReplicaState

from .fold import Watermark
from .pool import Connection, PostgresPool

log = logging.getLogger("sysevents.stores.postgres")

WATCH_EVERY = 1.0
"""Seconds between two looks at each replica."""
WAIT = 1.0
"""Seconds a read waits for a replica to replay a position before it goes to the primary."""
_POLL = 0.02
_STATE = (
    "SELECT pg_last_wal_replay_lsn()::text, CASE WHEN pg_last_wal_receive_lsn() = "
    "pg_last_wal_replay_lsn() THEN 0 ELSE coalesce(extract(epoch FROM now() - "
    "pg_last_xact_replay_timestamp()), 0) END, pg_is_in_recovery(), "
    # A replica whose stream is down has replayed all it received: lag 0, yet stale.
    "EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')"
)
_REPLAYED = "SELECT pg_last_wal_replay_lsn()::text"
_WRITTEN = "SELECT pg_current_wal_insert_lsn()::text"


@dataclass
class Replica:
    """One replica, as last seen."""

    url: str
    pool: PostgresPool
    replayed: int = 0
    """How far it had replayed the log (an LSN, as a number)."""
    lag: float | None = None
    """Seconds behind the primary (``None``: not seen yet, or not answering)."""
    usable: bool = False
    failures: int = field(default=0)
    seen: bool = False
    """Whether it has answered once (its first answer is no news)."""
    mark: Watermark = field(default_factory=Watermark)
    """The rollups' watermark on this replica (a replica behind the primary is behind it)."""

    @property
    def name(self) -> str:
        """The replica's URL without its password."""
        return redact_url(self.url)


class ReplicaSet:
    """The replicas a store reads from (see the module)."""

    def __init__(self, urls: list[str], *, timeout: float, max_lag: float, max_size: int) -> None:
        self.max_lag = max_lag
        self.replicas = [
            Replica(url, PostgresPool(url, min_size=0, max_size=max_size, timeout=timeout))
            for url in urls
        ]
        self._turn = itertools.cycle(range(len(self.replicas)))
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open the pools and start watching the replicas."""
        for replica in self.replicas:
            await replica.pool.open()
        if self._task is None and self.replicas:
            self._task = asyncio.get_running_loop().create_task(
                self._watch_forever(), name="sysevents-replicas"
            )
            # A replica that does not answer must not hold up the store's opening.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WAIT):
                    await self.look()

    async def close(self) -> None:
        """Stop watching, close the pools."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for replica in self.replicas:
            await replica.pool.close()

    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            await self.look()

    async def look(self) -> None:
        """Look at every replica once."""
        await asyncio.gather(*(self._look_at(r) for r in self.replicas))

    async def _look_at(self, replica: Replica) -> None:
        try:
            async with replica.pool.connection() as conn:
                cur = await conn.execute(_STATE)
                row = await cur.fetchone()
        except StoreError as exc:
            if replica.usable or replica.failures == 0:
                log.warning("read replica %s left out: %s", replica.name, exc)
            replica.usable, replica.lag = False, None
            replica.failures += 1
            return
        assert row is not None
        replayed = lsn_value(row[0] or "")
        replica.failures = 0
        replica.replayed = replayed or 0
        replica.lag = float(row[1])
        streaming = bool(row[3])
        usable = streaming and bool(row[2]) and replayed is not None and replica.lag <= self.max_lag
        first, replica.seen = not replica.seen, True
        if usable != replica.usable and not (first and usable):
            log.warning(
                "read replica %s %s (%.1f s behind)",
                replica.name,
                "back in use"
                if usable
                else "left out: too far behind, not streaming from the primary, or not a replica",
                replica.lag,
            )
        replica.usable = usable

    def states(self) -> list[ReplicaState]:
        """Each replica's name, lag and whether reads go to it."""
        return [ReplicaState(r.name, r.lag, r.usable) for r in self.replicas]

    async def note_write(self, primary: PostgresPool) -> None:
        """Note, for the current work, a position at or past the write just committed.

        The write is committed already: when its position cannot be read, the
        current work reads from the primary from now on instead of failing.
        """
        position = None
        with contextlib.suppress(StoreError):
            async with primary.connection() as conn:
                cur = await conn.execute(_WRITTEN)
                row = await cur.fetchone()
            position = lsn_value(row[0]) if row is not None and row[0] else None
        if position is None:
            current().primary = True
        else:
            current().wrote(position)

    def failed(self, replica: Replica, exc: StoreError) -> None:
        """A read could not reach ``replica``: leave it out until it is seen answering."""
        if replica.usable:
            log.warning("read replica %s left out: %s", replica.name, exc)
        replica.usable, replica.lag = False, None

    async def pick(self, position: int | None) -> Replica | None:
        """A replica for a read that must see ``position`` (``None``: the primary)."""
        usable = [r for r in self.replicas if r.usable]
        if not usable:
            return None
        if position is None:
            for _ in self.replicas:
                replica = self.replicas[next(self._turn)]
                if replica.usable:
                    return replica
            return None
        deadline = time.monotonic() + WAIT
        while True:
            for replica in usable:
                if replica.replayed >= position:
                    return replica
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(_POLL)
            # A replica that hangs must not hold the read past the deadline.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(
                    asyncio.get_running_loop().time() + max(deadline - time.monotonic(), 0.0)
                ):
                    await asyncio.gather(*(self._replayed(r) for r in usable))

    async def _replayed(self, replica: Replica) -> None:
        with contextlib.suppress(StoreError):
            async with replica.pool.connection() as conn:
                cur = await conn.execute(_REPLAYED)
                row = await cur.fetchone()
            value = lsn_value(row[0] or "") if row is not None else None
            if value is not None:
                replica.replayed = value


@contextlib.asynccontextmanager
async def reading(
    primary: PostgresPool, replicas: ReplicaSet | None, marks: Watermark
) -> AsyncIterator[tuple[Connection, Watermark]]:
    """A connection for a read, and the watermarks of the database it reads.

    A replica's that has replayed what the current work wrote (``current()``)
    when there are replicas and one has, else one of the primary's reads' share.
    """
    async with contextlib.AsyncExitStack() as stack:
        positions = current()
        if replicas is not None and not positions.primary:
            replica = await replicas.pick(positions.needed())
            if replica is not None:
                try:
                    conn = await stack.enter_async_context(replica.pool.connection())
                except StoreError as exc:
                    replicas.failed(replica, exc)
                else:
                    yield conn, replica.mark
                    return
        yield await stack.enter_async_context(primary.connection(read=True)), marks
