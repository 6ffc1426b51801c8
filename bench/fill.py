"""Realistic events for the benchmarks, and a fresh database filled with them by COPY.

About 20 event types and 50 sources; each source emits a handful of types
(as a service emits its own events); severities are skewed towards ``info``;
timestamps spread over the last 90 days (or the span given); details are small
JSON objects. The table gets a monthly partition for every month of the span,
as ``sysevents migrate`` gives a table that held events that old.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from sysevents import NewEvent

EVENT_TYPES = [
    "http_request",
    "user_login",
    "user_logout",
    "deploy",
    "health_check",
    "db_health_check",
    "job_started",
    "job_finished",
    "job_failed",
    "cache_miss",
    "config_changed",
    "payment_processed",
    "payment_failed",
    "email_sent",
    "queue_backlog",
    "disk_usage",
    "cert_renewed",
    "feature_flag",
    "system_startup",
    "system_shutdown",
]
SEVERITIES = ["debug", "info", "warning", "error", "critical"]
SEVERITY_WEIGHTS = [15, 62, 15, 6, 2]
SOURCES = [
    f"svc-{name}-{i}" for i, name in enumerate(["api", "worker", "billing", "auth", "web"] * 10)
]
RARE_TYPE = "cert_renewed"
COMMON_TYPE = "http_request"
SPAN = timedelta(days=90)
SERVER_URL = os.environ.get(
    "SYSEVENTS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
"""The server every bench makes its own database on, unless given ``--postgres-url``."""
COPY_SQL = (
    'COPY system_events (event_type, severity, message, details, source, "timestamp") FROM STDIN'
)


class Events:
    """A seeded generator of realistic events."""

    def __init__(self, seed: int = 42, now: datetime | None = None, span: timedelta = SPAN) -> None:
        self.rng = random.Random(seed)
        self.span = span
        self.now = now or datetime.now(UTC)
        # Zipf-like popularity of types; each source emits 4 of them.
        self.type_weights = [1 / (i + 1) for i in range(len(EVENT_TYPES))]
        self.source_weights = [1 / (i + 1) ** 0.7 for i in range(len(SOURCES))]
        rng = random.Random(seed + 1)
        self.source_types = {
            s: rng.choices(EVENT_TYPES, weights=self.type_weights, k=4) for s in SOURCES
        }
        self.counter = 0

    def row(self, *, recent: bool = False) -> tuple[str, str, str, str, str | None, datetime]:
        rng = self.rng
        self.counter += 1
        n = self.counter
        if rng.random() < 0.1:
            source = None
            event_type = rng.choices(EVENT_TYPES, weights=self.type_weights)[0]
        else:
            source = rng.choices(SOURCES, weights=self.source_weights)[0]
            event_type = rng.choice(self.source_types[source])
        if event_type == RARE_TYPE and rng.random() < 0.9:
            event_type = COMMON_TYPE  # rare indeed: about 0.1 % of events
        severity = rng.choices(SEVERITIES, weights=SEVERITY_WEIGHTS)[0]
        details = json.dumps(
            {"host": f"node-{n % 64}", "pid": 1000 + n % 5000, "duration_ms": n % 997},
            separators=(",", ":"),
        )
        if recent:
            ts = self.now - timedelta(seconds=rng.random() * 60)
        else:
            ts = self.now - self.span * rng.random()
        return event_type, severity, f"{event_type} #{n} on node-{n % 64}", details, source, ts

    def new_event(self, *, recent: bool = True) -> NewEvent:
        """The next row as a ``NewEvent`` (``recent``: in the last minute, else over the span)."""
        event_type, severity, message, details, source, ts = self.row(recent=recent)
        return NewEvent(
            event_type=event_type,
            severity=severity,
            message=message,
            details=json.loads(details),
            source=source,
            timestamp=ts,
        )


def create_database(server_url: str, name: str) -> str:
    """Drop and create database ``name``; return its URL."""
    from urllib.parse import urlsplit, urlunsplit

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


FILL_SQL = (
    'COPY system_events (id, event_type, severity, message, details, source, "timestamp") '
    "FROM STDIN"
)


def partition_months(conn: psycopg.Connection[Any], since: datetime) -> None:
    """Give every month from ``since`` a partition of its own (the table must be empty)."""
    import asyncio

    from sysevents.stores.postgres.ids import month_index, month_start
    from sysevents.stores.postgres.partitions import HISTORY, ensure_partitions

    first = month_index(since)
    for parent, history in (
        ("system_events", HISTORY),
        ("system_event_rollups", "system_event_rollups_history"),
    ):
        conn.execute(f"DROP TABLE {history}")
        conn.execute(
            f"CREATE TABLE {history} PARTITION OF {parent} FOR VALUES FROM (MINVALUE) "
            f"TO ('{month_start(first).isoformat()}')"
        )

    async def make() -> None:
        aconn = await psycopg.AsyncConnection.connect(conn.info.dsn, autocommit=True)
        async with aconn:
            await ensure_partitions(aconn, range(first, month_index(datetime.now(UTC)) + 1))

    asyncio.run(make())


def fold(conn: psycopg.Connection[Any]) -> None:
    """Count every loaded row into the rollups (waits for older transactions to end)."""
    deadline = time.monotonic() + 600
    while True:
        conn.execute("SELECT system_event_rollups_fold()")
        left = conn.execute(
            "SELECT count(*) FROM system_events "
            "WHERE ingest_xid >= (SELECT watermark FROM system_event_rollup_state)"
        ).fetchone()
        if left == (0,) or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def fill(url: str, rows: int, events: Events, *, chunk: int = 200_000) -> dict[str, Any]:
    """COPY ``rows`` events into ``url`` (ids as the library makes them), fold, analyze."""
    from sysevents.stores.postgres.ids import compose, month_index

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        partition_months(conn, events.now - events.span)
        done = 0
        while done < rows:
            size = min(chunk, rows - done)
            with conn.cursor() as cur, cur.copy(FILL_SQL) as copy:
                for _ in range(size):
                    row = events.row()
                    done += 1
                    copy.write_row((compose(month_index(row[5]), done), *row))
        conn.execute("SELECT setval('system_events_seq', %s)", (rows + 1,))
        fold(conn)
        conn.execute("VACUUM ANALYZE system_events")
        conn.execute("VACUUM ANALYZE system_event_rollups")
        rollups = conn.execute("SELECT count(*) FROM system_event_rollups").fetchone()
        size_row = conn.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = 'system_events'::regclass"
        ).fetchone()
        parts = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'system_events'::regclass"
        ).fetchone()
    assert rollups is not None
    assert size_row is not None
    assert parts is not None
    return {
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
        "rollup_rows": rollups[0],
        "table_bytes": int(size_row[0] or 0),
        "partitions": parts[0],
    }
