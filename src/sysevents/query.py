"""Which events a listing or a statistic covers, and how each medium reads a filter.

:class:`EventFilter` and :class:`EventQuery` are the questions every store
answers. A filter is rendered for each medium in one place: as a predicate
over events here (:meth:`EventFilter.matches`, the in-memory store), as query
parameters here (:meth:`EventFilter.query_params`, the HTTP client), and as a
SQL ``WHERE`` in ``sysevents.stores.postgres.sql``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from .model import AwareDatetime, Event, EventType, Severity, Source, TraceId, WrittenBy
from .search import DETAILS_PREFIX, check_details_filters, check_q, details_at, json_equal

__all__ = ["CountMode", "EventFilter", "EventQuery", "Order", "page_total"]

Order = Literal["newest", "oldest"]
"""Listing order by (timestamp, id): newest first or oldest first."""
CountMode = Literal["capped", "exact", "none"]
"""How a listing counts its total: up to the cap, exactly, or not at all."""

QueryParams = list[tuple[str, str]]
"""Query parameters in order; a name may repeat."""


def _one_or_many(value: Any) -> Any:
    if isinstance(value, str | Severity):
        return [value]
    return value


# The length limits apply to the lists, not to an explicit ``None``.
_Types = Annotated[list[EventType], Field(max_length=100)]
_Severities = Annotated[list[Severity], Field(max_length=5)]


class EventFilter(BaseModel):
    """Which events a listing or a statistic covers; every filter is optional (AND)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: Annotated[_Types | None, BeforeValidator(_one_or_many)] = None
    severity: Annotated[_Severities | None, BeforeValidator(_one_or_many)] = None
    min_severity: Severity | None = None
    source: Source | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    trace_id: TraceId | None = None
    written_by: WrittenBy | None = None
    """Only events stored by this writer (an API key's id, ``anonymous``, a library caller)."""
    q: str | None = None
    """Only events whose message contains this text, ignoring case (see ``sysevents.search``)."""
    details: dict[str, Any] | None = None
    """Only events whose details hold each value at its dotted path: ``{"user.id": 42}``."""

    @field_validator("q")
    @classmethod
    def _searchable(cls, q: str | None) -> str | None:
        return None if q is None else check_q(q)

    @field_validator("details")
    @classmethod
    def _usable_paths(cls, details: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if details is None else check_details_filters(details) or None

    @property
    def searches(self) -> bool:
        """Whether a filter the rollups cannot count is given: stats then count rows.

        Those are ``q``, ``details``, ``trace_id`` and ``written_by``.
        """
        return (
            self.q is not None
            or bool(self.details)
            or self.trace_id is not None
            or self.written_by is not None
        )

    def filter_key(self) -> str:
        """A canonical text of the filters, equal exactly for equal filters."""
        key: list[Any] = [
            sorted(set(self.event_type)) if self.event_type is not None else None,
            sorted({s.value for s in self.severity}) if self.severity is not None else None,
            self.min_severity,
            self.source,
            self.since.isoformat() if self.since else None,
            self.until.isoformat() if self.until else None,
        ]
        # The later filters only when given, each named: a cursor issued before
        # they existed stays valid, and no two filters share a key.
        if self.q is not None:
            key.append(["q", self.q])
        if self.details:
            key.append(
                [
                    "details",
                    sorted(
                        (path, json.dumps(value, sort_keys=True, ensure_ascii=False))
                        for path, value in self.details.items()
                    ),
                ]
            )
        if self.trace_id is not None:
            key.append(["trace_id", self.trace_id])
        if self.written_by is not None:
            key.append(["written_by", self.written_by])
        return json.dumps(key, ensure_ascii=False, separators=(",", ":"))

    def severities(self) -> list[Severity] | None:
        """The severity levels allowed by ``severity`` and ``min_severity`` together."""
        allowed: list[Severity] | None = None
        if self.severity is not None:
            allowed = list(dict.fromkeys(self.severity))
        if self.min_severity is not None:
            floor = self.min_severity.rank
            allowed = [s for s in (allowed or list(Severity)) if s.rank >= floor]
        return allowed

    # -- the filter in each medium ----------------------------------------------

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes every filter (the in-memory store's reading)."""
        if self.event_type is not None and event.event_type not in self.event_type:
            return False
        severities = self.severities()
        if severities is not None and event.severity not in severities:
            return False
        if self.source is not None and event.source != self.source:
            return False
        if self.trace_id is not None and event.trace_id != self.trace_id:
            return False
        if self.written_by is not None and event.written_by != self.written_by:
            return False
        if self.since is not None and event.timestamp < self.since:
            return False
        if self.until is not None and event.timestamp >= self.until:
            return False
        if self.q is not None and self.q.lower() not in event.message.lower():
            return False
        return all(
            json_equal(details_at(event.details, path), value)
            for path, value in (self.details or {}).items()
        )

    def query_params(self) -> QueryParams:
        """The filters as the REST API's query parameters (the HTTP client's reading)."""
        params: QueryParams = [("event_type", t) for t in self.event_type or ()]
        params += [("severity", s.value) for s in self.severity or ()]
        if self.min_severity is not None:
            params.append(("min_severity", self.min_severity.value))
        if self.source is not None:
            params.append(("source", self.source))
        if self.since is not None:
            params.append(("since", self.since.isoformat()))
        if self.until is not None:
            params.append(("until", self.until.isoformat()))
        if self.trace_id is not None:
            params.append(("trace_id", self.trace_id))
        if self.written_by is not None:
            params.append(("written_by", self.written_by))
        if self.q is not None:
            params.append(("q", self.q))
        # The value always as JSON text, so that a string never reads back as a number.
        params += [
            (DETAILS_PREFIX + path, json.dumps(value, ensure_ascii=False))
            for path, value in (self.details or {}).items()
        ]
        return params


MAX_OFFSET = 100_000
"""The largest ``offset``: skipping is reading, so deeper pages go by ``cursor``."""


class EventQuery(EventFilter):
    """A listing: filters, order, and one page by ``offset`` or by ``cursor``."""

    order: Order = "newest"
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(
        default=0,
        ge=0,
        le=MAX_OFFSET,
        description="Events to skip; deeper pages are read by cursor (an offset is read through).",
    )
    cursor: str | None = Field(default=None, min_length=1, max_length=512)
    count: CountMode = "capped"

    @field_validator("cursor")
    @classmethod
    def _one_way_of_paging(cls, cursor: str | None, info: ValidationInfo) -> str | None:
        if cursor is not None and info.data.get("offset"):
            raise ValueError("give either offset or cursor, not both")
        return cursor

    def query_params(self) -> QueryParams:
        """The filters, order and paging as the REST API's query parameters."""
        params = super().query_params()
        params += [("order", self.order), ("limit", str(self.limit)), ("count", self.count)]
        if self.offset:
            params.append(("offset", str(self.offset)))
        if self.cursor is not None:
            params.append(("cursor", self.cursor))
        return params


def page_total(mode: CountMode, counted: int | None, cap: int) -> tuple[int | None, bool]:
    """A page's ``(total, total_exact)`` from what was counted.

    ``counted`` is the number of matching events, or for ``capped`` at least
    ``min(matching, cap + 1)``: past the cap the total is reported as the cap,
    a lower bound.
    """
    if mode == "none" or counted is None:
        return None, False
    if mode == "exact":
        return counted, True
    exact = counted <= cap
    return (counted if exact else cap), exact
