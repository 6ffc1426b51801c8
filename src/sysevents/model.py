"""The event model: what an event is, what a patch is, and what stores answer.

Every rule of the contract is enforced by these models (the rules themselves
are in ``sysevents.rules``), so every backend rejects exactly the same input
and nothing invalid ever reaches a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)

from ._fast import (
    details_text_of,
    keep_details_text,
    store_details_text,
    take_details_text,
)
from .rules import (
    MAX_CALLER_LENGTH,
    MAX_EVENT_ID,
    MAX_EVENT_TYPE_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_SOURCE_LENGTH,
    check_label,
    check_text,
    dump_details,
    json_copy,
    not_far_future,
    parse_time,
    to_utc,
    utf8_longer_than,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_EVENT_ID",
    "AwareDatetime",
    "Details",
    "Event",
    "EventLimits",
    "EventPage",
    "EventPatch",
    "EventStats",
    "EventType",
    "IdempotencyKey",
    "Message",
    "NewEvent",
    "Severity",
    "Source",
    "SpanId",
    "Timestamp",
    "TraceId",
    "WrittenBy",
]


class Severity(StrEnum):
    """How serious an event is, ordered ``debug < info < warning < error < critical``."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """The position of this level, 0 for ``debug`` up to 4 for ``critical``."""
        return _RANKS[self]

    @classmethod
    def at_least(cls, level: Severity | str) -> list[Severity]:
        """Every level at or above ``level``, lowest first."""
        floor = cls(level).rank
        return [s for s in cls if s.rank >= floor]

    def _cmp_rank(self, other: object) -> int | None:
        if isinstance(other, str) and other in _RANKS:
            return _RANKS[Severity(other)]
        return None

    def __lt__(self, other: object) -> bool:
        rank = self._cmp_rank(other)
        return NotImplemented if rank is None else self.rank < rank

    def __le__(self, other: object) -> bool:
        rank = self._cmp_rank(other)
        return NotImplemented if rank is None else self.rank <= rank

    def __gt__(self, other: object) -> bool:
        rank = self._cmp_rank(other)
        return NotImplemented if rank is None else self.rank > rank

    def __ge__(self, other: object) -> bool:
        rank = self._cmp_rank(other)
        return NotImplemented if rank is None else self.rank >= rank

    __hash__ = StrEnum.__hash__


_RANKS = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class EventLimits:
    """The configurable size limits of an event."""

    max_message_bytes: int = 64 * 1024
    max_details_bytes: int = 64 * 1024
    max_details_depth: int = 32


DEFAULT_LIMITS = EventLimits()


def _limits(info: ValidationInfo) -> EventLimits:
    context = info.context
    if isinstance(context, dict):
        limits = context.get("limits")
        if isinstance(limits, EventLimits):
            return limits
    return DEFAULT_LIMITS


# -- field rules (the rules themselves are in sysevents.rules) ----------------


def _message(value: str, info: ValidationInfo) -> str:
    check_text(value)
    limit = _limits(info).max_message_bytes
    if utf8_longer_than(value, limit):
        raise ValueError(f"must be at most {limit} bytes in UTF-8")
    return value


def _details(value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
    if value is None:
        return None
    limits = _limits(info)
    copied: dict[str, Any] = json_copy(value, limits.max_details_depth)
    text = dump_details(copied) or ""
    if utf8_longer_than(text, limits.max_details_bytes):
        raise ValueError(f"must be at most {limits.max_details_bytes} bytes as JSON")
    keep_details_text(copied, text)  # the model keeps the text: stores need it again
    return copied


EventType = Annotated[
    str,
    Field(min_length=1, max_length=MAX_EVENT_TYPE_LENGTH, examples=["deploy"]),
    AfterValidator(check_label),
]
"""An event type: 1–50 characters, not blank, no control characters."""

Source = Annotated[
    str,
    Field(min_length=1, max_length=MAX_SOURCE_LENGTH, examples=["billing-api"]),
    AfterValidator(check_label),
]
"""Where an event came from: up to 100 characters, no control characters."""

Message = Annotated[str, Field(min_length=1, examples=["v1.2 is live"]), AfterValidator(_message)]
"""A message: at least one character, at most the configured size, no NUL."""

Details = Annotated[
    dict[str, Any] | None,
    Field(examples=[{"version": "1.2.0"}]),
    AfterValidator(_details),
]
"""Free-form JSON object: PostgreSQL-safe, nested at most 32 deep, size-limited."""

AwareDatetime = Annotated[datetime, BeforeValidator(parse_time), AfterValidator(to_utc)]
"""An ISO 8601 date-time with an offset, converted to UTC."""

Timestamp = Annotated[AwareDatetime, AfterValidator(not_far_future)]
"""When an event happened: aware, in range, at most a day ahead of now."""


IdempotencyKey = Annotated[
    str,
    Field(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH, examples=["3f2c9a1e-request-17"]),
    AfterValidator(check_label),
]
"""A client-chosen key: the store keeps at most one event per key."""


def _not_all_zero(value: str) -> str:
    # OpenTelemetry reserves the all-zero id for "no trace" / "no span".
    if value.count("0") == len(value):
        raise ValueError("must not be all zeros (the invalid OpenTelemetry id)")
    return value


TraceId = Annotated[
    str,
    Field(
        min_length=32,
        max_length=32,
        pattern=r"^[0-9a-f]{32}$",
        examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
    ),
    AfterValidator(_not_all_zero),
]
"""An OpenTelemetry trace id: 32 lowercase hex digits, not all zero."""

SpanId = Annotated[
    str,
    Field(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$", examples=["00f067aa0ba902b7"]),
    AfterValidator(_not_all_zero),
]
"""An OpenTelemetry span id: 16 lowercase hex digits, not all zero."""


WrittenBy = Annotated[
    str,
    Field(min_length=1, max_length=MAX_CALLER_LENGTH, examples=["0f3a9c2e71b4"]),
    AfterValidator(check_label),
]
"""Who stored an event: an API key's id, ``anonymous``, or a library caller."""


