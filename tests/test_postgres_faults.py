"""The PostgreSQL backend when its server goes away and comes back (a private server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from sysevents import EventPatch, EventQuery, NewEvent, StoreUnavailableError
from sysevents.migrate import upgrade
from sysevents.stores.postgres import PostgresEventRepository
from tests.conftest import skip_or_fail
from tests.private_postgres import PrivatePostgres

pytestmark = [pytest.mark.fault, pytest.mark.postgres]

TIMEOUT = 1.0
# A hang check, not a benchmark: generous slack over the configured timeout.
UPPER_BOUND = TIMEOUT + 2.0
RECOVERY = 45.0


@pytest.fixture(scope="module")
def server() -> Iterator[PrivatePostgres]:
    reason = PrivatePostgres.unavailable_reason()
    if reason:
        skip_or_fail(reason)
    with PrivatePostgres() as pg:
        upgrade(pg.url)
        yield pg


@pytest.fixture
def pg(server: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The private server, running at the start and at the end of the test."""
    server.start()
    yield server
    server.start()


def _event(n: int = 0) -> NewEvent:
    return NewEvent(event_type="fault", severity="error", message=f"event {n}", source="tests")


def _calls(repo: PostgresEventRepository) -> dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "add": lambda: repo.add(_event()),
        "add_many": lambda: repo.add_many([_event(1), _event(2)]),
        "get": lambda: repo.get(1),
        "list": lambda: repo.list(EventQuery(limit=5)),
        "list_exact": lambda: repo.list(EventQuery(count="exact")),
        "update": lambda: repo.update(1, EventPatch(message="changed")),
        "delete": lambda: repo.delete(10**9),
        "stats": lambda: repo.stats(),
        "ping": lambda: repo.ping(),
    }


async def _assert_all_unavailable(repo: PostgresEventRepository) -> None:
    for name, call in _calls(repo).items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await call()
        elapsed = time.monotonic() - started
        assert elapsed < UPPER_BOUND, f"{name} took {elapsed:.1f} s to fail"


async def _wait_until_up(repo: PostgresEventRepository) -> float:
    """Seconds until the same repository answers again."""
    started = time.monotonic()
    while True:
        try:
            await repo.ping()
        except StoreUnavailableError:
            if time.monotonic() - started > RECOVERY:
                raise
            await asyncio.sleep(0.2)
        else:
            return time.monotonic() - started


async def _assert_all_work(repo: PostgresEventRepository) -> None:
    added = await repo.add(_event(99))
    assert await repo.get(added.id) == added
    many = await repo.add_many([_event(100), _event(101)])
    assert [e.message for e in many] == ["event 100", "event 101"]
    updated = await repo.update(added.id, EventPatch(message="after"))
    assert updated.message == "after"
    page = await repo.list(EventQuery(limit=2))
    assert page.items
    assert (await repo.stats()).total >= 3
    await repo.delete(added.id)
    assert await repo.get(added.id) is None


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_server_stops_and_returns(pg: PrivatePostgres, mode: Any) -> None:
    repo = PostgresEventRepository(pg.url, timeout=TIMEOUT)
    async with repo:
        stored = await repo.add_many([_event(n) for n in range(5)])
        await _assert_all_work(repo)

        pg.stop(mode)
        await _assert_all_unavailable(repo)

        pg.start()
        await _wait_until_up(repo)
        # Every pooled connection died with the server: none may surface as an error.
        for _ in range(20):
            await repo.ping()
        await _assert_all_work(repo)
        assert await repo.get(stored[0].id) == stored[0]


async def test_open_while_down_then_start(pg: PrivatePostgres) -> None:
    pg.stop()
    repo = PostgresEventRepository(pg.url, timeout=TIMEOUT)
    started = time.monotonic()
    await repo.open()
    assert time.monotonic() - started < UPPER_BOUND
    try:
        await _assert_all_unavailable(repo)
        pg.start()
        await _wait_until_up(repo)
        await _assert_all_work(repo)
    finally:
        await repo.close()
        await repo.close()


async def test_concurrent_calls_during_outage_all_fail_fast(pg: PrivatePostgres) -> None:
    repo = PostgresEventRepository(pg.url, timeout=TIMEOUT, pool_max_size=3)
    async with repo:
        await repo.ping()
        pg.stop("immediate")
        started = time.monotonic()
        results = await asyncio.gather(*(repo.get(1) for _ in range(30)), return_exceptions=True)
        elapsed = time.monotonic() - started
        assert all(isinstance(r, StoreUnavailableError) for r in results), results
        assert elapsed < UPPER_BOUND
        pg.start()
        await _wait_until_up(repo)
        assert all(r is None for r in await asyncio.gather(*(repo.get(10**12) for _ in range(30))))
