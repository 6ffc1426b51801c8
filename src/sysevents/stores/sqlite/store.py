"""The SQLite event store: the repository contract on one file, through ``sqlite3``."""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from sysevents.errors import ConfigurationError, InvalidEventError, NotFoundError
from sysevents.histogram import EventHistogram, plan_histogram
from sysevents.integrity import Digest, Sealer
from sysevents.model import Event, EventPatch, EventStats, NewEvent
from sysevents.query import EventFilter, EventQuery, page_total
from sysevents.retention import RetentionPolicy, RetentionReport
from sysevents.rules import is_event_id
from sysevents.settings import Settings
from sysevents.stores.base import Listing, RepositoryBase, check_caller
from sysevents.tail import Tailed

from . import retention, writes
from .db import Database
from .keys import SqliteKeyStore, file_secret
from .lease import Lease
from .pages import read_page
from .rows import micros
from .seals import SqliteSeals
from .stats import histogram_counts, stats
from .tail import Wakers, follow_rows, parse_position


def path_of(url: str) -> str:
    """The file ``sqlite:///PATH`` names (``ConfigurationError`` if it names none).

    ``sqlite:///events.db`` is relative to the working directory,
    ``sqlite:////var/lib/events.db`` absolute.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc or not parts.path.startswith("/"):
        raise ConfigurationError(
            f"not a SQLite URL: {url!r} (use sqlite:///relative/path or sqlite:////absolute/path)"
        )
    path = unquote(parts.path[1:])
    if not path or path == ":memory:":
        raise ConfigurationError(
            "a SQLite store needs a file (sqlite:///events.db); memory:// keeps events in memory"
        )
    return path


class SqliteEventRepository(RepositoryBase):
    """Events in one SQLite file (``sqlite:///PATH``), made and migrated when opened.

    Configured by ``settings`` (``url`` is their ``database_url``) and
    ``overrides`` of their fields. The file is in WAL mode; writes go through
    one writer thread that commits concurrent writes together, reads through
    a few reader threads (see ``sysevents.stores.sqlite.db``): the event loop
    never waits on the file. Several processes may share the file; a write
    waits for another process's for up to ``timeout`` seconds.

    Live tails are woken by this store's own writes and look for other
    processes' every ``tail_poll`` seconds (see ``sysevents.stores.sqlite.tail``).
    """

    def __init__(
        self, url: str | None = None, settings: Settings | None = None, **overrides: Any
    ) -> None:
        if url is not None:
            overrides["database_url"] = url
        super().__init__(settings, **overrides)
        settings = self.settings
        self.url = settings.database_url
        self.path = path_of(self.url)
        self.tail_poll = settings.tail_poll
        self._db = Database(self.path, settings.timeout)
        self._wakers = Wakers()
        self._db.on_commit = self._wakers.wake
        self._api_keys = SqliteKeyStore(self._db)
        self._seals = SqliteSeals(self._db)
        self._lease = Lease(self._db)
        self._sealer = Sealer.from_settings(self._seals, settings, leads=self._lease.held)
        self._secrets_loaded = self._secrets_given

    # -- lifecycle ------------------------------------------------------------

    @property
    def keys(self) -> SqliteKeyStore:
        """The API keys kept in the file (see ``sysevents.keys``)."""
        return self._api_keys

    @property
    def seals(self) -> SqliteSeals:
        """The digests kept in the file, and its events in id order."""
        return self._seals

    async def open(self) -> None:
        """Create (or bring up to date) the file's tables and start its threads."""
        self._closed = False
        await self._db.open()
        if not self._secrets_loaded:
            # The file's own cursor secret: every process on the file signs alike.
            self._secrets = [(await file_secret(self._db, "cursor")).encode()]
            self._secrets_loaded = True
        self._sealer.start()

    async def close(self) -> None:
        """Finish queued writes and close the file; safe to call twice."""
        await self._sealer.stop(self.settings.timeout)
        if not self._closed and self._db.running:
            await self._lease.release()
        await super().close()
        self._wakers.wake()
        await self._db.close()

    async def leads(self) -> bool:
        """Whether this process runs the background work of the file (see ``lease``)."""
        return await self._lease.held()

    async def known_series(
        self, pairs: Sequence[tuple[str, str | None]]
    ) -> set[tuple[str, str | None]]:
        """Those (event_type, source) pairs some stored event has (read from ``series``)."""
        self._ensure_open()
        wanted = set(pairs)
        if not wanted:
            return set()
        types = sorted({t for t, _ in wanted})
        marks = ", ".join("?" * len(types))
        rows = await self._db.read(
            lambda c: c.execute(
                f"SELECT DISTINCT event_type, source FROM series "
                f"WHERE n > 0 AND event_type IN ({marks})",
                types,
            ).fetchall()
        )
        found = {(t, s or None) for t, s in rows}
        return found & wanted

    async def seal(self) -> builtins.list[Digest]:
        """Seal the events stored since the last digest, now."""
        self._ensure_open()
        return await self._sealer.seal()

    async def maintain(self, now: datetime | None = None) -> builtins.list[str]:
        """Forget the idempotency keys older than the window; nothing is created."""
        self._ensure_open()
        before = micros(now or datetime.now(UTC)) - self._window_us
        await self._db.write(lambda c: retention.forget_keys(c, before))
        return []

    @property
    def _window_us(self) -> int:
        return int(self.idempotency_window.total_seconds() * 1_000_000)

    # -- writes ---------------------------------------------------------------

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event."""
        return (await self._add([new], caller, loc_prefix=False))[0]

    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events in one transaction: all or none, in the order given."""
        return await self._add(news, caller, loc_prefix=True)

    async def _add(
        self, news: Sequence[NewEvent], caller: str | None, *, loc_prefix: bool
    ) -> builtins.list[Event]:
        self._ensure_open()
        self._check_written(news, loc_prefix=loc_prefix)
        who = check_caller(caller)
        if not news:
            return []
        batch = list(news)
        window = self._window_us
        now = datetime.now(UTC)
        return await self._db.write(lambda c: writes.insert(c, batch, who, now, window))

    async def add_kept(self, pairs: Sequence[tuple[NewEvent, Event]]) -> int:
        """Store events copied from another store, keeping ids where free (``sysevents copy``).

        See ``writes.insert_kept``; the events are checked as ``add_many`` checks them.
        """
        self._ensure_open()
        news = [new for new, _ in pairs]
        self._check_written(news, loc_prefix=True)
        for _, original in pairs:
            check_caller(original.written_by)
        batch = list(pairs)
        return await self._db.write(lambda c: writes.insert_kept(c, batch))

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the given fields; with an ``actor``, record the change in the same transaction."""
        self._ensure_open()
        self._check_changes_allowed()
        if not is_event_id(event_id):
            raise NotFoundError(event_id)
        try:
            self._check_written([patch], loc_prefix=False)
        except InvalidEventError:
            if await self.get(event_id) is None:  # a missing event is reported first
                raise NotFoundError(event_id) from None
            raise
        now = datetime.now(UTC)
        return await self._db.write(lambda c: writes.update(c, event_id, patch, actor, now))

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event; with an ``actor``, record it in the same transaction."""
        self._ensure_open()
        self._check_changes_allowed()
        if not is_event_id(event_id):
            raise NotFoundError(event_id)
        now = datetime.now(UTC)
        await self._db.write(lambda c: writes.delete(c, event_id, actor, now))

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove the expired events in short batches (writers go between them)."""
        self._ensure_open()
        return await retention.apply(self._db, policy, now or datetime.now(UTC), dry_run)

    # -- reads ----------------------------------------------------------------

    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None``."""
        self._ensure_open()
        if not is_event_id(event_id):
            return None
        return await self._db.read(lambda c: writes.by_id(c, event_id))

    async def _listing(self, query: EventQuery) -> Listing:
        position = self._position(query)
        cap = self.count_cap
        rows, counted = await self._db.read(lambda c: read_page(c, query, position, cap))
        total, exact = page_total(query.count, counted, cap)
        return Listing(rows, total, exact)

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over the matching events: whole hours from the rollups, edges from the rows."""
        self._ensure_open()
        chosen = query or EventFilter()
        top = self.stats_top
        return await self._db.read(lambda c: stats(c, chosen, datetime.now(UTC), top))

    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts by severity per bucket; hours and days from the rollups, like stats."""
        self._ensure_open()
        chosen = query or EventFilter()
        plan = plan_histogram(chosen, interval)
        if not plan.starts():
            return plan.histogram([])
        counts = await self._db.read(lambda c: list(histogram_counts(c, chosen, plan)))
        return plan.histogram(counts)

    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:
        """New matching events in id order (the commit order); positions are ids."""
        start = None if after is None else parse_position(after)
        return follow_rows(
            self._db,
            self._wakers,
            query or EventFilter(),
            start,
            idle,
            self.tail_poll,
            self._ensure_open,
        )

    async def ping(self) -> None:
        """Check the file answers; ``StoreUnavailableError`` if not."""
        self._ensure_open()
        await self._db.read(lambda c: c.execute("SELECT 1 FROM events LIMIT 1").fetchall())
