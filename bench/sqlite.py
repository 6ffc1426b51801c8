"""The SQLite store beside raw ``sqlite3`` doing the same SQL on the same file, in the same run.

    python bench/sqlite.py [--rows 1000000] [--small 100000] [--runs 3] [--seconds 2] [--smoke]

Fills two files through the store (``--small`` and ``--rows`` events over 90
days), then, medians of ``--runs`` (subject and baseline alternating):

- ``add``, one task: the store's ``add`` beside one INSERT and COMMIT on a
  connection of the same settings (WAL, ``synchronous=FULL``);
- ``add_many(1000)`` beside one ``executemany`` of the same rows in one transaction;
- the first page of a listing (50, newest first, capped count) and of a
  ``q`` search, beside the same statements run raw;
- ``stats`` at ``--small`` and at ``--rows`` events (the rollups keep it flat),
  beside the plain ``GROUP BY`` over the rows it replaces;
- the longest wait of a writer (``add`` in a loop) while retention deletes
  10 % of the events, beside its longest wait without retention.

Prints a Markdown table (and JSON with ``--json FILE``). ``--smoke`` runs on
tiny files in seconds: it checks the script works, not the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fill import Events  # noqa: E402

from sysevents import EventFilter, EventQuery, NewEvent, RetentionPolicy  # noqa: E402
from sysevents.stores.sqlite import SqliteEventRepository  # noqa: E402
from sysevents.stores.sqlite.pages import read_page  # noqa: E402
from sysevents.stores.sqlite.rows import INSERT, insert_values, micros  # noqa: E402

NOW = datetime.now(UTC)


def news(events: Events, n: int, recent: bool = False) -> list[NewEvent]:
    return [events.new_event(recent=recent) for _ in range(n)]


async def fill(path: Path, rows: int) -> float:
    """Fill ``path`` with ``rows`` events through the store; events per second."""
    events = Events(seed=7, now=NOW)
    started = time.perf_counter()
    async with SqliteEventRepository(f"sqlite:///{path}", seal_interval=0) as repo:
        done = 0
        while done < rows:
            batch = news(events, min(5000, rows - done))
            await repo.add_many(batch)
            done += len(batch)
            if done % 100_000 == 0:
                print(f"  filled {done:,} of {rows:,}", file=sys.stderr, flush=True)
    return rows / (time.perf_counter() - started)


def raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


async def rate(call: Callable[[], Awaitable[Any]], seconds: float, per_call: int = 1) -> float:
    done = 0
    started = time.perf_counter()
    stop = started + seconds
    while time.perf_counter() < stop:
        await call()
        done += 1
    return done * per_call / (time.perf_counter() - started)


async def latency(call: Callable[[], Awaitable[Any]], seconds: float) -> float:
    times = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(times) < 3:
        t = time.perf_counter()
        await call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


async def alternate(
    subject: Callable[[], Awaitable[Any]],
    baseline: Callable[[], Awaitable[Any]] | None,
    measure: Callable[[Callable[[], Awaitable[Any]], float], Awaitable[float]],
    runs: int,
    seconds: float,
) -> tuple[float, float | None]:
    mine, theirs = [], []
    for _ in range(runs):
        mine.append(await measure(subject, seconds))
        if baseline is not None:
            theirs.append(await measure(baseline, seconds))
    return statistics.median(mine), statistics.median(theirs) if theirs else None


async def longest_wait(repo: SqliteEventRepository, during: Awaitable[Any] | None) -> float:
    """The longest ``add`` of a writer looping while ``during`` runs (or for 2 s)."""
    one = NewEvent(event_type="bench.write", message="while retention runs")
    waits: list[float] = []
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await repo.add(one)
            waits.append(time.perf_counter() - t)

    task = asyncio.create_task(writer())
    if during is None:
        await asyncio.sleep(2.0)
    else:
        await during
    stop.set()
    await task
    return max(waits) * 1000


async def measure(args: argparse.Namespace, directory: Path) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []

    def figure(name: str, unit: str, value: float, base_name: str, base: float | None) -> None:
        row = {"name": name, "unit": unit, "value": value, "baseline": base_name, "base": base}
        figures.append(row)
        print(f"  {name}: {value:,.3f} {unit} (baseline {base_name}: {base})", file=sys.stderr)

    small, big = directory / "small.db", directory / "big.db"
    if not args.reuse:
        print(f"filling {args.small:,} and {args.rows:,} events", file=sys.stderr)
        await fill(small, args.small)
        fill_rate = await fill(big, args.rows)
        figure("fill through add_many(5000)", "events/s", fill_rate, "", None)
    events = Events(seed=99, now=NOW)
    ones = news(events, 2000, recent=True)
    thousand = news(events, 1000, recent=True)
    conn = raw(big)
    async with SqliteEventRepository(f"sqlite:///{big}", seal_interval=0) as repo:
        counter = iter(range(10**9))

        async def lib_add() -> None:
            await repo.add(ones[next(counter) % len(ones)])

        async def raw_add() -> None:
            new = ones[next(counter) % len(ones)]
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(INSERT, insert_values(new, micros(datetime.now(UTC)), ""))
            conn.execute("COMMIT")

        async def lib_many() -> None:
            await repo.add_many(thousand)

        async def raw_many() -> None:
            created = micros(datetime.now(UTC))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT, [insert_values(n, created, "") for n in thousand])
            conn.execute("COMMIT")

        s = args.seconds
        value, base = await alternate(lib_add, raw_add, rate, args.runs, s)
        figure("add", "events/s", value, "INSERT + COMMIT", base)
        value, base = await alternate(
            lib_many, raw_many, lambda c, t: rate(c, t, 1000), args.runs, s
        )
        figure("add_many(1000)", "events/s", value, "executemany in one transaction", base)

        first = EventQuery(limit=50)
        word = EventQuery(limit=50, q="node-17")
        rare = EventQuery(limit=50, q="#99999 ")

        def raw_page(query: EventQuery) -> Callable[[], Awaitable[Any]]:
            async def run() -> None:
                conn.execute("BEGIN")
                read_page(conn, query, None, repo.count_cap)
                conn.execute("COMMIT")

            return run

        value, base = await alternate(
            lambda: repo.list(first), raw_page(first), latency, args.runs, s
        )
        figure("list, first page (50)", "ms", value, "same SQL, raw", base)
        value, base = await alternate(
            lambda: repo.list(word), raw_page(word), latency, args.runs, s
        )
        figure("q search, common text, first page (50)", "ms", value, "same SQL, raw", base)
        value, base = await alternate(
            lambda: repo.list(rare), raw_page(rare), latency, args.runs, s
        )
        figure("q search, rare text, first page (50)", "ms", value, "same SQL, raw", base)

        def naive(path: Path) -> Callable[[], Awaitable[Any]]:
            own = raw(path)

            async def run() -> None:
                own.execute(
                    "SELECT event_type, severity, source, count(*), min(ts), max(ts) "
                    "FROM events GROUP BY 1, 2, 3"
                ).fetchall()

            return run

        async with SqliteEventRepository(f"sqlite:///{small}", seal_interval=0) as few:
            value, base = await alternate(
                lambda: few.stats(EventFilter()), naive(small), latency, args.runs, s
            )
        figure(f"stats at {args.small:,}", "ms", value, "GROUP BY over the rows", base)
        value, base = await alternate(
            lambda: repo.stats(EventFilter()), naive(big), latency, args.runs, s
        )
        figure(f"stats at {args.rows:,}", "ms", value, "GROUP BY over the rows", base)

        quiet = await longest_wait(repo, None)
        # About 10 % of a 90-day fill is older than 81 days.
        policy = RetentionPolicy.parse("*=81d")
        started = time.perf_counter()
        report_task = asyncio.ensure_future(repo.apply_retention(policy, now=NOW))
        busy = await longest_wait(repo, report_task)
        report = report_task.result()
        took = time.perf_counter() - started
        figure(
            f"longest add during retention ({report.removed:,} deleted in {took:.1f} s)",
            "ms",
            busy,
            "longest add without retention",
            quiet,
        )
    conn.close()
    return figures


def table(figures: list[dict[str, Any]]) -> str:
    lines = ["| figure | sysevents | baseline | ratio |", "| --- | ---: | --- | ---: |"]
    for f in figures:
        ratio = ""
        if f["base"]:
            better_high = f["unit"].endswith("/s")
            ratio = f"{(f['value'] / f['base'] if better_high else f['base'] / f['value']):.2f}×"
        base = f"{f['baseline']}: {f['base']:,.3f}" if f["base"] is not None else ""
        lines.append(f"| {f['name']} | {f['value']:,.3f} {f['unit']} | {base} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--smoke", action="store_true", help="tiny files, seconds in all")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--dir", help="where the files go (default: a temporary directory)")
    parser.add_argument(
        "--reuse",
        help="measure the small.db and big.db of this directory as they are (no fill; "
        "retention deletes from big.db: reuse a copy)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.small, args.runs, args.seconds = 3000, 1000, 1, 0.1
    if args.reuse:
        figures = asyncio.run(measure(args, Path(args.reuse)))
    else:
        with tempfile.TemporaryDirectory(dir=args.dir) as directory:
            figures = asyncio.run(measure(args, Path(directory)))
    print(table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
