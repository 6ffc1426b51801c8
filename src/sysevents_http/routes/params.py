"""The parameters the routes share, each declared once (and so documented once in OpenAPI)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

from litestar import MediaType, Request, Response
from litestar.enums import HttpMethod
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from sysevents import Severity
from sysevents.keys import Scope
from sysevents.query import MAX_OFFSET, CountMode, Order
from sysevents.rules import MAX_EVENT_ID, is_event_id
from sysevents.search import (
    DETAILS_PREFIX,
    MAX_Q_LENGTH,
    check_details_filters,
    parse_details_value,
)
from sysevents_http.problems import PROBLEM_JSON
from sysevents_http.schemas import Problem

H = TypeVar("H", bound=Callable[..., Any])

READ = [HttpMethod.GET, HttpMethod.HEAD]
"""The methods of every reading route: HEAD answers the headers GET would."""


def spec(description: str) -> ResponseSpec:
    """An error answer of the OpenAPI document: problem details, described."""
    return ResponseSpec(data_container=Problem, description=description, media_type=PROBLEM_JSON)


BAD_REQUEST = {400: spec("A parameter or the body is invalid; `errors` names each bad field.")}
NOT_FOUND = {404: spec("No event has this id.")}
TOO_LARGE = {413: spec("The request body is larger than the configured limit.")}
NOT_JSON = {415: spec("The body is not sent as application/json.")}
CONFLICT = {
    422: spec("The idempotency key was used before with a different event."),
}
UNAVAILABLE = {503: spec("The event store is unavailable; retry later.")}
SERVER_ERROR = {500: spec("An unexpected error (logged with its traceback).")}
APPEND_ONLY = {405: spec("The event log is append-only: events cannot be changed or deleted.")}
GUARDED = {
    401: spec("No API key, or one that is unknown, expired or revoked (`WWW-Authenticate`)."),
    403: spec("The API key lacks the scope this operation needs."),
    429: spec("Too many requests for this key (`Retry-After`, `RateLimit`)."),
}

BEARER = "bearer"
"""The OpenAPI name of the bearer-token scheme (``Authorization: Bearer <key>``)."""
API_KEY_HEADER = "apiKey"
"""The OpenAPI name of the ``X-API-Key`` header scheme."""


def security(scope: Scope) -> list[dict[str, list[str]]]:
    """The OpenAPI security of a route needing ``scope``: either way of sending a key."""
    return [{BEARER: [scope.value]}, {API_KEY_HEADER: [scope.value]}]


EventId = Annotated[
    str,
    PathParameter(
        description="The event id, an integer from 1 to 2^63-1; anything else is a 400.",
        title="Event id",
        schema_extra={"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_EVENT_ID},
    ),
]


def parse_event_id(raw: str) -> int:
    """The id in a path, or a 400 naming ``event_id`` unless it is an integer in 1..2^63-1."""
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0
    if not is_event_id(value):
        raise ValidationException(
            detail="invalid event id",
            extra=[
                {
                    "key": "event_id",
                    "message": f"must be an integer from 1 to {MAX_EVENT_ID}",
                    "source": "path",
                }
            ],
        )
    return value


def json_response(
    payload: bytes, status_code: int = HTTP_200_OK, headers: dict[str, str] | None = None
) -> Response[Any]:
    """A response of JSON already encoded by the model (``model_dump_json``).

    Handlers still declare the model they send, for the OpenAPI schema; the
    bytes skip the framework's second serialization, and cached ones pass
    through without being decoded at all.
    """
    return Response(payload, status_code=status_code, headers=headers, media_type=MediaType.JSON)


# Whole numbers stay text until read here: the framework's lax parsing would
# take "1e3" or "1.0" as a number.
Limit = Annotated[
    str,
    QueryParameter(
        description="Events per page (1-1000, default 50).",
        schema_extra={"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
    ),
]
Offset = Annotated[
    str,
    QueryParameter(
        description=f"Events to skip (paging by offset, at most {MAX_OFFSET}; page deeper "
        "with `cursor`).",
        schema_extra={"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    ),
]


def whole_number(name: str, raw: str) -> int:
    """``raw`` read as a whole number written with digits only, or a 400 naming ``name``.

    A number in any other notation (``1e3``, ``10.0``, ``+5``, ``1_000``) is
    refused rather than read; the model checks the range.
    """
    if raw.isascii() and raw.isdigit() and len(raw) <= 20:
        return int(raw)
    raise ValidationException(
        detail=f"invalid {name}",
        extra=[
            {"key": name, "message": "must be a whole number written in digits", "source": "query"}
        ],
    )


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
TraceFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only events of this OpenTelemetry trace (32 lowercase hex digits).",
        schema_extra={"pattern": "^[0-9a-f]{32}$"},
    ),
]
WrittenByFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only events stored by this writer: an API key's id (the `se_<id>_` part "
        "of the key), `anonymous`, or a library caller.",
        min_length=1,
        max_length=100,
    ),
]
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

Q = Annotated[
    str | None,
    QueryParameter(
        description="Only events whose message contains this text, ignoring case "
        "(Unicode lowercase: `échec` finds `ÉCHEC`). Served by a trigram index.",
        min_length=1,
        max_length=MAX_Q_LENGTH,
    ),
]
# Documentation of the details.PATH parameters, which are read from the query
# string by their prefix (see search_fields): a path is not a fixed name.
DetailsDoc = Annotated[
    str | None,
    QueryParameter(
        name="details.PATH",
        description="Only events whose `details` hold VALUE at the dotted PATH, e.g. "
        '`details.user.id=4242` or `details.env="prod"`. VALUE is read as JSON when it '
        "is valid JSON, else as text; compared with JSON equality (`1` equals `1.0`, not "
        '`"1"`). Repeat with other paths to require several (AND); at most 16.',
    ),
]

FilterFields = dict[str, Any]
"""The filters given, by ``EventFilter`` field name, not yet validated."""


# The filter parameters of every reading route, declared here once.
_FILTER_PARAMETERS: dict[str, Any] = {
    "event_type": TypeFilter,
    "severity": SeverityFilter,
    "min_severity": MinSeverity,
    "source": SourceFilter,
    "since": Since,
    "until": Until,
    "trace_id": TraceFilter,
    "written_by": WrittenByFilter,
    "q": Q,
    "details_path": DetailsDoc,
}
_FIELDS = (
    "event_type",
    "severity",
    "min_severity",
    "source",
    "since",
    "until",
    "trace_id",
    "written_by",
)


def with_filters(handler: H) -> H:
    """``handler`` with the filter parameters declared, and handed over as ``filters``.

    ``handler`` takes ``filters`` (a :data:`FilterFields`); the function
    returned takes the query parameters instead (``event_type``, ...,
    ``details.PATH``), each declared once above, so that Litestar reads,
    validates and documents them as any parameter of the route. A Litestar
    dependency doing the same measured 0.1 ms per request (DI builds and
    validates a model of its own for every call); this costs nothing beyond
    the parameters themselves.
    """
    hints = typing.get_type_hints(handler, include_extras=True)
    signature = inspect.signature(handler)
    takes_request = "request" in signature.parameters
    kept = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name != "filters"
    ]
    if not takes_request:
        request_type = Request[Any, Any, Any]
        kept.insert(
            0,
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=request_type
            ),
        )
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in _FILTER_PARAMETERS.items()
    ]
    kept = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept]

    async def handle(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _FILTER_PARAMETERS}
        request = kwargs["request"] if takes_request else kwargs.pop("request")
        fields: FilterFields = {k: values[k] for k in _FIELDS if values[k] is not None}
        kwargs["filters"] = fields | search_fields(request.query_params, values["q"])
        return await handler(**kwargs)

    handle.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    handle.__annotations__ = {
        **{p.name: p.annotation for p in kept},
        **_FILTER_PARAMETERS,
        "return": hints.get("return"),
    }
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(handle, attribute, getattr(handler, attribute))
    return cast("H", handle)


Filters = FilterFields
"""A route's ``filters`` parameter (see :func:`with_filters`)."""


def search_fields(query: Any, q: str | None) -> FilterFields:
    """The ``q`` and ``details.PATH`` filters of a request's query string (``query``).

    A value that is not usable, or a path given twice, is a 400 naming the parameter.
    """
    fields: FilterFields = {}
    if q is not None:
        fields["q"] = q
    details: dict[str, Any] = {}
    for name, raw in query.multi_items():
        if not name.startswith(DETAILS_PREFIX):
            continue
        path = name[len(DETAILS_PREFIX) :]
        problem = "given more than once" if path in details else None
        try:
            details[path] = parse_details_value(raw)
            check_details_filters({path: details[path]})
        except ValueError as exc:
            problem = str(exc).removeprefix(f"{name}: ")
        if problem is not None:
            raise ValidationException(
                detail=f"invalid {name}",
                extra=[{"key": name, "message": problem, "source": "query"}],
            )
    if details:
        fields["details"] = details
    return fields