def _now() -> datetime:
    return datetime.now(UTC)


class _Validated(BaseModel):
    """Shared behaviour of the inputs: strict fields, details kept as JSON text too."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)

    # (the details object, its JSON text): valid only while ``details`` is that
    # very object, so a model_copy with other details never reuses the text.
    _details_json: tuple[Any, str | None] | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        """Keep the details text the validator produced, if it was for these details."""
        take_details_text(self, getattr(self, "details", None))

    @property
    def details_json(self) -> str | None:
        """The details as compact JSON text (what the store keeps), or ``None``."""
        details = getattr(self, "details", None)
        known, text = details_text_of(self, details)
        if not known:
            text = dump_details(details)
            store_details_text(self, details, text)
        return text


class NewEvent(_Validated):
    """An event to be stored; the store assigns its ``id`` and ``created_at``."""

    event_type: EventType
    severity: Severity = Severity.INFO
    message: Message
    details: Details = None
    source: Source | None = None
    timestamp: Timestamp = Field(default_factory=_now)
    idempotency_key: IdempotencyKey | None = None
    trace_id: TraceId | None = None
    span_id: SpanId | None = None

    def differs_from(self, first: Event | NewEvent) -> list[str]:
        """The fields given for this event that differ in ``first``.

        ``first`` is the event first stored (or sent) under the same
        idempotency key: a retry (nothing differs) gets it back, anything else
        is a conflict. Fields left to their defaults (a ``timestamp`` of "now")
        are not compared.
        """
        given = self.model_fields_set
        if isinstance(first, NewEvent):
            given = given | first.model_fields_set
        return [
            name
            for name in sorted(given - {"idempotency_key"})
            if getattr(self, name) != getattr(first, name)
        ]


class Event(BaseModel):
    """A stored event."""

    model_config = ConfigDict(frozen=True)

    id: int = Field(ge=1, le=MAX_EVENT_ID)
    event_type: str
    severity: Severity
    message: str
    details: dict[str, Any] | None
    source: str | None
    timestamp: datetime
    created_at: datetime
    idempotency_key: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    written_by: str | None = None
    """Who stored it, as the store saw it: an API key's id, ``anonymous``, or the
    library's ``caller``; never given by the writer."""


