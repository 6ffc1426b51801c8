"""The Redis client the cache uses: fail fast rather than wait."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, TypeAlias

from sysevents.redis_url import is_cluster, parse_cluster_url

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry

RedisClient: TypeAlias = "Redis | RedisCluster"
"""One Redis server or a Redis Cluster: the cache and the limits take either."""


def cache_client(url: str, *, timeout: float = 0.1, max_connections: int = 64) -> RedisClient:
    """A Redis client for :class:`~sysevents.cache.CachedEventRepository`.

    redis-py's defaults retry ten times with 5 s timeouts. Here connecting times
    out after ``timeout``, and a failed command is retried once, immediately,
    which rides over a connection left dead by a Redis restart (on a cluster,
    the retry follows the slots to their new node after a failover). There is
    no socket timeout: the cache bounds every command itself (its
    ``command_timeout`` and ``call_budget``), and a second timer on every read
    would cost about a sixth of a cache hit. The cache never runs more
    commands at once than ``max_connections``; its other callers wait for a
    slot within their budget. Use it only behind the cache, or with your own
    timeouts around each command.

    ``redis+cluster://host:port,host:port`` (``rediss+cluster://`` for TLS)
    gives a :class:`~redis.asyncio.cluster.RedisCluster` that starts from
    those nodes; ``max_connections`` then bounds the connections to each node.
    A cluster client does time out reads, after ``timeout / 2``: a node that
    stops answering (its host gone) must fail a command in redis-py itself,
    retry included, within the caller's bound, for the client to ask the
    cluster where the slots went. Cancelled from outside, it would keep
    sending to the silent node after its replica took over.
    """
    from redis.asyncio import ConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    if is_cluster(url):
        return _cluster_client(url, timeout, max_connections, Retry(NoBackoff(), 1))
    pool = ConnectionPool.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=None,  # redis-py 8 would default to 5 s
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )
    return Redis.from_pool(pool)


def _cluster_client(url: str, timeout: float, max_connections: int, retry: Retry) -> RedisCluster:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    parsed = parse_cluster_url(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.ssl,
        max_connections=max_connections,
        socket_timeout=timeout / 2,
        socket_connect_timeout=timeout / 2,
        retry=retry,
    )


async def warm_up(client: RedisClient, seconds: float) -> None:
    """Learn a cluster's slots now, within ``seconds``, rather than in a reader's budget.

    Nothing to do for one server. A cluster that cannot be reached is not an
    error here: the cache's guard deals with it on the first command.
    """
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import RedisError

    if isinstance(client, RedisCluster):
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(seconds):
                await client.initialize()
