"""Does the partial index on ``trace_id`` pay? A trace looked up with it and without it.

Fills a database of its own (``--rows`` events over 90 days, one in ten in a
trace of five events), then measures, with the index of migration 0007 and
after dropping it: a listing of one trace and the stats of one trace through
the repository, the same listing by the raw driver, and ``add_many`` of 1000
events that all carry trace ids (what the index costs writers). Medians of
``--runs`` runs, each run alternating both configurations.

    python bench/traces.py [--rows 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from fill import SERVER_URL, create_database, drop_database  # noqa: E402
from measure import median, run_for  # noqa: E402

from sysevents import EventFilter, EventQuery, NewEvent  # noqa: E402
from sysevents.migrate import upgrade  # noqa: E402
from sysevents.stores.postgres import PostgresEventRepository  # noqa: E402
from sysevents.stores.postgres.ids import month_index  # noqa: E402
from sysevents.stores.postgres.partitions import ensure_partitions  # noqa: E402

FILL = """
INSERT INTO system_events (id, event_type, severity, message, details, source, "timestamp",
                           trace_id, span_id)
SELECT (extract(year FROM ts AT TIME ZONE 'UTC')::bigint * 12
        + extract(month FROM ts AT TIME ZONE 'UTC')::bigint - 13) << 36
       | nextval('system_events_seq'),
       'type_' || (g %% 20), (ARRAY['debug','info','info','info','warning','error'])[1 + g %% 6],
       'event ' || g, jsonb_build_object('n', g), 'svc-' || (g %% 50), ts,
       CASE WHEN g %% 10 = 0 THEN md5('trace' || (g / 50)) END,
       CASE WHEN g %% 10 = 0 THEN substr(md5('span' || g), 1, 16) END
FROM (SELECT g, now() - random() * interval '90 days' AS ts
      FROM generate_series(%s::bigint, %s::bigint) AS g) AS s
"""
INDEX = (
    "CREATE INDEX ix_system_events_trace_id ON system_events (trace_id) WHERE trace_id IS NOT NULL"
)
DROP = "DROP INDEX ix_system_events_trace_id"
RAW = (
    'SELECT id, event_type, severity, message, details, source, "timestamp", created_at, '
    "idempotency_key, trace_id, span_id FROM system_events WHERE trace_id = %s "
    'ORDER BY "timestamp" DESC, id DESC LIMIT 51'
)


async def fill(url: str, rows: int) -> None:
    now = datetime.now(UTC)
    months = {month_index(now - timedelta(days=d)) for d in range(0, 92)}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await ensure_partitions(conn, months)  # type: ignore[arg-type]
        for start in range(1, rows + 1, 200_000):
            await conn.execute(FILL, (start, min(rows, start + 199_999)))
        await conn.execute("VACUUM ANALYZE system_events")


async def measure(url: str, rows: int, runs: int, seconds: float) -> dict[str, list[float]]:
    traces = [
        row[0]
        for row in psycopg.connect(url)
        .execute("SELECT DISTINCT trace_id FROM system_events WHERE trace_id IS NOT NULL LIMIT 200")
        .fetchall()
    ]
    picks = iter(traces * 1000)
    results: dict[str, list[float]] = {}
    repo = PostgresEventRepository(url, fold_interval=0)
    async with repo, await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:

        async def listing() -> None:
            await repo.list(EventQuery(trace_id=next(picks)))

        async def stats() -> None:
            await repo.stats(EventFilter(trace_id=next(picks)))

        async def raw() -> None:
            cur = await conn.execute(RAW, (next(picks),))
            await cur.fetchall()

        def batch() -> list[NewEvent]:
            trace = secrets.token_hex(16)
            return [
                NewEvent(
                    event_type="traced",
                    message=f"m{i}",
                    trace_id=trace,
                    span_id=secrets.token_hex(8),
                )
                for i in range(1000)
            ]

        batches = [batch() for _ in range(20)]
        written = iter(batches * 1000)

        async def write() -> None:
            await repo.add_many(next(written))

        indexed = True
        for _ in range(runs):
            for state in ("with index", "without index"):
                want = state == "with index"
                if want != indexed:
                    await conn.execute(INDEX if want else DROP)
                    await conn.execute("ANALYZE system_events")
                    indexed = want
                for name, call in (
                    ("list one trace (repository)", listing),
                    ("list one trace (raw psycopg)", raw),
                    ("stats of one trace (repository)", stats),
                ):
                    sample = await run_for(call, seconds)
                    results.setdefault(f"{name}, {state}, ms p50", []).append(sample.p50_ms)
                sample = await run_for(write, seconds, per_call=1000)
                results.setdefault(f"add_many of traced events, {state}, events/s", []).append(
                    sample.per_second
                )
        if not indexed:
            await conn.execute(INDEX)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--postgres-url",
        default=SERVER_URL,
    )
    args = parser.parse_args()
    name = "sysevents_bench_traces"
    url = create_database(args.postgres_url, name)
    try:
        upgrade(url)
        started = time.perf_counter()
        asyncio.run(fill(url, args.rows))
        print(f"filled {args.rows:,} events in {time.perf_counter() - started:.0f} s", flush=True)
        results = asyncio.run(measure(url, args.rows, args.runs, args.seconds))
    finally:
        drop_database(args.postgres_url, name)
    print(f"| {args.rows:,} events, median of {args.runs} runs | value |")
    print("| --- | ---: |")
    for label, values in results.items():
        print(f"| {label} | {median(values):,.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
