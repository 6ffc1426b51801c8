"""What the conformance tests share: events to send, and ways to read them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sysevents.model import MAX_EVENT_ID, Event, EventLimits, NewEvent, Severity
from sysevents.query import EventQuery
from sysevents.store import EventRepository

BAD_IDS = [0, -1, MAX_EVENT_ID + 1, 2**64, -(2**63) - 1]
"""Ids no store can have: every store answers them as missing."""
OWN = "conformance"
"""The source of the events a test counts: a store may hold events of its own."""
BIG = EventLimits(max_message_bytes=10**7, max_details_bytes=10**7)
"""Limits above any store's, to build events a store must refuse itself."""


def new(
    event_type: str = "deploy",
    severity: str = "info",
    message: str = "hello",
    *,
    ago: timedelta | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> NewEvent:
    """A valid event; ``ago`` places it in the past relative to now."""
    timestamp = at if at is not None else datetime.now(UTC) - (ago or timedelta())
    return NewEvent(
        event_type=event_type,
        severity=Severity(severity),
        message=message,
        timestamp=timestamp,
        **fields,
    )


async def all_pages(repo: EventRepository, query: EventQuery) -> list[Event]:
    """Every event of ``query``, walking the cursor from page to page."""
    seen: list[Event] = []
    page = await repo.list(query)
    seen.extend(page.items)
    while page.next_cursor is not None:
        page = await repo.list(query.model_copy(update={"cursor": page.next_cursor}))
        seen.extend(page.items)
    return seen


def same_event(stored: Event, sent: NewEvent) -> None:
    """Assert that ``stored`` holds exactly what ``sent`` asked for."""
    assert stored.event_type == sent.event_type
    assert stored.severity == sent.severity
    assert stored.message == sent.message
    assert stored.details == sent.details
    assert stored.source == sent.source
    assert stored.timestamp == sent.timestamp
    assert (stored.trace_id, stored.span_id) == (sent.trace_id, sent.span_id)


def timezone_plus(hours: int, minutes: int = 0) -> timezone:
    """A fixed offset east of UTC."""
    return timezone(timedelta(hours=hours, minutes=minutes))
