"""Who is calling, and may they: API keys on every request, a scope on every route.

:class:`AccessMiddleware` reads the key (``Authorization: Bearer <key>`` or
``X-API-Key: <key>``) of a request to a protected route, checks the route's
scope (its ``opt``), counts the request against the rate limit, and puts the
:class:`Caller` in the request's state, all in one layer. No key, or an
unknown, expired or revoked one, is a 401 (the answer never says which); a
valid key without the scope is a 403. Routes without a scope (health) are open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.datastructures import Headers
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware

from sysevents import AuthenticationError, ForbiddenError
from sysevents.keys import ApiKey, KeyRing, split_key

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.types import ASGIApp, Message, Receive, Send
    from litestar.types import Scope as AsgiScope

    from .access import Access
    from .limits import RateLimit

SCOPE_OPT = "sysevents_scope"
"""The route option naming the scope a route needs (absent: the route is open)."""
KEYED_OPT = "sysevents_keyed"
"""The route option of routes that need a key even when the API requires none (``/api/keys``)."""
STATE_KEY = "sysevents_caller"
"""Where the request's state keeps its :class:`Caller`."""
ANONYMOUS = "anonymous"
"""Who the caller without a key (auth off) is: its events' ``written_by``, and the
owner of its idempotency keys."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: an API key, or nobody (when auth is off)."""

    key: ApiKey | None

    @property
    def id(self) -> str:
        """Who this is for the store: the key's id (never its secret), or ``anonymous``.

        Events it writes carry it as ``written_by``; its idempotency keys, its
        audit records and its rate limit are its own.
        """
        return self.key.key_id if self.key is not None else ANONYMOUS


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
            raise AuthenticationError("missing")
        return Caller(None)
    found, reason = await ring.identify(key)
    if found is None:
        split = split_key(key)
        raise AuthenticationError(reason, split[0] if split else None)
    return Caller(found)


class AccessMiddleware(ASGIMiddleware):
    """The one layer in front of every protected route: who calls, may they, how often.

    For a route with a scope (its ``opt``): authenticates the caller (401),
    checks the key has the scope (403), counts the request against the rate
    limit (429, else the ``RateLimit`` headers on the answer) and leaves the
    :class:`Caller` in the request's state. Open routes pass untouched.
    """

    def __init__(self, access: Callable[[], Access], rate: RateLimit | None) -> None:
        self._access = access
        self._rate = rate

    async def handle(
        self, scope: AsgiScope, receive: Receive, send: Send, next_app: ASGIApp
    ) -> None:
        """Check the caller, then go on."""
        handler = scope.get("route_handler")
        needed = handler.opt.get(SCOPE_OPT) if handler is not None else None
        if needed is None:
            await next_app(scope, receive, send)
            return
        access = self._access()
        headers = Headers.from_scope(scope)
        # The keys themselves never answer an anonymous caller.
        required = bool(handler.opt.get(KEYED_OPT)) or await access.required()
        if not required and not access.host_allowed(headers.get("host")):
            raise PermissionDeniedException(
                detail="this server answers only its own names while it requires no API key: "
                "add the name to allowed_hosts, or create a key"
            )
        try:
            caller = await authenticate(access.keys, required, presented_key(headers))
        except AuthenticationError as exc:
            client = scope.get("client")
            access.failed(client[0] if client else "unknown", exc.reason, exc.key_id)
            raise
        if caller.key is not None and needed not in caller.key.scopes:
            raise ForbiddenError(needed)
        scope.setdefault("state", {})[STATE_KEY] = caller
        if self._rate is None:
            await next_app(scope, receive, send)
            return
        limits = await self._rate.check(_identifier(caller, scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *limits]
            await send(message)

        await next_app(scope, receive, send_with_headers)


def caller_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    """The caller :class:`AccessMiddleware` found for this request (anonymous on open routes)."""
    caller = connection.scope.get("state", {}).get(STATE_KEY)
    return caller if isinstance(caller, Caller) else Caller(None)


def _identifier(caller: Caller, scope: AsgiScope) -> str:
    """Whose budget a request counts against: its key's, or (no key) its address's."""
    if caller.key is not None:
        return "key:" + caller.key.key_id
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")
