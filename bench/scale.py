"""Two years of events at 20M beside the same at 1M: the library's figures at size.

    python bench/scale.py fill --rows 20000000 --database sysevents_bench_20m
    python bench/scale.py fill --rows 1000000 --database sysevents_bench_1m
    python bench/scale.py measure --databases sysevents_bench_1m,sysevents_bench_20m
    python bench/scale.py drop --databases sysevents_bench_1m,sysevents_bench_20m
    python bench/scale.py smoke    # all three on 10 000 and 20 000 events, in seconds

``fill`` writes through the library's bulk path (``add_many`` in batches of
10 000, by COPY, two writers at once), with timestamps spread over two years,
each month in a partition of its own (``make_room``, as an import does), and
reports the rate; then it folds the statistics and analyzes. ``measure``
times, on each database in turn, the same day on the same machine: get by id,
the first page, a cursor page, whole-table stats, a 30-day histogram by hour,
the first page of three ``q`` searches (a common text, a rare one, one that
finds nothing), and last, as it changes the data, retention: up to the end of
the oldest month (its partition dropped whole), then one day further (rows
deleted in batches). Each ``measure`` removes the then-oldest month. Medians
of ``--runs`` rounds of ``--calls`` calls.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fill import RARE_TYPE, SERVER_URL, Events, create_database  # noqa: E402

from sysevents import EventFilter, EventQuery, RetentionPolicy  # noqa: E402
from sysevents.migrate import upgrade  # noqa: E402
from sysevents.stores.postgres import PostgresEventRepository  # noqa: E402
from sysevents.stores.postgres.ids import month_index, month_start  # noqa: E402

SPAN = timedelta(days=730)
SEARCHES = {
    "1 event in 64 (node-17)": "node-17",
    f"about 1 in 500 ({RARE_TYPE})": RARE_TYPE,
    "no match (node-17 + space)": "node-17 ",
}
"""``q`` searches: a common text, a rare one, and one that finds nothing (it reads every
event the trigram index cannot rule out)."""
BATCH = 10_000


def url_of(database: str) -> str:
    return urlunsplit(urlsplit(SERVER_URL)._replace(path="/" + database))


def store(url: str) -> PostgresEventRepository:
    return PostgresEventRepository(
        url, fold_interval=0, seal_interval=0, timeout=600, fold_step=200_000
    )


async def fill(database: str, rows: int, resume: bool = False) -> dict[str, Any]:
    """Fill ``database`` with ``rows`` events; ``resume``: add what an interrupted fill left out."""
    url = url_of(database) if resume else create_database(SERVER_URL, database)
    written = 0
    if resume:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM system_events").fetchone()
            written = row[0] if row else 0
    else:
        upgrade(url)
    # A resumed fill draws other events than the first one did.
    events = Events(seed=7 + written, span=SPAN)
    rows -= written
    written = 0
    started = time.perf_counter()
    async with store(url) as repo:
        # Each month in a partition of its own, as two years of live writes or an
        # import (`sysevents import` calls make_room too) leave them: retention
        # then drops the oldest month whole.
        now = datetime.now(UTC)
        await repo.make_room(now - timedelta(days=day) for day in range(0, SPAN.days + 1, 10))

        async def writer() -> None:
            nonlocal written
            while written < rows:
                size = min(BATCH, rows - written)
                written += size
                batch = [events.new_event(recent=False) for _ in range(size)]
                await repo.add_many(batch)
                if written % 1_000_000 < BATCH:
                    rate = written / (time.perf_counter() - started)
                    print(f"  {written:,} events, {rate:,.0f}/s", flush=True)

        await asyncio.gather(writer(), writer())
        seconds = time.perf_counter() - started
        fold_started = time.perf_counter()
        while (await repo.fold()) not in (0, None):
            pass
        folded = time.perf_counter() - fold_started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {
        "rows": rows,
        "fill_seconds": round(seconds),
        "events_per_second": round(rows / seconds),
        "fold_seconds": round(folded),
    }


async def timed(call: Callable[[], Awaitable[Any]], calls: int, runs: int) -> float:
    """The median over ``runs`` of the mean milliseconds of ``calls`` calls."""
    await call()
    means = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(calls):
            await call()
        means.append((time.perf_counter() - started) / calls * 1000)
    return statistics.median(means)


async def measure(database: str, calls: int, runs: int) -> dict[str, float]:
    url = url_of(database)
    with psycopg.connect(url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM system_events TABLESAMPLE SYSTEM (1) LIMIT 5000"
            ).fetchall()
        ]
    rng = random.Random(1)
    out: dict[str, float] = {}
    async with store(url) as repo:
        first = await repo.list(EventQuery(limit=50))
        cursor = first.next_cursor
        now = datetime.now(UTC)
        out["get by id"] = await timed(lambda: repo.get(rng.choice(ids)), calls, runs)
        out["first page"] = await timed(lambda: repo.list(EventQuery(limit=50)), calls, runs)
        out["cursor page"] = await timed(
            lambda: repo.list(EventQuery(limit=50, cursor=cursor)), calls, runs
        )
        out["stats, whole table"] = await timed(repo.stats, calls, runs)
        month = EventFilter(since=now - timedelta(days=30))
        out["histogram, 30 days by hour"] = await timed(
            lambda: repo.histogram(month, "1h"), max(1, calls // 5), runs
        )
        for label, text in SEARCHES.items():
            out[f"q search, first page: {label}"] = await timed(
                functools.partial(repo.list, EventQuery(limit=50, q=text)),
                max(1, calls // 5),
                runs,
            )
        # Retention: first up to a month's end (the oldest month's partition is
        # dropped whole), then one day further (rows deleted in batches).
        oldest = (await repo.list(EventQuery(limit=1, order="oldest"))).items[0].timestamp
        boundary = month_start(month_index(oldest) + 1)
        for label, cutoff in (
            ("oldest month, partition drop", boundary),
            ("the next day, batched delete", boundary + timedelta(days=1)),
        ):
            days = (now - cutoff).days
            started = time.perf_counter()
            report = await repo.apply_retention(
                RetentionPolicy.parse(f"*={days}d"), now=cutoff + timedelta(days=days)
            )
            out[f"retention, {label} (s)"] = time.perf_counter() - started
            out[f"retention, {label}: events removed"] = report.removed
            out[f"retention, {label}: partitions dropped"] = len(report.partitions_dropped)
    return out


def drop(databases: list[str]) -> None:
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        for name in databases:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["fill", "measure", "drop", "smoke"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default="sysevents_bench_1m")
    parser.add_argument("--databases", default="sysevents_bench_1m,sysevents_bench_20m")
    parser.add_argument(
        "--resume", action="store_true", help="fill: add what an interrupted fill left out"
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    names = args.databases.split(",")
    if args.action == "smoke":
        # fill, measure and drop two small databases: keeps this script from rotting
        names = ["sysevents_bench_smoke_a", "sysevents_bench_smoke_b"]
        try:
            for name, rows in zip(names, (10_000, 20_000), strict=True):
                print(json.dumps(asyncio.run(fill(name, rows))))
            report(names, calls=2, runs=1)
        finally:
            drop(names)
    elif args.action == "fill":
        print(json.dumps(asyncio.run(fill(args.database, args.rows, args.resume))))
    elif args.action == "drop":
        drop(names)
    else:
        report(names, args.calls, args.runs)
    return 0


def report(names: list[str], calls: int, runs: int) -> None:
    """Measure each database in turn; print a table with the last beside the first."""
    figures = {name: asyncio.run(measure(name, calls, runs)) for name in names}
    print("| figure (ms) | " + " | ".join(names) + " | ratio |")
    print("| --- |" + " ---: |" * (len(names) + 1))
    for key in figures[names[0]]:
        values = [figures[n][key] for n in names]
        ratio = values[-1] / values[0] if values[0] else float("nan")
        print(f"| {key} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    raise SystemExit(main())
