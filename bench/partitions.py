"""The partitioned table beside an unpartitioned copy of it, in one database and one run.

The copy (``bench_flat``) holds the same rows with the indexes the table had
before it was partitioned: a primary key on ``id`` alone. Each figure is the
library (or the library's own SQL) on the partitioned table, against the same
work done raw on the copy; the ratio says what partitioning costs or gains.
Retention's drop of the oldest month is timed last (it changes the data),
with a writer inserting one event after another meanwhile: its longest insert
is what retention makes the service's writers wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from library import Context, at_most, raw_connection
from measure import Figure, compare

from sysevents import EventFilter, EventQuery, RetentionPolicy
from sysevents._cursor import encode_cursor
from sysevents.stores.postgres import PostgresEventRepository
from sysevents.stores.postgres import sql as statements
from sysevents.stores.postgres.ids import month_end, month_index
from sysevents.stores.postgres.rows import SELECT_LIST

FLAT_INDEXES = (
    "ALTER TABLE bench_flat ADD PRIMARY KEY (id)",
    'CREATE INDEX ON bench_flat ("timestamp" DESC, id DESC)',
    'CREATE INDEX ON bench_flat (event_type, severity, "timestamp" DESC, id DESC)',
    'CREATE INDEX ON bench_flat (severity, "timestamp" DESC, id DESC)',
    'CREATE INDEX ON bench_flat (source, "timestamp" DESC, id DESC)',
    "CREATE INDEX ON bench_flat (ingest_xid, id)",
)
PROBE_INSERT = (
    'INSERT INTO system_events (event_type, severity, message, details, "timestamp") '
    "VALUES ('bench_probe', 'info', 'probe', '{}', now())"
)
PAGE = "SELECT " + SELECT_LIST + ' FROM {table}{where} ORDER BY "timestamp" DESC, id DESC LIMIT 51'


async def make_flat(ctx: Context) -> None:
    conn = await raw_connection(ctx.url)
    started = time.perf_counter()
    await conn.execute("DROP TABLE IF EXISTS bench_flat")
    await conn.execute("CREATE TABLE bench_flat (LIKE system_events INCLUDING DEFAULTS)")
    await conn.execute("INSERT INTO bench_flat SELECT * FROM system_events")
    for statement in FLAT_INDEXES:
        await conn.execute(statement)  # type: ignore[arg-type]
    await conn.execute("VACUUM ANALYZE bench_flat")
    await conn.close()
    print(f"  unpartitioned copy made in {time.perf_counter() - started:.0f} s", flush=True)


async def bench_partitions(ctx: Context) -> None:
    """Reads on both tables, then the month drop."""
    print("partitions", flush=True)
    await make_flat(ctx)
    conn = await raw_connection(ctx.url)
    cur = await conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'system_events'::regclass"
    )
    row = await cur.fetchone()
    parts = row[0] if row else 0
    note = f"{parts} partitions"
    repo = PostgresEventRepository(ctx.url, fold_interval=0)
    async with repo:
        cur = await conn.execute("SELECT id FROM system_events")
        ids = [r[0] for r in await cur.fetchall()]
        rng = random.Random(5)
        picks = [ids[rng.randrange(len(ids))] for _ in range(5000)]
        turn = iter(range(10**12))

        def next_id() -> int:
            return picks[next(turn) % len(picks)]

        async def lib_get() -> None:
            await repo.get(next_id())

        async def flat_get() -> None:
            cur = await conn.execute(
                "SELECT " + SELECT_LIST + " FROM bench_flat WHERE id = %s",
                (next_id(),),
                prepare=True,
            )
            await cur.fetchone()

        async def naive_get() -> None:
            # By id alone: every partition is probed.
            cur = await conn.execute(
                "SELECT " + SELECT_LIST + " FROM system_events WHERE id = %s",
                (next_id(),),
                prepare=True,
            )
            await cur.fetchone()

        s: dict[str, Any] = {"runs": ctx.runs, "seconds": ctx.seconds}
        ctx.figure(
            "partitions",
            "get by id",
            "rate",
            await compare(lib_get, flat_get, **s),
            "raw get on the unpartitioned copy",
            "≥ 0.8×",
            lambda _v, ratio: ratio is not None and ratio >= 0.8,
            note=note,
        )
        ctx.figure(
            "partitions",
            "raw get by id alone (every partition probed)",
            "rate",
            await compare(naive_get, flat_get, **s),
            "raw get on the unpartitioned copy",
            "(for contrast)",
            None,
            note=note,
        )

        async def page(table: str, where: str, params: tuple[Any, ...]) -> None:
            sql = PAGE.format(table=table, where=where)
            cur = await conn.execute(sql, params, prepare=False)  # type: ignore[arg-type]
            await cur.fetchall()

        async def lib_first() -> None:
            await repo.list(EventQuery(count="none"))

        async def flat_first() -> None:
            await page("bench_flat", "", ())

        ctx.figure(
            "partitions",
            "list first page",
            "latency",
            await compare(lib_first, flat_first, **s),
            "raw page on the unpartitioned copy",
            "≤ 1 ms",
            at_most(1.0),
            note=note,
        )
        depth = min(500_000, len(ids) // 2)
        cur = await conn.execute(
            'SELECT "timestamp", id FROM system_events ORDER BY "timestamp" DESC, id DESC '
            "LIMIT 1 OFFSET %s",
            (depth - 1,),
        )
        mark = await cur.fetchone()
        assert mark is not None
        await repo.list(EventQuery(count="none"))  # loads the cursor secret
        cursor = encode_cursor(repo._secrets, EventQuery(count="none"), mark[0], mark[1])

        async def lib_deep() -> None:
            await repo.list(EventQuery(count="none", cursor=cursor))

        async def flat_deep() -> None:
            await page(
                "bench_flat",
                ' WHERE "timestamp" <= %s AND ("timestamp", id) < (%s, %s)',
                (mark[0], mark[0], mark[1]),
            )

        ctx.figure(
            "partitions",
            f"cursor page {depth:,} deep",
            "latency",
            await compare(lib_deep, flat_deep, **s),
            "raw keyset page on the unpartitioned copy",
            "≤ 1.5 ms",
            at_most(1.5),
            note=note,
        )

        for name, query in (
            ("stats, whole table", EventFilter()),
            (
                "stats, last 7 days + type",
                EventFilter(
                    event_type="http_request",
                    since=datetime.now(UTC).replace(microsecond=0) - timedelta(days=7),
                ),
            ),
        ):
            cur = await conn.execute(statements.WATERMARK)
            mark_row = await cur.fetchone()
            assert mark_row is not None
            # The watermark the repository knows, as it passes it.
            statement = statements.stats_statement(query, int(mark_row[0]))
            flat_sql = statement.sql.replace("FROM system_events", "FROM bench_flat")

            async def lib_stats(q: EventFilter = query) -> None:
                await repo.stats(q)

            async def flat_stats(sql: str = flat_sql, params: Any = statement.params) -> None:
                cur = await conn.execute(sql, params, prepare=False)
                await cur.fetchall()

            ctx.figure(
                "partitions",
                name,
                "latency",
                await compare(lib_stats, flat_stats, **s),
                "the same statement on the unpartitioned copy",
                "≤ 10 ms",
                at_most(10.0),
                note=note,
            )

        # Retention: the oldest whole month goes, timed once (it changes the data).
        cur = await conn.execute('SELECT min("timestamp") FROM system_events')
        oldest = await cur.fetchone()
        assert oldest is not None
        end = month_end(month_index(oldest[0]) + 1)
        assert end is not None
        cur = await conn.execute(
            'SELECT count(*) FROM system_events WHERE "timestamp" < %s',
            (month_end(month_index(oldest[0])),),
        )
        in_month = await cur.fetchone()
        age = datetime.now(UTC) - end
        # A writer inserting meanwhile: what it waits for is what retention
        # costs the service's writers (the detach, not the files' removal).
        # It is connected and has inserted once before retention starts.
        stop = asyncio.Event()
        waits: list[float] = []
        writer = await raw_connection(ctx.url)
        await writer.execute(PROBE_INSERT)

        async def probe() -> None:
            while not stop.is_set():
                began = time.perf_counter()
                await writer.execute(PROBE_INSERT)
                waits.append((time.perf_counter() - began) * 1000)

        prober = asyncio.create_task(probe())
        await asyncio.sleep(0)  # the probe's first insert is under way
        started = time.perf_counter()
        try:
            report = await repo.apply_retention(
                RetentionPolicy.parse(f"*={int(age.total_seconds() // 3600)}h")
            )
            took = (time.perf_counter() - started) * 1000
        finally:
            stop.set()
            await prober
            await writer.close()
        ctx.figures.append(
            Figure(
                "partitions",
                "retention: longest insert of a writer meanwhile",
                "latency",
                "ms",
                max(waits, default=0.0),
                "(once; compare the sizes)",
                None,
                "flat in the table's size",
                None,
                note=f"{len(waits):,} inserts during the drop",
            )
        )
        print(
            f"  retention: {report.removed:,} events of {len(ids):,} "
            f"({len(report.partitions_dropped)} partition(s) dropped, {in_month} in the oldest "
            f"month) in {took:.0f} ms; a writer's longest insert meanwhile "
            f"{max(waits, default=0.0):.1f} ms ({len(waits):,} inserts)",
            flush=True,
        )
        ctx.figures.append(
            Figure(
                "partitions",
                f"retention: drop the oldest month ({report.removed:,} events)",
                "latency",
                "ms",
                took,
                "(once; compare the sizes)",
                None,
                "flat in the table's size",
                None,
                note=f"{len(ids):,} events, {', '.join(report.partitions_dropped)}",
            )
        )
    await conn.execute("DROP TABLE bench_flat")
    await conn.close()
