"""The routes of ``/api/events``: record, list, read, change, delete, and count events."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, post, put, route
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import HeaderParameter, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT
from pydantic import TypeAdapter, ValidationError

from sysevents import (
    Event,
    EventFilter,
    EventPage,
    EventPatch,
    EventQuery,
    EventStats,
    NewEvent,
    ReservedTypeError,
)
from sysevents import NotFoundError as EventNotFound
from sysevents.errors import RESERVED_PREFIX
from sysevents.keys import Scope
from sysevents.model import IdempotencyKey
from sysevents_http.auth import SCOPE_OPT, caller_of, request_budget
from sysevents_http.schemas import EventBatch, StoredBatch
from sysevents_http.service import Service

from .params import (
    APPEND_ONLY,
    BAD_REQUEST,
    CONFLICT,
    GUARDED,
    NOT_FOUND,
    NOT_JSON,
    READ,
    SERVER_ERROR,
    TOO_LARGE,
    UNAVAILABLE,
    CountParam,
    Cursor,
    EventId,
    Filters,
    Limit,
    Offset,
    OrderParam,
    json_response,
    parse_event_id,
    security,
    whole_number,
    with_filters,
)

READER = {SCOPE_OPT: Scope.READ.value}

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="A key of the client's choosing (1-100 characters): a retried request "
        "with the same key stores nothing new and returns the event first stored; the same "
        "key with a different event is a 422. The body's `idempotency_key` works the same.",
        required=False,
    ),
]
_KEY = TypeAdapter(IdempotencyKey)


def refuse_reserved(event_type: str, field: str) -> None:
    """A 403 naming ``field`` for a type only sysevents itself writes (``sysevents.``...)."""
    if event_type.startswith(RESERVED_PREFIX):
        raise ReservedTypeError(field)


def _keyed(data: NewEvent, header: str | None) -> NewEvent:
    """The event with the header's idempotency key, which must agree with the body's."""
    if header is None:
        return data
    try:
        key = _KEY.validate_python(header)
    except ValidationError as exc:
        raise ValidationException(
            detail="invalid Idempotency-Key header",
            extra=[
                {"key": "Idempotency-Key", "message": exc.errors()[0]["msg"], "source": "header"}
            ],
        ) from None
    if data.idempotency_key not in (None, key):
        raise ValidationException(
            detail="two different idempotency keys",
            extra=[
                {
                    "key": "idempotency_key",
                    "message": "differs from the Idempotency-Key header",
                    "source": "body",
                }
            ],
        )
    # model_copy marks the key as given, as if the body had carried it.
    return data.model_copy(update={"idempotency_key": key})


@post(
    "/api/events",
    status_code=201,
    summary="Record an event",
    description="Stores one event and returns it with its `id` and `created_at`. With an "
    "idempotency key (the `Idempotency-Key` header or the body's `idempotency_key`), a retry "
    "stores nothing new and returns the event first stored, and the same key with a "
    "different event is a 422.",
    response_headers=[
        ResponseHeader(
            name="Location",
            # Documentation only: the value makes OpenAPI give the header a string schema.
            value="/api/events/1",
            description="The URL of the new event.",
            documentation_only=True,
        )
    ],
    responses={
        **BAD_REQUEST,
        **GUARDED,
        **TOO_LARGE,
        **NOT_JSON,
        **CONFLICT,
        **UNAVAILABLE,
        **SERVER_ERROR,
    },
    opt={"body_model": NewEvent, SCOPE_OPT: Scope.WRITE.value},
    security=security(Scope.WRITE),
    tags=["events"],
)
async def create_event(
    request: Request[Any, Any, Any],
    data: JSONBody[NewEvent],
    service: NamedDependency[Service],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response[Event]:
    """Store one event."""
    refuse_reserved(data.event_type, "event_type")
    new = _keyed(data, idempotency_key)
    size = len(await request.body())
    await service.admit(request_budget(request), [new], size, lambda _: "event_type")
    event = await service.store.add(new, caller=caller_of(request).id)
    return json_response(
        event.model_dump_json().encode(), 201, {"Location": f"/api/events/{event.id}"}
    )


@post(
    "/api/events/batch",
    status_code=201,
    summary="Record several events",
    description="Stores every event of the batch in one round trip, or none: one bad event "
    "is a 400 naming its index and field. At most the configured batch size (default 1000).",
    responses={
        **BAD_REQUEST,
        **GUARDED,
        **TOO_LARGE,
        **NOT_JSON,
        **CONFLICT,
        **UNAVAILABLE,
        **SERVER_ERROR,
    },
    opt={"body_model": EventBatch, SCOPE_OPT: Scope.WRITE.value},
    security=security(Scope.WRITE),
    tags=["events"],
)
async def create_events(
    request: Request[Any, Any, Any],
    data: JSONBody[EventBatch],
    service: NamedDependency[Service],
) -> StoredBatch:
    """Store several events, all or none (the batch size is checked as the body is read)."""
    for index, new in enumerate(data.events):
        refuse_reserved(new.event_type, f"events.{index}.event_type")
    size = len(await request.body())
    await service.admit(
        request_budget(request), data.events, size, lambda i: f"events.{i}.event_type"
    )
    caller = caller_of(request).id
    events = await service.store.add_many(data.events, caller=caller)
    return StoredBatch(events=events)


@route(
    http_method=READ,
    path="/api/events",
    summary="List events",
    description="One page of the events matching every filter given, newest first by default. "
    "Page with `offset` or with `cursor` (the `next_cursor` of the previous page). A page "
    "whose events would take more than the configured byte budget (8 MiB by default) ends "
    "early, with `next_cursor` set.",
    responses={**BAD_REQUEST, **GUARDED, **UNAVAILABLE, **SERVER_ERROR},
    opt=READER,
    security=security(Scope.READ),
    tags=["events"],
)
@with_filters
async def list_events(
    service: NamedDependency[Service],
    filters: Filters,
    order: OrderParam = "newest",
    limit: Limit = "50",
    offset: Offset = "0",
    cursor: Cursor = None,
    count: CountParam = "capped",
) -> Response[EventPage]:
    """One page of matching events."""
    query = EventQuery(
        **filters,
        order=order,
        limit=whole_number("limit", limit),
        offset=whole_number("offset", offset),
        cursor=cursor,
        count=count,
    )
    return json_response(
        await service.store.list_json(query, max_bytes=service.settings.max_page_bytes)
    )


@route(
    http_method=READ,
    path="/api/events/stats",
    summary="Event statistics",
    description="Counts over the events matching the filters (the same as the listing's).",
    responses={**BAD_REQUEST, **GUARDED, **UNAVAILABLE, **SERVER_ERROR},
    opt=READER,
    security=security(Scope.READ),
    tags=["events"],
)
@with_filters
async def event_stats(
    service: NamedDependency[Service],
    filters: Filters,
) -> Response[EventStats]:
    """Counts over matching events."""
    return json_response(await service.store.stats_json(EventFilter(**filters)))


@route(
    http_method=READ,
    path="/api/events/{event_id:str}",
    summary="Get an event",
    responses={**BAD_REQUEST, **GUARDED, **NOT_FOUND, **UNAVAILABLE, **SERVER_ERROR},
    opt=READER,
    security=security(Scope.READ),
    tags=["events"],
)
async def get_event(event_id: EventId, service: NamedDependency[Service]) -> Response[Event]:
    """One event by id."""
    wanted = parse_event_id(event_id)
    payload = await service.store.get_json(wanted)
    if payload is None:
        raise EventNotFound(wanted)
    return json_response(payload)


@put(
    "/api/events/{event_id:str}",
    summary="Change an event",
    description="Changes the fields given; the others stay. `details`, `source`, `trace_id` "
    "and `span_id` may be set to null to clear them. `id` and `created_at` never change.",
    responses={
        **BAD_REQUEST,
        **GUARDED,
        **NOT_FOUND,
        **APPEND_ONLY,
        **TOO_LARGE,
        **NOT_JSON,
        **UNAVAILABLE,
        **SERVER_ERROR,
    },
    opt={"body_model": EventPatch, SCOPE_OPT: Scope.ADMIN.value},
    security=security(Scope.ADMIN),
    tags=["events"],
)
async def update_event(
    request: Request[Any, Any, Any],
    event_id: EventId,
    data: JSONBody[EventPatch],
    service: NamedDependency[Service],
) -> Response[Event]:
    """Apply a patch (recorded in the audit trail)."""
    if data.event_type is not None:
        refuse_reserved(data.event_type, "event_type")
    wanted = parse_event_id(event_id)
    actor = caller_of(request).id
    event = await service.store.update(wanted, data, actor=actor)
    return json_response(event.model_dump_json().encode())


@delete(
    "/api/events/{event_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    summary="Delete an event",
    responses={**BAD_REQUEST, **GUARDED, **NOT_FOUND, **APPEND_ONLY, **UNAVAILABLE, **SERVER_ERROR},
    opt={SCOPE_OPT: Scope.ADMIN.value},
    security=security(Scope.ADMIN),
    tags=["events"],
)
async def delete_event(
    request: Request[Any, Any, Any], event_id: EventId, service: NamedDependency[Service]
) -> None:
    """Remove an event (recorded in the audit trail)."""
    wanted = parse_event_id(event_id)
    await service.store.delete(wanted, actor=caller_of(request).id)


EVENT_ROUTES = [
    create_event,
    create_events,
    list_events,
    event_stats,
    get_event,
    update_event,
    delete_event,
]
"""Every handler of ``/api/events``."""
