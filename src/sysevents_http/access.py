"""Access control in one object: the auth mode, the keys, and the rate-limit counters.

:class:`Access` answers the questions the request path asks about a caller:
must it present a key (``Settings.auth``), which key is it (the keys given
in settings, then the store's, through a short-lived cache), and how many
requests has it made in this window (counted in Redis when one is configured,
so that every replica shares one budget, else in this process).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from litestar.exceptions import TooManyRequestsException

from sysevents import ConfigurationError, Settings, StoreUnavailableError
from sysevents.keys import KeyRing, KeyStore, static_keys

from .hosts import host_allowed
from .ingest import Buckets, MemoryBuckets, RedisBuckets

if TYPE_CHECKING:
    from sysevents.cache.client import RedisClient

logger = logging.getLogger("sysevents_http")

FAILURE_RECORD_INTERVAL = 60.0
"""Seconds between two records of failed authentications from one address, for one reason."""
KEYS_QUESTION_TIMEOUT = 1.0
"""Seconds the store has to say whether any key exists, before the request gets a 503."""
LIMITS_REDIS_TIMEOUT = 0.25
"""Seconds a limit's Redis command may take (connecting included) before the limit lets
the request through: a Redis that hangs, or a cluster whose node is gone, must not."""

# KEYS: the counter. ARGV: the window's length (ms), what to add. Returns the count so far.
_COUNT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if n == tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
"""


class MemoryCounter:
    """Counters of one process (no Redis): each window's count per identifier."""

    def __init__(self) -> None:
        # Per window length: the current window, and its counts.
        self._windows: dict[int, tuple[int, dict[str, int]]] = {}

    async def count(self, identifier: str, window: int, seconds: int, n: int = 1) -> int:
        """The count of ``identifier`` in ``window``, these ``n`` included."""
        current, counts = self._windows.get(seconds, (-1, {}))
        if window != current:  # an old window's counters are no longer needed
            counts = {}
            self._windows[seconds] = (window, counts)
        total = counts.get(identifier, 0) + n
        counts[identifier] = total
        return total


class RedisCounter:
    """Counters in Redis, shared by every replica; a failure or a slow answer lets requests by.

    A command that has not answered within ``timeout`` seconds counts as failed.
    """

    def __init__(self, redis: RedisClient, prefix: str, timeout: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout = timeout
        self._count = redis.register_script(_COUNT)
        self._failing = False

    async def count(self, identifier: str, window: int, seconds: int, n: int = 1) -> int:
        """The count of ``identifier`` in ``window``, these ``n`` included (0: unknown)."""
        key = f"{self._prefix}:rate:{seconds}:{window}:{identifier}"
        try:
            async with asyncio.timeout(self._timeout):
                n = int(await self._count(keys=[key], args=[seconds * 1000, n]))
        except Exception as exc:  # the limit is a guard, not a reason to fail requests
            if not self._failing:
                logger.warning("rate limits are off while Redis fails (%s)", exc)
            self._failing = True
            return 0
        self._failing = False
        return n


Counter = MemoryCounter | RedisCounter


class Access:
    """Who may call, and how often (see the module)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        secret_keys = settings.api_keys.get_secret_value() if settings.api_keys else ""
        self.keys = KeyRing(None, static_keys(secret_keys))
        """The API keys requests are checked against (settings first, then the store's)."""
        self.counter: Counter = MemoryCounter()
        """Request counts per window (rate and address limits, new series)."""
        self.buckets: Buckets = MemoryBuckets()
        """The ingest limit's token buckets."""
        self._redis: Any = None
        self._under_way: dict[str, int] = {}
        self.on_failure: Callable[[dict[str, Any]], None] | None = None
        """Where a failed authentication goes to be recorded (at most one per address,
        reason and minute): the service's own records."""
        self._failures: dict[tuple[str, str], float] = {}

    def start(self, store_keys: KeyStore | None) -> None:
        """Check keys against ``store_keys`` too; count in Redis when one is configured."""
        self.keys.store = store_keys
        settings = self.settings
        if settings.redis_url:
            from sysevents.cache import cache_client

            timeout = LIMITS_REDIS_TIMEOUT
            self._redis = cache_client(settings.redis_url, timeout=timeout)
            self.counter = RedisCounter(self._redis, settings.cache_prefix, timeout)
            self.buckets = RedisBuckets(self._redis, settings.cache_prefix, timeout)

    async def connect(self) -> None:
        """Learn a Redis Cluster's slots before the first request (nothing on one server)."""
        if self._redis is not None:
            from sysevents.cache.client import warm_up

            await warm_up(self._redis, 1.0)

    async def stop(self) -> None:
        """Close the Redis client of the counters."""
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    async def required(self) -> bool:
        """Whether a request to a protected route must carry a key (see ``Settings.auth``)."""
        mode = self.settings.auth
        if mode == "off":
            return False
        if mode == "required":
            return True
        # A store that cannot say whether keys exist fails the request (503):
        # nothing is served without knowing.
        try:
            async with asyncio.timeout(KEYS_QUESTION_TIMEOUT):
                return await self.keys.any_keys()
        except TimeoutError:
            raise StoreUnavailableError(
                f"the event store did not say within {KEYS_QUESTION_TIMEOUT:g} s "
                "whether API keys exist"
            ) from None

    @contextmanager
    def holding(self, kind: str, identifier: str, cap: int) -> Iterator[None]:
        """One more ``kind`` (a stream, a read) of ``identifier`` under way, or a 429 past ``cap``.

        Counted in this process: with N workers and no shared state, each allows
        ``cap / N`` (rounded up) of them.
        """
        key = f"{kind}:{identifier}"
        held = self._under_way.get(key, 0)
        if held >= cap:
            raise TooManyRequestsException(
                detail=f"more than {cap} {kind}s under way for this caller: finish one first",
                headers={"Retry-After": "1"},
            )
        self._under_way[key] = held + 1
        try:
            yield
        finally:
            left = self._under_way[key] - 1
            if left:
                self._under_way[key] = left
            else:
                del self._under_way[key]

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request naming ``host`` is answered while no key is required."""
        return host_allowed(host, self.settings.allowed_hosts)

    def failed(self, address: str, reason: str | None, key_id: str | None) -> None:
        """Hand a failed authentication over to be recorded, unless one like it was lately."""
        now = time.monotonic()
        key = (address, reason or "?")
        last = self._failures.get(key)
        if last is not None and now - last < FAILURE_RECORD_INTERVAL:
            return
        if len(self._failures) > 10_000:  # old entries: a minute is all they are kept for
            self._failures = {k: t for k, t in self._failures.items() if now - t < 60}
        self._failures[key] = now
        if self.on_failure is not None:
            self.on_failure({"address": address, "reason": reason or "?", "key_id": key_id})

    def key_store(self) -> KeyStore:
        """The store's keys (``ConfigurationError`` for a store that keeps none)."""
        if self.keys.store is None:
            raise ConfigurationError(
                "this event store keeps no API keys: give them in SYSEVENTS_API_KEYS"
            )
        return self.keys.store
