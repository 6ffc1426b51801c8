"""The Redis cache: races, stampedes, TTLs, namespaces, cancellation, counters.

Runs against the shared Redis under this test's own key prefix. The inner
store is an in-memory repository that can hold a call right after it has read,
which forces the slow-reader interleavings deterministically.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

import sysevents
from sysevents import (
    Event,
    EventFilter,
    EventPatch,
    EventStats,
    MemoryEventRepository,
    NewEvent,
    StoreUnavailableError,
)
from sysevents.cache import CachedEventRepository, cache_client
from tests.waiting import eventually

pytestmark = pytest.mark.redis


@dataclass
class Hold:
    """Pauses one call of the inner store after it has read, until released."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


class GatedRepository(MemoryEventRepository):
    """An in-memory store that counts calls and can pause a read after reading."""

    def __init__(self, *, jitter: bool = False) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.holds: dict[str, Hold] = {}
        self.fail_after_write = False
        self.jitter = jitter

    def hold(self, method: str) -> Hold:
        """Hold the next call of ``method`` after its read."""
        hold = self.holds[method] = Hold()
        return hold

    async def _after_read(self, method: str) -> None:
        hold = self.holds.pop(method, None)
        if hold is not None:
            hold.reached.set()
            await hold.release.wait()
        elif self.jitter:
            await asyncio.sleep(random.choice([0, 0, 0, 0.0005, 0.002]))

    async def get(self, event_id: int) -> Event | None:
        self.calls["get"] += 1
        event = await super().get(event_id)
        await self._after_read("get")
        return event

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        self.calls["stats"] += 1
        stats = await super().stats(query)
        await self._after_read("stats")
        return stats

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        event = await super().update(event_id, patch, actor=actor)
        if self.fail_after_write:
            raise StoreUnavailableError("connection lost after commit")
        return event


def new(message: str = "m", **fields: Any) -> NewEvent:
    return NewEvent(event_type=fields.pop("event_type", "deploy"), message=message, **fields)


def patch(message: str) -> EventPatch:
    return EventPatch(message=message)


