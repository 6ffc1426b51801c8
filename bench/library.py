"""Library workloads, each beside the raw driver (or the hand-written way) doing the same work."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis.asyncio as aioredis
from fill import COMMON_TYPE, COPY_SQL, RARE_TYPE, Events
from measure import Figure, Sample, compare, median
from psycopg_pool import AsyncConnectionPool

import sysevents
from sysevents import EventFilter, EventQuery, NewEvent
from sysevents._cursor import encode_cursor
from sysevents.emitter import EventLogger
from sysevents.query import MAX_OFFSET
from sysevents.stores.postgres import PostgresEventRepository

COLUMNS = (
    'id, event_type, severity, message, details, source, "timestamp", created_at, idempotency_key'
)
INSERT = (
    'INSERT INTO system_events (event_type, severity, message, details, source, "timestamp") '
    "VALUES (%s, %s, %s, %s::jsonb, %s, %s) RETURNING " + COLUMNS
)
BY_ID = "SELECT " + COLUMNS + " FROM system_events WHERE id = %s"
PAGE = (
    "SELECT " + COLUMNS + " FROM system_events{where} "
    'ORDER BY "timestamp" DESC, id DESC LIMIT 51 OFFSET {offset}'
)


def params_of(new: NewEvent) -> tuple[Any, ...]:
    return (
        new.event_type,
        new.severity.value,
        new.message,
        new.details_json,
        new.source,
        new.timestamp,
    )


class Context:
    """Everything the workloads share: URLs, repositories, raw connections, options."""

    def __init__(self, url: str, redis_url: str, *, runs: int, seconds: float, smoke: bool) -> None:
        self.url = url
        self.redis_url = redis_url
        self.runs = runs
        self.seconds = seconds
        self.smoke = smoke
        self.prefix = f"sysevents-bench-{os.getpid()}"
        self.events = Events(seed=7)
        self.figures: list[Figure] = []

    def figure(
        self,
        group: str,
        name: str,
        kind: str,
        samples: tuple[list[Sample], list[Sample]],
        baseline_name: str,
        target: str,
        check: Callable[[float, float | None], bool] | None,
        *,
        unit: str | None = None,
        note: str = "",
    ) -> Figure:
        mine, theirs = samples
        if kind == "rate":
            runs = [s.per_second for s in mine]
            base_runs = [s.per_second for s in theirs]
        else:
            runs = [s.p50_ms for s in mine]
            base_runs = [s.p50_ms for s in theirs]
        value = median(runs)
        baseline = median(base_runs) if base_runs else None
        fig = Figure(
            group=group,
            name=name,
            kind=kind,  # type: ignore[arg-type]
            unit=unit or ("ops/s" if kind == "rate" else "ms p50"),
            value=value,
            baseline_name=baseline_name,
            baseline=baseline,
            target=target,
            met=None,
            runs=runs,
            baseline_runs=base_runs,
            note=note,
        )
        if check is not None:
            fig.met = check(value, fig.ratio)
        self.figures.append(fig)
        ratio = f"{fig.ratio:.2f}" if fig.ratio is not None else "-"
        print(
            f"  {group:8} {name:44} {value:12.3f} {fig.unit:8} vs {baseline or 0:12.3f} "
            f"ratio {ratio:>6}  {target} {_verdict(fig.met)}",
            flush=True,
        )
        return fig

    def new_events(self, count: int) -> list[NewEvent]:
        return [self.events.new_event() for _ in range(count)]

    def cycle(self, count: int) -> Callable[[], NewEvent]:
        pool = self.new_events(count)
        it = itertools.cycle(pool)
        return lambda: next(it)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: ""}[met]


def ratio_at_least(limit: float) -> Callable[[float, float | None], bool]:
    return lambda _value, ratio: ratio is not None and ratio >= limit


def at_most(limit: float) -> Callable[[float, float | None], bool]:
    return lambda value, _ratio: value <= limit


def at_least(limit: float) -> Callable[[float, float | None], bool]:
    return lambda value, _ratio: value >= limit


async def raw_connection(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def raw_pool(url: str, size: int) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=size, max_size=size, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    return pool


# -- writes ---------------------------------------------------------------------------


async def bench_add(ctx: Context) -> None:
    print("add", flush=True)
    next_event = ctx.cycle(2000)
    async with sysevents.connect(ctx.url) as repo:
        conn = await raw_connection(ctx.url)
        pool = await raw_pool(ctx.url, 8)

        async def subject() -> None:
            await repo.add(next_event())

        async def raw_one() -> None:
            cur = await conn.execute(INSERT, params_of(next_event()), prepare=True)
            await cur.fetchone()

        async def raw_pooled() -> None:
            async with pool.connection() as c:
                cur = await c.execute(INSERT, params_of(next_event()), prepare=True)
                await cur.fetchone()

        s = dict(runs=ctx.runs, seconds=ctx.seconds)
        one = await compare(subject, raw_one, **s)
        ctx.figure(
            "write",
            "add, 1 task",
            "rate",
            one,
            "raw prepared INSERT…RETURNING, 1 conn",
            "≥ 0.85× raw",
            ratio_at_least(0.85),
        )
        eight = await compare(subject, raw_pooled, tasks=8, **s)
        ctx.figure(
            "write",
            "add, 8 tasks",
            "rate",
            eight,
            "raw INSERT…RETURNING, 8-conn pool",
            "≥ 0.85× raw",
            ratio_at_least(0.85),
        )

        plain_insert = INSERT.replace("INTO system_events", "INTO bench_plain")
        await conn.execute(
            "DROP TABLE IF EXISTS bench_plain; "
            "CREATE TABLE bench_plain (LIKE system_events INCLUDING ALL)"
        )

        async def raw_plain() -> None:
            cur = await conn.execute(plain_insert, params_of(next_event()), prepare=True)
            await cur.fetchone()

        trig = await compare(raw_one, raw_plain, **s)
        ctx.figure(
            "write",
            "partitioned table: raw INSERT into it",
            "rate",
            trig,
            "raw INSERT into an unpartitioned copy of it",
            "(cost, no target)",
            None,
        )
        await conn.execute("DROP TABLE bench_plain")

        orm_one, orm_eight = await orm_baselines(ctx, next_event)
        ctx.figure(
            "write",
            "add, 1 task (vs ORM)",
            "rate",
            (one[0], orm_one),
            "SQLAlchemy async ORM add+commit",
            "≥ 2× ORM",
            ratio_at_least(2.0),
        )
        ctx.figure(
            "write",
            "add, 8 tasks (vs ORM)",
            "rate",
            (eight[0], orm_eight),
            "SQLAlchemy async ORM add+commit, 8 tasks",
            "≥ 2× ORM",
            ratio_at_least(2.0),
        )
        await conn.close()
        await pool.close()


async def orm_baselines(
    ctx: Context, next_event: Callable[[], NewEvent]
) -> tuple[list[Sample], list[Sample]]:
    """The way most teams would write it: an ORM class, one session, add + commit per event."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import registry

    from sysevents.schema import system_events

    class EventRow:
        pass

    mapper_registry = registry()
    mapper_registry.map_imperatively(EventRow, system_events, eager_defaults=True)
    engine = create_async_engine(
        ctx.url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=8
    )
    session_factory = async_sessionmaker(engine, expire_on_commit=False)

    async def orm_add() -> None:
        new = next_event()
        row = EventRow()
        row.event_type = new.event_type  # type: ignore[attr-defined]
        row.severity = new.severity.value  # type: ignore[attr-defined]
        row.message = new.message  # type: ignore[attr-defined]
        row.details = new.details  # type: ignore[attr-defined]
        row.source = new.source  # type: ignore[attr-defined]
        row.timestamp = new.timestamp  # type: ignore[attr-defined]
        async with session_factory() as session:
            session.add(row)
            await session.commit()

    one = await compare(orm_add, None, runs=ctx.runs, seconds=ctx.seconds)
    eight = await compare(orm_add, None, runs=ctx.runs, seconds=ctx.seconds, tasks=8)
    await engine.dispose()
    mapper_registry.dispose()
    return one[0], eight[0]


