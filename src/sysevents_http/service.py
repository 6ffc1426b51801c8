"""The running service of one app: its store, its access control, its own records.

Each part has one job: :class:`~sysevents_http.guarded.GuardedStore` (the
store, opened lazily, every call bounded and timed),
:class:`~sysevents_http.access.Access` (auth mode, keys, rate counters) and
:class:`~sysevents_http.events.ServiceEvents` (lifecycle and health records,
upkeep). :class:`Service` builds them from the settings and runs them in the
app's lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import sysevents
from sysevents import EventRepository, NewEvent, Settings, StoreUnavailableError
from sysevents.keys import clashing_name

from .access import Access
from .config import HttpOptions
from .events import ServiceEvents
from .guarded import GuardedStore, StoreTimer
from .quotas import Quotas, SeriesBudget


class Service:
    """The store, access control and records of one app (see the module).

    Built inside the app's lifespan, on the app's own event loop. A
    ``repository`` handed in is used as it is and left open; otherwise one is
    made from ``settings`` and closed when the app stops.
    """

    def __init__(
        self,
        settings: Settings,
        options: HttpOptions,
        repository: EventRepository | None = None,
        timer: StoreTimer | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        inner = repository if repository is not None else sysevents.connect(settings=settings)
        self.store = GuardedStore(
            inner,
            timeout=options.store_timeout or settings.timeout + 1.0,
            owned=repository is None,
            timer=timer,
        )
        """The store every route uses."""
        self.access = Access(settings)
        """Who may call, and how often."""
        self.events = ServiceEvents(
            self.store, settings, health_log_interval=options.health_log_interval
        )
        """The service's own records and upkeep."""
        self.access.on_failure = self.events.note_auth_failure
        # With Redis every worker counts in one shared budget; without, each of
        # N workers allows 1/N of every limit, so that together they never allow more.
        share = 1 if settings.redis_url else options.worker_count
        self.quotas = Quotas.from_settings(settings, share, lambda: self.access.counter)
        """The limits callers are held to."""
        self.series = SeriesBudget(
            self.store, settings.max_new_series, lambda: self.access.counter, share
        )
        """New (event_type, source) pairs per caller and hour."""
        self.replicated = False
        """Whether reads may go to replicas: then write answers carry their position."""

    async def admit(
        self,
        budget: str,
        events: Sequence[NewEvent],
        size: int,
        field: Callable[[int], str],
        records: int | None = None,
    ) -> None:
        """Charge a write to its caller's ingest limit and new-series budget, or raise a 429.

        ``records`` counts what the request carried when not every record became
        an event (OTLP): each one counts. ``field`` names the field of event N.
        """
        ingest = self.quotas.ingest
        if ingest is not None:
            count = len(events) if records is None else records
            await ingest.charge(self.access.buckets, budget, count, size)
        await self.series.check(budget, events, field)

    async def start(self) -> None:
        """Open the store (or leave it to the first request if it is down), record the start."""
        self.access.start(self.store.keys)
        await self.access.connect()
        await self.store.open()
        self.replicated = bool(self.store.replicas())
        if self.store.opened:
            # A store that stops answering now is checked by `sysevents serve` before it starts.
            with contextlib.suppress(StoreUnavailableError):
                await clashing_name(self.access.keys.static, self.store.keys)
        await self.events.started()

    async def stop(self) -> None:
        """Record the stop, then close what the service opened."""
        try:
            await self.events.stopping(grace=self.store.timeout)
        finally:
            try:
                await self.access.stop()
            finally:
                await self.store.close()