@pytest.fixture
async def make_cache(
    redis_server_url: str, cache_prefix: str
) -> AsyncIterator[Callable[..., CachedEventRepository]]:
    """Builds caches over a given inner store, each with its own Redis client."""
    made: list[CachedEventRepository] = []

    def make(inner: sysevents.EventRepository, **options: Any) -> CachedEventRepository:
        options.setdefault("cache_prefix", cache_prefix)
        options.setdefault("cache_timeout", 0.2)  # as the call budget: only it bounds a call
        cache = CachedEventRepository(inner, cache_client(redis_server_url), **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()


@pytest.fixture
async def inner() -> GatedRepository:
    return GatedRepository()


@pytest.fixture
async def cache(
    inner: GatedRepository, make_cache: Callable[..., CachedEventRepository]
) -> AsyncIterator[CachedEventRepository]:
    async with make_cache(inner) as repo:
        yield repo


@pytest.fixture
async def other(
    inner: GatedRepository, make_cache: Callable[..., CachedEventRepository]
) -> CachedEventRepository:
    """A second cache over the same store and keys: another process, in effect."""
    return make_cache(inner)


# -- plain behaviour ------------------------------------------------------------


async def test_second_get_is_a_hit(cache: CachedEventRepository, inner: GatedRepository) -> None:
    event = await cache.add(new("hello"))
    assert await cache.get(event.id) == event
    assert await cache.get(event.id) == event
    assert inner.calls["get"] == 1
    counters = cache.cache_stats()
    assert (counters.hits, counters.misses, counters.errors) == (1, 1, 0)
    assert counters.breaker == "closed"


async def test_missing_event_is_cached_until_added(
    cache: CachedEventRepository, inner: GatedRepository
) -> None:
    assert await cache.get(1) is None
    assert await cache.get(1) is None
    assert inner.calls["get"] == 1  # the second answer came from the cache
    event = await cache.add(new("now it exists"))
    assert event.id == 1
    assert await cache.get(1) == event


async def test_json_reads_share_entries_with_model_reads_and_are_invalidated(
    cache: CachedEventRepository, inner: GatedRepository, other: CachedEventRepository
) -> None:
    assert await cache.get_json(1) is None
    assert await cache.get(1) is None  # the same entry: no second query
    assert inner.calls["get"] == 1
    event = await cache.add(new("v1", details={"n": 1.5}))
    assert await cache.get_json(event.id) == event.model_dump_json().encode()
    assert await other.get(event.id) == event  # a hit on the entry the JSON read filled
    assert inner.calls["get"] == 2
    await cache.update(event.id, patch("v2"))
    changed = await other.get_json(event.id)
    assert changed is not None
    assert json.loads(changed)["message"] == "v2"
    stats = await cache.stats_json()
    assert EventStats.model_validate_json(stats) == await other.stats()
    assert inner.calls["stats"] == 1
    await other.delete(event.id)
    assert await cache.get_json(event.id) is None
    assert EventStats.model_validate_json(await cache.stats_json()).total == 0


async def test_json_and_model_misses_do_not_share_a_load(
    cache: CachedEventRepository, inner: GatedRepository
) -> None:
    event = await cache.add(new())
    hold = inner.hold("get")
    as_model = asyncio.create_task(cache.get(event.id))
    await hold.reached.wait()
    as_json = asyncio.create_task(cache.get_json(event.id))
    await eventually(lambda: inner.calls["get"] == 2, "the JSON read loaded on its own")
    hold.release.set()
    assert await as_model == event
    assert await as_json == event.model_dump_json().encode()
    assert cache.cache_stats().coalesced == 0


async def test_add_many_invalidates_every_new_id(cache: CachedEventRepository) -> None:
    for event_id in (1, 2, 3):
        assert await cache.get(event_id) is None
    events = await cache.add_many([new("a"), new("b"), new("c")])
    assert [await cache.get(e.id) for e in events] == events


async def test_update_and_delete_are_seen_by_every_cache(
    cache: CachedEventRepository, other: CachedEventRepository
) -> None:
    event = await cache.add(new("v1"))
    assert await other.get(event.id) == event
    stats = await other.stats()
    assert stats.total == 1
    await cache.update(event.id, patch("v2"))
    got = await other.get(event.id)
    assert got is not None
    assert got.message == "v2"
    await cache.delete(event.id)
    assert await other.get(event.id) is None
    assert (await other.stats()).total == 0


async def test_write_whose_outcome_is_unknown_still_invalidates(
    cache: CachedEventRepository, inner: GatedRepository
) -> None:
    event = await cache.add(new("v1"))
    assert await cache.get(event.id) == event
    inner.fail_after_write = True
    with pytest.raises(StoreUnavailableError):
        await cache.update(event.id, patch("v2"))
    # The invalidation runs in the background.
    await asyncio.wait_for(cache.settled(), 5)
    got = await cache.get(event.id)
    assert got is not None
    assert got.message == "v2"


async def test_list_and_ping_pass_through(
    cache: CachedEventRepository, inner: GatedRepository
) -> None:
    event = await cache.add(new())
    assert (await cache.list()).items == [event]
    await cache.ping()


async def test_close_is_safe_twice(inner: GatedRepository, make_cache: Any) -> None:
    cache = make_cache(inner)
    await cache.open()
    await cache.close()
    await cache.close()
    with pytest.raises(StoreUnavailableError):
        await inner.get(1)


# -- slow readers ------------------------------------------------------------------


async def test_slow_get_cannot_cache_a_value_older_than_an_update(
    cache: CachedEventRepository, other: CachedEventRepository, inner: GatedRepository
) -> None:
    event = await cache.add(new("old"))
    hold = inner.hold("get")
    reader = asyncio.create_task(cache.get(event.id))
    await hold.reached.wait()  # the reader has read "old" and not yet filled
    await other.update(event.id, patch("new"))
    hold.release.set()
    got = await reader
    assert got is not None
    assert got.message == "old"  # it started before the write: fine
    for repo in (cache, other):
        after = await repo.get(event.id)
        assert after is not None
        assert after.message == "new"


async def test_slow_get_cannot_resurrect_a_deleted_event(
    cache: CachedEventRepository, other: CachedEventRepository, inner: GatedRepository
) -> None:
    event = await cache.add(new("doomed"))
    hold = inner.hold("get")
    reader = asyncio.create_task(cache.get(event.id))
    await hold.reached.wait()
    await other.delete(event.id)
    hold.release.set()
    assert await reader == event
    assert await cache.get(event.id) is None
    assert await other.get(event.id) is None


async def test_slow_miss_cannot_hide_an_added_event(
    cache: CachedEventRepository, other: CachedEventRepository, inner: GatedRepository
) -> None:
    hold = inner.hold("get")
    reader = asyncio.create_task(cache.get(1))
    await hold.reached.wait()  # the reader saw "no event 1"
    event = await other.add(new("born"))
    hold.release.set()
    assert await reader is None
    assert await cache.get(1) == event


async def test_slow_stats_cannot_cache_counts_older_than_a_write(
    cache: CachedEventRepository, other: CachedEventRepository, inner: GatedRepository
) -> None:
    await cache.add(new(severity="info"))
    hold = inner.hold("stats")
    reader = asyncio.create_task(cache.stats())
    await hold.reached.wait()
    await other.add(new(severity="error"))
    hold.release.set()
    assert (await reader).total == 1
    for repo in (cache, other):
        stats = await repo.stats()
        assert stats.total == 2
        assert stats.by_severity[sysevents.Severity.ERROR] == 1


async def test_every_read_after_a_write_returned_sees_it(
    redis_server_url: str, make_cache: Callable[..., CachedEventRepository]
) -> None:
    """Readers hammer ``get`` while a writer updates then deletes each event."""
    inner = GatedRepository(jitter=True)
    writer_cache = make_cache(inner)
    reader_caches = [make_cache(inner), make_cache(inner)]
    events = await writer_cache.add_many([new("0") for _ in range(8)])
    ids = [e.id for e in events]
    deleted = 10**6
    returned = dict.fromkeys(ids, 0)  # newest version whose write has returned
    violations: list[str] = []
    done = asyncio.Event()

    async def writer() -> None:
        for version in range(1, 16):
            for event_id in ids:
                await writer_cache.update(event_id, patch(str(version)))
                returned[event_id] = version
                await asyncio.sleep(0)
        for event_id in ids:
            await writer_cache.delete(event_id)
            returned[event_id] = deleted
        done.set()

    async def reader(repo: CachedEventRepository) -> int:
        reads = 0
        while not done.is_set():
            event_id = random.choice(ids)
            floor = returned[event_id]
            event = await repo.get(event_id)
            seen = deleted if event is None else int(event.message)
            if seen < floor:
                violations.append(f"event {event_id}: read {seen} after {floor} returned")
            reads += 1
        return reads

    readers = [asyncio.create_task(reader(repo)) for repo in reader_caches for _ in range(10)]
    await writer()
    reads = sum(await asyncio.gather(*readers))
    assert not violations, violations[:5]
    assert reads > 100
    hits = sum(repo.cache_stats().hits for repo in reader_caches)
    assert hits > 0, "the cache was never used: the test proves nothing"
    for repo in (writer_cache, *reader_caches):
        assert [await repo.get(i) for i in ids] == [None] * len(ids)


# -- stampede ---------------------------------------------------------------------


async def test_concurrent_stats_misses_cost_one_query(
    inner: GatedRepository, redis_server_url: str, cache_prefix: str
) -> None:
    # Room for every caller at once and a budget no loaded machine exhausts:
    # under pressure the cache rightly skips Redis, which is not what this tests.
    cache = CachedEventRepository(
        inner,
        cache_client(redis_server_url, timeout=5.0, max_connections=128),
        cache_prefix=cache_prefix,
        call_budget=10.0,
        cache_timeout=5.0,
        max_concurrency=100,
    )
    async with cache:
        await _one_query_for_many_misses(cache, inner)


async def _one_query_for_many_misses(cache: CachedEventRepository, inner: GatedRepository) -> None:
    await cache.add_many([new(severity="error"), new(severity="info")])
    query = EventFilter(severity=["error"])
    hold = inner.hold("stats")
    tasks = [asyncio.create_task(cache.stats(query)) for _ in range(100)]
    await hold.reached.wait()
    try:
        await eventually(lambda: cache.cache_stats().coalesced == 99, "99 callers joined")
    except TimeoutError:
        pytest.fail(f"only {cache.cache_stats().coalesced} of 99 misses waited for the first")
    finally:
        hold.release.set()
    results = await asyncio.gather(*tasks)
    assert inner.calls["stats"] == 1
    assert {r.total for r in results} == {1}
    assert (await cache.stats(query)).total == 1
    assert inner.calls["stats"] == 1  # now a hit
    assert (await cache.stats(EventFilter(severity=["info"]))).total == 1
    assert inner.calls["stats"] == 2  # another filter is another entry


async def test_a_cancelled_first_caller_does_not_fail_the_others(
    cache: CachedEventRepository, inner: GatedRepository
) -> None:
    await cache.add(new())
    hold = inner.hold("stats")
    first = asyncio.create_task(cache.stats())
    await hold.reached.wait()
    second = asyncio.create_task(cache.stats())
    await eventually(lambda: cache.cache_stats().coalesced == 1, "second caller joined")
    first.cancel()
    hold.release.set()
    assert (await second).total == 1
    with pytest.raises(asyncio.CancelledError):
        await first


# -- keys and TTLs ----------------------------------------------------------------


async def _keys(client: Redis, pattern: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=pattern, count=1000)]


