"""Search, histogram and export on a filled table, each beside the raw driver.

    python bench/search.py --rows 1000000 [--runs 5]   # or: nox -s bench_search

Creates its own database, and drops it afterwards unless ``--keep`` (any later
run without ``--reuse`` replaces a kept one; ``--reuse`` measures it again,
whatever ``--rows`` says). Figures, medians of ``--runs``:

- ``q`` and ``details.*`` first page (50, newest first) through the library,
  beside the same SQL run raw by psycopg, and beside that SQL with the
  search indexes off (bitmap scans disabled: what the table costs without them);
- a histogram of 30 days by hour through the library (rollups), beside the
  raw ``GROUP BY date_trunc`` over the events;
- export: rows/s of ``GET /api/events/export`` (NDJSON) from a served app,
  beside ``COPY (SELECT ...) TO STDOUT``; and the server's peak RSS growth
  (``VmHWM``) over an export of 100 000 rows and of every row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fill import COPY_SQL, SERVER_URL, Events, create_database, drop_database  # noqa: E402

import sysevents  # noqa: E402
from sysevents.migrate import upgrade  # noqa: E402
from sysevents.query import EventFilter, EventQuery  # noqa: E402
from sysevents.stores.postgres import pages, sql  # noqa: E402
from sysevents.stores.postgres.rollups import Level  # noqa: E402
from sysevents.stores.postgres.rows import SELECT_LIST  # noqa: E402

NAME = "sysevents_bench_search"


def load(url: str, rows: int) -> float:
    """COPY ``rows`` events, fold them into the rollups, analyze; seconds taken."""
    started = time.perf_counter()
    events = Events()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE system_events DISABLE TRIGGER USER")
        with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            for _ in range(rows):
                copy.write_row(events.row())
        conn.execute("ALTER TABLE system_events ENABLE TRIGGER USER")
        conn.execute("SELECT system_event_rollups_fold()")
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


async def median_ms(runs: int, call: Callable[[], Awaitable[Any]]) -> float:
    await call()  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


async def paired_ms(runs: int, *calls: Callable[[], Awaitable[Any]]) -> tuple[float, ...]:
    """Medians of ``calls`` run in turn, so drift on a shared machine hits each alike."""
    for call in calls:
        await call()  # warm
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for call, taken in zip(calls, times, strict=True):
            started = time.perf_counter()
            await call()
            taken.append((time.perf_counter() - started) * 1000)
    return tuple(round(statistics.median(t), 2) for t in times)


async def searches(url: str, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cases = {
        "q (rare word)": EventQuery(q="#123456 on", limit=50, count="none"),
        "q (common word)": EventQuery(q="DEPLOY", limit=50, count="none"),
        "details.pid": EventQuery(details={"pid": 1234}, limit=50, count="none"),
        "details.host": EventQuery(details={"host": "node-7"}, limit=50, count="none"),
    }
    async with sysevents.connect(url, fold_interval=0) as repo:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        async with conn:
            for name, query in cases.items():
                statement = pages.page_statement(query, None)

                async def raw(s: sql.Statement = statement) -> None:
                    await (await conn.execute(s.sql, s.params, prepare=False)).fetchall()

                async def unindexed(s: sql.Statement = statement) -> None:
                    async with conn.transaction():
                        await conn.execute("SET LOCAL enable_bitmapscan = off")
                        await (await conn.execute(s.sql, s.params, prepare=False)).fetchall()

                lib, raw_ms = await paired_ms(runs, lambda q=query: repo.list(q), raw)
                slow = await median_ms(max(1, runs // 2), unindexed)
                out[name] = {"library_ms": lib, "raw_ms": raw_ms, "unindexed_ms": slow}
            until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            span = EventFilter(since=until - timedelta(days=30), until=until)

            async def naive() -> None:
                await (
                    await conn.execute(
                        "SELECT date_trunc('hour', \"timestamp\", 'UTC'), severity, count(*) "
                        'FROM system_events WHERE "timestamp" >= %s AND "timestamp" < %s '
                        "GROUP BY 1, 2",
                        [span.since, span.until],
                    )
                ).fetchall()

            # What the histogram reads: an hour's rollup rows without the source,
            # one per (type, severity) seen that hour, saturating, not growing
            # with the events.
            read = await (
                await conn.execute(
                    "SELECT count(*) FROM system_event_rollups "
                    "WHERE level = %s AND bucket >= %s AND bucket < %s",
                    [Level.HOUR_NO_SOURCE, span.since, span.until],
                )
            ).fetchone()
            assert read is not None
            histogram, group_by = await paired_ms(runs, lambda: repo.histogram(span, "1h"), naive)
            out["histogram 30 days by hour"] = {
                "library_ms": histogram,
                "raw_group_by_ms": group_by,
                "rollup_rows_in_span": read[0],
            }
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def export(url: str, total: int) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "SYSEVENTS_AUTH": "off",
        "SYSEVENTS_RATE_LIMIT": "off",
        "SYSEVENTS_ADDRESS_LIMIT": "off",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "sysevents", "serve", "--port", str(port), "--database-url", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        out: dict[str, Any] = {}

        def run(params: dict[str, str]) -> tuple[int, float]:
            started = time.perf_counter()
            lines = 0
            with httpx.stream("GET", base + "/api/events/export", params=params, timeout=600) as r:
                for chunk in r.iter_lines():
                    lines += bool(chunk)
            return lines, time.perf_counter() - started

        run({"until": "2000-01-01T00:00:00Z"})  # warm, nothing
        run({"event_type": "cert_renewed"})
        base_rss = peak_rss_kib(server.pid)
        with psycopg.connect(url) as conn:
            row = conn.execute(
                'SELECT "timestamp" FROM system_events ORDER BY "timestamp" OFFSET %s LIMIT 1',
                [min(100_000, total) - 1],
            ).fetchone()
        assert row is not None
        cut = (row[0] + timedelta(microseconds=1)).isoformat()
        n100k, s100k = run({"until": cut})
        rss_100k = peak_rss_kib(server.pid)
        n_all, s_all = run({})
        rss_all = peak_rss_kib(server.pid)
        out["export 100k"] = {"rows": n100k, "rows_per_s": round(n100k / s100k)}
        out["export all"] = {"rows": n_all, "rows_per_s": round(n_all / s_all)}
        out["server peak RSS (MiB)"] = {
            "before": round(base_rss / 1024, 1),
            "after 100k": round(rss_100k / 1024, 1),
            "after all": round(rss_all / 1024, 1),
        }
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            copied = 0
            with conn.cursor().copy(
                "COPY (SELECT " + SELECT_LIST + ' FROM system_events ORDER BY "timestamp", id) '
                "TO STDOUT"
            ) as copy:
                for block in copy:
                    copied += bytes(block).count(b"\n")
            out["raw COPY TO"] = {
                "rows": copied,
                "rows_per_s": round(copied / (time.perf_counter() - started)),
            }
        return out
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="5 000 events, one run: seconds")
    parser.add_argument("--no-export", action="store_true", help="skip the export figures")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again")
    parser.add_argument(
        "--postgres-url",
        default=SERVER_URL,
    )
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.runs = min(args.rows, 5_000), 1
    if args.reuse:
        url = urlunsplit(urlsplit(args.postgres_url)._replace(path="/" + NAME))
    else:
        url = create_database(args.postgres_url, NAME)
    try:
        if args.reuse:
            with psycopg.connect(url) as conn:
                counted = conn.execute("SELECT count(*) FROM system_events").fetchone()
            assert counted is not None
            args.rows = int(counted[0])
        results: dict[str, Any] = {"rows": args.rows}
        if not args.reuse:
            upgrade(url)
            results["load_s"] = round(load(url, args.rows), 1)
        results |= asyncio.run(searches(url, args.runs))
        if not args.no_export:
            results |= export(url, args.rows)
        print(json.dumps(results, indent=2))
    finally:
        if not (args.keep or args.reuse):
            drop_database(args.postgres_url, NAME)


if __name__ == "__main__":
    main()
