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

if TYPE_CHECKING:
    from .access import Counter

WINDOW_SECONDS: dict[RateUnit, int] = {"second": 1, "minute": 60, "hour": 3600}


class RateLimit:
    """``limit`` requests per ``unit`` for each caller, counted by ``counter()``."""

    def __init__(self, limit: int, unit: RateUnit, counter: Callable[[], Counter]) -> None:
        self.limit = limit
        self.seconds = WINDOW_SECONDS[unit]
        self._counter = counter
        self.policy = f'"default";q={limit};w={self.seconds}'

    async def check(self, identifier: str) -> list[tuple[bytes, bytes]]:
        """Count a request of ``identifier``; the headers its answer carries, or a 429."""
        now = time.time()
        window = int(now // self.seconds)
        count = await self._counter().count(identifier, window, self.seconds)
        reset = max(1, int((window + 1) * self.seconds - now + 0.999))
        left = f'"default";r={max(0, self.limit - count)};t={reset}'
        if count > self.limit:
            raise TooManyRequestsException(
                detail=f"more than {self.limit} requests in {self.seconds} s; "
                f"try again in {reset} s",
                headers={
                    "RateLimit-Policy": self.policy,
                    "RateLimit": left,
                    "Retry-After": str(reset),
                },
            )
        return [(b"ratelimit-policy", self.policy.encode()), (b"ratelimit", left.encode())]