async def test_ttls_on_the_real_keys(
    redis_server_url: str, cache_prefix: str, inner: GatedRepository, make_cache: Any
) -> None:
    cache = make_cache(inner, cache_event_ttl=120, cache_stats_ttl=7)
    event = await cache.add(new())
    await cache.get(event.id)
    await cache.stats()
    client = cache.redis
    ns = cache.namespace
    event_ttl = await client.pttl(f"{ns}:ev:{event.id}")
    assert 110_000 < event_ttl <= 120_000
    # the generation outlives every entry that refers to it
    assert await client.pttl(f"{ns}:ev:{event.id}:gen") > event_ttl
    stats_keys = [k for k in await _keys(client, f"{ns}:stats:*") if not k.endswith(b":gen")]
    assert len(stats_keys) == 1
    assert 5_000 < await client.pttl(stats_keys[0]) <= 7_000
    assert await client.pttl(f"{ns}:epoch") == -1  # never expires


async def test_connect_honours_the_cache_settings(redis_server_url: str, cache_prefix: str) -> None:
    async with sysevents.connect(
        "memory://",
        redis_url=redis_server_url,
        cache_prefix=cache_prefix,
        cache_event_ttl=60,
        cache_stats_ttl=3,
        cache_timeout=0.05,
    ) as repo:
        assert isinstance(repo, CachedEventRepository)
        assert repo.namespace.startswith("{" + cache_prefix + ":")
        event = await repo.add(new())
        assert await repo.get(event.id) == event
        await repo.stats()
        assert repo.command_timeout == 0.05
        kwargs = repo.redis.connection_pool.connection_kwargs
        assert kwargs["socket_connect_timeout"] == 0.05
        retry = kwargs["retry"]
        # get_retries() is redis-py 6+; older releases keep the number in _retries.
        assert (retry.get_retries() if hasattr(retry, "get_retries") else retry._retries) == 1
        ttl = await repo.redis.pttl(f"{repo.namespace}:ev:{event.id}")
        assert 50_000 < ttl <= 60_000
        keys = await _keys(repo.redis, f"{repo.namespace}:stats:*")
        ttls = [await repo.redis.pttl(k) for k in keys if not k.endswith(b":gen")]
        assert len(ttls) == 1
        assert 0 < ttls[0] <= 3_000


