"""Rate limits per API key (per client address when auth is off), shared by replicas via Redis.

A fixed window per key: each request adds one to the counter of the current
window, and past the limit the answer is a 429 with ``Retry-After`` (seconds
until the window ends) and the ``RateLimit-Policy`` and ``RateLimit`` headers
of the IETF draft; allowed answers carry ``RateLimit`` too. The access
middleware (``sysevents_http.auth``) asks :class:`RateLimit` per request.

Litestar's own ``RateLimitMiddleware`` reads a key's whole history, changes it
and writes it back: two replicas reading at once both let a request through.
The counter (``sysevents_http.access``) is one atomic ``INCR`` in Redis (or in
memory without Redis), so replicas share one budget exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from litestar.exceptions import TooManyRequestsException

from sysevents.settings import RateUnit

from .access import MemoryCounter

if TYPE_CHECKING:
    from .access import Counter

WINDOW_SECONDS: dict[RateUnit, int] = {"second": 1, "minute": 60, "hour": 3600}


LEASES_PER_WINDOW = 50
"""Into how many leases a window's budget is cut: a process counts that many requests at a
time in a shared counter (one Redis call per lease), and hands them out itself."""


class RateLimit:
    """``limit`` requests per ``unit`` for each caller, counted by ``counter()``.

    With a shared counter (Redis), a process takes requests in leases of
    ``limit / 50`` (at least one) and hands them out locally, so a request
    costs a Redis call only once per lease; the caller's requests across all
    processes still never exceed the limit (a lease not used up is lost when
    its window ends).
    """

    def __init__(
        self, limit: int, unit: RateUnit, counter: Callable[[], Counter], name: str = "default"
    ) -> None:
        self.limit = limit
        self.seconds = WINDOW_SECONDS[unit]
        self._counter = counter
        self.name = name
        self.policy = f'"{name}";q={limit};w={self.seconds}'
        self._lease_size = max(1, limit // LEASES_PER_WINDOW)
        # identifier -> (window, requests of the lease left, the shared count after the lease)
        self._leases: dict[str, tuple[int, int, int]] = {}

    async def _count(self, identifier: str, window: int) -> int:
        """The caller's count in ``window`` after this request (an estimate within a lease)."""
        counter = self._counter()
        if isinstance(counter, MemoryCounter):  # counting is free here: no leases
            return await counter.count(identifier, window, self.seconds)
        lease = self._leases.get(identifier)
        if lease is not None and lease[0] == window and lease[1] > 0:
            left = lease[1] - 1
            self._leases[identifier] = (window, left, lease[2])
            return lease[2] - left
        size = self._lease_size
        total = await counter.count(identifier, window, self.seconds, size)
        if total == 0:  # the counter failed: let the request through
            return 0
        granted = max(0, min(size, self.limit - (total - size)))
        if len(self._leases) > 10_000:
            self._leases = {k: v for k, v in self._leases.items() if v[0] == window}
        if granted == 0:
            self._leases.pop(identifier, None)
            return total
        self._leases[identifier] = (window, granted - 1, total - size + granted)
        return total - size + 1

    async def check(self, identifier: str) -> list[tuple[bytes, bytes]]:
        """Count a request of ``identifier``; the headers its answer carries, or a 429."""
        now = time.time()
        window = int(now // self.seconds)
        count = await self._count(identifier, window)
        reset = max(1, int((window + 1) * self.seconds - now + 0.999))
        left = f'"{self.name}";r={max(0, self.limit - count)};t={reset}'
        if count > self.limit:
            whose = "from this address" if self.name == "address" else "for this caller"
            raise TooManyRequestsException(
                detail=f"more than {self.limit} requests in {self.seconds} s {whose}; "
                f"try again in {reset} s",
                headers={
                    "RateLimit-Policy": self.policy,
                    "RateLimit": left,
                    "Retry-After": str(reset),
                },
            )
        return [(b"ratelimit-policy", self.policy.encode()), (b"ratelimit", left.encode())]
