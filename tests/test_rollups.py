"""The rollups behind PostgreSQL statistics stay exact through every kind of write."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sysevents
from sysevents import EventFilter, EventPatch, MemoryEventRepository, NewEvent
from sysevents.stores.postgres.rollups import LOWEST as _LOWEST
from sysevents.stores.postgres.rollups import rollup_cover

pytestmark = pytest.mark.postgres

LEVELS = {0: "hour", 1: "day", 2: "month"}
NO_SOURCE = {4: "hour", 5: "day"}
NOW = datetime.now(UTC)


UNFOLDED = (
    "SELECT * FROM system_events "
    "WHERE (ingest_xid, id) >= (SELECT watermark, watermark_id FROM system_event_rollup_state)"
)


def rollups_are_exact(url: str) -> None:
    """The rollups plus the rows not folded yet count exactly the events, at every level."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for level, unit in LEVELS.items():
            kept = conn.execute(
                "SELECT bucket, event_type, severity, source, sum(n) FROM ("
                "SELECT bucket, event_type, severity, source, n FROM system_event_rollups "
                "WHERE level = %s UNION ALL SELECT date_trunc(%s, \"timestamp\", 'UTC'), "
                "event_type, severity, coalesce(source, ''), 1 FROM (" + UNFOLDED + ") u) k "
                "GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4",
                (level, unit),
            ).fetchall()
            counted = conn.execute(
                "SELECT date_trunc(%s, \"timestamp\", 'UTC'), event_type, severity, "
                "coalesce(source, ''), count(*) FROM system_events "
                "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
                (unit,),
            ).fetchall()
            assert kept == counted, unit
        for level, unit in NO_SOURCE.items():
            kept = conn.execute(
                "SELECT bucket, event_type, severity, source, sum(n) FROM ("
                "SELECT bucket, event_type, severity, source, n FROM system_event_rollups "
                "WHERE level = %s UNION ALL SELECT date_trunc(%s, \"timestamp\", 'UTC'), "
                "event_type, severity, '', 1 FROM (" + UNFOLDED + ") u) k "
                "GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4",
                (level, unit),
            ).fetchall()
            counted = conn.execute(
                "SELECT date_trunc(%s, \"timestamp\", 'UTC'), event_type, severity, '', "
                "count(*) FROM system_events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                (unit,),
            ).fetchall()
            assert kept == counted, f"{unit} without source"
        overall = conn.execute(
            "SELECT event_type, severity, source, sum(n) FROM ("
            "SELECT event_type, severity, source, n FROM system_event_rollups WHERE level = 3 "
            "UNION ALL SELECT event_type, severity, coalesce(source, ''), 1 FROM ("
            + UNFOLDED
            + ") u) k GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3"
        ).fetchall()
        counted = conn.execute(
            "SELECT event_type, severity, coalesce(source, ''), count(*) FROM system_events "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
        assert overall == counted


def fold(url: str) -> None:
    """Fold until no committed row is left out of the rollups.

    The fold stops at the oldest transaction still open on the server, which
    may belong to another database: it is retried until that one has ended.
    """
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            conn.execute("SELECT system_event_rollups_fold()")
            left = conn.execute("SELECT count(*) FROM (" + UNFOLDED + ") u").fetchone()
            if left == (0,):
                return
            assert time.monotonic() < deadline, f"{left} row(s) never folded"
            time.sleep(0.05)


def spread(count: int, *, step: timedelta = timedelta(minutes=37)) -> list[NewEvent]:
    return [
        NewEvent(
            event_type=f"type-{i % 4}",
            severity=["debug", "info", "warning", "error", "critical"][i % 5],
            message=f"event {i}",
            source=None if i % 3 == 0 else f"source-{i % 7}",
            timestamp=NOW - step * i,
        )
        for i in range(count)
    ]


async def test_inserts(empty_postgres_url: str) -> None:
    async with sysevents.connect(empty_postgres_url) as repo:
        for new in spread(20):
            await repo.add(new)
        await repo.add_many(spread(300))
    rollups_are_exact(empty_postgres_url)
    fold(empty_postgres_url)
    rollups_are_exact(empty_postgres_url)


async def test_updates_move_events_between_buckets(empty_postgres_url: str) -> None:
    async with sysevents.connect(empty_postgres_url) as repo:
        events = await repo.add_many(spread(60))
        fold(empty_postgres_url)
        for i, event in enumerate(events[:40]):
            patch = [
                EventPatch(timestamp=event.timestamp - timedelta(days=33, minutes=5)),
                EventPatch(event_type="moved"),
                EventPatch(severity="critical"),
                EventPatch(source="elsewhere"),
                EventPatch(source=None),
                EventPatch(message="only the message"),
                EventPatch(event_type="moved", severity="debug", source="x", timestamp=NOW),
            ][i % 7]
            await repo.update(event.id, patch)
            rollups_are_exact(empty_postgres_url)
    fold(empty_postgres_url)
    rollups_are_exact(empty_postgres_url)


async def test_deletes_and_truncate(empty_postgres_url: str) -> None:
    async with sysevents.connect(empty_postgres_url) as repo:
        events = await repo.add_many(spread(50))
        for event in events[::3]:
            await repo.delete(event.id)
        rollups_are_exact(empty_postgres_url)
        fold(empty_postgres_url)
        rollups_are_exact(empty_postgres_url)
        with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
            conn.execute("DELETE FROM system_events WHERE id % 2 = 0")
            rollups_are_exact(empty_postgres_url)
            conn.execute("TRUNCATE system_events")
            for table in ("system_event_rollups", "system_event_locator", "system_event_keys"):
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        assert (await repo.stats()).total == 0


async def test_a_failed_statement_changes_no_count(empty_postgres_url: str) -> None:
    async with sysevents.connect(empty_postgres_url) as repo:
        await repo.add_many(spread(10))

    def fail_after_writing(conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("UPDATE system_events SET event_type = 'gone'")
            conn.execute(
                'INSERT INTO system_events (event_type, message, "timestamp", severity) '
                "SELECT 'x', 'y', now(), 'info' FROM generate_series(1, 100)"
            )
            conn.execute("SELECT 1 / 0")

    with (
        psycopg.connect(empty_postgres_url) as conn,
        pytest.raises(psycopg.errors.DivisionByZero),
    ):
        fail_after_writing(conn)
    rollups_are_exact(empty_postgres_url)


async def test_concurrent_writers_on_several_connections(empty_postgres_url: str) -> None:
    async with sysevents.connect(empty_postgres_url, pool_min_size=8, pool_max_size=8) as repo:
        news = spread(400, step=timedelta(seconds=1))

        async def writer(k: int) -> None:
            for i, new in enumerate(news[k::8]):
                if i % 10 == 0:
                    await repo.add_many(news[k : k + 5])
                else:
                    event = await repo.add(new)
                    if i % 7 == 0:
                        await repo.update(event.id, EventPatch(severity="error"))
                    if i % 11 == 0:
                        await repo.delete(event.id)

        await asyncio.gather(*(writer(k) for k in range(8)))
        rollups_are_exact(empty_postgres_url)
        fold(empty_postgres_url)
        rollups_are_exact(empty_postgres_url)


async def test_stats_edges_are_exact(empty_postgres_url: str) -> None:
    """Ranges that start and end inside hours, days and months agree with memory."""
    news = spread(500, step=timedelta(minutes=131, seconds=7))
    memory = MemoryEventRepository()
    await memory.add_many(news)
    async with sysevents.connect(empty_postgres_url) as repo:
        await repo.add_many(news)
        times = sorted({n.timestamp for n in news})
        points = [
            None,
            times[0],
            times[1] + timedelta(microseconds=1),
            times[17],
            times[17] + timedelta(minutes=10),  # with times[17]: raw rows only
            times[len(times) // 2].replace(minute=0, second=0, microsecond=0),
            times[len(times) // 2].replace(hour=0, minute=0, second=0, microsecond=0),
            times[-40].replace(day=1, hour=0, minute=0, second=0, microsecond=0),
            times[-3],
            NOW - timedelta(minutes=59),
            NOW - timedelta(hours=23, minutes=1),
            NOW + timedelta(hours=2),
        ]
        for since in points:
            for until in points:
                for filters in ({}, {"event_type": "type-1"}, {"source": "source-3"}):
                    query = EventFilter(since=since, until=until, **filters)
                    assert await repo.stats(query) == await memory.stats(query), query


def watermark(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT watermark, watermark_id FROM system_event_rollup_state"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_a_backlog_larger_than_a_step_is_folded_in_steps(empty_postgres_url: str) -> None:
    """One transaction of 100 rows folded 7 at a time; stats exact after every step."""
    memory = MemoryEventRepository()
    news = spread(100, step=timedelta(minutes=53))
    await memory.add_many(news)
    async with sysevents.connect(empty_postgres_url, fold_interval=0, fold_step=7) as repo:
        await repo.add_many(news)  # one COPY: one transaction, one ingest_xid
        steps = 0
        with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT system_event_rollups_fold(7)").fetchone()
                assert row is not None
                steps += 1
                rollups_are_exact(empty_postgres_url)
                assert await repo.stats() == await memory.stats()
                if row[0] < 7:
                    break
                assert watermark(empty_postgres_url)[1] > 0  # inside the transaction
        assert steps == 15  # 14 full steps of 7, then the last 2
        assert watermark(empty_postgres_url)[1] == 0
        assert (await repo.backlog()).rows == 0


async def test_changes_to_a_transaction_folded_in_part_keep_counts_exact(
    empty_postgres_url: str,
) -> None:
    async with sysevents.connect(empty_postgres_url, fold_interval=0) as repo:
        events = await repo.add_many(spread(80))
        with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
            conn.execute("SELECT system_event_rollups_fold(30)")
        assert watermark(empty_postgres_url)[1] > 0  # inside the batch's transaction
        # Rows on both sides of the watermark, changed and removed.
        for event in events[::9]:
            await repo.update(event.id, EventPatch(event_type="changed", source="moved"))
            rollups_are_exact(empty_postgres_url)
        for event in events[1::11]:
            await repo.delete(event.id)
            rollups_are_exact(empty_postgres_url)
        assert await repo.fold() is not None
        rollups_are_exact(empty_postgres_url)


async def test_the_background_fold_catches_up_in_steps(empty_postgres_url: str) -> None:
    async with sysevents.connect(empty_postgres_url, fold_interval=0.05, fold_step=25) as repo:
        await repo.add_many(spread(400, step=timedelta(minutes=3)))
        assert (await repo.backlog()).rows > 25
        deadline = time.monotonic() + 30
        while (backlog := await repo.backlog()).rows:
            assert time.monotonic() < deadline, backlog
            await asyncio.sleep(0.05)
        assert backlog.failures == 0
    rollups_are_exact(empty_postgres_url)


async def test_a_failing_fold_warns_once_a_minute_and_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sysevents.stores.postgres.fold import Folder
    from sysevents.stores.postgres.pool import PostgresPool
    from tests.http.tcp_proxy import free_port

    closed_port_url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    pool = PostgresPool(closed_port_url, min_size=0, max_size=1, timeout=0.5)
    folder = Folder(pool, interval=0.01, step=10)
    caplog.set_level("WARNING", logger="sysevents.stores.postgres")
    await pool.open()
    try:
        folder.start()
        deadline = time.monotonic() + 30
        while folder.failures < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await folder.stop(5.0)
    finally:
        await pool.close()
    warnings = [r for r in caplog.records if "fold failed" in r.getMessage()]
    assert len(warnings) == 1
    assert "check that the database is up" in warnings[0].getMessage()


LOW = datetime(1, 1, 1, tzinfo=UTC)
HIGH = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
bounds = st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)))


def test_cover_of_the_whole_table_and_of_minutes() -> None:
    assert rollup_cover(None, None) == ([], [(3, _LOWEST, HIGH)])
    t = datetime(2024, 3, 5, 10, 15, tzinfo=UTC)
    assert rollup_cover(t, t + timedelta(minutes=5)) == ([(t, t + timedelta(minutes=5))], [])


@given(bounds, bounds, st.booleans())
def test_cover_tiles_the_range(lo: datetime | None, hi: datetime | None, by_source: bool) -> None:
    if lo is not None and hi is not None and lo >= hi:
        return
    raw, buckets = rollup_cover(lo, hi, by_source=by_source)
    assert {level for level, _, _ in buckets} <= ({0, 1, 2, 3} if by_source else {2, 3, 4, 5})
    pieces = sorted([*raw, *((start, end) for _, start, end in buckets)])
    start, end = lo or LOW, hi or HIGH
    if lo is None and hi is None:
        return
    assert pieces[0][0] == start
    assert pieces[-1][1] == end
    for (_, a_end), (b_start, _) in itertools.pairwise(pieces):
        assert a_end == b_start
    for r_lo, r_hi in raw:
        assert r_hi - r_lo < timedelta(hours=2)
    for level, b_lo, b_hi in buckets:
        assert b_lo == LOW or b_lo.minute == b_lo.second == b_lo.microsecond == 0
        if level in (1, 2, 5):
            assert b_lo == LOW or b_lo.hour == 0
        if level == 2:
            assert b_lo == LOW or b_lo.day == 1
        assert b_hi == HIGH or b_hi.minute == b_hi.second == b_hi.microsecond == 0
