"""Behaviour every backend shares: lifecycle, size limits, paging results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from ._cursor import decode_cursor, encode_cursor
from .errors import IdempotencyConflictError, InvalidEventError, StoreUnavailableError
from .model import DEFAULT_LIMITS, Event, EventLimits, EventPage, EventPatch, NewEvent
from .query import EventQuery
from .rules import utf8_longer_than


class Lifecycle:
    """``async with`` for anything with ``open()`` and ``close()``."""

    async def open(self) -> None:
        """Acquire resources (nothing to do by default)."""

    async def close(self) -> None:
        """Release resources; safe to call twice."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class RepositoryBase(Lifecycle):
    """Shared plumbing; backends implement the storage methods."""

    def __init__(
        self,
        *,
        limits: EventLimits = DEFAULT_LIMITS,
        count_cap: int = 10_000,
        cursor_secret: str = "sysevents-cursor",
    ) -> None:
        self.limits = limits
        self.count_cap = count_cap
        self._secret = cursor_secret.encode()
        self._closed = False

    async def close(self) -> None:
        """Release resources; safe to call twice."""
        self._closed = True

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreUnavailableError("the repository is closed")

    # -- limits ---------------------------------------------------------------

    def _check_sizes(self, items: Sequence[NewEvent | EventPatch], loc_prefix: bool) -> None:
        """Apply this store's size limits, which may be lower than the model's defaults."""
        errors = []
        limits = self.limits
        for index, item in enumerate(items):
            prefix: tuple[int | str, ...] = (index,) if loc_prefix else ()
            for field, text, limit, unit in (
                ("message", item.message, limits.max_message_bytes, "in UTF-8"),
                ("details", item.details_json, limits.max_details_bytes, "as JSON"),
            ):
                if text is not None and utf8_longer_than(text, limit):
                    errors.append(
                        {
                            "loc": (*prefix, field),
                            "msg": f"must be at most {limit} bytes {unit}",
                            "type": "too_long",
                        }
                    )
        if errors:
            raise InvalidEventError(errors)

    # -- paging ---------------------------------------------------------------

    def _position(self, query: EventQuery) -> tuple[datetime, int] | None:
        return decode_cursor(self._secret, query) if query.cursor else None

    def _page(
        self, query: EventQuery, rows: list[Event], total: int | None, exact: bool
    ) -> EventPage:
        """Build a page from up to ``limit + 1`` rows (the extra one says more exist)."""
        more = len(rows) > query.limit
        items = rows[: query.limit]
        next_cursor = None
        if more:
            last = items[-1]
            next_cursor = encode_cursor(self._secret, query, last.timestamp, last.id)
        return EventPage(
            items=items,
            limit=query.limit,
            offset=query.offset,
            next_cursor=next_cursor,
            total=total,
            total_exact=exact,
        )


# -- idempotency: one rule for every backend -----------------------------------


def replayed(new: NewEvent, stored: Event) -> Event:
    """``stored``, the event first stored under ``new``'s key, if ``new`` is a retry of it.

    Raises ``IdempotencyConflictError`` when ``new`` is a different event.
    """
    differing = new.differs_from(stored)
    if differing:
        raise IdempotencyConflictError(stored.idempotency_key or "", differing)
    return stored


def first_of_each_key(news: Sequence[NewEvent]) -> dict[str, NewEvent]:
    """The first event of each idempotency key in a batch; the others must be retries of it.

    Raises ``IdempotencyConflictError`` when two events of the batch share a
    key but differ.
    """
    first: dict[str, NewEvent] = {}
    for new in news:
        key = new.idempotency_key
        if key is None:
            continue
        seen = first.setdefault(key, new)
        differing = [] if seen is new else new.differs_from(seen)
        if differing:
            raise IdempotencyConflictError(key, differing)
    return first
