"""What only the PostgreSQL backend can get wrong: 64-bit ids, NUL, pool, driver errors."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

import sysevents
from sysevents import (
    EventPatch,
    EventQuery,
    NewEvent,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from sysevents.stores.postgres import PostgresEventRepository
from sysevents.stores.postgres import pool as pool_module
from sysevents.stores.postgres.ids import month_index
from tests.conftest import FreshDatabases

pytestmark = pytest.mark.postgres

TIMEOUT = 1.0
UPPER_BOUND = TIMEOUT + 2.0


def _new(n: int = 0, **fields: Any) -> NewEvent:
    values: dict[str, Any] = {"event_type": "deploy", "message": f"event {n}", **fields}
    return NewEvent(**values)


@pytest.fixture
async def pg_repo(empty_postgres_url: str) -> AsyncIterator[PostgresEventRepository]:
    async with PostgresEventRepository(empty_postgres_url, timeout=TIMEOUT) as repo:
        yield repo


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/nowhere"


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM system_events").fetchone()
        assert row is not None
        return int(row[0])


# -- ids ------------------------------------------------------------------------


@pytest.mark.parametrize("event_id", [0, -1, 2**63, 2**64, -(2**63) - 1])
async def test_out_of_range_ids_never_reach_sql(closed_port_url: str, event_id: int) -> None:
    # The database is unreachable: any SQL would raise StoreUnavailableError.
    async with PostgresEventRepository(closed_port_url, timeout=TIMEOUT) as repo:
        assert await repo.get(event_id) is None
        with pytest.raises(NotFoundError):
            await repo.update(event_id, EventPatch(message="x"))
        with pytest.raises(NotFoundError):
            await repo.delete(event_id)


async def test_out_of_range_ids_on_a_live_database(pg_repo: PostgresEventRepository) -> None:
    await pg_repo.add(_new())
    for event_id in (0, -1, 2**63, 2**64):
        assert await pg_repo.get(event_id) is None
        with pytest.raises(NotFoundError):
            await pg_repo.delete(event_id)
    assert await pg_repo.get(2**63 - 1) is None


async def test_ids_are_64_bit(pg_repo: PostgresEventRepository, empty_postgres_url: str) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        conn.execute(f"ALTER SEQUENCE system_events_seq RESTART WITH {2**35}")
    first = await pg_repo.add(_new(1))
    # The event's month in the high bits, the sequence below: and within
    # the integers a JavaScript client reads exactly.
    assert first.id == month_index(first.timestamp) << 36 | 2**35
    assert first.id < 2**53
    many = await pg_repo.add_many([_new(2), _new(3)])
    assert [e.id for e in many] == [first.id + 1, first.id + 2]
    assert await pg_repo.get(first.id) == first
    updated = await pg_repo.update(first.id, EventPatch(severity="error"))
    assert updated.severity == "error"
    page = await pg_repo.list(EventQuery(limit=2))
    assert page.next_cursor is not None
    rest = await pg_repo.list(EventQuery(limit=2, cursor=page.next_cursor))
    assert [e.id for e in page.items + rest.items] == sorted(
        [e.id for e in [first, *many]], reverse=True
    )
    await pg_repo.delete(first.id)
    assert await pg_repo.get(first.id) is None


# -- NUL and other bytes PostgreSQL refuses -------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"message": "a\x00b"},
        {"event_type": "a\x00b"},
        {"source": "a\x00b"},
        {"details": {"k": "a\x00b"}},
        {"details": {"a\x00b": 1}},
        {"details": {"list": ["ok", {"deep": "\x00"}]}},
        {"message": "\ud800"},
    ],
)
async def test_nul_never_reaches_the_database(
    pg_repo: PostgresEventRepository, empty_postgres_url: str, fields: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        _new(**fields)
    stored = await pg_repo.add(_new())
    with pytest.raises(ValidationError):
        EventPatch(**fields)
    assert _count(empty_postgres_url) == 1
    assert await pg_repo.get(stored.id) == stored


async def test_unicode_and_json_round_trip(pg_repo: PostgresEventRepository) -> None:
    details = {"emoji": "🚀", "nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}}
    added = await pg_repo.add(_new(message="héllo ☃", details=details, source="s"))
    got = await pg_repo.get(added.id)
    assert got == added
    assert got is not None
    assert got.details == details
    assert got.timestamp.utcoffset() is not None
    assert got.timestamp.tzinfo == added.timestamp.tzinfo


# -- writes ---------------------------------------------------------------------


async def test_add_many_is_atomic_at_the_database(test_databases: Any) -> None:
    url = test_databases.create()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE system_events ADD CONSTRAINT no_boom CHECK (message <> 'boom')")
    async with PostgresEventRepository(url, timeout=TIMEOUT) as repo:
        with pytest.raises(StoreError) as info:
            await repo.add_many([_new(1), _new(message="boom"), _new(3)])
        assert not isinstance(info.value, StoreUnavailableError)
        assert isinstance(info.value.__cause__, psycopg.Error)
        assert _count(url) == 0
        stored = await repo.add_many([_new(n) for n in range(50)])
        assert [e.message for e in stored] == [f"event {n}" for n in range(50)]
        assert [e.id for e in stored] == sorted(e.id for e in stored)
        assert len({e.created_at for e in stored}) == 1


async def test_update_changes_only_given_fields(pg_repo: PostgresEventRepository) -> None:
    added = await pg_repo.add(_new(details={"a": 1}, source="src"))
    cleared = await pg_repo.update(added.id, EventPatch(details=None))
    assert cleared.details is None
    assert cleared.model_dump(exclude={"details"}) == added.model_dump(exclude={"details"})
    same = await pg_repo.update(added.id, EventPatch())
    assert same == cleared


# -- driver errors --------------------------------------------------------------


async def test_driver_errors_are_translated(test_databases: Any) -> None:
    url = test_databases.create()
    async with PostgresEventRepository(url, timeout=TIMEOUT) as repo:
        added = await repo.add(_new())
        with psycopg.connect(url, autocommit=True) as conn:
            # Every query (and the rollup triggers) now fails inside PostgreSQL.
            conn.execute("ALTER TABLE system_events RENAME COLUMN severity TO level")
            conn.execute("ALTER TABLE system_event_rollups RENAME COLUMN severity TO sev")
        calls = [
            repo.add(_new()),
            repo.add_many([_new()]),
            repo.get(added.id),
            repo.list(),
            repo.update(added.id, EventPatch(message="x")),
            repo.delete(added.id),
            repo.stats(),
        ]
        for call in calls:
            with pytest.raises(StoreError) as info:
                await call
            assert not isinstance(info.value, StoreUnavailableError)
            assert isinstance(info.value.__cause__, psycopg.Error)
        await repo.ping()


async def test_a_blocked_statement_times_out(
    pg_repo: PostgresEventRepository, empty_postgres_url: str
) -> None:
    added = await pg_repo.add(_new())
    with psycopg.connect(empty_postgres_url) as locker:
        locker.execute("LOCK TABLE system_events IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await pg_repo.get(added.id)
        assert time.monotonic() - started < UPPER_BOUND
        locker.rollback()
    assert await pg_repo.get(added.id) == added


# -- pool and lifecycle ---------------------------------------------------------


async def test_pool_is_two_to_ten_by_default(empty_postgres_url: str) -> None:
    repo = sysevents.connect(empty_postgres_url)
    assert isinstance(repo, PostgresEventRepository)
    assert repo.timeout == sysevents.Settings().timeout
    async with repo:
        pool = repo.pool
        assert pool is not None
        assert (pool.min_size, pool.max_size) == (2, 10)
        await pool.wait(timeout=5)
        assert pool.get_stats()["pool_size"] == 2
        await asyncio.gather(*(repo.ping() for _ in range(30)))
        assert pool.get_stats()["pool_size"] <= 10


async def test_settings_size_the_pool(empty_postgres_url: str) -> None:
    repo = sysevents.connect(empty_postgres_url, pool_min_size=1, pool_max_size=3, timeout=2)
    assert isinstance(repo, PostgresEventRepository)
    async with repo:
        assert repo.pool is not None
        assert (repo.pool.min_size, repo.pool.max_size, repo.timeout) == (1, 3, 2)


async def test_unreachable_database(closed_port_url: str) -> None:
    repo = PostgresEventRepository(closed_port_url, timeout=TIMEOUT)
    started = time.monotonic()
    await repo.open()
    assert time.monotonic() - started < UPPER_BOUND
    try:
        for call in (repo.ping(), repo.get(1), repo.add(_new()), repo.list(), repo.stats()):
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as info:
                await call
            assert time.monotonic() - started < UPPER_BOUND
            assert isinstance(info.value.__cause__, psycopg.Error | TimeoutError)
    finally:
        await repo.close()


async def test_close_twice_then_calls_fail(empty_postgres_url: str) -> None:
    repo = PostgresEventRepository(empty_postgres_url, timeout=TIMEOUT)
    await repo.open()
    await repo.ping()
    await repo.close()
    await repo.close()
    with pytest.raises(StoreUnavailableError):
        await repo.ping()
    with pytest.raises(StoreUnavailableError):
        await repo.get(1)
    await repo.open()
    await repo.ping()
    await repo.close()


async def test_usable_without_explicit_open(empty_postgres_url: str) -> None:
    repo = PostgresEventRepository(empty_postgres_url, timeout=TIMEOUT)
    try:
        added = await repo.add(_new())
        assert await repo.get(added.id) == added
    finally:
        await repo.close()


async def test_driver_suffix_in_url_is_accepted(empty_postgres_url: str) -> None:
    url = empty_postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    async with PostgresEventRepository(url, timeout=TIMEOUT) as repo:
        await repo.ping()


async def test_idempotency_keys_across_connections(empty_postgres_url: str) -> None:
    repos = [PostgresEventRepository(empty_postgres_url, timeout=5) for _ in range(3)]
    try:
        batches = [
            # The same keyed events from every writer (retries racing), one plain one each.
            repo.add_many([_new(-j, idempotency_key=f"k{j}") for j in range(10)] + [_new(i)])
            for i, repo in enumerate(repos * 4)
        ]
        results = await asyncio.gather(*batches)
        for j in range(10):
            assert len({r[j].id for r in results}) == 1
        assert len({r[10].id for r in results}) == len(results)
        assert _count(empty_postgres_url) == 10 + len(results)
    finally:
        for repo in repos:
            await repo.close()


async def test_an_unmigrated_database_says_to_migrate(test_databases: FreshDatabases) -> None:
    url = test_databases.create(migrate=False)
    async with PostgresEventRepository(url, timeout=2.0) as repo:
        with pytest.raises(StoreUnavailableError, match="sysevents migrate"):
            await repo.ping()
        with pytest.raises(StoreUnavailableError, match="sysevents migrate"):
            await repo.add(NewEvent(event_type="t", message="m"))
        with pytest.raises(StoreUnavailableError, match="sysevents migrate"):
            await repo.stats()


class FrozenClock:
    """Stands for the ``time`` module where only ``monotonic`` is read; moves when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_only_connections_idle_for_a_while_are_checked(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psycopg_pool import AsyncConnectionPool

    checks: list[object] = []
    check = AsyncConnectionPool.check_connection

    async def counting(conn: Any) -> None:
        checks.append(conn)
        await check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counting))
    clock = FrozenClock()
    monkeypatch.setattr(pool_module, "time", clock)  # the pool's clock only
    pool = pool_module.PostgresPool(
        empty_postgres_url, min_size=1, max_size=1, timeout=5.0, check_after_idle=0.2
    )

    async def use() -> None:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")

    await pool.open()
    try:
        await use()  # a connection never used through the pool's callers: checked
        first = len(checks)
        for _ in range(20):
            await use()  # used moments ago: not checked again
        assert len(checks) == first
        clock.now += 0.19
        await use()
        assert len(checks) == first  # idle, but not past check_after_idle
        clock.now += 0.21
        await use()
        assert len(checks) == first + 1  # idle past check_after_idle: checked
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("filters", "prepared"),
    [
        ({}, True),
        ({"since": "2020-01-01T00:00:00Z"}, True),
        ({"event_type": "deploy"}, False),
        ({"min_severity": "error"}, False),
        ({"source": "api"}, False),
        ({"q": "event"}, False),
        ({"details": {"n": 1}}, False),
        ({"trace_id": "0af7651916cd43dd8448eb211c80319c"}, False),
    ],
)
async def test_only_pages_filtered_by_time_are_prepared(
    empty_postgres_url: str, filters: dict[str, Any], prepared: bool
) -> None:
    # A generic plan fits a page by time; for a value as skewed as a details
    # field or a search word it can cost several times the custom plan.
    repo = sysevents.connect(empty_postgres_url, pool_min_size=1, pool_max_size=1)
    assert isinstance(repo, PostgresEventRepository)
    async with repo:
        await repo.add(_new(details={"n": 1}))
        query = EventQuery(**filters, limit=5, count="none")
        for _ in range(2):  # the store says prepare=True or False: no threshold applies
            await repo.list(query)
        assert repo.pool is not None
        async with repo.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_prepared_statements "
                "WHERE statement LIKE '%FROM system_events%ORDER BY%'"
            )
            row = await cur.fetchone()
    assert row is not None
    assert (row[0] > 0) is prepared
