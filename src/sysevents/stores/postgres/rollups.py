"""The rollup levels, which buckets of them cover a time range (with raw edges), and their SQL.

The table is declared in ``sysevents.schema``; its fold function is in
migration 0006; ``sysevents.stores.postgres.sql`` builds the statements that read
and correct it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import IntEnum


class Level(IntEnum):
    """The levels of ``system_event_rollups``: each event is counted once at every level.

    The ``*_NO_SOURCE`` levels count by type and severity only (``source`` is
    empty): counts over recent hours read far fewer rows from them.
    """

    HOUR = 0
    DAY = 1
    MONTH = 2
    ALL = 3
    HOUR_NO_SOURCE = 4
    DAY_NO_SOURCE = 5


ROLLUP_KEY = "level, bucket, event_type, severity, source"
"""The key of a rollup row."""
LEVELS = (
    "(VALUES (0::smallint), (1::smallint), (2::smallint), (3::smallint), (4::smallint), "
    "(5::smallint)) AS l(level)"
)
"""Every level, as a relation ``l(level)`` to cross join with events ``e``."""
BUCKET = (
    "CASE WHEN l.level IN (0, 4) THEN date_trunc('hour', e.\"timestamp\", 'UTC') "
    "WHEN l.level IN (1, 5) THEN date_trunc('day', e.\"timestamp\", 'UTC') "
    "WHEN l.level = 2 THEN date_trunc('month', e.\"timestamp\", 'UTC') "
    "ELSE '1970-01-01 00:00:00+00'::timestamptz END"
)
"""The bucket of event ``e`` at level ``l`` (as migration 0006's fold counts it)."""
SOURCE = "CASE WHEN l.level >= 4 THEN '' ELSE coalesce(e.source, '') END"
"""The source of event ``e`` at level ``l``."""
NO_SOURCE = ""
"""The ``source`` of rollup rows counting events without a source (a source is never empty)."""
ALL_BUCKET = "1970-01-01 00:00:00+00"
"""The one bucket of the ``ALL`` level, as SQL writes it."""
ALL = datetime(1970, 1, 1, tzinfo=UTC)
"""The one bucket of the ``ALL`` level."""

_HOUR, _DAY, _MONTH, _ALL = Level.HOUR, Level.DAY, Level.MONTH, Level.ALL
# The same buckets, counted by type and severity only.
_WITHOUT_SOURCE: dict[int, int] = {Level.HOUR: Level.HOUR_NO_SOURCE, Level.DAY: Level.DAY_NO_SOURCE}
LOWEST = datetime.min.replace(tzinfo=UTC)
"""The start of time, as far as a bucket range goes."""
HIGHEST = datetime.max.replace(tzinfo=UTC)
"""The end of time, as far as a bucket range goes."""
_HIGHEST = HIGHEST


def _floor(t: datetime, level: int) -> datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    if level >= _DAY:
        t = t.replace(hour=0)
    if level >= _MONTH:
        t = t.replace(day=1)
    return t


def _ceil(t: datetime, level: int) -> datetime | None:
    """The first bucket start of ``level`` at or after ``t``; ``None`` past year 9999."""
    floor = _floor(t, level)
    if floor == t:
        return t
    try:
        if level == _HOUR:
            return floor + timedelta(hours=1)
        if level == _DAY:
            return floor + timedelta(days=1)
        if floor.month == 12:
            return floor.replace(year=floor.year + 1, month=1)
        return floor.replace(month=floor.month + 1)
    except (OverflowError, ValueError):
        return None


def rollup_cover(
    lo: datetime | None,
    hi: datetime | None,
    *,
    by_source: bool = True,
    coarsest: int = Level.MONTH,
) -> tuple[list[tuple[datetime, datetime]], list[tuple[int, datetime, datetime]]]:
    """Cover ``[lo, hi)`` (``None``: unbounded) with whole rollup buckets and raw edges.

    Returns the raw time ranges (each within one partial hour at an edge) and
    the bucket ranges ``(level, first bucket, end)``: months in the middle, then
    days, then hours towards the edges. ``by_source=False`` takes hours and days
    from the levels without the source (enough for counts not filtered by it).
    ``coarsest`` is the widest level used (a histogram by hour wants hours).
    """
    if lo is None and hi is None:
        return [], [(_ALL, LOWEST, _HIGHEST)]
    lo = None if lo is None else lo.astimezone(UTC)
    hi = None if hi is None else hi.astimezone(UTC)
    raw: list[tuple[datetime, datetime]] = []
    buckets: list[tuple[int, datetime, datetime]] = []
    finer: int | None = None

    def put(start: datetime | None, end: datetime | None) -> None:
        start, end = start or LOWEST, end or _HIGHEST
        if start < end:
            if finer is None:
                raw.append((start, end))
            elif by_source:
                buckets.append((finer, start, end))
            else:
                buckets.append((_WITHOUT_SOURCE.get(finer, finer), start, end))

    for level in (lv for lv in (_HOUR, _DAY, _MONTH) if lv <= coarsest):
        start = None if lo is None else _ceil(lo, level)
        end = None if hi is None else _floor(hi, level)
        if (lo is not None and start is None) or (
            start is not None and end is not None and start >= end
        ):
            put(lo, hi)  # no whole bucket of this level inside: the finer level covers it
            return raw, buckets
        if lo is not None:
            put(lo, start)
        if hi is not None:
            put(end, hi)
        lo, hi, finer = start, end, level
    put(lo, hi)
    return raw, buckets


def covered(buckets: list[tuple[int, datetime, datetime]]) -> tuple[datetime, datetime]:
    """The one range that the bucket ranges of :func:`rollup_cover` cover together."""
    return min(b[1] for b in buckets), max(b[2] for b in buckets)
