"""The SQL of the PostgreSQL store: the WHERE builder, and the statements of reads and changes.

Every statement is assembled here from ``LiteralString`` fragments (mypy
checks it); every value travels as a bound parameter. The event's columns
come from ``sysevents.columns`` through ``rows`` (which also reads rows back).
"""

# ruff: noqa: S608

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

from sysevents.columns import PATCHABLE
from sysevents.model import EventPatch, EventStats, Severity
from sysevents.query import EventFilter

from .pool import Row
from .rollups import (
    ALL,
    HIGHEST,
    LOWEST,
    NO_SOURCE,
    Level,
    covered,
    rollup_cover,
)
from .rows import SELECT_LIST, placeholder, sql_name

SELECTED = SELECT_LIST + ", ingest_xid, idempotency_caller"
"""The columns a read by id returns: the event's, its writing transaction, its key's caller."""
SELECT = "SELECT " + SELECTED + " FROM system_events WHERE "
"""The start of a read by id (see ``sysevents.stores.postgres.byid``)."""
DELETE = "DELETE FROM system_events WHERE "
"""The start of a delete by id, to end with :data:`RETURNING`."""
RETURNING = " RETURNING " + SELECTED
WATERMARK = "SELECT watermark, watermark_id FROM system_event_rollup_state WHERE id = 1"
"""Every row below this in (``ingest_xid``, ``id``) order is counted in the rollups."""
PAST_WATERMARK = (
    "ingest_xid >= %s AND ingest_xid >= (SELECT watermark FROM system_event_rollup_state "
    "WHERE id = 1) AND (ingest_xid, id) >= (" + WATERMARK + ")"
)
"""The rows the rollups do not count yet. The parameter is a watermark known to
have been reached (it lets the planner see how few rows are past it); the
current one, read in the same snapshot as the rollups, keeps any row from being
counted twice (migration 0010)."""
WATERMARK_SHARE = WATERMARK + " FOR SHARE"
"""The watermark, held: no fold moves it until the transaction ends."""
FORGET_LOCATION = "DELETE FROM system_event_locator WHERE id = %s"
LOCATE_AT = (
    'INSERT INTO system_event_locator (id, "timestamp") VALUES (%s, %s) '
    'ON CONFLICT (id) DO UPDATE SET "timestamp" = EXCLUDED."timestamp"'
)
APPEND_ONLY_ON = (
    "INSERT INTO sysevents_flags (name, value) VALUES ('append_only', true) "
    "ON CONFLICT (name) DO UPDATE SET value = true"
)
"""Makes the database refuse changes and removals of events but retention's (migration 0012)."""
APPEND_ONLY_OFF = "DELETE FROM sysevents_flags WHERE name = 'append_only'"
"""Lets the database change and remove events again."""
FORGET_KEY = "DELETE FROM system_event_keys WHERE caller = %s AND key = %s AND id = %s"
# Reads no row, but fails on a database without the tables.
PING = "SELECT 1 FROM system_events, system_event_rollup_state LIMIT 0"

MESSAGE_LOWER = 'lower(message COLLATE "und-x-icu")'
"""The message as ``q`` searches it: the expression of the trigram index (migration 0008)."""

# -- filters --------------------------------------------------------------------


@dataclass(slots=True)
class Where:
    """SQL conditions (joined by AND) and their parameters."""

    clauses: list[LiteralString] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: LiteralString, *params: Any) -> Where:
        """A copy with one more condition."""
        return Where([*self.clauses, clause], [*self.params, *params])

    @property
    def sql(self) -> LiteralString:
        """`` WHERE …`` (with a leading space), or nothing without conditions."""
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""

    @property
    def and_sql(self) -> LiteralString:
        """The conditions, each after `` AND ``: to extend a WHERE of one's own."""
        return "".join(" AND " + c for c in self.clauses)


