"""Event ids that name their partition: the month of the ``timestamp`` in the high bits.

``id = month << 36 | n``: ``month`` counts UTC months from January of year 1
(17 bits reach year 9999), ``n`` comes from the sequence ``system_events_seq``
(2^36, some 68 billion events). Every id stays below 2^53, so JavaScript
reads it exactly. An id whose month is 0 was not made so (events stored before
partitioning, or by hand-written SQL): the locator table knows where it lives.
"""

from __future__ import annotations

from datetime import UTC, datetime

MONTH_SHIFT = 36
"""Bits of an id below the month."""
_LAST_MONTH = (9999 - 1) * 12 + 11


def month_index(t: datetime) -> int:
    """The month of ``t`` (in UTC), counted from January of year 1."""
    t = t.astimezone(UTC)
    return (t.year - 1) * 12 + t.month - 1


def month_start(index: int) -> datetime:
    """The first instant of month ``index``."""
    return datetime(index // 12 + 1, index % 12 + 1, 1, tzinfo=UTC)


def month_end(index: int) -> datetime | None:
    """The first instant after month ``index``; ``None`` past year 9999."""
    return None if index >= _LAST_MONTH else month_start(index + 1)


def compose(month: int, n: int) -> int:
    """The id of the ``n``-th event drawn, in ``month``."""
    return month << MONTH_SHIFT | n


def id_month(event_id: int) -> int | None:
    """The month an id names; ``None`` for ids that name none (see the module)."""
    month = event_id >> MONTH_SHIFT
    return month if 0 < month <= _LAST_MONTH else None
