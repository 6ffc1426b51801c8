"""A Redis cache in front of any event repository.

Single events and stats are cached; listings are not. Correctness rests on
generation tokens kept in Redis:

* every cached value is stored together with the *epoch* token (one key for
  the whole namespace) and the *generation* token (one key per event, one for
  all stats) that were current when the reader looked, **before** it read the
  inner store;
* a reader fills the cache only through a script that checks both tokens are
  still the ones it saw, so a slow reader cannot store a value older than a
  write that has already invalidated;
* a write invalidates **after** the inner store committed, by giving the
  event's generation and the stats generation new random tokens;
* a write that could not reach Redis is remembered; before the cache is used
  again the epoch gets a new token, which orphans every older entry. Until
  that succeeds the cache is bypassed.

Tokens are random rather than counters, so a generation key that expires or is
evicted can never come back with a value an old entry still carries.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from pydantic import BaseModel
from redis.exceptions import RedisError

from ._base import Lifecycle
from .errors import InvalidEventError, NotFoundError
from .model import (
    MAX_EVENT_ID,
    Event,
    EventFilter,
    EventPage,
    EventPatch,
    EventQuery,
    EventStats,
    NewEvent,
)
from .repository import EventRepository

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .settings import Settings

__all__ = ["CACHE_FORMAT", "CacheStats", "CachedEventRepository", "cache_client"]

logger = logging.getLogger("sysevents.cache")

CACHE_FORMAT = 1
"""Version of the layout of keys and values; bump it when either changes."""

T = TypeVar("T")

_FAILURES = (RedisError, OSError, TimeoutError)
_NONE = b"-"  # the payload of a cached "no such event"
_IDS_PER_SCRIPT = 1000

# KEYS: epoch, generation, entry.  ARGV: epoch seen, generation seen (both ""
# when absent), fresh tokens for either if absent, payload, entry TTL (ms),
# generation TTL (ms, 0 = leave as is).
_FILL = """
local epoch = redis.call('GET', KEYS[1])
local gen = redis.call('GET', KEYS[2])
if (epoch or '') ~= ARGV[1] or (gen or '') ~= ARGV[2] then
  return 0
end
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[1], epoch)
end
if not gen then
  gen = ARGV[4]
  redis.call('SET', KEYS[2], gen)
end
local ttl = tonumber(ARGV[6])
local gen_ttl = tonumber(ARGV[7])
if gen_ttl > 0 and redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], gen_ttl)
end
redis.call('SET', KEYS[3], epoch .. '|' .. gen .. '|' .. ARGV[5], 'PX', ttl)
return 1
"""

# KEYS: event generations..., then the stats generation.  ARGV: a fresh token
# (one for all: each key only needs a value no older entry carries), the TTL
# of event generations (ms). One script is one round trip and far less client
# work than a pipeline.
_INVALIDATE = """
local last = #KEYS
for i = 1, last - 1 do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
end
redis.call('SET', KEYS[last], ARGV[1])
return last
"""


@functools.cache
def _model_fingerprint() -> str:
    schemas = [Event.model_json_schema(), EventStats.model_json_schema()]
    text = json.dumps(schemas, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


_NO_FILTER = EventFilter().filter_key()


@functools.lru_cache(maxsize=1024)
def _digest(filter_key: str) -> str:
    """The stats entry's name for a filter: dashboards ask for the same few again and again."""
    return hashlib.sha256(filter_key.encode()).hexdigest()[:32]


def _token() -> bytes:
    return secrets.token_hex(8).encode()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one cached repository since it was created."""

    hits: int
    misses: int
    errors: int
    bypassed: int
    """Calls served without Redis because the breaker was open."""
    coalesced: int
    """Misses that waited for another caller's load instead of querying."""
    breaker: Literal["closed", "open"]
    """``open`` while Redis is being skipped after a failure."""


class _Busy(TimeoutError):
    """Every Redis slot is in use."""


class _Budget:
    """How much Redis time one call may still spend."""

    __slots__ = ("left",)

    def __init__(self, seconds: float) -> None:
        self.left = seconds


@dataclass(frozen=True, slots=True)
class _Keys:
    generation: str
    entry: str


