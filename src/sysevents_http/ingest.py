"""Ingest limits: the events and bytes one caller may store per second, with a burst.

Each caller (its key, or its address on an open server) has two token
buckets, one of events and one of request bytes, each refilled at its rate
and holding at most ``burst`` seconds of it. A write takes what it carries
from both, or neither and is a 429 saying how long to wait. Every record
counts: a batch takes one token per event, an OTLP export one per log
record, refused ones included. With Redis the buckets live there (one Lua
call, the server's clock), so replicas share them; without it each of N
workers holds ``1/N`` of the rates.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from litestar.exceptions import TooManyRequestsException

from sysevents.settings import IngestRate

if TYPE_CHECKING:
    from sysevents.cache.client import RedisClient

logger = logging.getLogger("sysevents_http")

# KEYS: the caller's buckets. ARGV: events/s, bytes/s, burst (s), events, bytes.
# Returns 0 when taken, else the milliseconds until they would be.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local er, br, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ce, cb = tonumber(ARGV[4]), tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'e', 'b', 't')
local e = tonumber(v[1]) or er * burst
local b = tonumber(v[2]) or br * burst
local dt = math.max(0, now - (tonumber(v[3]) or now)) / 1000
e = math.min(er * burst, e + dt * er)
b = math.min(br * burst, b + dt * br)
local wait = 0
if e < ce or b < cb then
  wait = math.ceil(math.max((ce - e) / er, (cb - b) / br) * 1000)
else
  e, b = e - ce, b - cb
end
redis.call('HSET', KEYS[1], 'e', e, 'b', b, 't', now)
redis.call('PEXPIRE', KEYS[1], burst * 1000 + 1000)
return wait
"""


class MemoryBuckets:
    """The buckets of one process (no Redis)."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float, float]] = {}  # events, bytes, when

    async def take(self, identifier: str, rate: IngestRate, events: int, size: int) -> float:
        """Take ``events`` and ``size`` from the caller's buckets; seconds to wait if it cannot."""
        now = time.monotonic()
        full_e, full_b = rate.events * rate.burst, rate.bytes * rate.burst
        e, b, then = self._state.get(identifier, (full_e, full_b, now))
        e = min(full_e, e + (now - then) * rate.events)
        b = min(full_b, b + (now - then) * rate.bytes)
        wait = 0.0
        if e < events or b < size:
            wait = max((events - e) / rate.events, (size - b) / rate.bytes)
        else:
            e, b = e - events, b - size
        if len(self._state) > 10_000:  # an idle caller's buckets are full again: forget them
            self._state = {k: s for k, s in self._state.items() if now - s[2] < rate.burst}
        self._state[identifier] = (e, b, now)
        return wait


class RedisBuckets:
    """The buckets in Redis, shared by every replica; a failure or a slow answer lets writes by.

    A command that has not answered within ``timeout`` seconds counts as failed.
    """

    def __init__(self, redis: RedisClient, prefix: str, timeout: float) -> None:
        self._prefix = prefix
        self._timeout = timeout
        self._take = redis.register_script(_TAKE)
        self._failing = False

    async def take(self, identifier: str, rate: IngestRate, events: int, size: int) -> float:
        """Take from the caller's buckets; seconds to wait if it cannot (0: taken or unknown)."""
        key = f"{self._prefix}:ingest:{identifier}"
        args: list[Any] = [rate.events, rate.bytes, rate.burst, events, size]
        try:
            async with asyncio.timeout(self._timeout):
                waited = int(await self._take(keys=[key], args=args))
        except Exception as exc:  # the limit is a guard, not a reason to fail writes
            if not self._failing:
                logger.warning("ingest limits are off while Redis fails (%s)", exc)
            self._failing = True
            return 0.0
        self._failing = False
        return waited / 1000


Buckets = MemoryBuckets | RedisBuckets


LEASES_PER_SECOND = 50
"""Into how many leases a second of the rates is cut: with Redis, a process takes tokens a
lease at a time (one Redis call) and spends them itself."""
LEASE_SECONDS = 1.0
"""How long a process keeps tokens it leased and has not spent."""


class IngestLimit:
    """``rate`` per caller (``1/share`` of it in each of ``share`` processes)."""

    def __init__(self, rate: IngestRate, share: int = 1) -> None:
        self.rate = IngestRate(
            max(1, rate.events // share), max(1, rate.bytes // share), rate.burst
        )
        # identifier -> (events left, bytes left, until when): tokens leased from Redis.
        self._leases: dict[str, tuple[int, int, float]] = {}

    async def charge(self, buckets: Buckets, identifier: str, events: int, size: int) -> None:
        """Take a write's events and bytes from the caller's buckets, or raise a 429."""
        rate = self.rate
        # A write larger than a whole burst could never pass: it waits for a full bucket.
        events = min(events, rate.events * rate.burst)
        size = min(size, rate.bytes * rate.burst)
        if isinstance(buckets, MemoryBuckets):  # taking is free here: no leases
            wait = await buckets.take(identifier, rate, events, size)
        else:
            wait = await self._leased(buckets, identifier, events, size)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise TooManyRequestsException(
                detail=f"over the ingest limit of {rate.events} events and {rate.bytes} bytes "
                f"per second (burst {rate.burst} s); try again in {retry} s",
                headers={"Retry-After": str(retry)},
            )

    async def _leased(self, buckets: Buckets, identifier: str, events: int, size: int) -> float:
        now = time.monotonic()
        lease = self._leases.get(identifier)
        if lease is not None and lease[2] > now and lease[0] >= events and lease[1] >= size:
            self._leases[identifier] = (lease[0] - events, lease[1] - size, lease[2])
            return 0.0
        rate = self.rate
        more_events = max(events, rate.events // LEASES_PER_SECOND)
        more_bytes = max(size, rate.bytes // LEASES_PER_SECOND)
        wait = await buckets.take(identifier, rate, more_events, more_bytes)
        if wait > 0 and (more_events, more_bytes) != (events, size):
            more_events, more_bytes = events, size  # near the limit: take only what it needs
            wait = await buckets.take(identifier, rate, events, size)
        if wait > 0:
            return wait
        if len(self._leases) > 10_000:
            self._leases = {k: v for k, v in self._leases.items() if v[2] > now}
        self._leases[identifier] = (
            more_events - events,
            more_bytes - size,
            now + LEASE_SECONDS,
        )
        return 0.0