async def bench_add_many(ctx: Context) -> None:
    print("add_many", flush=True)
    batches = [ctx.new_events(1000) for _ in range(4)]
    rows = [[params_of(n) for n in batch] for batch in batches]
    turn = itertools.count()
    async with sysevents.connect(ctx.url) as repo:
        conn = await raw_connection(ctx.url)

        async def subject() -> None:
            await repo.add_many(batches[next(turn) % 4])

        async def raw_copy() -> None:
            batch = rows[next(turn) % 4]
            async with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                for row in batch:
                    await copy.write_row(row)

        samples = await compare(
            subject, raw_copy, runs=ctx.runs, seconds=ctx.seconds, per_call=1000
        )
        ctx.figure(
            "write",
            "add_many(1000)",
            "rate",
            samples,
            "raw COPY of the same 1000 rows",
            "≥ 0.8× COPY",
            ratio_at_least(0.8),
            unit="rows/s",
        )
        await conn.execute(
            "DROP TABLE IF EXISTS bench_plain; "
            "CREATE TABLE bench_plain (LIKE system_events INCLUDING ALL)"
        )
        plain_copy_sql = COPY_SQL.replace("COPY system_events", "COPY bench_plain")

        async def raw_plain_copy() -> None:
            batch = rows[next(turn) % 4]
            async with conn.cursor() as cur, cur.copy(plain_copy_sql) as copy:
                for row in batch:
                    await copy.write_row(row)

        samples = await compare(
            raw_copy, raw_plain_copy, runs=ctx.runs, seconds=ctx.seconds, per_call=1000
        )
        ctx.figure(
            "write",
            "partitioned table: raw COPY(1000) into it",
            "rate",
            samples,
            "raw COPY into an unpartitioned copy of it",
            "(cost, no target)",
            None,
            unit="rows/s",
        )
        await conn.execute("DROP TABLE bench_plain")
        await conn.close()


