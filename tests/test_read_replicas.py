"""Reads served by a streaming replica, and a caller that always reads its own writes.

A private primary and a replica made of it with ``pg_basebackup -R``; the
replica's replay is paused (``pg_wal_replay_pause()``) to make it fall behind
on demand.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
from litestar.testing import AsyncTestClient

import sysevents
from sysevents import EventFilter, EventQuery, NewEvent, Settings
from sysevents.migrate import upgrade
from sysevents.positions import POSITION_HEADER, lsn_value
from sysevents.stores.postgres import PostgresEventRepository
from sysevents_http import HttpOptions, create_app
from tests.conftest import skip_or_fail
from tests.http.live import LiveApp
from tests.private_postgres import PrivatePostgres
from tests.waiting import eventually

pytestmark = [pytest.mark.fault, pytest.mark.postgres]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PrivatePostgres, PrivatePostgres]]:
    reason = PrivatePostgres.unavailable_reason()
    if reason:
        skip_or_fail(reason)
    with PrivatePostgres() as primary:
        upgrade(primary.url)
        with primary.replica() as replica:
            yield primary, replica


def _replay(replica: PrivatePostgres, on: bool) -> None:
    with psycopg.connect(replica.url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()")


@pytest.fixture
def paused(servers: tuple[PrivatePostgres, PrivatePostgres]) -> Iterator[PrivatePostgres]:
    """The replica, its replay paused for the test (resumed after)."""
    _, replica = servers
    _replay(replica, False)
    try:
        yield replica
    finally:
        _replay(replica, True)


@pytest.fixture
async def store(
    servers: tuple[PrivatePostgres, PrivatePostgres],
) -> AsyncIterator[PostgresEventRepository]:
    primary, replica = servers
    async with PostgresEventRepository(primary.url, read_database_url=[replica.url]) as repo:
        await eventually(lambda: repo.replicas()[0].usable, "the replica is in use")
        yield repo


def _tag() -> str:
    return f"r{time.monotonic_ns()}"


def _unique(tag: str) -> NewEvent:
    return NewEvent(event_type="replica_test", message=tag, source=_tag())


async def _in_new_work(coro_factory):  # type: ignore[no-untyped-def]
    """Run a coroutine as work of its own: it presents no position."""
    task = asyncio.get_running_loop().create_task(coro_factory(), context=contextvars.Context())
    return await task


async def test_reads_go_to_the_replica_and_a_writer_reads_its_own_writes(
    store: PostgresEventRepository, paused: PrivatePostgres
) -> None:
    new = _unique("mine")

    async def write() -> None:
        await store.add(new)

    # Written by other work: a read that presents no position is served by the
    # paused replica, which has not seen it.
    await _in_new_work(write)
    only = EventQuery(source=new.source)
    others = await _in_new_work(lambda: store.list(only))
    assert others.items == [], "a read without a position was not served by the replica"

    # Written here: the read waits for the replica at most a second, then the primary answers.
    mine = _unique("mine")
    await store.add(mine)
    started = time.monotonic()
    page = await store.list(EventQuery(source=mine.source))
    took = time.monotonic() - started
    assert [e.source for e in page.items] == [mine.source]
    assert took < 3.0, took  # a second's wait, with room for a loaded machine
    stats = await store.stats(EventFilter(event_type=["replica_test"]))
    assert stats.total >= 2


async def test_a_replica_that_has_replayed_the_write_serves_it(
    store: PostgresEventRepository,
) -> None:
    mine = _unique("caught up")
    await store.add(mine)
    page = await store.list(EventQuery(source=mine.source))
    assert [e.source for e in page.items] == [mine.source]
    state = store.replicas()[0]
    assert state.usable
    assert state.lag is not None
    assert state.lag >= 0


async def test_a_stopped_replica_is_left_out_and_the_primary_serves(
    servers: tuple[PrivatePostgres, PrivatePostgres],
) -> None:
    primary, _ = servers
    with primary.replica() as second:
        async with PostgresEventRepository(
            primary.url, read_database_url=[second.url], timeout=2.0
        ) as repo:
            await eventually(lambda: repo.replicas()[0].usable, "the replica is in use")
            second.stop("immediate")
            await eventually(lambda: not repo.replicas()[0].usable, "the replica left out")
            new = _unique("stopped")
            await _in_new_work(lambda: repo.add(new))
            page = await _in_new_work(lambda: repo.list(EventQuery(source=new.source)))
            assert [e.source for e in page.items] == [new.source]
            assert repo.replicas()[0].lag is None


def test_settings_refuse_replicas_without_postgres() -> None:
    with pytest.raises(sysevents.ConfigurationError, match="read_database_url"):
        Settings.from_env({}, database_url="memory://", read_database_url="postgresql://x/y")
    with pytest.raises(sysevents.ConfigurationError, match="read_database_url"):
        Settings.from_env({}, database_url="postgresql://h/db", read_database_url="mysql://h/db")
    assert "hunter2" not in repr(
        Settings(database_url="postgresql://h/db", read_database_url="postgresql://u:hunter2@h/db")
    )


async def test_the_api_hands_out_positions_and_honours_them(
    servers: tuple[PrivatePostgres, PrivatePostgres], paused: PrivatePostgres
) -> None:
    primary, replica = servers
    settings = Settings(database_url=primary.url, read_database_url=[replica.url])
    async with AsyncTestClient(create_app(settings, options=HttpOptions())) as client:
        health = (await client.get("/api/health/db")).json()
        assert health["replicas"][0]["name"].endswith(f":{replica.port}/postgres")
        tag = _tag()
        created = await client.post(
            "/api/events", json={"event_type": "replica_test", "message": "api", "source": tag}
        )
        assert created.status_code == 201
        position = created.headers[POSITION_HEADER]
        assert lsn_value(position) is not None
        # Without the position the paused replica answers: not there yet.
        blind = await client.get("/api/events", params={"source": tag})
        assert blind.json()["items"] == []
        seen = await client.get(
            "/api/events", params={"source": tag}, headers={POSITION_HEADER: position}
        )
        assert [e["source"] for e in seen.json()["items"]] == [tag]
        # A read answer carries no position; the lag is on /metrics.
        assert POSITION_HEADER not in seen.headers
        metrics = (await client.get("/metrics")).text
        assert "sysevents_replica_lag_seconds{" in metrics


async def test_the_http_client_and_the_emitter_pass_positions_on(
    servers: tuple[PrivatePostgres, PrivatePostgres], paused: PrivatePostgres
) -> None:
    primary, replica = servers
    settings = Settings(database_url=primary.url, read_database_url=[replica.url])
    with LiveApp(create_app(settings, options=HttpOptions())) as live:
        async with sysevents.connect(live.url) as remote:
            new = _unique("client")
            await remote.add(new)
            page = await remote.list(EventQuery(source=new.source))
            assert [e.source for e in page.items] == [new.source]

        tag = _tag()
        async with sysevents.connect(live.url) as sink, sysevents.EventLogger(sink) as emitter:
            emitter.emit("replica_test", "emitted", source=tag)
            await emitter.flush()
        async with sysevents.connect(live.url) as reader:
            page = await reader.list(EventQuery(source=tag))
            assert [e.source for e in page.items] == [tag]
        # The same read by a client that never talked to this server sees the paused replica.
        async with httpx.AsyncClient(base_url=live.url) as bare:
            blind = await bare.get("/api/events", params={"source": tag})
            assert blind.json()["items"] == []


async def test_the_cache_never_hands_a_writer_what_a_replica_had_before_its_write(
    servers: tuple[PrivatePostgres, PrivatePostgres],
    paused: PrivatePostgres,
    redis_server_url: str,
    cache_prefix: str,
) -> None:
    primary, replica = servers
    repo = sysevents.connect(
        primary.url, read_url=replica.url, redis_url=redis_server_url, cache_prefix=cache_prefix
    )
    async with repo:
        mine = _unique("cached")
        source = EventFilter(source=mine.source)

        async def others_read() -> int:
            return (await repo.stats(source)).total

        await repo.add(mine)
        # Work without a position reads the paused replica, and fills the cache with it.
        assert await _in_new_work(others_read) == 0
        assert await _in_new_work(others_read) == 0
        # The writer's own read goes past that entry.
        assert (await repo.stats(source)).total == 1