class CachedEventRepository(Lifecycle):
    """An :class:`EventRepository` that caches events and stats in Redis.

    Redis failures never reach the caller: the Redis commands of one call may
    take ``call_budget`` seconds in all, and one of them at most
    ``command_timeout`` (if set; ``from_settings`` sets it to
    ``Settings.cache_timeout``); a failure opens a circuit breaker that skips Redis until a
    probe every ``cooldown`` seconds succeeds, and is logged once per outage on
    the ``sysevents.cache`` logger. At most ``max_concurrency`` commands (and
    never more than the client's connection pool holds) run at once.
    """

    def __init__(
        self,
        inner: EventRepository,
        redis: Redis,
        *,
        prefix: str = "sysevents",
        event_ttl: float = 300.0,
        stats_ttl: float = 30.0,
        call_budget: float = 0.2,
        command_timeout: float | None = None,
        cooldown: float = 1.0,
        max_concurrency: int = 32,
        version: str | None = None,
    ) -> None:
        self.inner = inner
        self.redis = redis
        self._event_ttl_ms = max(1, round(event_ttl * 1000))
        self._stats_ttl_ms = max(1, round(stats_ttl * 1000))
        self._budget = call_budget
        self.command_timeout = command_timeout
        self._cooldown = cooldown
        ns = f"{prefix}:c{CACHE_FORMAT}-{version or _model_fingerprint()}"
        self.namespace = ns
        self._epoch_key = f"{ns}:epoch"
        self._stats_generation_key = f"{ns}:stats:gen"
        self._fill = redis.register_script(_FILL)
        self._bump = redis.register_script(_INVALIDATE)
        pool_size = getattr(redis.connection_pool, "max_connections", None)
        if isinstance(pool_size, int):
            max_concurrency = min(max_concurrency, pool_size)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._flights: dict[tuple[str, str, bytes, bytes], asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Invalidations waiting for the next script; one runs at a time.
        self._bump_ids: builtins.list[int] = []
        self._bump_next: asyncio.Future[None] | None = None
        self._bump_task: asyncio.Task[None] | None = None
        self._repair_task: asyncio.Task[None] | None = None
        self._breaker_open = False
        self._missed = 0  # invalidations that did not reach Redis since the last epoch
        self._closed = False
        self._hits = self._misses = self._errors = self._bypassed = self._coalesced = 0

    @classmethod
    def from_settings(cls, inner: EventRepository, settings: Settings) -> CachedEventRepository:
        """Wrap ``inner`` with a client for ``settings.redis_url`` (see :func:`cache_client`)."""
        if not settings.redis_url:
            raise ValueError("settings.redis_url is not set")
        return cls(
            inner,
            cache_client(settings.redis_url, timeout=settings.cache_timeout),
            prefix=settings.cache_prefix,
            command_timeout=settings.cache_timeout,
            event_ttl=settings.cache_event_ttl,
            stats_ttl=settings.cache_stats_ttl,
        )

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Open the inner repository; Redis is connected lazily."""
        self._closed = False
        await self.inner.open()

    async def close(self) -> None:
        """Close the inner repository and the Redis client; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        runner = self._bump_task
        if runner is not None:
            # Writers that committed wait for these: let them go out (each
            # script is bounded by the call budget), then give up on the rest.
            await asyncio.wait({runner}, timeout=4 * self._budget)
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            self._bump_task = None
        self._abandon_invalidations()
        pending = [*self._tasks, *self._flights.values()]
        if self._repair_task is not None:
            pending.append(self._repair_task)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._repair_task = None
        try:
            await self.inner.close()
        finally:
            await self.redis.aclose()

    def cache_stats(self) -> CacheStats:
        """The cache counters and the breaker state."""
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            errors=self._errors,
            bypassed=self._bypassed,
            coalesced=self._coalesced,
            breaker="open" if self._breaker_open else "closed",
        )

    # -- reads -------------------------------------------------------------------

    async def get(self, event_id: int) -> Event | None:
        """The event, from the cache when it holds the current version."""
        if not 0 < event_id <= MAX_EVENT_ID:
            return await self.inner.get(event_id)
        return await self._read(
            self._event_keys(event_id),
            lambda: self.inner.get(event_id),
            _encode_event,
            _decode_event,
            self._event_ttl_ms,
            2 * self._event_ttl_ms,
        )

    async def get_json(self, event_id: int) -> bytes | None:
        """What ``get`` returns, as the JSON of ``Event.model_dump_json()``; ``None`` if missing.

        A hit returns the cached bytes as they are, without building an ``Event``:
        the fast path for a service that sends the event on.
        """
        if not 0 < event_id <= MAX_EVENT_ID:
            event = await self.inner.get(event_id)
            return None if event is None else _encode_event(event)
        payload = await self._read(
            self._event_keys(event_id),
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
            self._stats_keys(query),
            lambda: self.inner.stats(query),
            _encode_stats,
            EventStats.model_validate_json,
            self._stats_ttl_ms,
            0,
        )

    async def stats_json(self, query: EventFilter | None = None) -> bytes:
        """What ``stats`` returns, as the JSON of ``EventStats.model_dump_json()``."""
        return await self._read(
            self._stats_keys(query),
            lambda: _load_json(self.inner.stats(query), _encode_stats),
            _same,
            _same,
            self._stats_ttl_ms,
            0,
            kind="json",
        )

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """A page, always from the inner repository."""
        return await self.inner.list(query)

    async def ping(self) -> None:
        """Check the inner store; the cache being down is not the store being down."""
        await self.inner.ping()

    # -- writes ------------------------------------------------------------------

    async def add(self, new: NewEvent) -> Event:
        """Store one event, then invalidate its id (it may be cached as missing)."""
        event = await self._write(self.inner.add(new), None)
        await self._invalidate([event.id])
        return event

    async def add_many(self, news: Sequence[NewEvent]) -> builtins.list[Event]:
        """Store several events, then invalidate their ids."""
        events = await self._write(self.inner.add_many(news), None)
        await self._invalidate([e.id for e in events])
        return events

    async def update(self, event_id: int, patch: EventPatch) -> Event:
        """Change the event, then invalidate it and all stats."""
        event = await self._write(self.inner.update(event_id, patch), [event_id])
        await self._invalidate([event_id])
        return event

    async def delete(self, event_id: int) -> None:
        """Remove the event, then invalidate it and all stats."""
        await self._write(self.inner.delete(event_id), [event_id])
        await self._invalidate([event_id])

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
                self._queue_invalidation(ids)
            else:
                self._spawn(self._invalidate_all())
            raise

    # -- the cache machinery -------------------------------------------------------

    def _event_keys(self, event_id: int) -> _Keys:
        base = f"{self.namespace}:ev:{event_id}"
        return _Keys(f"{base}:gen", base)

    def _stats_keys(self, query: EventFilter | None) -> _Keys:
        digest = _digest(query.filter_key() if query is not None else _NO_FILTER)
        return _Keys(self._stats_generation_key, f"{self.namespace}:stats:{digest}")

    async def _read(
        self,
        keys: _Keys,
        load: Callable[[], Awaitable[T]],
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        ttl_ms: int,
        generation_ttl_ms: int,
        *,
        kind: str = "model",
    ) -> T:
        if self._breaker_open:
            self._bypassed += 1
            return await load()
        budget = _Budget(self._budget)
        try:
            values = await self._call(
                budget,
                lambda: self.redis.mget(self._epoch_key, keys.generation, keys.entry),
            )
            epoch, generation, entry = cast("builtins.list[bytes | None]", values)
        except _Busy:
            self._bypassed += 1
            return await load()
        except _FAILURES as exc:
            self._fail(exc)
            return await load()
        epoch, generation = epoch or b"", generation or b""
        if entry is not None:
            parts = entry.split(b"|", 2)
            if len(parts) == 3 and epoch and parts[0] == epoch and parts[1] == generation:
                try:
                    value = decode(parts[2])
                except ValueError:
                    self._errors += 1  # an unreadable entry is a miss, then replaced
                else:
                    self._hits += 1
                    return value
        self._misses += 1
        # Callers that saw the same tokens may share one load: any write that
        # returned before they looked had already changed the tokens.
        flight_key = (kind, keys.entry, epoch, generation)
        flight = self._flights.get(flight_key)
        if flight is None:
            flight = asyncio.ensure_future(
                self._load_and_fill(
                    keys, epoch, generation, load, encode, ttl_ms, generation_ttl_ms, budget
                )
            )
            self._flights[flight_key] = flight
            flight.add_done_callback(lambda f: self._land(flight_key, f))
            result: T = await asyncio.shield(flight)
            return result
        self._coalesced += 1
        shared: T = await asyncio.shield(flight)
        # Waiters share the loaded object: each gets its own copy of its mutable parts.
        return shared.model_copy(deep=True) if isinstance(shared, BaseModel) else shared

    def _land(self, key: tuple[str, str, bytes, bytes], flight: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved, even if every waiter was cancelled

    async def _load_and_fill(
        self,
        keys: _Keys,
        epoch: bytes,
        generation: bytes,
        load: Callable[[], Awaitable[T]],
        encode: Callable[[T], bytes],
        ttl_ms: int,
        generation_ttl_ms: int,
        budget: _Budget,
    ) -> T:
        value = await load()
        if self._breaker_open:
            return value
        args: builtins.list[bytes | int] = [
            epoch,
            generation,
            _token(),
            _token(),
            encode(value),
            ttl_ms,
            generation_ttl_ms,
        ]
        try:
            await self._call(
                budget,
                lambda: self._fill(keys=[self._epoch_key, keys.generation, keys.entry], args=args),
            )
        except _Busy:
            pass  # a later reader fills it
        except _FAILURES as exc:
            self._fail(exc)
        return value

    async def _invalidate(self, ids: Sequence[int]) -> None:
        """Give each event and the stats new generations, after a committed write.

        The ids are queued before anything is awaited, so a caller cancelled
        now still has them invalidated.
        """
        await asyncio.shield(self._queue_invalidation(ids))

    def _queue_invalidation(self, ids: Sequence[int]) -> asyncio.Future[None]:
        """Queue ``ids`` for the next invalidation script; its future ends when it has run.

        Writers that finish while a script is on its way share the next one:
        under concurrent writes that is one round trip for many of them, and
        each one's script still starts after its commit.
        """
        future = self._bump_next
        if future is None:
            future = self._bump_next = asyncio.get_running_loop().create_future()
        self._bump_ids.extend(ids)
        if self._bump_task is None:
            self._bump_task = asyncio.get_running_loop().create_task(self._run_invalidations())
        return future

    async def _run_invalidations(self) -> None:
        """Send queued invalidations, one script at a time, until none are left."""
        try:
            while self._bump_next is not None:
                # One turn of the loop lets writers resumed in the same turn join.
                await asyncio.sleep(0)
                future, ids = self._bump_next, self._bump_ids
                self._bump_next, self._bump_ids = None, []
                try:
                    await self._send_invalidation(ids)
                except asyncio.CancelledError:
                    # Closed mid-script: the writers must not return as if it had run.
                    future.cancel()
                    raise
                except Exception as exc:  # not Redis's failure, but still a missed one
                    self._missed += 1
                    self._fail(exc)
                future.set_result(None)
        finally:
            self._bump_task = None

    def _abandon_invalidations(self) -> None:
        """Fail the writers still waiting for a script that will not run (on close)."""
        future, self._bump_next, self._bump_ids = self._bump_next, None, []
        if future is not None and not future.done():
            future.cancel()

    async def _send_invalidation(self, ids: Sequence[int]) -> None:
        """One script giving ``ids`` and the stats new tokens; remember it on failure."""
        if self._breaker_open:
            self._missed += 1
            return
        args: builtins.list[bytes | int] = [_token(), 2 * self._event_ttl_ms]
        # Scripts of bounded size, so that many writers' ids fit in the time a command has.
        for start in range(0, max(len(ids), 1), _IDS_PER_SCRIPT):
            keys = [self._event_keys(i).generation for i in ids[start : start + _IDS_PER_SCRIPT]]
            keys.append(self._stats_generation_key)
            try:
                await self._call(
                    _Budget(self._budget), functools.partial(self._bump, keys=keys, args=args)
                )
            except _FAILURES as exc:
                self._missed += 1
                self._fail(exc)
                return

    async def _invalidate_all(self) -> None:
        """Give the epoch a new token, orphaning every entry."""
        if self._breaker_open:
            self._missed += 1
            return
        try:
            await self._call(
                _Budget(self._budget), lambda: self.redis.set(self._epoch_key, _token())
            )
        except _FAILURES as exc:
            self._missed += 1
            self._fail(exc)

    async def _call(self, budget: _Budget, command: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis command within ``command_timeout`` and what is left of the budget.

        At most ``max_concurrency`` commands run at once. A caller that cannot
        get a slot within its budget gets ``_Busy``: that is load, not an
        outage, so it must not open the breaker.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            if self._slots.locked():
                try:
                    async with asyncio.timeout(budget.left):
                        await self._slots.acquire()
                except TimeoutError:
                    raise _Busy from None
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

    def _fail(self, exc: BaseException) -> None:
        """Count a Redis failure and open the breaker (warning once per outage)."""
        self._errors += 1
        if self._breaker_open or self._closed:
            return
        self._breaker_open = True
        logger.warning(
            "Redis cache unavailable (%s: %s); serving from the store until it returns",
            type(exc).__name__,
            str(exc) or "no answer in time",
        )
        self._repair_task = asyncio.get_running_loop().create_task(self._repair())

    async def _repair(self) -> None:
        """While the breaker is open, probe Redis every cool-down, then close it.

        If invalidations were missed, the probe is a new epoch, so nothing
        cached before or during the outage is served afterwards.
        """
        while True:
            await asyncio.sleep(self._cooldown)
            missed = self._missed
            try:
                if missed:
                    await self._call(
                        _Budget(self._budget),
                        lambda: self.redis.set(self._epoch_key, _token()),
                    )
                else:
                    await self._call(_Budget(self._budget), self.redis.ping)
            except _FAILURES:
                self._errors += 1
                continue
            if self._missed != missed:
                continue  # a write was skipped while probing: start a new epoch again
            self._missed = 0
            self._breaker_open = False
            self._repair_task = None
            logger.info("Redis cache available again")
            return

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def cache_client(url: str, *, timeout: float = 0.1, max_connections: int = 64) -> Redis:
    """A Redis client for :class:`CachedEventRepository`: fail fast rather than wait.

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
