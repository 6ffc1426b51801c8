"""Rate limits per API key (per client address when auth is off), shared by replicas via Redis.

A fixed window per key: each request adds one to the counter of the current
window, and past the limit the answer is a 429 with ``Retry-After`` (seconds
until the window ends) and the ``RateLimit-Policy`` and ``RateLimit`` headers
of the IETF draft; allowed answers carry ``RateLimit`` too.

Litestar's own ``RateLimitMiddleware`` reads a key's whole history, changes it
and writes it back: two replicas reading at once both let a request through.
The counter (``sysevents_http.access``) is one atomic ``INCR`` in Redis (or in
memory without Redis), so replicas share one budget exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware

from sysevents.settings import RateUnit

from .auth import STATE_KEY, Caller

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from .access import Counter

WINDOW_SECONDS: dict[RateUnit, int] = {"second": 1, "minute": 60, "hour": 3600}


class RateLimitMiddleware(ASGIMiddleware):
    """Counts the requests to protected routes of each caller; past the limit, a 429."""

    def __init__(self, limit: int, unit: RateUnit, counter: Callable[[], Counter]) -> None:
        self.limit = limit
        self.seconds = WINDOW_SECONDS[unit]
        self._counter = counter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count this request; refuse it past the limit, else add the headers to its answer."""
        state = scope.get("state", {})
        caller = state.get(STATE_KEY)
        if caller is None:  # an open route: health checks are never limited
            await next_app(scope, receive, send)
            return
        identifier = _identifier(caller, scope)
        now = time.time()
        window = int(now // self.seconds)
        count = await self._counter().count(identifier, window, self.seconds)
        reset = max(1, int((window + 1) * self.seconds - now + 0.999))
        headers = {
            "RateLimit-Policy": f'"default";q={self.limit};w={self.seconds}',
            "RateLimit": f'"default";r={max(0, self.limit - count)};t={reset}',
        }
        if count > self.limit:
            raise TooManyRequestsException(
                detail=f"more than {self.limit} requests in {self.seconds} s; "
                f"try again in {reset} s",
                headers={**headers, "Retry-After": str(reset)},
            )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                target = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    target[name] = value
            await send(message)

        await next_app(scope, receive, send_with_headers)


def _identifier(caller: Caller, scope: Scope) -> str:
    if caller.key is not None:
        return "key:" + caller.key.key_id
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")
