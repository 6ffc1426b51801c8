"""Every limit a caller is held to, as this process applies them (docs/security.md).

- ``address``: requests per client address, counted before authentication;
- ``rate``: requests per caller (its key, or its address on an open server);
- ``ingest``: events and bytes per caller and second, with a burst;
- new (event_type, source) pairs per caller and hour (:class:`SeriesBudget`);
- streams and reads under way per caller.

Counted in Redis when one is configured (one budget for every replica);
without it each of N workers applies ``1/N`` of each limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sysevents import EventRepository, NewEvent, Settings, TooManySeriesError
from sysevents.settings import parse_ingest, parse_rate

from .ingest import IngestLimit
from .limits import RateLimit

if TYPE_CHECKING:
    from .access import Counter

HOUR = 3600


def _rate(text: str, share: int, counter: Callable[[], Counter], name: str) -> RateLimit | None:
    if text == "off":
        return None
    count, unit = parse_rate(text)
    return RateLimit(-(-count // share), unit, counter, name)  # rounded up: at least one


@dataclass(frozen=True)
class Quotas:
    """The limits of this process (see the module)."""

    address: RateLimit | None
    rate: RateLimit | None
    ingest: IngestLimit | None
    streams: int
    reads: int

    @classmethod
    def from_settings(
        cls, settings: Settings, share: int, counter: Callable[[], Counter]
    ) -> Quotas:
        """The limits ``settings`` give, ``1/share`` of each in this process."""
        ingest = parse_ingest(settings.ingest_limit)
        return cls(
            address=_rate(settings.address_limit, share, counter, "address"),
            rate=_rate(settings.rate_limit, share, counter, "default"),
            ingest=None if ingest is None else IngestLimit(ingest, share),
            streams=-(-settings.max_streams_per_key // share),
            reads=-(-settings.max_reads_per_key // share),
        )


class SeriesBudget:
    """New (event_type, source) pairs per caller and hour: each adds statistics rows for good.

    A pair this process has seen stored costs nothing; one it has not is
    looked up in the store once (``known_series``), and only pairs no event
    has yet count against the caller's budget for the hour.
    """

    KNOWN_CAP = 100_000
    """Pairs remembered as known, at most (then forgotten and looked up again)."""

    def __init__(
        self, store: EventRepository, limit: int, counter: Callable[[], Counter], share: int = 1
    ) -> None:
        self._store = store
        self.limit = 0 if limit == 0 else -(-limit // share)
        self._counter = counter
        self._known: set[tuple[str, str | None]] = set()

    async def check(
        self, identifier: str, events: Sequence[NewEvent], field: Callable[[int], str]
    ) -> None:
        """Let ``events`` through, or raise ``TooManySeriesError`` naming the first new pair."""
        if not self.limit:
            return
        unknown: dict[tuple[str, str | None], int] = {}
        for index, event in enumerate(events):
            pair = (event.event_type, event.source)
            if pair not in self._known and pair not in unknown:
                unknown[pair] = index
        if not unknown:
            return
        if len(self._known) > self.KNOWN_CAP:
            self._known.clear()
        found = await self._store.known_series(list(unknown))
        self._known |= found
        new = [pair for pair in unknown if pair not in found]
        if not new:
            return
        now = time.time()
        window = int(now // HOUR)
        count = await self._counter().count(f"series:{identifier}", window, HOUR, len(new))
        if count > self.limit:
            first = min(unknown[pair] for pair in new)
            retry = max(1, int((window + 1) * HOUR - now))
            raise TooManySeriesError(field(first), self.limit, retry)
        self._known.update(new)
