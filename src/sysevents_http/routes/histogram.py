"""``GET /api/events/histogram``: counts by severity per bucket of time, with the list filters."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, route
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from sysevents import EventFilter
from sysevents.histogram import EventHistogram, Interval
from sysevents.keys import Scope
from sysevents_http.auth import SCOPE_OPT
from sysevents_http.service import Service

from .params import (
    BAD_REQUEST,
    GUARDED,
    READ,
    SERVER_ERROR,
    UNAVAILABLE,
    Filters,
    json_response,
    security,
    with_filters,
)

IntervalParam = Annotated[
    Interval,
    QueryParameter(
        description="The width of a bucket: `1m`, `5m`, `1h`, `1d`, or `auto` (default: the "
        "narrowest giving at most 200 buckets). More than 1000 buckets is a 400."
    ),
]


@route(
    http_method=READ,
    path="/api/events/histogram",
    summary="Event histogram",
    description="Counts by severity of the events matching the filters (the listing's), per "
    "bucket of `interval` over `[since, until)`: `until` defaults to now, `since` to a day "
    "before `until`. Buckets are aligned in UTC; the first starts at or before `since` and "
    "counts only events from `since` on. Empty buckets are included.",
    responses={**BAD_REQUEST, **GUARDED, **UNAVAILABLE, **SERVER_ERROR},
    opt={SCOPE_OPT: Scope.READ.value},
    security=security(Scope.READ),
    tags=["events"],
)
@with_filters
async def event_histogram(
    service: NamedDependency[Service],
    filters: Filters,
    interval: IntervalParam = "auto",
) -> Response[EventHistogram]:
    """Counts per bucket of time."""
    histogram = await service.store.histogram(EventFilter(**filters), interval)
    return json_response(histogram.model_dump_json().encode())


HISTOGRAM_ROUTES = [event_histogram]
"""The histogram handler."""