def where(f: EventFilter, *, times: bool = True) -> Where:
    """The SQL reading of the filters of ``f``; ``times=False`` leaves out ``since``/``until``."""
    w = Where()
    if f.event_type is not None:
        if len(f.event_type) == 1:
            w.clauses.append("event_type = %s")
            w.params.append(f.event_type[0])
        else:
            w.clauses.append("event_type = ANY(%s::text[])")
            w.params.append(list(f.event_type))
    severities = f.severities()
    if severities is not None:
        if len(severities) == 1:
            w.clauses.append("severity = %s")
            w.params.append(severities[0].value)
        else:
            w.clauses.append("severity = ANY(%s::text[])")
            w.params.append([s.value for s in severities])
    if f.source is not None:
        w.clauses.append("source = %s")
        w.params.append(f.source)
    if f.trace_id is not None:
        w.clauses.append("trace_id = %s")
        w.params.append(f.trace_id)
    if f.written_by is not None:
        w.clauses.append("written_by = %s")
        w.params.append(f.written_by)
    if times and f.since is not None:
        w.clauses.append('"timestamp" >= %s')
        w.params.append(f.since)
    if times and f.until is not None:
        w.clauses.append('"timestamp" < %s')
        w.params.append(f.until)
    if f.q is not None:
        # Both sides lowered alike (see sysevents.search); the trigram index
        # on this very expression serves it.
        w.clauses.append(MESSAGE_LOWER + ' LIKE lower(%s::text COLLATE "und-x-icu")')
        w.params.append("%" + _like_escape(f.q) + "%")
    for path, value in (f.details or {}).items():
        keys = path.split(".")
        # Containment finds the candidates by the GIN index; it also matches a
        # larger array or object, so the value at the path must equal too.
        w.clauses.append("details @> %s::jsonb AND details #> %s::text[] = %s::jsonb")
        nested: Any = value
        for key in reversed(keys):
            nested = {key: nested}
        w.params += [json.dumps(nested), keys, json.dumps(value)]
    return w


def _like_escape(text: str) -> str:
    """``text`` matched literally by LIKE (whose escape character is the backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- listing --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement and its parameters."""

    sql: LiteralString
    params: list[Any]


# -- changes --------------------------------------------------------------------


def update_statement(event_id: int, at: datetime, patch: EventPatch) -> Statement | None:
    """The UPDATE applying ``patch`` to the event stored at ``at``, returning the row.

    ``None`` if the patch changes nothing.
    """
    changes = patch.changes()
    setters: list[LiteralString] = []
    params: list[Any] = []
    for column in PATCHABLE:
        if column.name in changes:
            setters.append(sql_name(column) + " = " + placeholder(column))
            params.append(column.value_of(patch))
    if not setters:
        return None
    return Statement(
        "UPDATE system_events SET "
        + ", ".join(setters)
        + ' WHERE id = %s AND "timestamp" = %s RETURNING '
        + SELECT_LIST,
        [*params, event_id, at],
    )


# -- statistics -----------------------------------------------------------------