# -- reads ----------------------------------------------------------------------------


async def bench_get(ctx: Context, max_id: int) -> None:
    print("get", flush=True)
    rng = random.Random(3)
    async with sysevents.connect(ctx.url) as repo:
        conn = await raw_connection(ctx.url)
        # Ids carry their month: take real ones, spread over the table.
        cur = await conn.execute("SELECT id FROM system_events ORDER BY id")
        stored = [row[0] for row in await cur.fetchall()]
        ids = [stored[rng.randrange(len(stored))] for _ in range(5000)]
        it = itertools.cycle(ids)

        async def subject() -> None:
            await repo.get(next(it))

        async def raw() -> None:
            cur = await conn.execute(BY_ID, (next(it),), prepare=True)
            await cur.fetchone()

        samples = await compare(subject, raw, runs=ctx.runs, seconds=ctx.seconds)
        ctx.figure(
            "read",
            "get, uncached",
            "rate",
            samples,
            "raw prepared SELECT by pk",
            "≥ 0.85× raw",
            ratio_at_least(0.85),
        )
        await conn.close()

    hot = ids[:100]
    hot_it = itertools.cycle(hot)
    async with sysevents.connect(
        ctx.url, redis_url=ctx.redis_url, cache_prefix=ctx.prefix
    ) as cached:
        for event_id in hot:
            await cached.get(event_id)
        client = aioredis.Redis.from_url(ctx.redis_url)
        event = await cached.get(hot[0])
        assert event is not None
        await client.set(f"{ctx.prefix}:raw", event.model_dump_json())

        async def cached_get() -> None:
            await cached.get(next(hot_it))

        async def raw_get() -> None:
            await client.get(f"{ctx.prefix}:raw")

        samples = await compare(cached_get, raw_get, runs=ctx.runs, seconds=ctx.seconds)
        ctx.figure(
            "read",
            "get, cached (hit)",
            "rate",
            samples,
            "raw redis-py GET of the event JSON",
            "≥ 0.8× raw",
            ratio_at_least(0.8),
        )
        await client.delete(f"{ctx.prefix}:raw")
        await client.aclose()


def _page_sql(where: str, offset: int = 0) -> str:
    return PAGE.format(where=where, offset=offset)


