"""The generation-token protocol: key names, the fill script and the invalidation script.

Correctness rests on tokens kept in Redis:

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
  again the epoch gets a new token, which orphans every older entry.

Tokens are random rather than counters, so a generation key that expires or is
evicted can never come back with a value an old entry still carries.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sysevents.model import Event, EventStats
from sysevents.query import EventFilter

if TYPE_CHECKING:
    from redis.asyncio import Redis

CACHE_FORMAT = 1
"""Version of the layout of keys and values; bump it when either changes."""

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
def model_fingerprint() -> str:
    """A digest of the cached models' schemas: another model version, another namespace."""
    schemas = [Event.model_json_schema(), EventStats.model_json_schema()]
    text = json.dumps(schemas, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


_NO_FILTER = EventFilter().filter_key()


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
    """The keys and scripts of one cache namespace ``{prefix}:c{format}-{version}``."""

    def __init__(self, redis: Redis, prefix: str, version: str | None = None) -> None:
        self.namespace = f"{prefix}:c{CACHE_FORMAT}-{version or model_fingerprint()}"
        self.epoch_key = f"{self.namespace}:epoch"
        self.stats_generation_key = f"{self.namespace}:stats:gen"
        self._redis = redis
        self._fill = redis.register_script(_FILL)
        self._bump = redis.register_script(_INVALIDATE)

    def event_keys(self, event_id: int) -> Keys:
        """The keys of one event's entry."""
        base = f"{self.namespace}:ev:{event_id}"
        return Keys(f"{base}:gen", base)

    def stats_keys(self, query: EventFilter | None) -> Keys:
        """The keys of the stats entry of ``query``'s filters."""
        digest = _digest(query.filter_key() if query is not None else _NO_FILTER)
        return Keys(self.stats_generation_key, f"{self.namespace}:stats:{digest}")

    def read(self, keys: Keys) -> Awaitable[Any]:
        """The epoch, the generation and the entry, in one round trip."""
        return self._redis.mget(self.epoch_key, keys.generation, keys.entry)

    def fill(
        self,
        keys: Keys,
        seen: tuple[bytes, bytes],
        payload: bytes,
        ttl_ms: int,
        generation_ttl_ms: int,
    ) -> Awaitable[Any]:
        """Store ``payload`` if the epoch and generation are still those ``seen``."""
        args: list[bytes | int] = [*seen, token(), token(), payload, ttl_ms, generation_ttl_ms]
        return self._fill(keys=[self.epoch_key, keys.generation, keys.entry], args=args)

    def bump(self, ids: Sequence[int], generation_ttl_ms: int) -> Awaitable[Any]:
        """Give the events of ``ids`` and the stats new generations."""
        keys = [self.event_keys(i).generation for i in ids]
        keys.append(self.stats_generation_key)
        return self._bump(keys=keys, args=[token(), generation_ttl_ms])

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
