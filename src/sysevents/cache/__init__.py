"""The Redis cache over any repository (``pip install "sysevents[redis]"``).

``tokens`` holds the protocol that keeps entries correct, ``guard`` the time
budget, concurrency cap and circuit breaker around Redis, ``invalidation`` the
batched invalidations after writes, and ``repository`` the cache itself.
"""

from sysevents.store import CacheStats

from .client import cache_client
from .repository import CachedEventRepository
from .tokens import CACHE_FORMAT

__all__ = ["CACHE_FORMAT", "CacheStats", "CachedEventRepository", "cache_client"]
