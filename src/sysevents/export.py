"""Every event of a query, in order, one page at a time; as NDJSON lines or CSV rows.

Paging is by keyset (the listing's cursor), so the cost of each page, and
the memory held, stay the same however many events there are.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal

from .columns import COLUMNS, FIELDS, Kind
from .model import Event
from .query import EventFilter, EventQuery, Order
from .store import EventRepository

__all__ = ["CSV_COLUMNS", "PAGE", "ExportFormat", "csv_rows", "event_pages", "ndjson"]

ExportFormat = Literal["ndjson", "csv"]
"""The file formats of an export."""
PAGE = 1000
"""Events read at a time."""
CSV_COLUMNS = FIELDS
"""The columns of a CSV export, in order: every stored field; ``details`` holds the JSON text."""
# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def event_pages(
    repo: EventRepository, query: EventFilter | None = None, *, order: Order = "oldest"
) -> AsyncIterator[list[Event]]:
    """The events matching ``query``, page after page, in ``order`` by (timestamp, id)."""
    fields = (query or EventFilter()).model_dump(exclude_none=True)
    page_query = EventQuery(**fields, order=order, limit=PAGE, count="none")
    while True:
        page = await repo.list(page_query)
        if page.items:
            yield page.items
        if page.next_cursor is None:
            return
        page_query = page_query.model_copy(update={"cursor": page.next_cursor})


def ndjson(events: Iterable[Event]) -> bytes:
    """The events as NDJSON: one JSON object (``Event``'s JSON) per line."""
    return b"".join(e.model_dump_json().encode() + b"\n" for e in events)


def _cell(text: str | None) -> str:
    if text is None:
        return ""
    # A leading quote makes a spreadsheet show the text instead of running it.
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_rows(events: Iterable[Event], *, header: bool = True) -> bytes:
    """The events as CSV rows (with the header row first when ``header``).

    Text cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return get a leading ``'``, so a spreadsheet never runs them as formulas.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow([_CELLS[c.kind](getattr(e, c.name)) for c in COLUMNS])
    return out.getvalue().encode()


def _json_cell(value: Any) -> str:
    return _cell(None if value is None else json.dumps(value, ensure_ascii=False))


# How a value of each kind of column is written in a cell.
_CELLS: dict[Kind, Callable[[Any], Any]] = {
    Kind.ID: lambda value: value,
    Kind.TEXT: _cell,
    Kind.SEVERITY: lambda value: value.value,
    Kind.JSON: _json_cell,
    Kind.TIME: lambda value: value.isoformat(),
}
