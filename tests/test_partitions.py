"""PostgreSQL's time partitions: made ahead and on demand, dropped whole by retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sysevents import Event, EventFilter, EventPatch, NewEvent, RetentionPolicy
from sysevents.migrate import upgrade
from sysevents.stores.postgres import PostgresEventRepository
from sysevents.stores.postgres.ids import month_index
from sysevents.stores.postgres.partitions import partition_name
from sysevents.stores.postgres.upkeep import DETACHED_MARK
from tests.conftest import EMPTY_EVENTS, FreshDatabases
from tests.test_rollups import fold, rollups_are_exact

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def partitions(url: str, parent: str = "system_events") -> list[str]:
    """The partitions of ``parent``, as the catalogue lists them."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1",
            (parent,),
        ).fetchall()
    return [r[0] for r in rows]


def where(url: str, event_id: int) -> str:
    """The partition holding the event."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT tableoid::regclass::text FROM system_events WHERE id = %s", (event_id,)
        ).fetchone()
    assert row is not None, event_id
    return str(row[0])


def new(at: datetime, i: int = 0, **fields: object) -> NewEvent:
    return NewEvent.model_validate(
        {
            "event_type": f"type-{i % 3}",
            "severity": ["debug", "info", "warning", "error", "critical"][i % 5],
            "message": f"event {i}",
            "source": None if i % 4 == 0 else f"source-{i % 2}",
            "timestamp": at,
            **fields,
        }
    )


@pytest.fixture(scope="module")
def years_url(test_databases: FreshDatabases) -> str:
    """A database upgraded from one that held an event from a year ago.

    The migration gives every month since then a partition of its own (a
    fresh database keeps what is older than last month in the history one).
    """
    url = test_databases.create(migrate=False)
    upgrade(url, "0004")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO system_events (event_type, severity, message, "timestamp") '
            "VALUES ('old', 'info', 'a year ago', %s)",
            (NOW - 365 * DAY,),
        )
    upgrade(url)
    return url


@pytest.fixture
def empty_years_url(years_url: str) -> str:
    with psycopg.connect(years_url, autocommit=True) as conn:
        conn.execute(EMPTY_EVENTS)
    return years_url


@pytest.fixture
async def years(empty_years_url: str) -> AsyncIterator[PostgresEventRepository]:
    store = PostgresEventRepository(empty_years_url, fold_interval=0)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def repo(empty_postgres_url: str) -> AsyncIterator[PostgresEventRepository]:
    store = PostgresEventRepository(empty_postgres_url, fold_interval=0)
    await store.open()
    yield store
    await store.close()


def test_partitions_are_made_ahead_of_now(empty_postgres_url: str) -> None:
    made = partitions(empty_postgres_url)
    current = month_index(datetime.now(UTC))
    counted = partitions(empty_postgres_url, "system_event_rollups")
    for month in range(current, current + 4):
        assert partition_name(month) in made
    assert "system_events_history" in made
    # The rollups are partitioned by the same months.
    assert [n.replace("system_events_", "system_event_rollups_") for n in made] == counted


def drop(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {name}")
    assert name not in partitions(url)


async def test_no_timestamp_lacks_a_partition(
    repo: PostgresEventRepository, empty_postgres_url: str
) -> None:
    ancient = await repo.add(new(datetime(1990, 1, 2, tzinfo=UTC)))
    assert where(empty_postgres_url, ancient.id) == "system_events_history"
    soon = NOW + timedelta(hours=23)
    future = await repo.add(new(soon))
    assert where(empty_postgres_url, future.id) == partition_name(month_index(soon))
    assert await repo.get(ancient.id) == ancient
    assert await repo.get(future.id) == future


async def test_a_missing_partition_is_made_again_on_every_path(
    repo: PostgresEventRepository, empty_postgres_url: str
) -> None:
    """Whatever removed it, a write to a month without a partition makes one."""
    name = partition_name(month_index(NOW))
    stored: list[Event] = []
    writes: list[Callable[[], Awaitable[Event | list[Event]]]] = [
        lambda: repo.add(new(NOW)),
        lambda: repo.add_many([new(NOW, i) for i in range(3)]),  # one statement
        lambda: repo.add_many([new(NOW, i) for i in range(80)]),  # COPY
        lambda: repo.add(new(NOW, idempotency_key="k-1")),  # keyed
        lambda: repo.add_many([new(NOW, i, idempotency_key=f"k-{i}-b") for i in range(70)]),
    ]
    for write in writes:
        drop(empty_postgres_url, name)
        result = await write()
        assert name in partitions(empty_postgres_url)
        stored += result if isinstance(result, list) else [result]
    # Only the last batch is still there: each drop took the ones before.
    for event in stored[-70:]:
        assert await repo.get(event.id) == event
    assert await repo.add(new(NOW, 1, idempotency_key="k-1-b")) == stored[-69]
    # An update that moves an event into a month whose partition is gone.
    old = await repo.add(new(datetime(2001, 3, 4, tzinfo=UTC)))
    drop(empty_postgres_url, name)
    moved = await repo.update(old.id, EventPatch(timestamp=NOW))
    assert where(empty_postgres_url, old.id) == name
    assert await repo.get(old.id) == moved
    assert (await repo.stats()).total == 1
    assert await repo.maintain() == []  # nothing left to make


async def test_maintenance_makes_the_months_ahead(
    repo: PostgresEventRepository, empty_postgres_url: str
) -> None:
    later = NOW + 3650 * DAY
    made = await repo.maintain(now=later)
    assert made == [partition_name(month_index(later) + k) for k in range(4)]
    assert set(made) <= set(partitions(empty_postgres_url))


async def test_a_hand_inserted_row_is_found(
    repo: PostgresEventRepository, empty_postgres_url: str
) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        row = conn.execute(
            'INSERT INTO system_events (event_type, severity, message, "timestamp") '
            "VALUES ('by-hand', 'info', 'written with SQL', now()) RETURNING id"
        ).fetchone()
    assert row is not None
    event = await repo.get(row[0])
    assert event is not None
    assert event.event_type == "by-hand"
    changed = await repo.update(row[0], EventPatch(message="changed"))
    assert changed.message == "changed"
    await repo.delete(row[0])
    assert await repo.get(row[0]) is None


async def months_of_events(repo: PostgresEventRepository, months: int) -> list[int]:
    """Events on every day of the last ``months`` months; their ids."""
    ids = []
    for day in range(months * 31):
        batch = [new(NOW - day * DAY - i * timedelta(hours=5), i) for i in range(4)]
        ids += [e.id for e in await repo.add_many(batch)]
    return ids


async def test_retention_drops_whole_months_and_keeps_counts_exact(
    years: PostgresEventRepository, empty_years_url: str
) -> None:
    await months_of_events(years, 6)
    fold(empty_years_url)
    # Rows written after the fold are counted from the table: both must be right.
    await years.add_many([new(NOW - 170 * DAY + i * timedelta(minutes=3), i) for i in range(50)])
    before = set(partitions(empty_years_url))
    policy = RetentionPolicy.parse("*=100d,type:type-1=30d")
    report = await years.apply_retention(policy, now=NOW)
    after = set(partitions(empty_years_url))
    assert report.partitions_dropped, "a whole month older than 100 days exists"
    assert set(report.partitions_dropped) == before - after
    # The months' counts went with them, as tables of their own.
    counted = set(partitions(empty_years_url, "system_event_rollups"))
    for name in report.partitions_dropped:
        assert name.replace("system_events_", "system_event_rollups_") not in counted
    assert {n.replace("system_events_", "system_event_rollups_") for n in after} == counted
    cutoff = NOW - 100 * DAY
    for name in report.partitions_dropped:
        assert name < partition_name(month_index(cutoff))
    with psycopg.connect(empty_years_url) as conn:
        left = conn.execute(
            'SELECT count(*) FILTER (WHERE "timestamp" < %s), '
            "count(*) FILTER (WHERE event_type = 'type-1' AND \"timestamp\" < %s), count(*) "
            "FROM system_events",
            (cutoff, NOW - 30 * DAY),
        ).fetchone()
    assert left is not None
    assert left[0] == 0
    assert left[1] == 0
    assert report.removed > 0
    stats = await years.stats()
    assert stats.total == left[2]
    typed = await years.stats(EventFilter(event_type="type-1"))
    with psycopg.connect(empty_years_url) as conn:
        counted = conn.execute(
            "SELECT count(*) FROM system_events WHERE event_type = 'type-1'"
        ).fetchone()
    assert counted is not None
    assert typed.total == counted[0]
    fold(empty_years_url)
    rollups_are_exact(empty_years_url)


async def test_a_dry_run_counts_and_removes_nothing(
    years: PostgresEventRepository, empty_years_url: str
) -> None:
    await months_of_events(years, 4)
    before = partitions(empty_years_url)
    total = (await years.stats()).total
    policy = RetentionPolicy.parse("*=40d")
    dry = await years.apply_retention(policy, now=NOW, dry_run=True)
    assert dry.dry_run
    assert dry.removed > 0
    assert partitions(empty_years_url) == before
    assert (await years.stats()).total == total
    real = await years.apply_retention(policy, now=NOW)
    assert real.removed == dry.removed
    assert (await years.stats()).total == total - real.removed


async def test_one_process_applies_retention_at_a_time(
    repo: PostgresEventRepository, empty_postgres_url: str
) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('sysevents-retention'))")
        report = await repo.apply_retention(RetentionPolicy.parse("*=1d"), now=NOW)
        assert report.busy
        assert report.removed == 0


async def test_a_writer_during_retention_loses_nothing_and_waits_little(
    years: PostgresEventRepository, empty_years_url: str
) -> None:
    await months_of_events(years, 5)
    stop, enough = asyncio.Event(), asyncio.Event()
    retention_done = asyncio.Event()
    written: list[int] = []
    waits: list[float] = []

    async def writer(k: int) -> None:
        i = 0
        while not stop.is_set():
            started = time.perf_counter()
            # Young and not debug: no rule of the policy removes these.
            event = await years.add(new(NOW - (i % 9) * DAY, 1, message=f"w{k}-{i}"))
            waits.append(time.perf_counter() - started)
            written.append(event.id)
            if len(written) >= 200 and retention_done.is_set():
                enough.set()
            i += 1

    writers = [asyncio.create_task(writer(k)) for k in range(4)]
    try:
        report = await years.apply_retention(RetentionPolicy.parse("*=60d,debug=10d"), now=NOW)
        retention_done.set()
        # Writers carry on a while after the run too.
        await asyncio.wait_for(enough.wait(), timeout=10)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert report.partitions_dropped
    assert report.removed > 0
    assert len(written) >= 200
    with psycopg.connect(empty_years_url) as conn:
        kept = {r[0] for r in conn.execute("SELECT id FROM system_events").fetchall()}
    assert [i for i in written if i not in kept] == []
    # Dropping a partition waits at most 50 ms for its lock, three times: a
    # writer queued behind it waits that long at most, never for the whole run.
    assert max(waits) < 2.0, max(waits)
    fold(empty_years_url)
    rollups_are_exact(empty_years_url)


async def test_reading_a_partition_by_name_equals_reading_the_table(
    years: PostgresEventRepository, empty_years_url: str
) -> None:
    """The fast read by id finds exactly what a read through the parent table finds."""
    from sysevents.stores.postgres import sql
    from sysevents.stores.postgres.byid import by_id, read_by_id
    from sysevents.stores.postgres.partitions import history_end

    events = await years.add_many([new(NOW - i * 9 * DAY, i) for i in range(40)])
    old = await years.add(new(datetime(1999, 5, 5, tzinfo=UTC)))  # in the history partition
    moved = await years.update(events[3].id, EventPatch(timestamp=NOW - 200 * DAY))
    gone_month = events[-1]
    drop(empty_years_url, where(empty_years_url, gone_month.id))
    unknown = [events[0].id + 10**6, 5, 2**62]
    async with await psycopg.AsyncConnection.connect(empty_years_url, autocommit=True) as conn:
        end = await history_end(conn)
        assert end is not None
        for event_id in [e.id for e in events] + [old.id, moved.id, *unknown]:
            fast = await read_by_id(conn, event_id, sql.SELECTED, end)
            slow = await by_id(conn, event_id, sql.SELECT)
            assert fast == slow, event_id
        assert await read_by_id(conn, moved.id, sql.SELECTED, end) is not None
        assert await read_by_id(conn, gone_month.id, sql.SELECTED, end) is None
    assert await years.get(moved.id) == moved
    assert await years.get(old.id) == old
    assert await years.get(gone_month.id) is None


async def test_a_busy_month_is_left_for_the_next_run(
    years: PostgresEventRepository, empty_years_url: str
) -> None:
    await months_of_events(years, 5)
    oldest = min(
        (p for p in partitions(empty_years_url) if p.startswith("system_events_p")),
    )
    policy = RetentionPolicy.parse("*=60d")
    with psycopg.connect(empty_years_url) as holder:
        # A writer's lock on the oldest month, held across the whole run.
        holder.execute(f"LOCK TABLE {oldest} IN ROW EXCLUSIVE MODE")
        report = await years.apply_retention(policy, now=NOW)
        assert oldest not in report.partitions_dropped
        assert oldest in partitions(empty_years_url)
        holder.rollback()
    again = await years.apply_retention(policy, now=NOW)
    assert oldest in again.partitions_dropped
    assert oldest not in partitions(empty_years_url)
    fold(empty_years_url)
    rollups_are_exact(empty_years_url)


def table_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return row == (True,)


async def test_a_month_retention_left_detached_is_dropped_by_maintenance(
    years: PostgresEventRepository, empty_years_url: str
) -> None:
    """Retention detaches and marks a month at once; a crash before the drop leaves it."""
    oldest = next(p for p in partitions(empty_years_url) if p.startswith("system_events_p"))
    with psycopg.connect(empty_years_url) as conn:
        conn.execute(f"ALTER TABLE system_events DETACH PARTITION {oldest}")
        conn.execute(f"COMMENT ON TABLE {oldest} IS '{DETACHED_MARK}'")
    assert oldest not in partitions(empty_years_url)
    await years.maintain()
    assert not table_exists(empty_years_url, oldest)


async def test_a_month_an_operator_detached_survives_upkeep_and_retention(
    years: PostgresEventRepository, empty_years_url: str
) -> None:
    """Detached by hand (to archive it, say): neither maintenance nor retention drops it."""
    await months_of_events(years, 5)  # the months before the last two are dropped whole
    newest = max(p for p in partitions(empty_years_url) if p.startswith("system_events_p"))
    oldest = min(p for p in partitions(empty_years_url) if p.startswith("system_events_p"))
    with psycopg.connect(empty_years_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE system_events DETACH PARTITION {oldest}")
    try:
        await years.maintain()
        report = await years.apply_retention(RetentionPolicy.parse("*=40d"), now=NOW)
        assert report.partitions_dropped  # retention dropped months of its own meanwhile
        assert table_exists(empty_years_url, oldest)
        assert newest in partitions(empty_years_url)
    finally:
        with psycopg.connect(empty_years_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {oldest}")


@pytest.mark.parametrize("recent", [0, 3, 40, 200])
async def test_pages_read_from_the_latest_months_equal_the_whole_table(
    empty_years_url: str, recent: int
) -> None:
    """Whether the latest months hold the page or not, the answer is the whole table's."""
    from sysevents import EventQuery, MemoryEventRepository

    news = [new(NOW - (70 + 3 * i) * DAY, i) for i in range(90)]  # older months
    news += [new(NOW - timedelta(hours=i + 1), 100 + i) for i in range(recent)]  # latest
    memory = MemoryEventRepository(count_cap=30)
    await memory.add_many(news)
    async with PostgresEventRepository(empty_years_url, fold_interval=0, count_cap=30) as repo:
        stored = await repo.add_many(news)
        queries = [
            EventQuery(limit=limit, offset=offset, count=count)
            for limit in (1, 7, 50, 300)
            for offset in (0, 5, 120)
            for count in ("capped", "exact", "none")
        ]
        queries += [EventQuery(limit=10, min_severity="warning"), EventQuery(since=NOW - 80 * DAY)]
        for query in queries:
            mine, theirs = await repo.list(query), await memory.list(query)
            assert [e.message for e in mine.items] == [e.message for e in theirs.items], query
            assert (mine.total, mine.total_exact) == (theirs.total, theirs.total_exact), query
        # A walk by cursor from the latest months into the oldest.
        seen, query = [], EventQuery(limit=17)
        while True:
            page = await repo.list(query)
            seen += [e.message for e in page.items]
            if page.next_cursor is None:
                break
            query = query.model_copy(update={"cursor": page.next_cursor})
    newest_first = sorted(stored, key=lambda e: (e.timestamp, e.id), reverse=True)
    assert seen == [e.message for e in newest_first]
