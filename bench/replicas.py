"""Reads moved to a streaming replica: what the writers gain, what the reads cost.

    python bench/replicas.py [--rows 200000] [--seconds 8] [--runs 3] [--smoke]

A private primary (``initdb``) filled with ``--rows`` events, and a streaming
replica of it (``pg_basebackup -R``). Sixteen writers add events one by one
while four readers, in a process of their own, alternate a first page and
whole-table stats; once with the reads on the primary, once with them on the
replica (``read_database_url``), the order turning every run. Prints medians
of writes/s and reads/s for both. Both servers share this machine's cores,
so what moving the reads frees here is the primary's connections and locks,
not CPU: on separate machines the writers gain more.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.private_postgres import PrivatePostgres  # noqa: E402

from sysevents import EventFilter, EventQuery, NewEvent  # noqa: E402
from sysevents.migrate import upgrade  # noqa: E402
from sysevents.stores.postgres import PostgresEventRepository  # noqa: E402

WRITERS = 16
READERS = 4


async def _fill(url: str, rows: int) -> None:
    async with PostgresEventRepository(url) as repo:
        for start in range(0, rows, 5000):
            batch = [
                NewEvent(event_type=f"type_{i % 40}", message=f"event {i}", source=f"s{i % 7}")
                for i in range(start, min(rows, start + 5000))
            ]
            await repo.add_many(batch)
        while (await repo.fold()) not in (0, None):
            pass


async def _read(primary: str, replicas: list[str], seconds: float) -> int:
    async with PostgresEventRepository(primary, read_database_url=replicas) as repo:
        if replicas and not repo.replicas()[0].usable:
            raise SystemExit("the replica is not in use: see the warning above")
        done = 0
        deadline = time.monotonic() + seconds

        async def reader() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await repo.list(EventQuery(limit=50))
                await repo.stats(EventFilter())
                done += 2

        await asyncio.gather(*(reader() for _ in range(READERS)))
        return done


def _reader_process(primary: str, replicas: list[str], seconds: float, out: object) -> None:
    out.put(asyncio.run(_read(primary, replicas, seconds)))  # type: ignore[attr-defined]


async def _write(url: str, seconds: float) -> int:
    async with PostgresEventRepository(url, pool_max_size=WRITERS) as repo:
        done = 0
        deadline = time.monotonic() + seconds

        async def writer() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await repo.add(NewEvent(event_type="bench_write", message="w"))
                done += 1

        await asyncio.gather(*(writer() for _ in range(WRITERS)))
        return done


def _round(primary: str, replicas: list[str], seconds: float) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    readers = context.Process(target=_reader_process, args=(primary, replicas, seconds + 1, out))
    readers.start()
    time.sleep(1.0)  # the readers' pool is open and reading before the writers start
    writes = asyncio.run(_write(primary, seconds))
    reads = out.get(timeout=seconds + 60)
    readers.join()
    return writes / seconds, reads / (seconds + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny and short: checks it runs")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.seconds, args.runs = 2000, 1.0, 1
    with PrivatePostgres() as primary:
        upgrade(primary.url)
        asyncio.run(_fill(primary.url, args.rows))
        with primary.replica() as replica:
            figures: dict[str, list[tuple[float, float]]] = {"primary": [], "replica": []}
            for run in range(args.runs):
                order = ["primary", "replica"] if run % 2 == 0 else ["replica", "primary"]
                for where in order:
                    urls = [replica.url] if where == "replica" else []
                    figures[where].append(_round(primary.url, urls, args.seconds))
    print(f"{args.rows:,} events; {WRITERS} writers, {READERS} readers; medians of {args.runs}")
    print("| reads served by | writes/s | reads/s |")
    print("| --- | ---: | ---: |")
    for where, rounds in figures.items():
        writes = statistics.median(r[0] for r in rounds)
        reads = statistics.median(r[1] for r in rounds)
        print(f"| {where} | {writes:,.0f} | {reads:,.0f} |")


if __name__ == "__main__":
    main()