@pytest.mark.parametrize(
    "options",
    [({"cache_prefix": "a"}, {"cache_prefix": "b"}), ({"version": "1"}, {"version": "2"})],
    ids=["prefix", "version"],
)
async def test_namespaces_never_share_entries(
    cache_prefix: str, make_cache: Any, options: tuple[dict[str, str], dict[str, str]]
) -> None:
    first, second = GatedRepository(), GatedRepository()
    a_options, b_options = ({**o} for o in options)
    for o in (a_options, b_options):
        o["cache_prefix"] = f"{cache_prefix}-{o.get('cache_prefix', '')}"
    a = make_cache(first, **a_options)
    b = make_cache(second, **b_options)
    assert a.namespace != b.namespace
    mine = await a.add(new("from a"))
    theirs = await b.add(new("from b"))
    assert mine.id == theirs.id == 1
    for _ in range(2):
        assert await a.get(1) == mine
        assert await b.get(1) == theirs
        assert (await a.stats()).by_type == {"deploy": 1}
        assert (await b.stats()).total == 1
    assert first.calls["get"] == second.calls["get"] == 1  # both were cached, apart
    for repo in (a, b):
        keys = await _keys(repo.redis, f"{repo.namespace}:*")
        assert keys, "nothing was cached"
        assert all(k.startswith(repo.namespace.encode() + b":") for k in keys)