async def bench_list(ctx: Context, rows: int) -> None:
    print("list", flush=True)
    async with sysevents.connect(ctx.url) as repo:
        assert isinstance(repo, PostgresEventRepository)
        conn = await raw_connection(ctx.url)

        async def case(
            name: str,
            query: EventQuery,
            sql: str,
            params: tuple[Any, ...],
            target: str,
            check: Callable[[float, float | None], bool] | None,
        ) -> Figure:
            async def subject() -> None:
                await repo.list(query)

            async def raw() -> None:
                # Unprepared, as sysevents runs lists: with skewed filters a generic
                # plan of a prepared statement was up to 1000x slower.
                cur = await conn.execute(sql, params, prepare=False)  # type: ignore[arg-type]
                await cur.fetchall()

            samples = await compare(subject, raw, runs=ctx.runs, seconds=ctx.seconds)
            return ctx.figure("list", name, "latency", samples, "the same SQL, raw", target, check)

        first = await case(
            "first page, no filter",
            EventQuery(count="none"),
            _page_sql(""),
            (),
            "≤ 1 ms",
            at_most(1.0),
        )
        await case(
            "first page, common type",
            EventQuery(event_type=COMMON_TYPE, count="none"),
            _page_sql(" WHERE event_type = %s"),
            (COMMON_TYPE,),
            "≤ 1 ms",
            at_most(1.0),
        )
        await case(
            "first page, rare type + error/critical",
            EventQuery(event_type=RARE_TYPE, severity=["error", "critical"], count="none"),
            _page_sql(" WHERE event_type = %s AND severity = ANY(%s::text[])"),
            (RARE_TYPE, ["error", "critical"]),
            "≤ 1 ms",
            at_most(1.0),
        )
        await case(
            "first page, source + min_severity",
            EventQuery(source="svc-auth-3", min_severity="warning", count="none"),
            _page_sql(" WHERE severity = ANY(%s::text[]) AND source = %s"),
            (["warning", "error", "critical"], "svc-auth-3"),
            "≤ 1 ms",
            at_most(1.0),
        )
        depth = min(500_000, rows // 2)
        cur = await conn.execute(
            'SELECT "timestamp", id FROM system_events ORDER BY "timestamp" DESC, id DESC '
            "LIMIT 1 OFFSET %s",
            (depth - 1,),
        )
        row = await cur.fetchone()
        assert row is not None
        ts, last_id = row
        base = EventQuery(count="none")
        cursor = encode_cursor(repo._secrets, base, ts, last_id)
        deep = await case(
            f"cursor page {depth:,} deep",
            EventQuery(count="none", cursor=cursor),
            "SELECT " + COLUMNS + ' FROM system_events WHERE "timestamp" <= %s '
            'AND ("timestamp", id) < (%s, %s) ORDER BY "timestamp" DESC, id DESC LIMIT 51',
            (ts, ts, last_id),
            "≤ 1.5× first page",
            lambda value, _ratio: value <= 1.5 * first.value,
        )
        deep.note = f"first page {first.value:.3f} ms; ×{deep.value / first.value:.2f}"
        # An offset goes at most MAX_OFFSET deep (the API refuses more): the contrast
        # with the cursor is drawn at that depth.
        skipped = min(depth, MAX_OFFSET)
        await case(
            f"offset page {skipped:,} deep",
            EventQuery(count="none", offset=skipped),
            _page_sql("", skipped),
            (),
            "(no target; for contrast)",
            None,
        )
        capped_sql = (
            "SELECT count(*) FROM (SELECT 1 FROM system_events WHERE event_type = %s "
            "LIMIT 10001) AS capped"
        )

        async def capped_subject() -> None:
            await repo.list(EventQuery(event_type=COMMON_TYPE, count="capped"))

        async def capped_raw() -> None:
            async with conn.pipeline():
                page = await conn.execute(
                    _page_sql(" WHERE event_type = %s"),
                    (COMMON_TYPE,),  # type: ignore[arg-type]
                    prepare=False,
                )
                count = await conn.execute(capped_sql, (COMMON_TYPE,), prepare=False)
            await page.fetchall()
            await count.fetchone()

        samples = await compare(capped_subject, capped_raw, runs=ctx.runs, seconds=ctx.seconds)
        ctx.figure(
            "list",
            "first page + capped total (common type)",
            "latency",
            samples,
            "raw page + LIMITed count, pipelined",
            "≤ 5 ms",
            at_most(5.0),
        )
        await conn.close()


RAW_STATS = [
    'SELECT count(*), min("timestamp"), max("timestamp"), '
    'count(*) FILTER (WHERE "timestamp" >= %s), count(*) FILTER (WHERE "timestamp" >= %s) '
    "FROM system_events{where}",
    "SELECT severity, count(*) FROM system_events{where} GROUP BY severity",
    "SELECT event_type, count(*) FROM system_events{where} GROUP BY event_type",
    "SELECT source, count(*) FROM system_events{where} GROUP BY source",
]


async def bench_stats(ctx: Context) -> None:
    print("stats", flush=True)
    now = datetime.now(UTC)
    since = now - timedelta(days=7, minutes=13, seconds=5)
    cases = [
        ("whole table", EventFilter(), "", ()),
        (
            "last 7 days + type",
            EventFilter(since=since, event_type=COMMON_TYPE),
            ' WHERE "timestamp" >= %s AND event_type = %s',
            (since, COMMON_TYPE),
        ),
    ]
    async with (
        sysevents.connect(ctx.url) as repo,
        sysevents.connect(
            ctx.url, redis_url=ctx.redis_url, cache_prefix=ctx.prefix + "-stats"
        ) as cached,
    ):
        conn = await raw_connection(ctx.url)
        client = aioredis.Redis.from_url(ctx.redis_url)
        for name, query, where, params in cases:

            async def subject(query: EventFilter = query) -> None:
                await repo.stats(query)

            async def raw(where: str = where, params: tuple[Any, ...] = params) -> None:
                hour, day = now - timedelta(hours=1), now - timedelta(days=1)
                async with conn.pipeline():
                    curs = [
                        await conn.execute(
                            sql.format(where=where),  # type: ignore[arg-type]
                            (hour, day, *params) if i == 0 else params,
                        )
                        for i, sql in enumerate(RAW_STATS)
                    ]
                for cur in curs:
                    await cur.fetchall()

            samples = await compare(subject, raw, runs=ctx.runs, seconds=ctx.seconds)
            ctx.figure(
                "stats",
                f"uncached, {name}",
                "latency",
                samples,
                "raw count + 3 GROUP BYs (no rollups)",
                "≤ 10 ms",
                at_most(10.0),
            )

            stats = await cached.stats(query)
            await client.set(f"{ctx.prefix}:raw-stats", stats.model_dump_json())

            async def cached_subject(query: EventFilter = query) -> None:
                await cached.stats(query)

            async def raw_get() -> None:
                await client.get(f"{ctx.prefix}:raw-stats")

            samples = await compare(cached_subject, raw_get, runs=ctx.runs, seconds=ctx.seconds)
            ctx.figure(
                "stats",
                f"cached, {name}",
                "latency",
                samples,
                "raw redis-py GET of the stats JSON",
                "(no target)",
                None,
            )
        await client.delete(f"{ctx.prefix}:raw-stats")
        await client.aclose()
        await conn.close()


# -- the emitter ------------------------------------------------------------------------


async def bench_emitter(ctx: Context) -> None:
    print("emitter", flush=True)
    count = 2_000 if ctx.smoke else 200_000
    rows = [ctx.events.row(recent=True) for _ in range(count)]
    details = [json.loads(row[3]) for row in rows]
    async with sysevents.connect(ctx.url) as repo:
        costs: list[float] = []
        rates: list[float] = []
        baseline: list[float] = []
        conn = await raw_connection(ctx.url)
        for _ in range(ctx.runs):
            logger = EventLogger(repo, max_queue=count + 1)
            await logger.start()
            clock = time.perf_counter_ns
            per_emit: list[int] = []
            started = time.perf_counter()
            for i, (event_type, severity, message, _, source, ts) in enumerate(rows):
                details_obj = details[i]
                t0 = clock()
                logger.emit(
                    event_type,
                    message,
                    severity=severity,
                    details=details_obj,
                    source=source,
                    timestamp=ts,
                )
                per_emit.append(clock() - t0)
                if i % 1000 == 999:
                    await asyncio.sleep(0)  # let the writer run, as a real program would
            await logger.aclose()
            elapsed = time.perf_counter() - started
            counters = logger.counters
            assert counters.written == count, counters
            costs.append(median([float(x) for x in per_emit]) / 1000)
            rates.append(count / elapsed)

            t0 = time.perf_counter()
            for start in range(0, count, 1000):
                async with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                    for row in rows[start : start + 1000]:
                        await copy.write_row(row)
            baseline.append(count / (time.perf_counter() - t0))
        await conn.close()

    fig = Figure(
        "emitter",
        "emit() caller cost",
        "latency",
        "µs p50",
        median(costs),
        "",
        None,
        "≤ 10 µs",
        median(costs) <= 10,
        costs,
        [],
    )
    ctx.figures.append(fig)
    print(f"  emitter  emit() caller cost {fig.value:.2f} µs", flush=True)
    samples = ([Sample(r, 0) for r in rates], [Sample(b, 0) for b in baseline])
    ctx.figure(
        "emitter",
        "sustained emit → stored",
        "rate",
        samples,
        "raw COPY in batches of 1000",
        "≥ 50 000 events/s",
        at_least(50_000),
        unit="events/s",
    )
