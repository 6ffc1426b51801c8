"""``GET /api/events/stream``: new events as Server-Sent Events, resumable by ``Last-Event-ID``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from sysevents import EventFilter, InvalidEventError, StoreUnavailableError, SyseventsError
from sysevents.keys import ApiKey, KeyRing, Scope
from sysevents.tail import Tailed, TailOverflow
from sysevents_http.auth import SCOPE_OPT, STREAM_OPT, caller_of
from sysevents_http.service import Service

from .params import (
    BAD_REQUEST,
    GUARDED,
    SERVER_ERROR,
    UNAVAILABLE,
    Filters,
    security,
    with_filters,
)

LastEventIdHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        description="The `id` of the last event received: the stream resumes just after it, "
        "with nothing missed or repeated (browsers send it when they reconnect).",
        required=False,
        max_length=64,
    ),
]
LastEventIdParam = Annotated[
    str | None,
    QueryParameter(
        description="The same as the `Last-Event-ID` header, for clients that cannot set it; "
        "the header wins.",
        max_length=64,
    ),
]
Heartbeat = Annotated[
    float,
    QueryParameter(
        description="Seconds between heartbeats (`: heartbeat` comments) while no event comes.",
        ge=1,
        le=300,
    ),
]


@get(
    "/api/events/stream",
    summary="Follow new events",
    description="A `text/event-stream` of each new event matching the filters (the listing's), "
    "once, in the order the store recorded them, whichever replica recorded them. Each event "
    "is one message whose `data` is the event's JSON and whose `id` is its position: "
    "reconnecting with `Last-Event-ID` resumes with no gap and no duplicate. Without it, the "
    "stream starts with the events recorded from now on.",
    responses={**BAD_REQUEST, **GUARDED, **UNAVAILABLE, **SERVER_ERROR},
    opt={SCOPE_OPT: Scope.READ.value, STREAM_OPT: True},
    security=security(Scope.READ),
    tags=["events"],
    media_type="text/event-stream",
)
@with_filters
async def stream_events(
    request: Request[Any, Any, Any],
    service: NamedDependency[Service],
    filters: Filters,
    heartbeat: Heartbeat = 15.0,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdParam = None,
) -> ServerSentEvent:
    """New matching events as they are recorded."""
    query = EventFilter(**filters)
    after = last_event_id_header or last_event_id
    key = caller_of(request).key
    # The stream wakes at least every RECHECK seconds to look at its key again,
    # and when the key expires.
    idle = heartbeat if key is None else min(heartbeat, RECHECK)
    if key is not None and key.expires_at is not None:
        left = (key.expires_at - datetime.now(UTC)).total_seconds()
        idle = max(0.1, min(idle, left))
    try:
        items = service.store.follow(query, after=after, idle=idle)
    except InvalidEventError as exc:
        raise ValidationException(
            detail="invalid Last-Event-ID",
            extra=[{"key": "Last-Event-ID", "message": exc.errors[0]["msg"], "source": "header"}],
        ) from None
    return ServerSentEvent(_messages(items, heartbeat, key, service.access.keys))


_EARLY = timedelta(seconds=0.25)  # timers fire a little early or late: expired is expired
RECHECK = 3.0
"""Seconds at most between two lookups of a stream's key. The key ring remembers a lookup
for two seconds: a key revoked on another replica ends the stream within five."""


@dataclass
class _KeyWatch:
    """When a stream's key stops working: at its expiry, or once a lookup finds it revoked."""

    ring: KeyRing
    key: ApiKey
    checked: float

    async def ended(self, now: float) -> bool:
        """Whether the key expired, or (looked up every ``RECHECK`` s) was revoked."""
        expires = self.key.expires_at
        if expires is not None and datetime.now(UTC) >= expires - _EARLY:
            return True
        if now - self.checked < RECHECK - 0.05:
            return False
        self.checked = now
        try:
            return not await self.ring.still_usable(self.key.key_id)
        except SyseventsError:
            return False  # a store that does not answer revokes nothing: look again later


async def _messages(
    items: AsyncIterator[Tailed],
    heartbeat: float,
    key: ApiKey | None,
    ring: KeyRing,
) -> AsyncIterator[ServerSentEventMessage]:
    # At once, before the first event or heartbeat: the client knows it is live.
    yield ServerSentEventMessage(comment="connected", data=None, sep="\n")
    loop = asyncio.get_running_loop()
    beat = loop.time()
    watch = None if key is None else _KeyWatch(ring, key, beat)
    try:
        async for item in items:
            now = loop.time()
            if watch is not None and await watch.ended(now):
                return  # a revoked or expired key's stream ends here
            if item.event is None:
                if now - beat < heartbeat - 0.05:
                    continue  # woken to look at the key: too soon for a heartbeat
                beat = now
                # The position moves past events that did not match: a client
                # reconnecting from here does not read them again.
                yield ServerSentEventMessage(
                    comment="heartbeat", id=item.position, data=None, sep="\n"
                )
            else:
                yield ServerSentEventMessage(
                    data=item.event.model_dump_json(), id=item.position, sep="\n"
                )
    except TailOverflow as exc:
        # Too slow for the others: said once, then closed; nothing is lost on reconnecting.
        yield ServerSentEventMessage(comment=f"closed: {exc}", data=None, sep="\n")
    except StoreUnavailableError:
        return  # the client reconnects with its Last-Event-ID
    finally:
        await items.aclose()  # type: ignore[attr-defined]


STREAM_ROUTES = [stream_events]
"""The live tail handler."""