async def test_model_version_is_part_of_the_namespace(cache: CachedEventRepository) -> None:
    from sysevents.cache import CACHE_FORMAT

    assert cache.namespace.split(":")[-1].startswith(f"c{CACHE_FORMAT}-")
    assert len(cache.namespace.split(":")[-1]) > len(f"c{CACHE_FORMAT}-")


# -- cancellation -------------------------------------------------------------------


async def test_cancelled_reads_never_mix_up_values(
    inner: GatedRepository, make_cache: Callable[..., CachedEventRepository]
) -> None:
    # Time enough for every command however loaded the machine: a timeout would
    # open the breaker, and this is about cancellations, which must not.
    cache = make_cache(inner, call_budget=10.0, cache_timeout=5.0)
    await cache.open()
    events = await cache.add_many([new(f"event {i}") for i in range(50)])
    by_id = {e.id: e for e in events}
    await asyncio.gather(*(cache.get(i) for i in by_id))  # most reads below are hits

    async def read(event_id: int) -> tuple[int, Event | None]:
        return event_id, await cache.get(event_id)

    async def cancel_soon(task: asyncio.Task[Any]) -> None:
        for _ in range(random.randrange(6)):
            await asyncio.sleep(0)
        task.cancel()

    cancelled = 0
    for _ in range(5):
        tasks = [asyncio.create_task(read(random.choice(list(by_id)))) for _ in range(300)]
        cancellers = [asyncio.create_task(cancel_soon(t)) for t in tasks[::2]]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*cancellers)
        for result in results:
            if isinstance(result, BaseException):
                assert isinstance(result, asyncio.CancelledError)
                cancelled += 1
                continue
            event_id, event = result
            assert event == by_id[event_id]
    assert cancelled > 100, "too few reads were cancelled to prove anything"
    for event_id, event in by_id.items():
        assert await cache.get(event_id) == event
    assert cache.cache_stats().breaker == "closed"