_PATCHABLE_NOT_NULL = ("event_type", "severity", "message", "timestamp")


class OwnRecord(NewEvent):
    """An event sysevents writes of itself: the only kind a store lets use a ``sysevents.`` type.

    What clients send is parsed into :class:`~sysevents.NewEvent`, never into
    this, so they cannot forge the audit trail (``ReservedTypeError``).
    """


class EventPatch(_Validated):
    """The fields of an event to change; fields left out stay as they are.

    ``details``, ``source``, ``trace_id`` and ``span_id`` may be set to
    ``None`` to clear them; the other fields cannot be cleared.
    """

    event_type: EventType | None = None
    severity: Severity | None = None
    message: Message | None = None
    details: Details = None
    source: Source | None = None
    timestamp: Timestamp | None = None
    trace_id: TraceId | None = None
    span_id: SpanId | None = None

    @field_validator(*_PATCHABLE_NOT_NULL)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields that were given, by name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class EventPage(BaseModel):
    """One page of a listing.

    ``total`` counts every matching event when ``total_exact`` is true; past the
    count cap it is a lower bound (``total_exact`` false), and it is ``None``
    when no count was asked for.
    """

    model_config = ConfigDict(frozen=True)

    items: list[Event]
    limit: int
    offset: int
    next_cursor: str | None
    total: int | None
    total_exact: bool


class EventStats(BaseModel):
    """Counts over the events matching a filter.

    ``by_type`` and ``by_source`` hold the largest counts, largest first (ties
    by name), up to the store's ``stats_top`` entries each; what is left out is
    summed in ``by_type_other`` and ``by_source_other``, and ``truncated`` says
    whether anything was.
    """

    model_config = ConfigDict(frozen=True)

    total: int
    by_severity: dict[Severity, int]
    by_type: dict[str, int]
    by_source: dict[str, int]
    by_type_other: int = 0
    by_source_other: int = 0
    truncated: bool = False
    last_hour: int
    last_24h: int
    first_timestamp: datetime | None
    last_timestamp: datetime | None

    @classmethod
    def from_counts(
        cls,
        *,
        by_severity: Mapping[str, int],
        by_type: Mapping[str, int],
        by_source: Mapping[str, int],
        last_hour: int,
        last_24h: int,
        first_timestamp: datetime | None,
        last_timestamp: datetime | None,
        top: int,
    ) -> EventStats:
        """The stats of these counts (zeros dropped), breakdowns cut to ``top`` entries each."""
        types, other_types = _top(by_type, top)
        sources, other_sources = _top(by_source, top)
        return cls(
            total=sum(by_severity.values()),
            by_severity={s: by_severity.get(s.value, 0) for s in Severity},
            by_type=types,
            by_source=sources,
            by_type_other=other_types,
            by_source_other=other_sources,
            truncated=len(types) < sum(1 for n in by_type.values() if n)
            or len(sources) < sum(1 for n in by_source.values() if n),
            last_hour=last_hour,
            last_24h=last_24h,
            first_timestamp=first_timestamp,
            last_timestamp=last_timestamp,
        )


def _top(counts: Mapping[str, int], top: int) -> tuple[dict[str, int], int]:
    """The ``top`` largest non-zero counts, largest first then by name, and the sum of the rest."""
    ranked = sorted(((n, k) for k, n in counts.items() if n), key=lambda nk: (-nk[0], nk[1]))
    return {k: n for n, k in ranked[:top]}, sum(n for n, _ in ranked[top:])
