"""What sealing costs writers, and how fast ``verify`` reads: sysevents.integrity on PostgreSQL.

    python bench/seal.py [--rows 1000000] [--runs 3] [--seconds 5] [--smoke] [--out DIR]

Ingest, sealing on against sealing off, in the same run: the same store
settings, one with a seal key and a sealer every 0.2 s (fifty times the
default rate, so its cost shows), the other with ``seal_interval=0``. The two
alternate run by run; each "on" run ends with the sealer catching up, and its
rate counts that time too, so no work is left out. Two workloads: ``add``
from 8 tasks (one INSERT each) and ``add_many`` of 1000 (COPY).

Then ``--rows`` events are loaded by COPY, sealed (rate), and verified:
``sysevents.integrity.verify`` (one Python process, one core) beside the
raw driver reading the same rows with the same fingerprint SQL, the floor
``verify`` stands on. Creates and drops its own database on
``SYSEVENTS_BENCH_POSTGRES_URL``'s server. Prints medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fill import SERVER_URL, Events, create_database, drop_database, fill  # noqa: E402

from sysevents.integrity import verify  # noqa: E402
from sysevents.integrity.signing import Signer  # noqa: E402
from sysevents.migrate import upgrade  # noqa: E402
from sysevents.stores.postgres import PostgresEventRepository  # noqa: E402
from sysevents.stores.postgres.seals import fingerprint_sql  # noqa: E402

NAME = "sysevents_bench_seal"
KEY = Signer.generate().text()


def store(url: str, sealing: bool) -> PostgresEventRepository:
    return PostgresEventRepository(
        url,
        fold_interval=0,
        seal_interval=0.2 if sealing else 0,
        seal_key=KEY if sealing else None,
        pool_max_size=10,
    )


async def ingest_run(url: str, sealing: bool, batch: int, tasks: int, seconds: float) -> float:
    """Events per second for ``seconds`` of writing (and, sealing, the catch-up after)."""
    events = Events(seed=int(time.time()))
    news = [events.new_event() for _ in range(max(batch, 1) * 4)]
    written = 0
    async with store(url, sealing) as repo:
        await repo.ping()
        stop = time.perf_counter() + seconds
        started = time.perf_counter()

        async def worker(n: int) -> None:
            nonlocal written
            i = n
            while time.perf_counter() < stop:
                if batch == 1:
                    await repo.add(news[i % len(news)])
                else:
                    await repo.add_many(news[:batch])
                written += batch
                i += 1

        await asyncio.gather(*(worker(n) for n in range(tasks)))
        if sealing:
            await repo.seal()  # what the sealer has not done yet counts too
        elapsed = time.perf_counter() - started
    return written / elapsed


async def ingest(url: str, runs: int, seconds: float) -> list[dict[str, Any]]:
    out = []
    for name, batch, tasks in (
        ("add (INSERT), 8 tasks", 1, 8),
        ("add_many of 1000 (COPY)", 1000, 2),
    ):
        on: list[float] = []
        off: list[float] = []
        await ingest_run(url, False, batch, tasks, min(seconds, 0.5))  # warm up
        for i in range(runs):
            # The order turns each run: neither the table's growth nor drift favours one.
            for sealing in (i % 2 == 0, i % 2 != 0):
                (on if sealing else off).append(
                    await ingest_run(url, sealing, batch, tasks, seconds)
                )
        ratio = statistics.median(on) / statistics.median(off)
        out.append(
            {
                "workload": name,
                "sealing_off": round(statistics.median(off)),
                "sealing_on": round(statistics.median(on)),
                "ratio": round(ratio, 3),
                "cost_percent": round((1 - ratio) * 100, 1),
                "runs_on": [round(x) for x in on],
                "runs_off": [round(x) for x in off],
            }
        )
    return out


def raw_read(url: str) -> tuple[int, float]:
    """The raw driver computing every row's fingerprint, in commit order (verify's floor)."""
    statement = (
        "SELECT ingest_xid, id, "
        + fingerprint_sql()
        + " FROM system_events WHERE ingest_xid >= %s AND (ingest_xid, id) > (%s, %s) "
        "ORDER BY ingest_xid, id LIMIT 10000"
    )
    count = 0
    after = (0, 0)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        while True:
            rows = conn.execute(statement, (after[0], after[0], after[1])).fetchall()  # type: ignore[arg-type]
            count += len(rows)
            if len(rows) < 10000:
                break
            after = (rows[-1][0], rows[-1][1])
    return count, time.perf_counter() - started


async def seal_and_verify(url: str, runs: int) -> dict[str, Any]:
    signer = Signer.from_text(KEY)
    async with PostgresEventRepository(
        url, fold_interval=0, seal_interval=0, seal_key=KEY, timeout=60
    ) as repo:
        started = time.perf_counter()
        digests = await repo.seal()
        sealing = time.perf_counter() - started
        sealed = sum(d.count for d in digests)
        mine: list[float] = []
        raw: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            report = await verify(repo.seals, public_key=signer.public)
            mine.append(report.events / (time.perf_counter() - started))
            assert report.ok, report.lines()
            count, took = await asyncio.to_thread(raw_read, url)
            raw.append(count / took)
    return {
        "events": sealed,
        "digests": len(digests),
        "seal_events_per_second": round(sealed / sealing),
        "verify_events_per_second": round(statistics.median(mine)),
        "raw_read_events_per_second": round(statistics.median(raw)),
        "verify_vs_raw": round(statistics.median(mine) / statistics.median(raw), 3),
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        "| ingest | sealing off (events/s) | sealing on (events/s) | on/off | cost |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result["ingest"]:
        lines.append(
            f"| {row['workload']} | {row['sealing_off']:,} | {row['sealing_on']:,} | "
            f"{row['ratio']:.3f} | {row['cost_percent']:.1f} % |"
        )
    v = result["verify"]
    lines += [
        "",
        f"{v['events']:,} events in {v['digests']} digests: sealed at "
        f"{v['seal_events_per_second']:,} events/s; verify reads "
        f"{v['verify_events_per_second']:,} events/s, the raw driver "
        f"{v['raw_read_events_per_second']:,} (verify/raw {v['verify_vs_raw']:.2f})",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds long")
    parser.add_argument("--out", type=Path, help="write seal.md and seal.json here")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.runs, args.seconds = 20_000, 1, 0.5
    url = create_database(SERVER_URL, NAME)
    try:
        upgrade(url)
        result: dict[str, Any] = {"ingest": asyncio.run(ingest(url, args.runs, args.seconds))}
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE system_event_rollups, system_events, sysevents_digests RESTART IDENTITY"
            )
        result["fill"] = fill(url, args.rows, Events())
        result["verify"] = asyncio.run(seal_and_verify(url, args.runs))
    finally:
        drop_database(SERVER_URL, NAME)
    text = report(result)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "seal.md").write_text(text + "\n")
        (args.out / "seal.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
