"""The Redis client the cache uses: fail fast rather than wait."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


def cache_client(url: str, *, timeout: float = 0.1, max_connections: int = 64) -> Redis:
    """A Redis client for :class:`~sysevents.cache.CachedEventRepository`.

    redis-py's defaults retry ten times with 5 s timeouts. Here connecting times
    out after ``timeout``, and a failed command is retried once, immediately,
    which rides over a connection left dead by a Redis restart. There is no
    socket timeout: the cache bounds every command itself (its
    ``command_timeout`` and ``call_budget``), and a second timer on every read
    would cost about a sixth of a cache hit. The cache never runs more
    commands at once than ``max_connections``; its other callers wait for a
    slot within their budget. Use it only behind the cache, or with your own
    timeouts around each command.
    """
    from redis.asyncio import ConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    pool = ConnectionPool.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=None,  # redis-py 8 would default to 5 s
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )
    return Redis.from_pool(pool)
