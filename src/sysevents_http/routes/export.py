"""``GET /api/events/export``: every matching event as an NDJSON or CSV file, streamed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import QueryParameter
from litestar.response import Stream

from sysevents import EventFilter, SyseventsError
from sysevents.export import ExportFormat, csv_rows, event_pages, ndjson
from sysevents.keys import Scope
from sysevents.query import Order
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

logger = logging.getLogger("sysevents_http")

FormatParam = Annotated[
    ExportFormat,
    QueryParameter(
        description="`ndjson` (default): one event's JSON per line, as `POST /api/events/batch` "
        "takes them back; `csv`: a header row, then one row per event, `details` as JSON text. "
        "CSV text cells starting with `=`, `+`, `-`, `@`, a tab or a carriage return get a "
        "leading `'` so that spreadsheets never run them as formulas."
    ),
]
ExportOrder = Annotated[
    Order, QueryParameter(description="`oldest` first (default) or `newest`, by (timestamp, id).")
]
_MEDIA = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


@dataclass
class _FileOperation(Operation):
    """The export's OpenAPI operation: its answer is NDJSON or CSV text, as ``format`` says."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if ok is not None and not isinstance(ok, dict) and hasattr(ok, "content"):
            text = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
            ok.content = {"application/x-ndjson": text, "text/csv": text}


@get(
    "/api/events/export",
    summary="Export events",
    description="Every event matching the filters (the listing's), streamed in order as a file, "
    "read from the store a page at a time (constant memory in the server, whatever the size).",
    responses={**BAD_REQUEST, **GUARDED, **UNAVAILABLE, **SERVER_ERROR},
    opt={SCOPE_OPT: Scope.READ.value},
    security=security(Scope.READ),
    tags=["events"],
    operation_class=_FileOperation,
)
@with_filters
async def export_events(
    service: NamedDependency[Service],
    filters: Filters,
    format: FormatParam = "ndjson",
    order: ExportOrder = "oldest",
) -> Stream:
    """Every matching event, as a file."""
    query = EventFilter(**filters)
    # The first page is read before answering: a store that is down is a 503, not an empty file.
    pages = event_pages(service.store, query, order=order)
    first = await anext(pages, None)
    return Stream(
        _file(first, pages, format),
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="events.{format}"'},
    )


async def _file(
    first: list[Any] | None,
    pages: AsyncIterator[list[Any]],
    format: ExportFormat,
) -> AsyncIterator[bytes]:
    try:
        if format == "csv":
            yield csv_rows(first or [])
        elif first:
            yield ndjson(first)
        if first is None:
            return
        async for page in pages:
            yield csv_rows(page, header=False) if format == "csv" else ndjson(page)
    except SyseventsError as exc:
        # The answer has begun: all that is left is to end it short, and say so in the log.
        logger.warning("an export ended early: %s", exc)
    finally:
        await pages.aclose()  # type: ignore[attr-defined]


EXPORT_ROUTES = [export_events]
"""The export handler."""
