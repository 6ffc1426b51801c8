"""A Redis cache in front of any event repository: single events and stats, never stale.

Listings are not cached. The rules that keep entries correct are those of
``sysevents.cache.tokens``; ``guard`` keeps Redis from ever slowing a caller
down, and ``invalidation`` batches the writers' invalidations.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sysevents.delegating import DelegatingStore
from sysevents.errors import InvalidEventError, NotFoundError
from sysevents.model import Event, EventPatch, EventStats, NewEvent
from sysevents.positions import current
from sysevents.query import EventFilter
from sysevents.retention import RetentionPolicy, RetentionReport
from sysevents.rules import is_event_id
from sysevents.settings import Settings, with_overrides
from sysevents.store import CacheStats, EventRepository

from .client import cache_client, warm_up
from .flights import SingleFlight
from .guard import FAILURES, Budget, Busy, RedisGuard
from .invalidation import InvalidationQueue
from .tokens import Keys, Tokens

if TYPE_CHECKING:
    from .client import RedisClient

T = TypeVar("T")

_NONE = b"-"  # the payload of a cached "no such event"

WARM_UP_SECONDS = 1.0
"""How long opening may wait to learn a Redis Cluster's slots (nothing on one server)."""


class CachedEventRepository(DelegatingStore):
    """A store that caches the events and stats of ``inner`` in Redis.

    Lists, histograms, tails and keys are the inner store's, uncached (a
    revoked key must stop working at once). The TTLs, the key prefix, the
    command timeout and the memory bound are those of ``settings``
    (``cache_*``), with ``overrides`` of those fields on top. Redis failures
    never reach the caller: see :class:`~sysevents.cache.guard.RedisGuard` for
    ``call_budget``, ``cooldown`` and ``max_concurrency``. Entries live in the
    namespace ``{<prefix>:c<CACHE_FORMAT>-<version>}`` (``version`` defaults to
    a digest of the models), and take at most ``cache_max_bytes`` of Redis
    memory (see ``sysevents.cache.tokens``).
    """

    def __init__(
        self,
        inner: EventRepository,
        redis: RedisClient,
        *,
        settings: Settings | None = None,
        call_budget: float = 0.2,
        cooldown: float = 1.0,
        max_concurrency: int = 32,
        version: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(inner)
        settings = with_overrides(settings, overrides)
        self.redis = redis
        self._event_ttl_ms = max(1, round(settings.cache_event_ttl * 1000))
        self._stats_ttl_ms = max(1, round(settings.cache_stats_ttl * 1000))
        # Every key lives at most a window: entries their TTL, generations twice
        # the event TTL (the longest life), extended only by a fill charged anew.
        window_ms = max(2 * self._event_ttl_ms, self._stats_ttl_ms)
        self._tokens = Tokens(
            redis,
            settings.cache_prefix,
            version,
            max_bytes=settings.cache_max_bytes,
            window_ms=window_ms,
        )
        self.namespace = self._tokens.namespace
        self._guard = RedisGuard(
            redis,
            self._tokens.new_epoch,
            probe=self._tokens.probe,
            call_budget=call_budget,
            command_timeout=settings.cache_timeout,
            cooldown=cooldown,
            max_concurrency=max_concurrency,
        )
        self._invalidations = InvalidationQueue(self._guard, self._tokens)
        self._flights = SingleFlight()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._hits = self._misses = self._bypassed = 0
        self._replicated = False

    @classmethod
    def from_settings(cls, inner: EventRepository, settings: Settings) -> CachedEventRepository:
        """Wrap ``inner`` with a client for ``settings.redis_url`` (see :func:`cache_client`)."""
        if not settings.redis_url:
            raise ValueError("settings.redis_url is not set")
        return cls(
            inner,
            cache_client(settings.redis_url, timeout=settings.cache_timeout),
            settings=settings,
        )

    @property
    def command_timeout(self) -> float | None:
        """Seconds one Redis command may take (``None``: only the call budget bounds it)."""
        return self._guard.command_timeout

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Open the inner repository; Redis is connected lazily (a cluster's slots learnt now)."""
        self._closed = False
        await self.inner.open()
        self._replicated = bool(self.inner.replicas())
        await warm_up(self.redis, WARM_UP_SECONDS)

    async def close(self) -> None:
        """Close the inner repository and the Redis client; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self._invalidations.close(grace=4 * self._guard.call_budget)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flights.close()
        await self._guard.close()
        try:
            await self.inner.close()
        finally:
            await self.redis.aclose()

    async def settled(self) -> None:
        """Wait until every invalidation queued so far has been sent (or given up)."""
        while waiting := [*self._tasks, *self._invalidations.running()]:
            await asyncio.wait(waiting)

    def cache_stats(self) -> CacheStats:
        """The cache counters and the breaker state."""
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            errors=self._guard.errors,
            bypassed=self._bypassed,
            coalesced=self._flights.coalesced,
            breaker="open" if self._guard.is_open else "closed",
        )

    # -- reads -------------------------------------------------------------------

    async def get(self, event_id: int) -> Event | None:
        """The event, from the cache when it holds the current version."""
        if not is_event_id(event_id):
            return await self.inner.get(event_id)
        return await self._read(
            self._tokens.event_keys(event_id),
            lambda: self.inner.get(event_id),
            _encode_event,
            _decode_event,
            self._event_ttl_ms,
            2 * self._event_ttl_ms,
        )

    async def get_json(self, event_id: int) -> bytes | None:
        """What ``get`` returns, as the JSON of ``Event.model_dump_json()``; ``None`` if missing.

        A hit returns the cached bytes as they are, without building an ``Event``.
        """
        if not is_event_id(event_id):
            event = await self.inner.get(event_id)
            return None if event is None else _encode_event(event)
        payload = await self._read(
            self._tokens.event_keys(event_id),
            lambda: _load_json(self.inner.get(event_id), _encode_event),
            _same,
            _same,
            self._event_ttl_ms,
            2 * self._event_ttl_ms,
            kind="json",
        )
        return None if payload == _NONE else payload

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Stats for the filters of ``query``, cached per filter."""
        return await self._read(
            self._tokens.stats_keys(query),
            lambda: self.inner.stats(query),
            _encode_stats,
            EventStats.model_validate_json,
            self._stats_ttl_ms,
            0,
        )

    async def stats_json(self, query: EventFilter | None = None) -> bytes:
        """What ``stats`` returns, as the JSON of ``EventStats.model_dump_json()``."""
        return await self._read(
            self._tokens.stats_keys(query),
            lambda: _load_json(self.inner.stats(query), _encode_stats),
            _same,
            _same,
            self._stats_ttl_ms,
            0,
            kind="json",
        )

    # -- writes ------------------------------------------------------------------

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event, then invalidate its id (it may be cached as missing)."""
        event = await self._write(self.inner.add(new, caller=caller), None)
        await self._invalidations.invalidate([event.id])
        return event

    async def add_many(
        self, news: Sequence[NewEvent], *, caller: str | None = None
    ) -> builtins.list[Event]:
        """Store several events, then invalidate their ids."""
        events = await self._write(self.inner.add_many(news, caller=caller), None)
        await self._invalidations.invalidate([e.id for e in events])
        return events

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the event, then invalidate it and all stats."""
        event = await self._write(self.inner.update(event_id, patch, actor=actor), [event_id])
        await self._invalidations.invalidate([event_id])
        return event

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event, then invalidate it and all stats."""
        await self._write(self.inner.delete(event_id, actor=actor), [event_id])
        await self._invalidations.invalidate([event_id])

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Apply the policy to the inner store, then orphan every entry if anything went.

        The events removed are too many to name: a new epoch covers them all.
        """
        report = await self._write(
            self.inner.apply_retention(policy, now=now, dry_run=dry_run), None
        )
        if report.removed or report.partitions_dropped:
            await self._invalidate_all()
        return report

    async def _write(self, write: Awaitable[T], ids: Sequence[int] | None) -> T:
        """Run an inner write; if its outcome is unknown, invalidate anyway."""
        try:
            return await write
        except (InvalidEventError, NotFoundError):
            raise  # nothing was written
        except BaseException:
            # The store may have committed before failing (or being cancelled):
            # invalidate in the background, since this task may not await again.
            # Unknown new ids of an add can only be covered by a new epoch.
            if ids is not None:
                self._invalidations.queue(ids)
            else:
                self._spawn(self._invalidate_all())
            raise

    async def _invalidate_all(self) -> None:
        """Give the epoch a new token, orphaning every entry."""
        guard = self._guard
        if guard.is_open:
            guard.miss()
            return
        try:
            await guard.call(guard.budget(), self._tokens.new_epoch)
        except FAILURES as exc:
            guard.miss()
            guard.fail(exc)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the read path -------------------------------------------------------------

    async def _read(
        self,
        keys: Keys,
        load: Callable[[], Awaitable[T]],
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        ttl_ms: int,
        generation_ttl_ms: int,
        *,
        kind: str = "model",
    ) -> T:
        guard = self._guard
        if guard.is_open:
            self._bypassed += 1
            return await load()
        if self._replicated and current().needed() is not None:
            # An entry may have been filled from a replica that has not replayed
            # this caller's write: its read goes past the cache (read-your-writes).
            self._bypassed += 1
            return await load()
        budget = guard.budget()
        try:
            values = await guard.call(budget, lambda: self._tokens.read(keys))
            epoch, generation, entry = cast("builtins.list[bytes | None]", values)
        except Busy:
            self._bypassed += 1
            return await load()
        except FAILURES as exc:
            guard.fail(exc)
            return await load()
        epoch, generation = epoch or b"", generation or b""
        payload = Tokens.unwrap(entry, epoch, generation)
        if payload is not None:
            try:
                value = decode(payload)
            except ValueError:
                guard.errors += 1  # an unreadable entry is a miss, then replaced
            else:
                self._hits += 1
                return value
        self._misses += 1
        if not (epoch and generation):
            # Nobody claimed this entry yet: claim it before reading the store,
            # so that a write from now on changes a token this reader holds.
            try:
                claimed = await guard.call(
                    budget, lambda: self._tokens.claim(keys, generation_ttl_ms)
                )
            except Busy:
                claimed = None
            except FAILURES as exc:
                guard.fail(exc)
                claimed = None
            if not claimed:
                self._bypassed += 1  # no claim (the memory budget is spent): read through
                return await load()
            epoch, generation = claimed
        return await self._flights.run(
            (kind, keys.entry, epoch, generation),
            lambda: self._load_and_fill(
                keys, (epoch, generation), load, encode, ttl_ms, generation_ttl_ms, budget
            ),
        )

    async def _load_and_fill(
        self,
        keys: Keys,
        seen: tuple[bytes, bytes],
        load: Callable[[], Awaitable[T]],
        encode: Callable[[T], bytes],
        ttl_ms: int,
        generation_ttl_ms: int,
        budget: Budget,
    ) -> T:
        value = await load()
        guard = self._guard
        if guard.is_open:
            return value
        payload = encode(value)
        try:
            await guard.call(
                budget,
                lambda: self._tokens.fill(keys, seen, payload, ttl_ms, generation_ttl_ms),
            )
        except Busy:
            pass  # a later reader fills it
        except FAILURES as exc:
            guard.fail(exc)
        return value


def _encode_event(event: Event | None) -> bytes:
    return _NONE if event is None else event.model_dump_json().encode()


def _decode_event(payload: bytes) -> Event | None:
    return None if payload == _NONE else Event.model_validate_json(payload)


def _encode_stats(stats: EventStats) -> bytes:
    return stats.model_dump_json().encode()


def _same(payload: bytes) -> bytes:
    return payload


async def _load_json(load: Awaitable[T], encode: Callable[[T], bytes]) -> bytes:
    return encode(await load)
