"""Statistics from ``system_event_rollups``: which buckets cover a range, and the statement.

The table and its triggers are in ``sysevents.schema`` and migration 0003. This
module only plans the reads; ``PostgresEventRepository.stats`` runs them.
"""

# SQL is assembled only from LiteralString fragments (mypy checks it); every
# value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

from .model import EventFilter, EventStats, Severity

# The levels of system_event_rollups (sysevents.schema.ROLLUP_LEVELS; kept out of
# here so that the store does not import SQLAlchemy) and its "no source" value.
_HOUR, _DAY, _MONTH, _ALL = 0, 1, 2, 3
_WITHOUT_SOURCE = {_HOUR: 4, _DAY: 5}  # the same buckets, counted by type and severity only
_NO_SOURCE = ""
_LOWEST = datetime.min.replace(tzinfo=UTC)
_HIGHEST = datetime.max.replace(tzinfo=UTC)


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
    lo: datetime | None, hi: datetime | None, *, by_source: bool = True
) -> tuple[list[tuple[datetime, datetime]], list[tuple[int, datetime, datetime]]]:
    """Cover ``[lo, hi)`` (``None``: unbounded) with whole rollup buckets and raw edges.

    Returns the raw time ranges (each within one partial hour at an edge) and
    the bucket ranges ``(level, first bucket, end)``: months in the middle, then
    days, then hours towards the edges. ``by_source=False`` takes hours and days
    from the levels without the source (enough for counts not filtered by it).
    """
    if lo is None and hi is None:
        return [], [(_ALL, _LOWEST, _HIGHEST)]
    lo = None if lo is None else lo.astimezone(UTC)
    hi = None if hi is None else hi.astimezone(UTC)
    raw: list[tuple[datetime, datetime]] = []
    buckets: list[tuple[int, datetime, datetime]] = []
    finer: int | None = None

    def put(start: datetime | None, end: datetime | None) -> None:
        start, end = start or _LOWEST, end or _HIGHEST
        if start < end:
            if finer is None:
                raw.append((start, end))
            elif by_source:
                buckets.append((finer, start, end))
            else:
                buckets.append((_WITHOUT_SOURCE.get(finer, finer), start, end))

    for level in (_HOUR, _DAY, _MONTH):
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


def stats_statement(
    query: EventFilter,
    clauses: list[LiteralString],
    params: list[Any],
    span_from: LiteralString,
    span_params: list[Any],
    edge_clauses: list[LiteralString] | None = None,
    edge_params: list[Any] | None = None,
) -> tuple[LiteralString, list[Any]]:
    """The one statement (one snapshot) that reads every figure of ``query``'s stats.

    ``clauses`` and ``params`` are the filters other than the time range;
    ``edge_clauses`` and ``edge_params``, if given, replace them where raw
    events are counted (the same filters, worded for the events' indexes);
    ``span_from`` is ``FROM system_events WHERE …`` with every filter, for the
    first and last timestamps.
    """
    since, until = query.since, query.until
    now = datetime.now(UTC)
    ranges: list[tuple[datetime | None, datetime | None]] = [(since, until)]
    for back in (timedelta(days=1), timedelta(hours=1)):
        start = now - back if since is None else max(since, now - back)
        ranges.append((start, until))
    # One branch per range, each with its bounds as parameters, so that the
    # planner sees how narrow it is (an index range scan, never a table scan).
    filters: LiteralString = "".join(" AND " + c for c in clauses)
    if edge_clauses is None or edge_params is None:
        edge_clauses, edge_params = clauses, params
    edge_filters: LiteralString = "".join(" AND " + c for c in edge_clauses)
    branches: list[LiteralString] = []
    args: list[Any] = []
    parts: tuple[LiteralString, ...] = ("0", "1", "2")
    for part, (lo, hi) in zip(parts, ranges, strict=True):
        if lo is not None and hi is not None and lo >= hi:
            continue
        # Part 0 needs the counts by source; the others are totals only.
        raw, buckets = rollup_cover(lo, hi, by_source=part == "0" or query.source is not None)
        # Each branch is aggregated on its own, over the real table's statistics
        # (a hash of at most types x severities x sources groups); only those
        # few groups are merged below, compared byte-wise (COLLATE "C").
        keys: LiteralString = "event_type, severity, " if part == "0" else "NULL, NULL, "
        by: LiteralString = " GROUP BY 2, 3, 4" if part == "0" else ""
        for level, start, end in buckets:
            branches.append(
                "SELECT "
                + part
                + " AS part, "
                + keys
                + ("source" if part == "0" else "NULL")
                + " AS source, sum(n) AS n FROM system_event_rollups WHERE level = %s "
                "AND bucket >= %s AND bucket < %s" + filters + by
            )
            args += [level, start, end, *params]
        for start, end in raw:
            branches.append(
                "SELECT "
                + part
                + " AS part, "
                + keys
                + ("coalesce(source, '')" if part == "0" else "NULL")
                + ' AS source, count(*) AS n FROM system_events WHERE "timestamp" >= %s '
                'AND "timestamp" < %s' + edge_filters + by
            )
            args += [start, end, *edge_params]
    span: LiteralString = (
        'SELECT -1, NULL, NULL, NULL, NULL, min("timestamp"), max("timestamp") ' + span_from
    )
    if branches:
        sql: LiteralString = (
            "WITH c AS MATERIALIZED (" + " UNION ALL ".join(branches) + ") "
            'SELECT 0, event_type::text COLLATE "C", severity::text COLLATE "C", '
            'source::text COLLATE "C", sum(n), NULL::timestamptz, NULL::timestamptz '
            "FROM c WHERE part = 0 GROUP BY 2, 3, 4 HAVING sum(n) <> 0 UNION ALL "
            "SELECT part, NULL, NULL, NULL, sum(n), NULL, NULL FROM c WHERE part > 0 "
            "GROUP BY part UNION ALL " + span
        )
    else:
        sql = span
    args += span_params
    return sql, args


def stats_from_rows(rows: list[tuple[Any, ...]]) -> EventStats:
    """The stats from the rows of ``stats_statement``."""
    total = last_24h = last_hour = 0
    severities: dict[str, int] = {}
    by_type: dict[str, int] = {}
    by_source: dict[str, int] = {}
    first = last = None
    for part, event_type, severity, source, n, low, high in rows:
        if part == 0:
            total += n
            severities[severity] = severities.get(severity, 0) + n
            by_type[event_type] = by_type.get(event_type, 0) + n
            if source != _NO_SOURCE:
                by_source[source] = by_source.get(source, 0) + n
        elif part == 1:
            last_24h = int(n)
        elif part == 2:
            last_hour = int(n)
        else:
            first, last = low, high
    return EventStats(
        total=int(total),
        by_severity={s: int(severities.get(s.value, 0)) for s in Severity},
        by_type={k: int(v) for k, v in by_type.items() if v},
        by_source={k: int(v) for k, v in by_source.items() if v},
        last_hour=last_hour,
        last_24h=last_24h,
        first_timestamp=first,
        last_timestamp=last,
    )
