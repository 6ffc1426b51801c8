"""The generation-token protocol: key names, and the scripts that claim, fill and invalidate.

Correctness rests on tokens kept in Redis:

* every cached value is stored together with the *epoch* token (one key for
  the whole namespace) and the *generation* token (one key per event, one for
  all stats) that were current when the reader looked, **before** it read the
  inner store; a reader that finds no generation key *claims* one (creates it
  with a fresh token) before it reads the store;
* a reader fills the cache only through a script that checks both tokens are
  still the ones it saw, so a slow reader cannot store a value older than a
  write that has already invalidated;
* a write invalidates **after** the inner store committed, by giving the
  event's generation and the stats generation new random tokens, where such
  keys exist: a generation nobody claimed guards no reader, so writes create
  no key for data nobody has read;
* a write that could not reach Redis is remembered; before the cache is used
  again the epoch gets a new token, which orphans every older entry.

Tokens are random rather than counters, so a generation key that expires or is
evicted can never come back with a value an old entry still carries.

Memory is bounded: every key the scripts create is charged, in bytes, to a
budget per window of Redis time; past ``max_bytes / 2`` in a window nothing
more is written until the next one. Every key lives at most one window, so
the cache never holds more than ``max_bytes`` however many distinct queries
arrive.

Every key of a namespace starts with the namespace in braces, a Redis Cluster
hash tag: the keys a read, a script or an invalidation touches together are
all in one slot, so the protocol is the same on one server and on a cluster.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sysevents.model import Event, EventStats, Severity
from sysevents.query import EventFilter
from sysevents.rules import MAX_FUTURE

if TYPE_CHECKING:
    from .client import RedisClient

CACHE_FORMAT = 3
"""Version of the layout of keys and values; bump it when either changes."""

KEY_COST = 128
"""Bytes charged for each key written, beside its value: Redis's own overhead."""
VALUE_COST = 1.25
"""Bytes charged per byte of a value: Redis's allocator rounds a large value up to
its next size class, up to a quarter more (seen: 2.38 MB held under a 2 MB budget)."""

# Charges ARGV[cost] to the budget of the current window (prefix ARGV[base]),
# whose cap is ARGV[base+1] and length ARGV[base+2] ms; false past the cap.
_CHARGE = """
local function charge(base, cost)
  local now = redis.call('TIME')
  local window_ms = tonumber(ARGV[base + 2])
  local window = math.floor((now[1] * 1000 + math.floor(now[2] / 1000)) / window_ms)
  local key = ARGV[base] .. ':' .. window
  local used = redis.call('INCRBY', key, cost)
  if used == cost then
    redis.call('PEXPIRE', key, 2 * window_ms)
  end
  return used <= tonumber(ARGV[base + 1])
end
"""

# KEYS: epoch, generation.  ARGV: fresh tokens for either, generation TTL (ms,
# 0 = none), then the budget (prefix, cap, window). Returns {epoch, generation},
# creating what is absent, or false when the budget is spent.
_CLAIM = (
    _CHARGE
    + """
local epoch = redis.call('GET', KEYS[1])
local gen = redis.call('GET', KEYS[2])
if epoch and gen then
  return {epoch, gen}
end
if not charge(4, """
    + str(2 * KEY_COST)
    + """) then
  return false
end
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
if not gen then
  gen = ARGV[2]
  if tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[2], gen, 'PX', ARGV[3])
  else
    redis.call('SET', KEYS[2], gen)
  end
end
return {epoch, gen}
"""
)

# KEYS: epoch, generation, entry.  ARGV: epoch seen, generation seen, payload,
# entry TTL (ms), generation TTL (ms, 0 = leave as is), then the budget.
_FILL = (
    _CHARGE
    + """
local epoch = redis.call('GET', KEYS[1]) or ''
local gen = redis.call('GET', KEYS[2]) or ''
if epoch ~= ARGV[1] or gen ~= ARGV[2] then
  return 0
end
if not charge(6, math.ceil(string.len(ARGV[3]) * """
    + str(VALUE_COST)
    + """) + """
    + str(KEY_COST)
    + """) then
  return 0
end
local ttl = tonumber(ARGV[4])
local gen_ttl = tonumber(ARGV[5])
if gen_ttl > 0 and redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], gen_ttl)
end
redis.call('SET', KEYS[3], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3], 'PX', ttl)
return 1
"""
)

