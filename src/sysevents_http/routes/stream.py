"""``GET /api/events/stream``: new events as Server-Sent Events, resumable by ``Last-Event-ID``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from sysevents import EventFilter, InvalidEventError, StoreUnavailableError
from sysevents.keys import Scope
from sysevents.tail import Tailed
from sysevents_http.auth import SCOPE_OPT
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
    opt={SCOPE_OPT: Scope.READ.value},
    security=security(Scope.READ),
    tags=["events"],
    media_type="text/event-stream",
)
@with_filters
async def stream_events(
    service: NamedDependency[Service],
    filters: Filters,
    heartbeat: Heartbeat = 15.0,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdParam = None,
) -> ServerSentEvent:
    """New matching events as they are recorded."""
    query = EventFilter(**filters)
    after = last_event_id_header or last_event_id
    try:
        items = service.store.follow(query, after=after, idle=heartbeat)
    except InvalidEventError as exc:
        raise ValidationException(
            detail="invalid Last-Event-ID",
            extra=[{"key": "Last-Event-ID", "message": exc.errors[0]["msg"], "source": "header"}],
        ) from None
    return ServerSentEvent(_messages(items))


async def _messages(items: AsyncIterator[Tailed]) -> AsyncIterator[ServerSentEventMessage]:
    # At once, before the first event or heartbeat: the client knows it is live.
    yield ServerSentEventMessage(comment="connected", data=None, sep="\n")
    try:
        async for item in items:
            if item.event is None:
                # The position moves past events that did not match: a client
                # reconnecting from here does not read them again.
                yield ServerSentEventMessage(
                    comment="heartbeat", id=item.position, data=None, sep="\n"
                )
            else:
                yield ServerSentEventMessage(
                    data=item.event.model_dump_json(), id=item.position, sep="\n"
                )
    except StoreUnavailableError:
        return  # the client reconnects with its Last-Event-ID
    finally:
        await items.aclose()  # type: ignore[attr-defined]


STREAM_ROUTES = [stream_events]
"""The live tail handler."""
