"""The route handlers of the REST API (SPEC §4)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import MediaType, Response, Router, delete, get, post, put, route
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from pydantic import TypeAdapter, ValidationError

import sysevents
from sysevents import (
    Event,
    EventFilter,
    EventPage,
    EventPatch,
    EventQuery,
    EventStats,
    NewEvent,
    Severity,
    StoreUnavailableError,
)
from sysevents.model import MAX_EVENT_ID, CountMode, IdempotencyKey, Order

from ._problems import PROBLEM_JSON, problem
from ._schemas import DatabaseHealth, EventBatch, Health, Problem, StoredBatch
from ._service import EventService


def _spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=Problem, description=description, media_type=PROBLEM_JSON)


_400 = {400: _spec("A parameter or the body is invalid; `errors` names each bad field.")}
_404 = {404: _spec("No event has this id.")}
_413 = {413: _spec("The request body is larger than the configured limit.")}
_415 = {415: _spec("The body is not sent as application/json.")}
_422 = {
    422: _spec("The Idempotency-Key was used before with a different request body."),
}
_503 = {503: _spec("The event store is unavailable; retry later.")}
_500 = {500: _spec("An unexpected error (logged with its traceback).")}

EventId = Annotated[
    str,
    PathParameter(
        description="The event id, an integer from 1 to 2^63-1; anything else is a 400.",
        title="Event id",
        schema_extra={"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_EVENT_ID},
    ),
]


def json_response(
    payload: bytes, status_code: int = HTTP_200_OK, headers: dict[str, str] | None = None
) -> Response[Any]:
    """A response of JSON already encoded by the model (``model_dump_json``).

    Handlers still declare the model they send, for the OpenAPI schema; the
    bytes skip the framework's second serialization, and cached ones pass
    through without being decoded at all.
    """
    return Response(payload, status_code=status_code, headers=headers, media_type=MediaType.JSON)


def parse_event_id(raw: str) -> int:
    """The id in a path, or a 400 naming ``event_id`` unless it is an integer in 1..2^63-1."""
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0
    if not 1 <= value <= MAX_EVENT_ID:
        raise ValidationException(
            detail="invalid event id",
            extra=[
                {
                    "key": "event_id",
                    "message": "must be an integer from 1 to 9223372036854775807",
                    "source": "path",
                }
            ],
        )
    return value


Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="Events per page (1-1000).")]
Offset = Annotated[
    int, QueryParameter(ge=0, le=MAX_EVENT_ID, description="Events to skip (paging by offset).")
]
TypeFilter = Annotated[
    list[str] | None,
    QueryParameter(description="Only these event types (repeat the parameter for several)."),
]
SeverityFilter = Annotated[
    list[Severity] | None,
    QueryParameter(description="Only these severities (repeat the parameter for several)."),
]
MinSeverity = Annotated[
    Severity | None, QueryParameter(description="Only this severity and the ones above it.")
]
SourceFilter = Annotated[str | None, QueryParameter(description="Only events from this source.")]
# Times stay text until the model reads them: a bare number is not a time, and
# the framework's lax parsing would take one as seconds since the epoch.
Since = Annotated[
    str | None,
    QueryParameter(
        description="Only events at or after this time (ISO 8601 with offset).",
        schema_extra={"format": "date-time"},
    ),
]
Until = Annotated[
    str | None,
    QueryParameter(
        description="Only events before this time (ISO 8601 with offset).",
        schema_extra={"format": "date-time"},
    ),
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="The `next_cursor` of the previous page (paging by keyset).",
        min_length=1,
        max_length=512,
    ),
]
OrderParam = Annotated[Order, QueryParameter(description="`newest` first (default) or `oldest`.")]
CountParam = Annotated[
    CountMode,
    QueryParameter(
        description="`capped` (default) counts up to the cap, `exact` counts all, `none` skips."
    ),
]


def _filters(
    event_type: list[str] | None,
    severity: list[Severity] | None,
    min_severity: Severity | None,
    source: str | None,
    since: str | None,
    until: str | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_type": event_type,
        "severity": severity,
        "min_severity": min_severity,
        "source": source,
        "since": since,
        "until": until,
    }
    return {k: v for k, v in values.items() if v is not None}


IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="A key of the client's choosing (1-100 characters): a retried request "
        "with the same key stores nothing new and returns the event first stored; the same "
        "key with a different body is a 422.",
        required=False,
    ),
]
_KEY = TypeAdapter(IdempotencyKey)


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
    keyed = data.model_copy(update={"idempotency_key": key})
    # model_copy keeps the fields set by the client, which the replay check compares.
    object.__setattr__(
        keyed, "__pydantic_fields_set__", {*data.model_fields_set, "idempotency_key"}
    )
    return keyed


def _replay_differs(sent: NewEvent, stored: Event) -> list[str]:
    """The fields the client sent that differ from the event stored under the same key."""
    return [
        name
        for name in sorted(sent.model_fields_set - {"idempotency_key"})
        if getattr(sent, name) != getattr(stored, name)
    ]


@post(
    "/api/events",
    status_code=201,
    summary="Record an event",
    description="Stores one event and returns it with its `id` and `created_at`. With an "
    "`Idempotency-Key` header, a retry stores nothing new and returns the event first stored, "
    "and the same key with a different body is a 422. An `idempotency_key` in the body only "
    "deduplicates: the event first stored under it is returned.",
    response_headers=[
        ResponseHeader(
            name="Location", description="The URL of the new event.", documentation_only=True
        )
    ],
    responses={**_400, **_413, **_415, **_422, **_503, **_500},
    opt={"body_model": NewEvent},
    tags=["events"],
)
async def create_event(
    data: JSONBody[NewEvent],
    service: NamedDependency[EventService],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response[Event]:
    """Store one event."""
    new = _keyed(data, idempotency_key)
    event = await service.call(service.repository.add, new)
    if idempotency_key is not None:
        differing = _replay_differs(new, event)
        if differing:
            return problem(  # type: ignore[return-value]
                422,
                f"Idempotency-Key {new.idempotency_key!r} was used before with another "
                f"{', '.join(differing)}",
                errors=[
                    {
                        "field": name,
                        "message": "differs from the first request with this key",
                        "type": "idempotency_conflict",
                    }
                    for name in differing
                ],
            )
    return json_response(
        event.model_dump_json().encode(), 201, {"Location": f"/api/events/{event.id}"}
    )


@post(
    "/api/events/batch",
    status_code=201,
    summary="Record several events",
    description="Stores every event of the batch in one round trip, or none: one bad event "
    "is a 400 naming its index and field. At most the configured batch size (default 1000).",
    responses={**_400, **_413, **_415, **_503, **_500},
    opt={"body_model": EventBatch},
    tags=["events"],
)
async def create_events(
    data: JSONBody[EventBatch], service: NamedDependency[EventService]
) -> StoredBatch:
    """Store several events, all or none."""
    limit = service.options.max_batch_size
    if len(data.events) > limit:
        raise ValidationException(
            detail="too many events",
            extra=[
                {
                    "key": "events",
                    "message": f"at most {limit} events in one batch, not {len(data.events)}",
                    "source": "body",
                }
            ],
        )
    events = await service.call(service.repository.add_many, data.events)
    return StoredBatch(events=events)


@get(
    "/api/events",
    summary="List events",
    description="One page of the events matching every filter given, newest first by default. "
    "Page with `offset` or with `cursor` (the `next_cursor` of the previous page).",
    responses={**_400, **_503, **_500},
    tags=["events"],
)
async def list_events(
    service: NamedDependency[EventService],
    event_type: TypeFilter = None,
    severity: SeverityFilter = None,
    min_severity: MinSeverity = None,
    source: SourceFilter = None,
    since: Since = None,
    until: Until = None,
    order: OrderParam = "newest",
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Cursor = None,
    count: CountParam = "capped",
) -> Response[EventPage]:
    """One page of matching events."""
    query = EventQuery(
        **_filters(event_type, severity, min_severity, source, since, until),
        order=order,
        limit=limit,
        offset=offset,
        cursor=cursor,
        count=count,
    )
    page = await service.call(service.repository.list, query)
    return json_response(page.model_dump_json().encode())


@get(
    "/api/events/stats",
    summary="Event statistics",
    description="Counts over the events matching the filters (the same as the listing's).",
    responses={**_400, **_503, **_500},
    tags=["events"],
)
async def event_stats(
    service: NamedDependency[EventService],
    event_type: TypeFilter = None,
    severity: SeverityFilter = None,
    min_severity: MinSeverity = None,
    source: SourceFilter = None,
    since: Since = None,
    until: Until = None,
) -> Response[EventStats]:
    """Counts over matching events."""
    query = EventFilter(**_filters(event_type, severity, min_severity, source, since, until))
    return json_response(await service.stats_json(query))


@get(
    "/api/events/{event_id:str}",
    summary="Get an event",
    responses={**_400, **_404, **_503, **_500},
    tags=["events"],
)
async def get_event(event_id: EventId, service: NamedDependency[EventService]) -> Response[Event]:
    """One event by id."""
    wanted = parse_event_id(event_id)
    payload = await service.event_json(wanted)
    if payload is None:
        raise sysevents.NotFoundError(wanted)
    return json_response(payload)


@put(
    "/api/events/{event_id:str}",
    summary="Change an event",
    description="Changes the fields given; the others stay. `details` and `source` may be "
    "set to null to clear them. `id` and `created_at` never change.",
    responses={**_400, **_404, **_413, **_415, **_503, **_500},
    opt={"body_model": EventPatch},
    tags=["events"],
)
async def update_event(
    event_id: EventId, data: JSONBody[EventPatch], service: NamedDependency[EventService]
) -> Response[Event]:
    """Apply a patch."""
    event = await service.call(service.repository.update, parse_event_id(event_id), data)
    return json_response(event.model_dump_json().encode())


@delete(
    "/api/events/{event_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    summary="Delete an event",
    responses={**_400, **_404, **_503, **_500},
    tags=["events"],
)
async def delete_event(event_id: EventId, service: NamedDependency[EventService]) -> None:
    """Remove an event."""
    await service.call(service.repository.delete, parse_event_id(event_id))


@get(
    "/api/health",
    summary="Service health",
    description="Always 200 while the process serves requests; never touches the store.",
    tags=["health"],
    responses={**_500},
)
async def health(service: NamedDependency[EventService]) -> Health:
    """The service is up."""
    service.note_health("health_check", "ok", {"uptime": service.uptime})
    return Health(version=sysevents.__version__, uptime=service.uptime, cache=service.cache_stats())


@get(
    "/api/health/db",
    summary="Store health",
    description="Pings the store: 200 with the round-trip latency, or 503 when it is down.",
    tags=["health"],
    responses={**_503, **_500},
)
async def database_health(service: NamedDependency[EventService]) -> Response[DatabaseHealth]:
    """The store answers."""
    started = time.perf_counter()
    try:
        await service.call(service.repository.ping)
    except StoreUnavailableError as exc:
        service.note_health("db_health_check", "down", {"error": str(exc)})
        return problem(  # type: ignore[return-value]
            503, f"the event store is unavailable: {exc}", headers={"Retry-After": "5"}
        )
    latency = round((time.perf_counter() - started) * 1000, 3)
    service.note_health("db_health_check", "ok", {"latency_ms": latency})
    return Response(DatabaseHealth(latency_ms=latency), status_code=HTTP_200_OK)


def _allow(methods: str) -> Any:
    async def handler() -> Response[None]:
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": methods})

    return handler


# Litestar 2 answers OPTIONS on a path with several handlers with only one
# handler's methods; these list them all.
options_events = route(
    "/api/events", http_method="OPTIONS", include_in_schema=False, name="options_events"
)(_allow("GET, POST, OPTIONS"))
options_event = route(
    "/api/events/{event_id:str}",
    http_method="OPTIONS",
    include_in_schema=False,
    name="options_event",
)(_allow("GET, PUT, DELETE, OPTIONS"))


def _service(state: State) -> EventService:
    service: NamedDependency[EventService] = state.sysevents
    return service


api_router = Router(
    path="/",
    # The OPTIONS handlers come first so Litestar adds no partial one of its own.
    route_handlers=[
        options_events,
        options_event,
        create_event,
        create_events,
        list_events,
        event_stats,
        get_event,
        update_event,
        delete_event,
        health,
        database_health,
    ],
    dependencies={"service": Provide(_service, sync_to_thread=False)},
)
"""Every API route, with the ``service`` dependency."""
