"""Redis Cluster: the URL, the hash tags, the cache and the limits on a private cluster.

The cluster (three masters, each with a replica, on free loopback ports) is
started once for the module; the failover test starts its own, since it
kills one of the nodes.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio.cluster import RedisCluster
from redis.cluster import key_slot

import sysevents
from sysevents import ConfigurationError, MemoryEventRepository, Settings
from sysevents.cache import cache_client
from sysevents.cache.tokens import Tokens
from sysevents.redis_url import parse_cluster_url
from sysevents.testing import EventRepositoryConformance
from sysevents_http import HttpOptions, create_app
from sysevents_http.access import Access
from tests.conftest import RUN_ID
from tests.private_cluster import PrivateCluster, private_cluster

EVENT = {"event_type": "deploy", "message": "v1"}
_prefixes = itertools.count()


def fresh_prefix() -> str:
    """A cache prefix of this test's own (every cluster here is private anyway)."""
    return f"sysevents-cluster-{RUN_ID}-{next(_prefixes)}"


# -- the URL --------------------------------------------------------------------------


def test_a_cluster_url_names_its_nodes_and_credentials() -> None:
    parsed = parse_cluster_url("rediss+cluster://app:s%40cret@10.0.0.1:7000, [::1]:7001/")
    assert parsed.nodes == (("10.0.0.1", 7000), ("::1", 7001))
    assert (parsed.username, parsed.password, parsed.ssl) == ("app", "s@cret", True)
    assert parse_cluster_url("redis+cluster://h:1").ssl is False


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://host",
        "redis+cluster://host:port",
        "redis+cluster://host:70000",
        "redis+cluster://host:7000/3",
        "redis+cluster://host:7000?timeout=1",
        "rediscluster://host:7000",
        "localhost:6379",
    ],
)
def test_settings_name_redis_url_when_it_is_malformed(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"redis_url \(env SYSEVENTS_REDIS_URL\)"):
        Settings.from_env({}, redis_url=url)


def test_a_cluster_url_gives_a_cluster_client_with_one_quick_retry() -> None:
    client = cache_client("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", timeout=0.3)
    assert isinstance(client, RedisCluster)
    nodes = list(client.nodes_manager.startup_nodes.values())
    assert sorted(n.port for n in nodes) == [7000, 7001]
    assert nodes[0].connection_kwargs["socket_connect_timeout"] == 0.15
    assert nodes[0].connection_kwargs["socket_timeout"] == 0.15
    retry = client.retry
    assert retry is not None
    # get_retries() is redis-py 6+; older releases keep the number in _retries.
    assert (retry.get_retries() if hasattr(retry, "get_retries") else retry._retries) == 1
    assert Settings(redis_url="redis+cluster://127.0.0.1:7000").redis_url


def test_every_key_the_cache_touches_at_once_is_in_one_slot() -> None:
    tokens = Tokens(cache_client("redis://127.0.0.1:1"), "odd{pre}fix")
    keys = [tokens.epoch_key, tokens.stats_generation_key]
    for event_id in (1, 2, 99_999_999):
        ev = tokens.event_keys(event_id)
        keys += [ev.generation, ev.entry]
    st = tokens.stats_keys(None)
    keys += [st.generation, st.entry, f"{tokens.namespace}:budget:123"]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    other = Tokens(cache_client("redis://127.0.0.1:1"), "another")
    assert key_slot(other.epoch_key.encode()) != key_slot(tokens.epoch_key.encode())


# -- on a cluster ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """One private cluster for the module's tests that do not stop any node."""
    with private_cluster() as running:
        yield running


@pytest.mark.cluster
class TestConformanceOnCluster(EventRepositoryConformance):
    """The conformance suite through the cache on a Redis Cluster."""

    @pytest.fixture
    async def repo(self, cluster: PrivateCluster) -> AsyncIterator[sysevents.EventRepository]:
        """An empty memory store behind the cache on the cluster."""
        async with sysevents.connect(
            "memory://", redis_url=cluster.url, cache_prefix=fresh_prefix()
        ) as repository:
            yield repository


@pytest.mark.cluster
async def test_the_cache_serves_hits_from_the_cluster(cluster: PrivateCluster) -> None:
    async with sysevents.connect(
        "memory://", redis_url=cluster.url, cache_prefix=fresh_prefix()
    ) as repo:
        event = await repo.add(sysevents.NewEvent(event_type="a", message="one"))
        for _ in range(3):
            assert await repo.get(event.id) == event
            assert (await repo.stats()).total == 1
        stats = repo.cache_stats()
        assert stats is not None
        assert (stats.hits, stats.errors, stats.breaker) == (4, 0, "closed")
        changed = await repo.update(event.id, sysevents.EventPatch(message="two"))
        assert await repo.get(event.id) == changed
        assert (await repo.stats()).by_type == {"a": 1}


