"""Who is calling, and may they: API keys on every request, a scope on every route.

:class:`KeyAuthMiddleware` reads the key (``Authorization: Bearer <key>`` or
``X-API-Key: <key>``) of a request to a protected route and puts the
:class:`Caller` in the request's state; :func:`scope_guard` then checks the
route's scope (its ``opt["scope"]``). No key, or an unknown, expired or revoked
one, is a 401 (the answer never says which); a valid key without the scope
is a 403. Routes without a scope (health) are open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.datastructures import Headers
from litestar.middleware import ASGIMiddleware

from sysevents import AuthenticationError, ForbiddenError
from sysevents.keys import ApiKey, KeyRing, Scope

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler
    from litestar.types import ASGIApp, Receive, Send
    from litestar.types import Scope as AsgiScope

    from .access import Access

SCOPE_OPT = "sysevents_scope"
"""The route option naming the scope a route needs (absent: the route is open)."""
STATE_KEY = "sysevents_caller"
"""Where the request's state keeps its :class:`Caller`."""
ANONYMOUS = ""
"""The caller without a key (auth off): its idempotency keys are its own too."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: an API key, or nobody (when auth is off)."""

    key: ApiKey | None

    @property
    def name(self) -> str:
        """The key's name; ``""`` for nobody."""
        return self.key.name if self.key is not None else ANONYMOUS

    @property
    def actor(self) -> str:
        """The name the audit trail gives this caller."""
        return self.key.name if self.key is not None else "anonymous"


def presented_key(headers: Any) -> str | None:
    """The key a request carries, if any (bearer token first, then ``X-API-Key``)."""
    authorization = headers.get("authorization")
    if authorization:
        kind, _, token = authorization.partition(" ")
        if kind.lower() == "bearer" and token.strip():
            return str(token.strip())
    key = headers.get("x-api-key")
    return str(key).strip() if key else None


async def authenticate(ring: KeyRing, required: bool, key: str | None) -> Caller:
    """The caller a request's key stands for; ``AuthenticationError`` if it must and does not.

    When keys are not required, a request without a key is anonymous; one
    that presents a key must still present a good one.
    """
    if key is None:
        if required:
            raise AuthenticationError
        return Caller(None)
    found = await ring.authenticate(key)
    if found is None:
        raise AuthenticationError
    return Caller(found)


class KeyAuthMiddleware(ASGIMiddleware):
    """Finds the caller of each request to a protected route (see the module)."""

    def __init__(self, access: Callable[[], Access]) -> None:
        self._access = access

    async def handle(
        self, scope: AsgiScope, receive: Receive, send: Send, next_app: ASGIApp
    ) -> None:
        """Authenticate, then go on; open routes pass untouched."""
        handler = scope.get("route_handler")
        needed = handler.opt.get(SCOPE_OPT) if handler is not None else None
        if needed is not None:
            access = self._access()
            key = presented_key(Headers.from_scope(scope))
            caller = await authenticate(access.keys, await access.required(), key)
            scope.setdefault("state", {})[STATE_KEY] = caller
        await next_app(scope, receive, send)


def caller_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    """The caller :class:`KeyAuthMiddleware` found for this request (anonymous on open routes)."""
    caller = connection.scope.get("state", {}).get(STATE_KEY)
    return caller if isinstance(caller, Caller) else Caller(None)


def scope_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Refuse (403) a caller whose key lacks the scope of the route."""
    needed = handler.opt.get(SCOPE_OPT)
    if needed is None:
        return
    key = caller_of(connection).key
    if key is not None and Scope(needed) not in key.scopes:
        raise ForbiddenError(needed)
