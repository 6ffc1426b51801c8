"""Who is calling, and may they: API keys on every request, a scope on every route.

:class:`AccessMiddleware` counts every request against its client address,
reads the key (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``) of a
request to a protected route, checks the route's scope (its ``opt``), counts
the request against the caller's limits, and puts the :class:`Caller` in the
request's state, all in one layer. No key, or an
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
from sysevents.positions import POSITION_HEADER, Positions, lsn_text, track

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.types import ASGIApp, Message, Receive, Send
    from litestar.types import Scope as AsgiScope

    from .service import Service

SCOPE_OPT = "sysevents_scope"
"""The route option naming the scope a route needs (absent: the route is open)."""
STREAM_OPT = "sysevents_stream"
"""The route option of the live stream: it holds one of its caller's streams, not a read."""
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
    """The one layer in front of every route: who calls, may they, how often.

    Every request is first counted against its client address's budget (429).
    For a route with a scope (its ``opt``) it then authenticates the caller
    (401), checks the key has the scope (403), counts the request against the
    caller's rate limit (429, else the ``RateLimit`` headers on the answer),
    holds one of the caller's streams or reads for as long as the answer lasts
    (429 past the cap) and leaves the :class:`Caller` in the request's state.
    """

    def __init__(self, service: Callable[[], Service]) -> None:
        self._service = service

    async def handle(
        self, scope: AsgiScope, receive: Receive, send: Send, next_app: ASGIApp
    ) -> None:
        """Check the caller, then go on."""
        service = self._service()
        quotas = service.quotas
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if quotas.address is not None:
            await quotas.address.check("address:" + address)
        handler = scope.get("route_handler")
        needed = handler.opt.get(SCOPE_OPT) if handler is not None else None
        if needed is None:
            await next_app(scope, receive, send)
            return
        access = service.access
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
            access.failed(address, exc.reason, exc.key_id)
            raise
        if caller.key is not None and needed not in caller.key.scopes:
            raise ForbiddenError(needed)
        scope.setdefault("state", {})[STATE_KEY] = caller
        identifier = budget_of(caller, address)
        limits: list[tuple[bytes, bytes]] = []
        if quotas.rate is not None:
            limits = await quotas.rate.check(identifier)
        answer: Send = send
        if limits:

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *limits]
                await send(message)

            answer = send_with_headers
        if service.replicated:
            answer = with_position(answer, track(headers.get(POSITION_HEADER)))
        if handler.opt.get(STREAM_OPT):
            with access.holding("stream", identifier, quotas.streams):
                await next_app(scope, receive, answer)
        elif needed == "read":
            with access.holding("read", identifier, quotas.reads):
                await next_app(scope, receive, answer)
        else:
            await next_app(scope, receive, answer)


def with_position(send: Send, positions: Positions) -> Send:
    """``send``, adding ``Sysevents-Position`` to an answer whose request wrote."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and positions.written is not None:
            header = (_POSITION, lsn_text(positions.written).encode())
            message["headers"] = [*message.get("headers", ()), header]
        await send(message)

    return sending


_POSITION = POSITION_HEADER.lower().encode()


def caller_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    """The caller :class:`AccessMiddleware` found for this request (anonymous on open routes)."""
    caller = connection.scope.get("state", {}).get(STATE_KEY)
    return caller if isinstance(caller, Caller) else Caller(None)


def budget_of(caller: Caller, address: str) -> str:
    """Whose budget a request counts against: its key's, or (no key) its address's."""
    if caller.key is not None:
        return "key:" + caller.key.key_id
    return "addr:" + address


def request_budget(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The budget of a request :class:`AccessMiddleware` let through."""
    client = connection.scope.get("client")
    return budget_of(caller_of(connection), client[0] if client else "unknown")
