"""What the stores that keep events themselves share: settings, limits, paging, idempotency.

``RepositoryBase`` implements the store contract's shared parts for the
memory and PostgreSQL stores: their :class:`~sysevents.Settings`, the size
limits, listing pages (with a byte budget for JSON pages) and cursors.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self

from pydantic import TypeAdapter

from sysevents._cursor import decode_cursor, encode_cursor
from sysevents.errors import (
    RESERVED_PREFIX,
    AppendOnlyError,
    IdempotencyConflictError,
    InvalidEventError,
    ReservedTypeError,
    StoreUnavailableError,
)
from sysevents.model import Event, EventPage, EventPatch, NewEvent, OwnRecord
from sysevents.query import EventQuery
from sysevents.rules import MAX_CALLER_LENGTH, check_label, utf8_longer_than
from sysevents.settings import Settings, with_overrides
from sysevents.store import EventStore


class RepositoryBase(EventStore):
    """Shared plumbing of the stores that keep events; they implement the storage methods.

    A store is configured by ``settings`` (default: the defaults of
    :class:`~sysevents.Settings`, without reading the environment), with
    ``overrides`` of any of its fields on top: ``MemoryEventRepository(count_cap=5)``.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = with_overrides(settings, overrides)
        """What this store was configured with."""
        settings = self.settings
        self.limits = settings.limits
        self.idempotency_window = timedelta(seconds=settings.idempotency_window)
        """How long an idempotency key is remembered after its event was stored."""
        self.count_cap = settings.count_cap
        self.stats_top = settings.stats_top
        self.append_only = settings.append_only
        given = settings.cursor_secrets
        # None given: a secret of this instance's own (a store that keeps one, such
        # as PostgreSQL, loads its own before the first page).
        self._secrets = [s.encode() for s in given] or [secrets.token_bytes(32)]
        self._secrets_given = bool(given)
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """A store configured by ``settings`` (what ``sysevents.connect`` calls)."""
        return cls(settings=settings)

    async def close(self) -> None:
        """Release resources; safe to call twice."""
        self._closed = True

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreUnavailableError("the repository is closed")

    def _check_changes_allowed(self) -> None:
        if self.append_only:
            raise AppendOnlyError

    # -- limits ---------------------------------------------------------------

    def _check_written(self, items: Sequence[NewEvent | EventPatch], loc_prefix: bool) -> None:
        """Refuse reserved types (but sysevents' own records) and what exceeds the size limits.

        This store's limits may be lower than the model's defaults.
        """
        errors = []
        limits = self.limits
        for index, item in enumerate(items):
            prefix: tuple[int | str, ...] = (index,) if loc_prefix else ()
            kind = item.event_type
            if kind is not None and kind.startswith(RESERVED_PREFIX):
                if not isinstance(item, OwnRecord):
                    raise ReservedTypeError(".".join(map(str, (*prefix, "event_type"))))
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

    # -- pages, as models or as JSON -------------------------------------------

    async def _listing(self, query: EventQuery) -> Listing:  # pragma: no cover - abstract
        """Up to ``limit + 1`` matching events (the extra one says more exist), and the count."""
        raise NotImplementedError

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of the events matching ``query``."""
        self._ensure_open()
        query = query or EventQuery()
        listing = await self._listing(query)
        items = listing.rows[: query.limit]
        more = len(listing.rows) > query.limit
        return EventPage(
            items=items,
            limit=query.limit,
            offset=query.offset,
            next_cursor=self._cursor_after(query, items[-1]) if more else None,
            total=listing.total,
            total_exact=listing.exact,
        )

    async def list_json(self, query: EventQuery | None = None, *, max_bytes: int = 0) -> bytes:
        """What ``list`` returns, as ``EventPage`` JSON, at most ``max_bytes`` long if given.

        Past the budget the page ends early (with at least one event), and its
        ``next_cursor`` continues after the last event it holds.
        """
        self._ensure_open()
        query = query or EventQuery()
        listing = await self._listing(query)
        rows = listing.rows[: query.limit]
        more = len(listing.rows) > query.limit
        parts: list[bytes] = []
        size = _PAGE_OVERHEAD
        last: Event | None = None
        # Events are serialized in blocks (one call for many is twice as fast
        # as one call each); a block that would pass the budget is redone one
        # event at a time, and so is everything after a block of large events.
        step = _BLOCK
        done = 0
        while done < len(rows):
            block = rows[done : done + step]
            data = _EVENTS.dump_json(block)[1:-1]
            if max_bytes and size + len(data) + 1 > max_bytes:
                if len(block) > 1:
                    step = 1
                    continue
                if parts:  # a page always holds at least one event
                    more = True
                    break
            parts.append(data)
            size += len(data) + 1
            last = block[-1]
            done += len(block)
            if max_bytes and len(data) > max_bytes // 8:
                step = 1
        frame = EventPage(
            items=[],
            limit=query.limit,
            offset=query.offset,
            next_cursor=self._cursor_after(query, last) if more and last else None,
            total=listing.total,
            total_exact=listing.exact,
        ).model_dump_json()
        # The frame starts {"items":[] — the events go between the brackets.
        return b'{"items":[' + b",".join(parts) + frame[len('{"items":[') :].encode()

    # -- paging ---------------------------------------------------------------

    def _position(self, query: EventQuery) -> tuple[datetime, int] | None:
        return decode_cursor(self._secrets, query) if query.cursor else None

    def _cursor_after(self, query: EventQuery, last: Event) -> str:
        return encode_cursor(self._secrets, query, last.timestamp, last.id)


@dataclass(frozen=True, slots=True)
class Listing:
    """What a backend found for a page: up to ``limit + 1`` events, and the count."""

    rows: list[Event]
    total: int | None
    exact: bool


# Room for the page's own fields around the items: limit, offset, a cursor, total.
_PAGE_OVERHEAD = 256
_BLOCK = 16
_EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


# -- idempotency: one rule for every backend -----------------------------------


def check_caller(caller: str | None) -> str:
    """``caller`` as the store keeps it (``""``: none), or ``InvalidEventError`` naming it.

    It becomes the stored events' ``written_by`` and owns their idempotency
    keys: 1-100 characters, no control characters.
    """
    if caller is None or caller == "":
        return ""
    try:
        check_label(caller)
        if len(caller) > MAX_CALLER_LENGTH:
            raise ValueError(f"must be at most {MAX_CALLER_LENGTH} characters")
    except ValueError as exc:
        raise InvalidEventError(
            [{"loc": ("caller",), "msg": str(exc), "type": "value_error"}]
        ) from None
    return caller


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