async def test_concurrent_writes_share_invalidations_and_none_is_lost(
    cache: CachedEventRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = await cache.add_many([NewEvent(event_type="t", message="old") for _ in range(40)])
    for event in events:
        assert await cache.get(event.id) == event  # cached
    await cache.stats()
    sent: list[int] = []
    send = cache._invalidations._send

    async def counting_send(ids: Any) -> None:
        sent.append(len(ids))
        await send(ids)

    monkeypatch.setattr(cache._invalidations, "_send", counting_send)
    updated = await asyncio.gather(
        *(cache.update(e.id, EventPatch(message=f"new {e.id}")) for e in events)
    )
    assert sum(sent) == len(events)
    assert len(sent) < len(events), "every write paid its own round trip"
    for event in updated:
        assert await cache.get(event.id) == event
    assert (await cache.stats()).total == len(events)


async def test_close_lets_a_committed_writers_invalidation_go_out(
    inner: GatedRepository, make_cache: Callable[..., CachedEventRepository]
) -> None:
    cache, other = make_cache(inner), make_cache(inner)
    await cache.open()
    event = await cache.add(new("v1"))
    assert await other.get(event.id) == event  # cached
    writer = asyncio.create_task(cache.update(event.id, patch("v2")))
    await asyncio.sleep(0)  # the writer is under way; the cache closes now
    await asyncio.wait_for(cache.close(), 5)
    assert (await asyncio.wait_for(writer, 5)).message == "v2"
    await inner.open()  # closed with the first cache; the other reads through it
    got = await other.get(event.id)
    assert got is not None
    assert got.message == "v2"


async def test_close_fails_writers_whose_invalidation_cannot_go_out(
    inner: GatedRepository,
    make_cache: Callable[..., CachedEventRepository],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = make_cache(inner, call_budget=0.05)
    await cache.open()
    event = await cache.add(new("v1"))
    stuck = asyncio.Event()

    async def never_sent(ids: Any) -> None:
        stuck.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(cache._invalidations, "_send", never_sent)
    writer = asyncio.create_task(cache.update(event.id, patch("v2")))
    await stuck.wait()
    await asyncio.wait_for(cache.close(), 5)
    # Committed, but not invalidated: the writer must not return as if all were done.
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(writer, 5)
    monkeypatch.undo()
    await cache.open()
    later = await asyncio.wait_for(cache.update(event.id, patch("v3")), 5)
    assert later.message == "v3"


async def test_a_write_cancelled_after_commit_still_invalidates(
    cache: CachedEventRepository, inner: GatedRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = await cache.add(NewEvent(event_type="t", message="old"))
    assert await cache.get(event.id) == event  # cached
    entered, release = asyncio.Event(), asyncio.Event()
    send = cache._invalidations._send

    async def slow_send(ids: Any) -> None:
        entered.set()
        await release.wait()
        await send(ids)

    monkeypatch.setattr(cache._invalidations, "_send", slow_send)
    writer = asyncio.create_task(cache.update(event.id, EventPatch(message="new")))
    await entered.wait()  # the store has committed; the invalidation is under way
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    release.set()
    await asyncio.wait_for(cache.settled(), 5)
    fetched = await cache.get(event.id)
    assert fetched is not None
    assert fetched.message == "new"


async def test_coalesced_readers_get_their_own_copies(
    cache: CachedEventRepository, inner: GatedRepository
) -> None:
    event = await cache.add(NewEvent(event_type="t", message="m", details={"a": [1]}))
    hold = inner.hold("get")
    loads = inner.calls["get"]
    readers = [asyncio.create_task(cache.get(event.id)) for _ in range(3)]
    await hold.reached.wait()  # one load under way; the other readers join it
    await eventually(lambda: cache.cache_stats().coalesced == 2, "both readers joined")
    hold.release.set()
    first, second, third = await asyncio.gather(*readers)
    assert inner.calls["get"] == loads + 1
    assert first is not None
    assert second is not None
    assert third is not None
    first.details["a"].append(2)  # type: ignore[index]
    assert second.details == {"a": [1]}
    assert third.details == {"a": [1]}


async def test_retention_by_one_cache_is_seen_by_every_cache(
    make_cache: Callable[..., CachedEventRepository],
) -> None:
    """The service and `sysevents retention` (same Redis, same prefix): no expired event served."""
    from datetime import UTC, datetime, timedelta

    from sysevents import RetentionPolicy

    store = sysevents.MemoryEventRepository()
    service, command = make_cache(store), make_cache(store)
    now = datetime.now(UTC)
    old = await service.add(new("old").model_copy(update={"timestamp": now - timedelta(days=9)}))
    young = await service.add(new("young"))
    assert await service.get(old.id) == old  # cached now
    assert (await service.stats()).total == 2
    report = await command.apply_retention(RetentionPolicy.parse("*=7d"), now=now)
    assert report.removed == 1
    assert await service.get(old.id) is None
    assert await service.get(young.id) == young
    assert (await service.stats()).total == 1
