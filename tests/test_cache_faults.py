"""The cache when Redis dies, hangs or comes back, against a private redis-server.

The bound checked here is the contract's "at most a quarter second added per
call", with slack for a busy machine: it catches a hang (redis-py's defaults
take seconds), it is not a benchmark.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sysevents import EventPatch, MemoryEventRepository, NewEvent, Settings
from sysevents.cache import CachedEventRepository
from tests.private_redis import PrivateRedis, private_redis

pytestmark = [pytest.mark.fault, pytest.mark.redis]

BUDGET = 0.25
# A bound on a hang, not a benchmark: redis-py's defaults take ~4 s to fail a call,
# the cache spends at most 0.2 s; the slack absorbs a loaded 2-core CI machine.
SLACK = 0.5


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    with private_redis() as running:
        yield running


def make(inner: MemoryEventRepository, server: PrivateRedis) -> CachedEventRepository:
    settings = Settings(redis_url=server.url, cache_prefix="faults")
    return CachedEventRepository.from_settings(inner, settings)


@pytest.fixture
def inner() -> MemoryEventRepository:
    return MemoryEventRepository()


@pytest.fixture
async def cache(
    inner: MemoryEventRepository, server: PrivateRedis
) -> AsyncIterator[CachedEventRepository]:
    async with make(inner, server) as repo:
        yield repo


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "sysevents.cache" and r.levelno >= logging.WARNING
    ]


async def timed(call: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = await call
    return result, time.perf_counter() - start


async def exercise(
    cache: CachedEventRepository, inner: MemoryEventRepository, ids: list[int], rounds: int
) -> float:
    """Reads and writes through the cache; every answer must match the store."""
    slowest = 0.0
    for n in range(rounds):
        for event_id in ids:
            event, took = await timed(cache.get(event_id))
            slowest = max(slowest, took)
            assert event == await inner.get(event_id)
        stats, took = await timed(cache.stats())
        slowest = max(slowest, took)
        assert stats == await inner.stats()
        _, took = await timed(cache.update(ids[n % len(ids)], EventPatch(message=f"round {n}")))
        slowest = max(slowest, took)
        _, took = await timed(cache.add(NewEvent(event_type="fault", message="added")))
        slowest = max(slowest, took)
    return slowest


async def wait_closed(*caches: CachedEventRepository, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while any(c.cache_stats().breaker == "open" for c in caches):
        assert time.monotonic() < deadline, "the cache did not recover"
        await asyncio.sleep(0.05)


async def assert_hits(
    cache: CachedEventRepository, inner: MemoryEventRepository, ids: list[int]
) -> None:
    for event_id in ids:
        assert await cache.get(event_id) == await inner.get(event_id)
    before = cache.cache_stats().hits
    for event_id in ids:
        assert await cache.get(event_id) == await inner.get(event_id)
    assert cache.cache_stats().hits == before + len(ids)


async def test_killed_redis_costs_little_and_recovers(
    cache: CachedEventRepository,
    inner: MemoryEventRepository,
    server: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sysevents.cache")
    ids = [e.id for e in await cache.add_many([NewEvent(event_type="x", message="0")] * 5)]
    await assert_hits(cache, inner, ids)
    server.kill()
    slowest = await exercise(cache, inner, ids, rounds=10)
    assert slowest < BUDGET + SLACK, f"a call took {slowest:.3f} s with Redis down"
    assert cache.cache_stats().breaker == "open"
    assert cache.cache_stats().errors >= 1
    assert len(warnings(caplog)) == 1, "one warning per outage, not per call"
    server.start()  # empty, on the same port
    await wait_closed(cache)
    await assert_hits(cache, inner, ids)
    assert await exercise(cache, inner, ids, rounds=2) < BUDGET + SLACK
    assert len(warnings(caplog)) == 1
    # a second outage is a second warning
    server.kill()
    await exercise(cache, inner, ids, rounds=1)
    assert len(warnings(caplog)) == 2


async def test_hung_redis_costs_little_and_keeps_nothing_stale(
    cache: CachedEventRepository,
    inner: MemoryEventRepository,
    server: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Paused, Redis accepts connections, never answers, and comes back with its data."""
    ids = [e.id for e in await cache.add_many([NewEvent(event_type="x", message="0")] * 5)]
    await assert_hits(cache, inner, ids)
    await cache.stats()
    server.pause()
    slowest = await exercise(cache, inner, ids, rounds=6)  # updates every cached event
    assert slowest < BUDGET + SLACK, f"a call took {slowest:.3f} s with Redis hung"
    assert len(warnings(caplog)) == 1
    server.resume()  # every entry cached before the pause is still there
    await wait_closed(cache)
    for event_id in ids:
        assert await cache.get(event_id) == await inner.get(event_id)
    assert await cache.stats() == await inner.stats()
    await assert_hits(cache, inner, ids)


async def test_writer_cut_off_during_outage_does_not_leave_others_stale(
    inner: MemoryEventRepository, server: PrivateRedis
) -> None:
    """A write that could not invalidate is made good by the writer, even if it stays idle.

    The reader never noticed the outage, so only the writer can orphan the
    entries that Redis kept.
    """
    async with make(inner, server) as writer, make(inner, server) as reader:
        event = await writer.add(NewEvent(event_type="x", message="before"))
        assert await reader.get(event.id) == event
        assert (await reader.stats()).total == 1
        server.pause()
        # Trip the breaker first, so that the update below sends nothing at all
        # (a command queued in a paused server's socket would still run later).
        assert await writer.get(event.id) == event
        assert writer.cache_stats().breaker == "open"
        await writer.update(event.id, EventPatch(message="during"))
        await writer.add(NewEvent(event_type="x", message="another"))
        assert writer.cache_stats().breaker == "open"
        server.resume()
        await wait_closed(writer)  # no call needed: it repairs by itself
        got = await reader.get(event.id)
        assert got is not None
        assert got.message == "during"
        assert (await reader.stats()).total == 2


async def test_redis_down_from_the_start(inner: MemoryEventRepository) -> None:
    with private_redis() as server:
        server.kill()
        async with make(inner, server) as cache:
            event, took = await timed(cache.add(NewEvent(event_type="x", message="m")))
            assert took < BUDGET + SLACK
            for _ in range(5):
                got, took = await timed(cache.get(event.id))
                assert got == event
                assert took < BUDGET + SLACK
            assert (await cache.stats()).total == 1
            assert cache.cache_stats().breaker == "open"
