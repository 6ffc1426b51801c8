"""The Redis memory of the cache is bounded, and nothing is written for data nobody read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from sysevents import EventFilter, EventPatch, MemoryEventRepository, NewEvent
from sysevents.cache import CachedEventRepository, cache_client

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


async def keys_of(redis: Redis, namespace: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"{namespace}:*", count=1000)]


async def memory_of(redis: Redis, keys: list[bytes]) -> int:
    used = 0
    for key in keys:
        used += await redis.memory_usage(key) or 0
    return used


async def test_writes_create_no_key_for_data_nobody_read(
    redis: Redis, redis_server_url: str, cache_prefix: str
) -> None:
    async with CachedEventRepository(
        MemoryEventRepository(), cache_client(redis_server_url), cache_prefix=cache_prefix
    ) as cache:
        events = await cache.add_many(
            [NewEvent(event_type="t", message=str(i)) for i in range(500)]
        )
        for event in events[:100]:
            await cache.add(NewEvent(event_type="t", message="more"))
            await cache.update(event.id, EventPatch(message="changed"))
        for event in events[100:200]:
            await cache.delete(event.id)
        await cache.settled()
        assert await keys_of(redis, cache.namespace) == []
        # What is read is cached, and then invalidated by writes.
        assert await cache.get(events[300].id) == events[300]
        await cache.stats()
        assert len(await keys_of(redis, cache.namespace)) > 0
        await cache.update(events[300].id, EventPatch(message="seen"))
        got = await cache.get(events[300].id)
        assert got is not None
        assert got.message == "seen"


async def test_ten_thousand_distinct_stats_filters_stay_under_the_bound(
    redis: Redis, redis_server_url: str, cache_prefix: str
) -> None:
    inner = MemoryEventRepository()
    # Many types make each stats answer large: about 30 KB of JSON.
    await inner.add_many([NewEvent(event_type=f"type-{i:04}", message="m") for i in range(1000)])
    bound = 2 * 1024 * 1024
    now = datetime.now(UTC)
    # Entries that live all through the test: the bound must hold with every one alive.
    async with CachedEventRepository(
        inner,
        cache_client(redis_server_url),
        cache_prefix=cache_prefix,
        cache_max_bytes=bound,
        cache_stats_ttl=600,
    ) as cache:
        for n in range(10_000):
            since = now - timedelta(days=1, microseconds=n)  # a new key each time
            stats = await cache.stats(EventFilter(since=since))
            assert stats.total == 1000
        keys = await keys_of(redis, cache.namespace)
        used = await memory_of(redis, keys)
        assert used <= bound, f"{used} bytes in {len(keys)} keys"
        assert len(keys) > 10  # it did cache, up to the bound
        # Past the bound the cache reads through: the answers stay right.
        assert (await cache.stats(EventFilter(source="nowhere"))).total == 0


async def test_equal_filters_share_one_entry(
    redis: Redis, redis_server_url: str, cache_prefix: str
) -> None:
    async with CachedEventRepository(
        MemoryEventRepository(), cache_client(redis_server_url), cache_prefix=cache_prefix
    ) as cache:
        far = datetime.now(UTC) + timedelta(days=400)
        for query in (
            EventFilter(),
            EventFilter(severity=["debug", "info", "warning", "error", "critical"]),
            EventFilter(min_severity="debug"),
            EventFilter(until=far),
        ):
            await cache.stats(query)
        entries = [k for k in await keys_of(redis, cache.namespace) if b":stats:" in k]
        assert len([k for k in entries if not k.endswith(b":gen")]) == 1
        await cache.stats(EventFilter(event_type=["b", "a"]))
        await cache.stats(EventFilter(event_type=["a", "b", "a"]))
        entries = [k for k in await keys_of(redis, cache.namespace) if b":stats:" in k]
        assert len([k for k in entries if not k.endswith(b":gen")]) == 2
