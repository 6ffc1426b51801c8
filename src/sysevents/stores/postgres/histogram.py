"""The SQL of a histogram: hours and days from the rollups, minutes and searches from the rows.

Hour and day buckets are composed as stats are (``sql.stats_statement``):
whole buckets from ``system_event_rollups``, plus the rows past the
watermark, plus the partial hours at the edges of the range counted from the
events, all in one statement (one snapshot). Minute buckets, and filters the
rollups cannot answer (``q``, ``details``), count the events of the range.
"""

# ruff: noqa: S608

from __future__ import annotations

from typing import Any, LiteralString

from sysevents.histogram import HistogramPlan
from sysevents.query import EventFilter

from .rollups import Level, covered, rollup_cover
from .sql import PAST_WATERMARK, Statement, where

# The bucket of a row's "timestamp", per interval: UTC-aligned.
_OF_TIMESTAMP: dict[str, LiteralString] = {
    "1m": "date_bin('1 minute', \"timestamp\", TIMESTAMPTZ '1970-01-01 00:00:00+00')",
    "5m": "date_bin('5 minutes', \"timestamp\", TIMESTAMPTZ '1970-01-01 00:00:00+00')",
    "1h": "date_trunc('hour', \"timestamp\", 'UTC')",
    "1d": "date_trunc('day', \"timestamp\", 'UTC')",
}
# The bucket of a rollup row (itself an hour or a day), per interval.
_OF_ROLLUP: dict[str, LiteralString] = {
    "1h": "date_trunc('hour', bucket, 'UTC')",
    "1d": "date_trunc('day', bucket, 'UTC')",
}
_COARSEST = {"1h": Level.HOUR, "1d": Level.DAY}


def histogram_statement(query: EventFilter, plan: HistogramPlan, watermark: int) -> Statement:
    """The statement counting ``query``'s events by (bucket start, severity) over ``plan``.

    ``watermark`` is one the rollups are known to have reached (see
    ``sql.stats_statement``).
    """
    filters = where(query, times=False)
    of_row = _OF_TIMESTAMP[plan.interval]
    of_rollup = _OF_ROLLUP.get(plan.interval)
    if of_rollup is None or query.searches:
        return Statement(
            "SELECT " + of_row + ', severity, count(*) FROM system_events WHERE "timestamp" >= %s '
            'AND "timestamp" < %s' + filters.and_sql + " GROUP BY 1, 2",
            [plan.since, plan.until, *filters.params],
        )
    raw, buckets = rollup_cover(
        plan.since,
        plan.until,
        by_source=query.source is not None,
        coarsest=_COARSEST[plan.interval],
    )
    branches: list[LiteralString] = []
    args: list[Any] = []
    for level, start, end in buckets:
        branches.append(
            "SELECT " + of_rollup + " AS b, severity, sum(n) AS n FROM system_event_rollups "
            "WHERE level = %s AND bucket >= %s AND bucket < %s" + filters.and_sql + " GROUP BY 1, 2"
        )
        args += [level, start, end, *filters.params]
    if buckets:
        branches.append(
            "SELECT "
            + of_row
            + " AS b, severity, count(*) AS n FROM system_events WHERE "
            + PAST_WATERMARK
            + ' AND "timestamp" >= %s AND "timestamp" < %s'
            + filters.and_sql
            + " GROUP BY 1, 2"
        )
        args += [watermark, *covered(buckets), *filters.params]
    for start, end in raw:
        branches.append(
            "SELECT "
            + of_row
            + ' AS b, severity, count(*) AS n FROM system_events WHERE "timestamp" '
            '>= %s AND "timestamp" < %s' + filters.and_sql + " GROUP BY 1, 2"
        )
        args += [start, end, *filters.params]
    return Statement(
        "SELECT b, severity, sum(n) FROM (" + " UNION ALL ".join(branches) + ") AS c GROUP BY 1, 2",
        args,
    )