def stats_statement(query: EventFilter, watermark: int, now: datetime | None = None) -> Statement:
    """The one statement (one snapshot) that reads every figure of ``query``'s stats.

    Whole hours, days and months come from ``system_event_rollups``, plus the
    rows past the rollups' watermark; only the partial hours at the edges of
    each range are counted from the events. ``watermark`` is one known to
    have been reached (a lower one only costs more reading): the statement
    reads the current one itself, and returns it.
    """
    filters = where(query, times=False)
    edges = filters
    if query.event_type is not None and query.severities() is None:
        # Every severity, spelled out: the edge hours of a type are then range
        # scans of the (type, severity, timestamp) index, counts index-only,
        # instead of every event of the hour read and filtered.
        edges = filters.add("severity = ANY(%s::text[])", [s.value for s in Severity])
    since, until = query.since, query.until
    now = now or datetime.now(UTC)
    ranges: list[tuple[datetime | None, datetime | None]] = [(since, until)]
    for back in (timedelta(days=1), timedelta(hours=1)):
        start = now - back if since is None else max(since, now - back)
        ranges.append((start, until))
    # One branch per range, each with its bounds as parameters, so that the
    # planner sees how narrow it is (an index range scan, never a table scan).
    branches: list[LiteralString] = []
    args: list[Any] = []
    fresh = False  # whether a branch reads the rows past the watermark
    parts: tuple[LiteralString, ...] = ("0", "1", "2")
    raw: list[tuple[datetime, datetime]]
    buckets: list[tuple[int, datetime, datetime]]
    for part, (lo, hi) in zip(parts, ranges, strict=True):
        if lo is not None and hi is not None and lo >= hi:
            continue
        # Part 0 needs the counts by source; the others are totals only. The
        # rollups count neither by trace nor by message and details: a trace
        # or a search counts rows (through the trace_id or search indexes).
        raw, buckets = (
            ([(lo or LOWEST, hi or HIGHEST)], [])
            if query.searches
            else rollup_cover(lo, hi, by_source=part == "0" or query.source is not None)
        )
        # Each branch is aggregated on its own, over the real table's statistics
        # (a hash of at most types x severities x sources groups); only those
        # few groups are merged below, compared byte-wise (COLLATE "C").
        keys: LiteralString = "event_type, severity, " if part == "0" else "NULL, NULL, "
        by: LiteralString = " GROUP BY 2, 3, 4" if part == "0" else ""
        for level, start, end in buckets:
            # The all-time counts sit in one bucket (and one partition): asked
            # by equality, the planner leaves every other partition out.
            bounds: LiteralString = (
                "bucket = %s" if level == Level.ALL else "bucket >= %s AND bucket < %s"
            )
            branches.append(
                "SELECT " + part + " AS part, " + keys
                + ("source" if part == "0" else "NULL")
                + " AS source, sum(n) AS n FROM system_event_rollups WHERE level = %s "
                "AND " + bounds + filters.and_sql + by
            )  # fmt: skip
            window = [ALL] if level == Level.ALL else [start, end]
            args += [level, *window, *filters.params]
        if buckets:
            # The rows the rollups do not count yet: read once (below), counted per range.
            fresh = True
            branches.append(
                "SELECT " + part + " AS part, " + keys
                + ("source" if part == "0" else "NULL")
                + ' AS source, count(*) AS n FROM fresh WHERE "timestamp" >= %s '
                'AND "timestamp" < %s' + by
            )  # fmt: skip
            args += [*covered(buckets)]
        for start, end in raw:
            branches.append(
                "SELECT " + part + " AS part, " + keys
                + ("coalesce(source, '')" if part == "0" else "NULL")
                + ' AS source, count(*) AS n FROM system_events WHERE "timestamp" >= %s '
                'AND "timestamp" < %s' + edges.and_sql + by
            )  # fmt: skip
            args += [start, end, *edges.params]
    span_where = where(query)
    span: LiteralString = (
        'SELECT -1, NULL, NULL, NULL, NULL, min("timestamp"), max("timestamp") '
        "FROM system_events" + span_where.sql + " UNION ALL "
        "SELECT -2, NULL, NULL, NULL, watermark, NULL, NULL FROM system_event_rollup_state "
        "WHERE id = 1"
    )
    if branches:
        past: LiteralString = ""
        if fresh:
            past = (
                'fresh AS MATERIALIZED (SELECT event_type, severity, coalesce(source, \'\') '
                'AS source, "timestamp" FROM system_events WHERE ' + PAST_WATERMARK
                + filters.and_sql + "), "
            )  # fmt: skip
            args = [watermark, *filters.params, *args]
        sql: LiteralString = (
            "WITH " + past + "c AS MATERIALIZED (" + " UNION ALL ".join(branches) + ") "
            'SELECT 0, event_type::text COLLATE "C", severity::text COLLATE "C", '
            'source::text COLLATE "C", sum(n), NULL::timestamptz, NULL::timestamptz '
            "FROM c WHERE part = 0 GROUP BY 2, 3, 4 HAVING sum(n) <> 0 UNION ALL "
            "SELECT part, NULL, NULL, NULL, sum(n), NULL, NULL FROM c WHERE part > 0 "
            "GROUP BY part UNION ALL " + span
        )
    else:
        sql = span
    return Statement(sql, [*args, *span_where.params])


def stats_from_rows(rows: list[Row], top: int) -> tuple[EventStats, int]:
    """The stats from the rows of :func:`stats_statement`, and the watermark read with them.

    The breakdowns are cut to ``top``.
    """
    last_24h = last_hour = watermark = 0
    severities: dict[str, int] = {}
    by_type: dict[str, int] = {}
    by_source: dict[str, int] = {}
    first = last = None
    for part, event_type, severity, source, n, low, high in rows:
        if part == 0:
            severities[severity] = severities.get(severity, 0) + n
            by_type[event_type] = by_type.get(event_type, 0) + n
            if source != NO_SOURCE:
                by_source[source] = by_source.get(source, 0) + n
        elif part == 1:
            last_24h = int(n)
        elif part == 2:
            last_hour = int(n)
        elif part == -2:
            watermark = int(n)
        else:
            first, last = low, high
    stats = EventStats.from_counts(
        by_severity={k: int(v) for k, v in severities.items()},
        by_type={k: int(v) for k, v in by_type.items()},
        by_source={k: int(v) for k, v in by_source.items()},
        last_hour=last_hour,
        last_24h=last_24h,
        first_timestamp=first,
        last_timestamp=last,
        top=top,
    )
    return stats, watermark