# KEYS: event generations..., then the stats generation.  ARGV: a fresh token
# (one for all: each key only needs a value no older entry carries). Only keys
# that exist change: one that does not guards no entry and no reader.
_INVALIDATE = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1], 'XX', 'KEEPTTL')
end
return #KEYS
"""


@functools.cache
def model_fingerprint() -> str:
    """A digest of the cached models' schemas: another model version, another namespace."""
    schemas = [Event.model_json_schema(), EventStats.model_json_schema()]
    text = json.dumps(schemas, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


_ALL = sorted(Severity)


def cache_filter(query: EventFilter | None) -> EventFilter:
    """The filters of ``query`` in a canonical form, where that changes no answer.

    Severities are spelled as the one list they allow (all five: none), and
    an ``until`` beyond any event's possible time is no bound. Equal answers
    then share one entry.
    """
    if query is None:
        return EventFilter()
    severities = query.severities()
    until = query.until
    if until is not None and until > datetime.now(UTC) + MAX_FUTURE:
        until = None  # no event can be that late: a timestamp is at most a day ahead
    # A copy, so that every other filter (written_by, any added later) stays in the key.
    return query.model_copy(
        update={
            "event_type": sorted(set(query.event_type)) if query.event_type is not None else None,
            "severity": None if severities is None or sorted(severities) == _ALL else severities,
            "min_severity": None,
            "until": until,
        }
    )


@functools.lru_cache(maxsize=1024)
def _digest(filter_key: str) -> str:
    """The stats entry's name for a filter: dashboards ask for the same few again and again."""
    return hashlib.sha256(filter_key.encode()).hexdigest()[:32]


def token() -> bytes:
    """A fresh random token."""
    return secrets.token_hex(8).encode()


@dataclass(frozen=True, slots=True)
class Keys:
    """The generation key that guards an entry, and the entry's own key."""

    generation: str
    entry: str


class Tokens:
    """The keys and scripts of one cache namespace ``{<prefix>:c<format>-<version>}``.

    The braces are the namespace's hash tag (see the module): on a Redis
    Cluster all of its keys live in one slot.

    ``max_bytes`` bounds the memory of everything the scripts write, counted
    over windows of ``window_ms`` (at least the longest life of any key).
    """

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        version: str | None = None,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        window_ms: int = 600_000,
    ) -> None:
        self.namespace = "{" + f"{prefix}:c{CACHE_FORMAT}-{version or model_fingerprint()}" + "}"
        self.epoch_key = f"{self.namespace}:epoch"
        self.stats_generation_key = f"{self.namespace}:stats:gen"
        self._budget: list[bytes | int] = [
            f"{self.namespace}:budget".encode(),
            max(1, max_bytes // 2),
            window_ms,
        ]
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._fill = redis.register_script(_FILL)
        self._bump = redis.register_script(_INVALIDATE)

    def event_keys(self, event_id: int) -> Keys:
        """The keys of one event's entry."""
        base = f"{self.namespace}:ev:{event_id}"
        return Keys(f"{base}:gen", base)

    def stats_keys(self, query: EventFilter | None) -> Keys:
        """The keys of the stats entry of ``query``'s filters (see :func:`cache_filter`)."""
        digest = _digest(cache_filter(query).filter_key())
        return Keys(self.stats_generation_key, f"{self.namespace}:stats:{digest}")

    def read(self, keys: Keys) -> Awaitable[Any]:
        """The epoch, the generation and the entry, in one round trip."""
        return self._redis.mget(self.epoch_key, keys.generation, keys.entry)

    def claim(self, keys: Keys, generation_ttl_ms: int) -> Awaitable[Any]:
        """``[epoch, generation]``, creating those that are absent; ``None`` past the budget."""
        args: list[bytes | int] = [token(), token(), generation_ttl_ms, *self._budget]
        return self._claim(keys=[self.epoch_key, keys.generation], args=args)

    def fill(
        self,
        keys: Keys,
        seen: tuple[bytes, bytes],
        payload: bytes,
        ttl_ms: int,
        generation_ttl_ms: int,
    ) -> Awaitable[Any]:
        """Store ``payload`` if the epoch and generation are still those ``seen``."""
        args: list[bytes | int] = [*seen, payload, ttl_ms, generation_ttl_ms, *self._budget]
        return self._fill(keys=[self.epoch_key, keys.generation, keys.entry], args=args)

    def bump(self, ids: Sequence[int]) -> Awaitable[Any]:
        """Give the events of ``ids`` and the stats new generations (those that exist)."""
        keys = [self.event_keys(i).generation for i in ids]
        keys.append(self.stats_generation_key)
        return self._bump(keys=keys, args=[token()])

    def probe(self) -> Awaitable[Any]:
        """A read of the epoch key: answered by the node that holds the namespace."""
        return self._redis.exists(self.epoch_key)

    def new_epoch(self) -> Awaitable[Any]:
        """Give the epoch a new token, orphaning every entry."""
        return self._redis.set(self.epoch_key, token())

    @staticmethod
    def unwrap(entry: bytes | None, epoch: bytes, generation: bytes) -> bytes | None:
        """The payload of ``entry`` if it carries the current tokens, else ``None``."""
        if entry is None or not epoch:
            return None
        parts = entry.split(b"|", 2)
        if len(parts) == 3 and parts[0] == epoch and parts[1] == generation:
            return parts[2]
        return None
