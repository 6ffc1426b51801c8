"""Every wrapper of a store keeps every operation of the store it wraps.

The cache, the store ``connect()`` lends out under the pytest plugin, and the
service's guarded store are :class:`~sysevents.DelegatingStore` subclasses:
each operation of the contract, optional ones included, must reach the inner
store (the cache serves some reads itself, but its first read of anything
goes through).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

import sysevents
from sysevents import (
    EventFilter,
    EventQuery,
    EventRepository,
    EventStore,
    MemoryEventRepository,
    NewEvent,
    RetentionPolicy,
)
from sysevents.cache import CachedEventRepository, cache_client
from sysevents.keys import Scope
from sysevents.store import Backlog, CacheStats, PoolStats, ReplicaState
from sysevents_http.guarded import GuardedStore

CONTRACT = sorted(
    name
    for name in vars(EventRepository)
    if not name.startswith("_") or name in ("__aenter__", "__aexit__")
)


class Recording(MemoryEventRepository):
    """A memory store that counts the operations it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def pool_stats(self) -> PoolStats | None:
        self.calls["pool_stats"] += 1
        return PoolStats(size=3, idle=1)

    def cache_stats(self) -> CacheStats | None:
        self.calls["cache_stats"] += 1
        return None

    async def backlog(self) -> Backlog | None:
        self.calls["backlog"] += 1
        return None

    def replicas(self) -> list[ReplicaState]:
        self.calls["replicas"] += 1
        return [ReplicaState("postgresql://replica/db", 0.5, True)]

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if (
            name in CONTRACT
            and name not in ("pool_stats", "cache_stats", "backlog", "replicas")
            and callable(value)
        ) or name in ("keys", "seals"):
            super().__getattribute__("calls")[name] += 1
        return value


async def drive(store: EventRepository) -> set[str]:
    """Every operation of the contract, once; the names of those driven."""
    driven = set()

    async def each(name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        driven.add(name)
        return await call()

    event = await each("add", lambda: store.add(NewEvent(event_type="t", message="m")))
    await each("add_many", lambda: store.add_many([NewEvent(event_type="t", message="n")]))
    await each("update", lambda: store.update(event.id, sysevents.EventPatch(message="x")))
    assert (await each("get", lambda: store.get(event.id))).message == "x"
    assert await each("get_json", lambda: store.get_json(event.id))
    assert (await each("list", lambda: store.list(EventQuery()))).total == 2
    assert await each("list_json", lambda: store.list_json(EventQuery(), max_bytes=1 << 20))
    assert (await each("stats", lambda: store.stats(EventFilter()))).total == 2
    assert await each("stats_json", lambda: store.stats_json(EventFilter()))
    histogram = await each("histogram", lambda: store.histogram(EventFilter(), "1h"))
    assert sum(b.total for b in histogram.buckets) == 2
    await each("ping", store.ping)
    await each("maintain", lambda: store.maintain(datetime.now(UTC)))
    report = await each(
        "apply_retention",
        lambda: store.apply_retention(RetentionPolicy.parse("*=1d"), dry_run=True),
    )
    assert report.removed == 0
    await each("delete", lambda: store.delete(event.id))

    async def first_of(items: AsyncIterator[Any]) -> Any:
        try:
            return await anext(items)
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    start = await each("follow", lambda: first_of(store.follow(idle=0.01)))
    await store.add(NewEvent(event_type="t", message="tailed"))
    tailed = await each("tail", lambda: first_of(store.tail(after=start.position)))
    assert tailed.message == "tailed"
    keys = store.keys
    driven.add("keys")
    assert keys is not None
    await keys.create_key("someone", frozenset({Scope.READ}))
    driven.add("pool_stats")
    assert store.pool_stats() == PoolStats(size=3, idle=1)
    driven.add("cache_stats")
    store.cache_stats()
    driven.add("replicas")
    assert store.replicas() == [ReplicaState("postgresql://replica/db", 0.5, True)]
    driven.add("backlog")
    assert await store.backlog() is None  # the memory store has none
    assert await each("leads", store.leads) is True
    known = await each("known_series", lambda: store.known_series([("t", None), ("new", None)]))
    assert known == {("t", None)}
    sealed = await each("seal", store.seal)
    assert sum(d.count for d in sealed) >= 2  # the events not deleted
    seals = store.seals
    driven.add("seals")
    assert seals is not None
    assert await seals.digests() == sealed
    driven |= {"open", "close", "__aenter__", "__aexit__"}  # the fixture's async with
    return driven


def test_the_contract_is_what_the_drive_covers() -> None:
    """A new operation of the contract fails here until every wrapper test drives it."""
    assert set(CONTRACT) == {
        *("add", "add_many", "update", "delete", "apply_retention", "get", "get_json"),
        *("list", "list_json", "stats", "stats_json", "histogram", "follow", "tail", "ping"),
        *("maintain", "keys", "cache_stats", "pool_stats", "replicas", "backlog", "leads"),
        *("seal", "seals", "known_series"),
        *("open", "close", "__aenter__", "__aexit__"),
    }


async def test_the_store_lent_by_the_pytest_plugin_keeps_every_operation(
    sysevents_repo: MemoryEventRepository,
) -> None:
    inner = Recording()
    with sysevents._connect.default_repository(inner):
        async with sysevents.connect() as lent:
            assert lent is not inner
            assert isinstance(lent, EventStore)
            assert set(await drive(lent)) == set(CONTRACT)
    reached = {name for name, n in inner.calls.items() if n}
    assert reached >= set(CONTRACT) - {"open", "close", "__aenter__", "__aexit__"}
    assert inner.calls["close"] == 0  # the owner closes it


async def test_the_plugin_fixture_store_has_every_operation(
    sysevents_repo: MemoryEventRepository,
) -> None:
    async with sysevents.connect() as lent:
        await lent.add(NewEvent(event_type="t", message="m"))
        histogram = await lent.histogram(EventFilter(), "1h")
        assert sum(b.total for b in histogram.buckets) == 1
        assert lent.keys is sysevents_repo.keys


@pytest.mark.redis
async def test_the_cache_keeps_every_operation(redis_server_url: str, cache_prefix: str) -> None:
    inner = Recording()
    cache = CachedEventRepository(
        inner, cache_client(redis_server_url), cache_prefix=cache_prefix, call_budget=5.0
    )
    async with cache:
        assert set(await drive(cache)) == set(CONTRACT)
        own = cache.cache_stats()
        assert own is not None
        assert own.misses >= 1
    reached = {name for name, n in inner.calls.items() if n}
    # The cache answers its own counters, and keeps JSON it read by ``get`` and
    # ``stats``; everything else reaches the store.
    own_work = {"cache_stats", "get_json", "stats_json", "__aenter__", "__aexit__"}
    assert reached >= set(CONTRACT) - own_work
    assert inner.calls["get"]
    assert inner.calls["stats"]


async def test_the_service_guard_keeps_every_operation() -> None:
    inner = Recording()
    guarded = GuardedStore(inner, timeout=5.0, owned=True)
    async with guarded:
        assert set(await drive(guarded)) == set(CONTRACT)
    reached = {name for name, n in inner.calls.items() if n}
    assert reached >= set(CONTRACT) - {"__aenter__", "__aexit__"}
