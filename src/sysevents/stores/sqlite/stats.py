"""Statistics and histograms: whole hours from the rollups, the ragged edges from the rows.

A range ``[since, until)`` is cut into the whole hours it covers, counted
from ``rollups`` (kept by triggers: see ``schema``), and at most two partial
hours at its ends, counted from ``events``: the cost follows the number of
hours and series, not of events. All of time is read from ``series``.
Filters the rollups cannot answer (``q``, ``details``, ``trace_id``,
``written_by``) count the matching rows instead.
"""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sysevents.histogram import HistogramPlan
from sysevents.model import EventStats
from sysevents.query import EventFilter

from .rows import from_micros, micros
from .text import Lookup, lookup
from .where import rows_of, sql_where, where

HOUR = 3_600_000_000
"""An hour in microseconds: the width of a rollup."""


Segment = tuple[str, int | None, int | None]
"""``("raw", lo, hi)`` microseconds of rows, or ``("hours", first, end)`` of rollups."""


def _segments(since: int | None, until: int | None) -> list[Segment]:
    """``[since, until)`` as its partial hours (raw) and whole hours (rollups), in time order."""
    first = None if since is None else -(-since // HOUR)
    end = None if until is None else until // HOUR
    if first is not None and end is not None and first >= end:
        return [("raw", since, until)]
    out: list[Segment] = []
    if since is not None and first is not None and since < first * HOUR:
        out.append(("raw", since, first * HOUR))
    out.append(("hours", first, end))
    if until is not None and end is not None and end * HOUR < until:
        out.append(("raw", end * HOUR, until))
    return out


def _rollup_where(
    query: EventFilter, hours: tuple[int | None, int | None]
) -> tuple[str, list[Any]]:
    parts, params = where(query.model_copy(update={"since": None, "until": None}))
    parts.append("n > 0")
    if hours[0] is not None:
        parts.append("hour >= ?")
        params.append(hours[0])
    if hours[1] is not None:
        parts.append("hour < ?")
        params.append(hours[1])
    return sql_where(parts), params


def _raw_where(
    query: EventFilter, lo: int | None, hi: int | None, text: Lookup | None = None
) -> tuple[str, list[Any]]:
    """`` FROM ... WHERE ...`` over ``query``'s events in ``[lo, hi)``, and its parameters."""
    source, params = rows_of(query.model_copy(update={"since": None, "until": None}), text)
    more: list[str] = []
    if lo is not None:
        more.append("ts >= ?")
        params.append(lo)
    if hi is not None:
        more.append("ts < ?")
        params.append(hi)
    if more:
        source += (" AND " if " WHERE " in source else " WHERE ") + " AND ".join(more)
    return source, params


def _bounds(query: EventFilter) -> tuple[int | None, int | None]:
    return (
        None if query.since is None else micros(query.since),
        None if query.until is None else micros(query.until),
    )


def grouped(
    conn: sqlite3.Connection,
    query: EventFilter,
    rollup_key: str,
    raw_key: str,
    lo: int | None = None,
    hi: int | None = None,
    text: Lookup | None = None,
) -> Counter[tuple[Any, ...]]:
    """Counts of ``query``'s events within ``[lo, hi)`` (and its own range) by a key.

    ``rollup_key`` and ``raw_key`` compute the same key over ``rollups`` and ``events``.
    """
    since, until = _bounds(query)
    if lo is not None:
        since = lo if since is None else max(since, lo)
    if hi is not None:
        until = hi if until is None else min(until, hi)
    counts: Counter[tuple[Any, ...]] = Counter()
    if since is not None and until is not None and since >= until:
        return counts
    segments = [("raw", since, until)] if query.searches else _segments(since, until)
    for kind, lo_, hi_ in segments:
        if kind == "hours":
            clause, params = _rollup_where(query, (lo_, hi_))
            # All of time, by series: the few rows of ``series`` hold it.
            table = (
                "series" if lo_ is None and hi_ is None and "hour" not in rollup_key else "rollups"
            )
            sql = f"SELECT {rollup_key}, sum(n) FROM {table}{clause} GROUP BY {rollup_key}"
        else:
            clause, params = _raw_where(query, lo_, hi_, text)
            sql = f"SELECT {raw_key}, count(*) {clause} GROUP BY {raw_key}"
        for *key, n in conn.execute(sql, params):
            counts[tuple(key)] += n
    return counts


def _edge(
    conn: sqlite3.Connection, query: EventFilter, oldest: bool, text: Lookup | None
) -> int | None:
    """The earliest (``oldest``) or latest timestamp of ``query``'s events, in microseconds."""
    pick = "min" if oldest else "max"
    since, until = _bounds(query)
    if query.searches:
        clause, params = _raw_where(query, since, until, text)
        row = conn.execute(f"SELECT {pick}(ts) {clause}", params).fetchone()
        return None if row is None else row[0]
    segments = _segments(since, until)
    for kind, lo, hi in segments if oldest else reversed(segments):
        if kind == "hours":
            clause, params = _rollup_where(query, (lo, hi))
            row = conn.execute(f"SELECT {pick}(hour) FROM rollups{clause}", params).fetchone()
            if row is None or row[0] is None:
                continue
            lo, hi = row[0] * HOUR, (row[0] + 1) * HOUR
        clause, params = _raw_where(query, lo, hi)
        found = conn.execute(f"SELECT {pick}(ts) {clause}", params).fetchone()
        if found is not None and found[0] is not None:
            return int(found[0])
    return None


def stats(conn: sqlite3.Connection, query: EventFilter, now: datetime, top: int) -> EventStats:
    """The statistics of ``query``'s events at ``now`` (read in one transaction)."""
    key = "event_type, severity, source"
    text = lookup(conn, query.q) if query.q is not None else None
    counts = grouped(conn, query, key, key, text=text)
    by_severity: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    for (event_type, severity, source), n in counts.items():
        by_severity[severity] += n
        by_type[event_type] += n
        if source:
            by_source[source] += n
    now_us = micros(now)
    day = grouped(conn, query, "'all'", "'all'", lo=now_us - 24 * HOUR, text=text)
    recent = grouped(conn, query, "'all'", "'all'", lo=now_us - HOUR, text=text)
    first = _edge(conn, query, True, text)
    last = _edge(conn, query, False, text)
    return EventStats.from_counts(
        by_severity=by_severity,
        by_type=by_type,
        by_source=by_source,
        last_hour=sum(recent.values()),
        last_24h=sum(day.values()),
        first_timestamp=None if first is None else from_micros(first),
        last_timestamp=None if last is None else from_micros(last),
        top=top,
    )


def histogram_counts(
    conn: sqlite3.Connection, query: EventFilter, plan: HistogramPlan
) -> Iterator[tuple[datetime, str, int]]:
    """Counts by (bucket start, severity) of ``query``'s events over the plan's range."""
    step = plan.step // timedelta(microseconds=1)
    span = query.model_copy(update={"since": plan.since, "until": plan.until})
    # Buckets finer than the rollups count every row.
    rollup_key = f"(hour * {HOUR}) - (hour * {HOUR}) % {step}, severity" if step % HOUR == 0 else ""
    raw_key = f"ts - ts % {step}, severity"
    text = lookup(conn, query.q) if query.q is not None else None
    if rollup_key:
        counts = grouped(conn, span, rollup_key, raw_key, text=text)
    else:
        clause, params = _raw_where(span, *_bounds(span), text)
        sql = f"SELECT {raw_key}, count(*) {clause} GROUP BY {raw_key}"
        counts = Counter({(start, sev): n for start, sev, n in conn.execute(sql, params)})
    for (start, severity), n in counts.items():
        yield from_micros(start), severity, n
