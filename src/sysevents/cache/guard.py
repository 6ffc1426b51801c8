"""How the cache talks to Redis without ever making a caller wait on it.

:class:`RedisGuard` runs each command under a per-call time budget and a
per-command timeout, caps how many run at once, and opens a circuit breaker on
failure: while it is open the cache is skipped, a probe runs every cool-down,
and the breaker closes when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from .client import RedisClient

T = TypeVar("T")

FAILURES = (RedisError, OSError, TimeoutError)
"""What a Redis command may raise when Redis is down, slow or gone."""

logger = logging.getLogger("sysevents.cache")


class Busy(TimeoutError):
    """Every Redis slot is in use: load, not an outage."""


class Budget:
    """How much Redis time one call may still spend."""

    __slots__ = ("left",)

    def __init__(self, seconds: float) -> None:
        self.left = seconds


class RedisGuard:
    """Runs the cache's Redis commands within a budget, a concurrency cap and a breaker.

    One call's commands may take ``call_budget`` seconds in all, and one of
    them at most ``command_timeout`` (if set). At most ``max_concurrency``
    commands (never more than the client's connection pool holds) run at once.
    A failure opens the breaker, logged once per outage on the
    ``sysevents.cache`` logger; every ``cooldown`` seconds a probe runs, and
    the breaker closes when it succeeds. The probe is ``probe`` (``PING`` by
    default; on a cluster, a read from the node the cache uses), or ``reset``
    when invalidations were missed meanwhile (the cache then starts a new
    epoch, so nothing cached before or during the outage is served again).
    """

    def __init__(
        self,
        redis: RedisClient,
        reset: Callable[[], Awaitable[object]],
        *,
        probe: Callable[[], Awaitable[object]] | None = None,
        call_budget: float = 0.2,
        command_timeout: float | None = None,
        cooldown: float = 1.0,
        max_concurrency: int = 32,
    ) -> None:
        self.redis = redis
        self._reset = reset
        self._probe = probe or redis.ping
        self.call_budget = call_budget
        self.command_timeout = command_timeout
        self.cooldown = cooldown
        # A cluster client has a pool per node, each of max_connections.
        pool = getattr(redis, "connection_pool", None)
        pool_size = getattr(pool, "max_connections", None)
        if isinstance(pool_size, int):
            max_concurrency = min(max_concurrency, pool_size)
        self._slots = asyncio.Semaphore(max_concurrency)
        self.is_open = False
        self.missed = 0
        """Invalidations that did not reach Redis since the last epoch."""
        self.errors = 0
        self._repair_task: asyncio.Task[None] | None = None
        self._closed = False

    def budget(self) -> Budget:
        """A fresh budget for one call."""
        return Budget(self.call_budget)

    async def call(self, budget: Budget, command: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis command within ``command_timeout`` and what is left of ``budget``.

        A caller that cannot get a slot within its budget gets :class:`Busy`:
        that is load, not an outage, so it must not open the breaker.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            if self._slots.locked():
                try:
                    async with asyncio.timeout(budget.left):
                        await self._slots.acquire()
                except TimeoutError:
                    raise Busy from None
            else:
                await self._slots.acquire()  # a free slot: returns without waiting
            try:
                # The only timer of the command: the client sets no socket timeout.
                left = budget.left - (loop.time() - start)
                if self.command_timeout is not None:
                    left = min(left, self.command_timeout)
                async with asyncio.timeout(left):
                    return await command()
            finally:
                self._slots.release()
        finally:
            budget.left -= loop.time() - start

    def miss(self) -> None:
        """Record an invalidation that did not reach Redis."""
        self.missed += 1

    def fail(self, exc: BaseException) -> None:
        """Count a Redis failure and open the breaker (warning once per outage)."""
        self.errors += 1
        if self.is_open or self._closed:
            return
        self.is_open = True
        logger.warning(
            "Redis cache unavailable (%s: %s); serving from the store until it returns",
            type(exc).__name__,
            str(exc) or "no answer in time",
        )
        self._repair_task = asyncio.get_running_loop().create_task(self._repair())

    async def _repair(self) -> None:
        """While the breaker is open, probe Redis every cool-down, then close it."""
        while True:
            await asyncio.sleep(self.cooldown)
            missed = self.missed
            try:
                if missed:
                    await self.call(self.budget(), self._reset)
                else:
                    await self.call(self.budget(), self._probe)
            except FAILURES:
                self.errors += 1
                continue
            if self.missed != missed:
                continue  # a write was skipped while probing: start a new epoch again
            self.missed = 0
            self.is_open = False
            self._repair_task = None
            logger.info("Redis cache available again")
            return

    async def close(self) -> None:
        """Stop probing; safe to call twice."""
        self._closed = True
        task, self._repair_task = self._repair_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