def _apps(cluster: PrivateCluster, **settings: str) -> tuple[Litestar, Litestar]:
    """Two replicas of the service over one store, sharing their limits on the cluster."""
    repo = MemoryEventRepository()
    config = Settings(redis_url=cluster.url, cache_prefix=fresh_prefix(), **settings)
    return (
        create_app(config, repository=repo, options=HttpOptions()),
        create_app(config, repository=repo, options=HttpOptions()),
    )


@pytest.mark.cluster
async def test_replicas_share_one_rate_budget_on_the_cluster(cluster: PrivateCluster) -> None:
    one, two = _apps(cluster, rate_limit="5/minute")
    async with AsyncTestClient(one) as a, AsyncTestClient(two) as b:
        statuses = [(await (a if n % 2 else b).get("/api/events")).status_code for n in range(7)]
    assert statuses == [200] * 5 + [429] * 2


@pytest.mark.cluster
async def test_replicas_share_the_ingest_buckets_on_the_cluster(cluster: PrivateCluster) -> None:
    one, two = _apps(cluster, ingest_limit="10/second,1MB/second,burst=1s")
    async with AsyncTestClient(one) as a, AsyncTestClient(two) as b:
        batch = {"events": [EVENT] * 8}
        assert (await a.post("/api/events/batch", json=batch)).status_code == 201
        assert (await b.post("/api/events/batch", json=batch)).status_code == 429


def _epoch_key(prefix: str) -> str:
    return Tokens(cache_client("redis://127.0.0.1:1"), prefix).epoch_key


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "freeze"])
async def test_a_master_failing_over_serves_nothing_stale_and_no_5xx(how: str) -> None:
    """The master holding the cache's slot dies mid-run; its replica takes over.

    Killed, its port refuses connections at once; frozen (a host gone), it
    never answers on the connections already open. Through the API, every
    read follows the write before it, no answer is a 5xx while the slot has
    no master, and the cache serves hits again from the promoted replica.
    """
    prefix = fresh_prefix()
    with private_cluster() as cluster:
        settings = Settings(redis_url=cluster.url, cache_prefix=prefix)
        async with AsyncTestClient(create_app(settings, options=HttpOptions())) as client:
            statuses: list[int] = []
            created = await client.post("/api/events", json=EVENT)
            event_id = created.json()["id"]
            total = 1

            async def hits() -> int:
                cache = (await client.get("/api/health")).json()["cache"]
                return int(cache["hits"]) if cache["breaker"] == "closed" else -1

            async def step(n: int) -> None:
                nonlocal total
                put = await client.put(f"/api/events/{event_id}", json={"message": f"m{n}"})
                statuses.append(put.status_code)
                if n % 5 == 0:
                    statuses.append((await client.post("/api/events", json=EVENT)).status_code)
                    total += 1
                for _ in range(3):  # the first may fill, the others hit
                    got = await client.get(f"/api/events/{event_id}")
                    statuses.append(got.status_code)
                    assert got.status_code >= 500 or got.json()["message"] == f"m{n}", n
                    stats = await client.get("/api/events/stats", params={"event_type": "deploy"})
                    statuses.append(stats.status_code)
                    assert stats.status_code >= 500 or stats.json()["total"] == total, n

            steps = itertools.count()
            deadline = time.monotonic() + 10
            while (before := await hits()) <= 0:
                assert time.monotonic() < deadline, "the cache is not in use before the failover"
                await step(next(steps))

            victim = cluster.master_of(_epoch_key(prefix))
            cluster.kill(victim) if how == "kill" else cluster.freeze(victim)
            deadline = time.monotonic() + 20
            promoted = None
            # Steps started while no master held the cache's slot: looked at before
            # each step, since one step can outlast the whole failover.
            during = 0
            while promoted is None or await hits() <= before:
                assert time.monotonic() < deadline, "no failover, or no cache hit after it"
                with contextlib.suppress(LookupError):
                    promoted = promoted or cluster.master_of(_epoch_key(prefix))
                during += promoted is None
                await step(next(steps))
            assert promoted != victim
            assert during > 0
            for n in itertools.islice(steps, 10):
                await step(n)
            assert max(statuses) < 500, sorted(set(statuses))


@pytest.mark.cluster
async def test_the_limits_learn_the_cluster_before_the_first_request(
    cluster: PrivateCluster,
) -> None:
    access = Access(Settings(redis_url=cluster.url, cache_prefix=fresh_prefix()))
    access.start(None)
    try:
        await access.connect()
        # Every node known, without a command sent: the first request pays nothing.
        assert len(access._redis.get_primaries()) == len(cluster.ports) // 2
    finally:
        await access.stop()
