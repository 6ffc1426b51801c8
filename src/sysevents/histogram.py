"""Histograms: counts of events by severity in buckets of time, the same in every store.

Buckets are aligned in UTC (minutes and hours on the clock, days at
midnight UTC) and cover ``[since, until)``: the first starts at or before
``since`` and counts only events from ``since`` on; the last ends at or after
``until``. A store computes the counts; this module says which buckets there
are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .errors import InvalidEventError
from .model import Severity
from .query import EventFilter

__all__ = [
    "DEFAULT_SPAN",
    "MAX_BUCKETS",
    "EventHistogram",
    "HistogramBucket",
    "HistogramPlan",
    "Interval",
    "plan_histogram",
]

Interval = Literal["1m", "5m", "1h", "1d", "auto"]
"""A bucket width; ``auto`` picks the narrowest giving at most :data:`AUTO_BUCKETS`."""
STEPS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
"""Each fixed interval's width."""
MAX_BUCKETS = 1000
"""The most buckets one histogram may have."""
AUTO_BUCKETS = 200
"""The most buckets ``auto`` aims for."""
DEFAULT_SPAN = timedelta(days=1)
"""How far back ``since`` is when not given: a day before ``until`` (default: now)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HistogramBucket(BaseModel):
    """The events of one bucket: from ``start`` for one interval."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    total: int
    by_severity: dict[Severity, int]
    """Every level, zeros included."""


class EventHistogram(BaseModel):
    """Counts by severity per bucket of ``interval`` over ``[since, until)``."""

    model_config = ConfigDict(frozen=True)

    interval: Literal["1m", "5m", "1h", "1d"]
    """The width of the buckets (``auto`` resolved)."""
    since: datetime
    until: datetime
    buckets: list[HistogramBucket]


class HistogramPlan(BaseModel):
    """Which buckets a histogram has: the range, the width, and each bucket's start."""

    model_config = ConfigDict(frozen=True)

    since: datetime
    until: datetime
    interval: Literal["1m", "5m", "1h", "1d"]

    @property
    def step(self) -> timedelta:
        """The width of a bucket."""
        return STEPS[self.interval]

    def floor(self, t: datetime) -> datetime:
        """The start of the bucket holding ``t``."""
        step = self.step
        return t - (t - _EPOCH) % step

    def starts(self) -> list[datetime]:
        """Every bucket's start, in order."""
        first, step = self.floor(self.since), self.step
        return [first + i * step for i in range(_count(self.since, self.until, step))]

    def histogram(self, counts: Iterable[tuple[datetime, str, int]]) -> EventHistogram:
        """The histogram from counts by (bucket start, severity name); other starts are ignored."""
        table: dict[datetime, dict[str, int]] = {start: {} for start in self.starts()}
        for start, severity, n in counts:
            row = table.get(start.astimezone(UTC))
            if row is not None:
                row[severity] = row.get(severity, 0) + int(n)
        return EventHistogram(
            interval=self.interval,
            since=self.since,
            until=self.until,
            buckets=[_bucket(start, row) for start, row in table.items()],
        )


def _bucket(start: datetime, counts: Mapping[str, int]) -> HistogramBucket:
    by_severity = {s: counts.get(s.value, 0) for s in Severity}
    return HistogramBucket(start=start, total=sum(by_severity.values()), by_severity=by_severity)


def _count(since: datetime, until: datetime, step: timedelta) -> int:
    if since >= until:
        return 0
    first = since - (since - _EPOCH) % step
    return -((first - until) // step)


def plan_histogram(
    query: EventFilter | None, interval: str, now: datetime | None = None
) -> HistogramPlan:
    """The buckets of ``query``'s histogram at ``interval``.

    ``until`` defaults to ``now``, ``since`` to :data:`DEFAULT_SPAN` before
    ``until``. Raises ``InvalidEventError`` naming ``interval`` for an unknown
    width or more than :data:`MAX_BUCKETS` buckets.
    """
    query = query or EventFilter()
    until = (query.until or now or datetime.now(UTC)).astimezone(UTC)
    since = (query.since or until - DEFAULT_SPAN).astimezone(UTC)
    if interval == "auto":
        fits = [k for k, step in STEPS.items() if _count(since, until, step) <= AUTO_BUCKETS]
        interval = fits[0] if fits else "1d"
    if interval not in STEPS:
        raise _bad_interval(f"must be one of {', '.join([*STEPS, 'auto'])}")
    count = _count(since, until, STEPS[interval])
    if count > MAX_BUCKETS:
        raise _bad_interval(
            f"gives {count} buckets over this range; at most {MAX_BUCKETS}: "
            "choose a wider interval or a shorter range"
        )
    return HistogramPlan(since=since, until=until, interval=interval)


def _bad_interval(msg: str) -> InvalidEventError:
    return InvalidEventError([{"loc": ("interval",), "msg": msg, "type": "interval_invalid"}])
