"""PostgreSQL upkeep: each statement bounded alone, and rollup rows at zero removed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sysevents import NewEvent, RetentionPolicy, StoreError
from sysevents.stores.postgres import PostgresEventRepository, retention
from tests.conftest import FreshDatabases
from tests.test_rollups import fold, rollups_are_exact

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
SLOW = 0.8
"""Seconds every DELETE statement on a slowed table takes (above half the timeout)."""
TIMEOUT = 1.5
"""The store's timeout in these tests: one slowed statement fits, two do not."""


def slow_down_deletes(url: str, table: str) -> None:
    """Make every DELETE statement on ``table`` take :data:`SLOW` seconds longer."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({SLOW}); RETURN NULL; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER slow_delete AFTER DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION slow_delete()"
        )


def count(url: str, statement: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(statement).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def own_url(test_databases: FreshDatabases) -> str:
    """A database of this test's own (it slows some statements down)."""
    return test_databases.create()


@pytest.fixture
async def slow_store(own_url: str) -> AsyncIterator[PostgresEventRepository]:
    store = PostgresEventRepository(own_url, fold_interval=0, timeout=TIMEOUT)
    await store.open()
    yield store
    await store.close()


async def test_a_backlog_of_keys_longer_than_the_timeout_is_worked_off(
    own_url: str, slow_store: PostgresEventRepository
) -> None:
    """20 000 expired keys take several batches, each under the timeout, all together over it."""
    expired_keys(own_url, 20_000)
    slow_down_deletes(own_url, "system_event_keys")
    await slow_store.maintain()
    assert count(own_url, "SELECT count(*) FROM system_event_keys") == 0


def expired_keys(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO system_event_keys (caller, key, id, "timestamp", created_at) '
            "SELECT 'emitter', 'key-' || g, g, now(), now() - interval '3 days' "
            "FROM generate_series(1, %s) g",
            (n,),
        )


async def test_keys_are_forgotten_while_making_partitions_fails(
    own_url: str, slow_store: PostgresEventRepository
) -> None:
    """The partitions' lock held elsewhere: that part times out, the others still run."""
    expired_keys(own_url, 100)
    with psycopg.connect(own_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext('sysevents-partitions'))")
        with pytest.raises(StoreError):
            await slow_store.maintain()
    assert count(own_url, "SELECT count(*) FROM system_event_keys") == 0


async def test_retention_longer_than_the_timeout_runs_to_the_end(
    own_url: str, slow_store: PostgresEventRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four batches of deletes, each under the timeout, all together over it."""
    monkeypatch.setattr(retention, "BATCH", 10)
    # Mid-month a month ago: the rule cuts inside the month, never a whole one.
    at = (NOW.replace(day=1) - timedelta(days=15)).replace(hour=12, minute=0, second=0)
    await slow_store.add_many(
        [
            NewEvent(event_type="old", message=f"{i}", timestamp=at - timedelta(seconds=i))
            for i in range(35)
        ]
    )
    slow_down_deletes(own_url, "system_events")
    report = await slow_store.apply_retention(
        RetentionPolicy.parse("*=1h"), now=at + timedelta(hours=3)
    )
    assert report.removed == 35
    assert count(own_url, "SELECT count(*) FROM system_events") == 0


def all_time_rows(url: str) -> int:
    return count(url, "SELECT count(*) FROM system_event_rollups WHERE level = 3")


def sprayed(n: int, at: datetime) -> list[NewEvent]:
    """``n`` events, each of a random type of its own."""
    return [
        NewEvent(event_type=f"spray.{uuid.uuid4().hex}", message="x", timestamp=at)
        for _ in range(n)
    ]


@pytest.fixture
async def store(empty_postgres_url: str) -> AsyncIterator[PostgresEventRepository]:
    repo = PostgresEventRepository(empty_postgres_url, fold_interval=0)
    await repo.open()
    yield repo
    await repo.close()


async def test_series_deleted_away_leave_no_all_time_rows(
    empty_postgres_url: str, store: PostgresEventRepository
) -> None:
    kept = await store.add_many(sprayed(1, NOW))
    gone = await store.add_many(sprayed(200, NOW))
    fold(empty_postgres_url)
    assert all_time_rows(empty_postgres_url) == 201
    for event in gone:
        await store.delete(event.id)
    await store.maintain()
    assert all_time_rows(empty_postgres_url) == 1
    stats = await store.stats()
    assert stats.total == 1
    assert set(stats.by_type) == {kept[0].event_type}
    rollups_are_exact(empty_postgres_url)


@pytest.mark.parametrize("age", [timedelta(days=3), timedelta(days=75)])
async def test_series_retained_away_leave_no_all_time_rows(
    empty_postgres_url: str, store: PostgresEventRepository, age: timedelta
) -> None:
    """Rows cut by batches (3 days) or months dropped whole (75 days, where monthly)."""
    await store.add_many(sprayed(1, NOW))
    await store.add_many(sprayed(200, NOW - age))
    fold(empty_postgres_url)
    assert all_time_rows(empty_postgres_url) == 201
    report = await store.apply_retention(RetentionPolicy.parse("*=1d"))
    assert report.removed == 200
    assert all_time_rows(empty_postgres_url) == 1
    assert (await store.stats()).total == 1
    rollups_are_exact(empty_postgres_url)
