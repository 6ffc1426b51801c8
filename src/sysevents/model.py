"""The event model: what an event is, and every rule an event must keep.

Every rule of the contract is enforced here, so that every backend rejects
exactly the same input and nothing invalid ever reaches a store.
"""

from __future__ import annotations

import json
import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

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

MAX_EVENT_ID = 2**63 - 1
"""The largest id a store can assign (PostgreSQL ``bigint``)."""

MAX_EVENT_TYPE_LENGTH = 50
"""The longest ``event_type``, in characters."""
MAX_SOURCE_LENGTH = 100
"""The longest ``source``, in characters."""
MAX_FUTURE = timedelta(days=1)
"""How far ahead of now a ``timestamp`` may be."""
# Integers in details are bounded so that every JSON library (and Python's own
# int/str conversion limit) can read them back.
_MAX_DETAILS_INT = 10**1000

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_INVISIBLE = frozenset({"Cf", "Zl", "Zp"})
_FORBIDDEN_ANYWHERE = re.compile(r"[\x00\ud800-\udfff]")


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


# -- field rules --------------------------------------------------------------


def _no_nul_or_surrogate(value: str) -> str:
    match = _FORBIDDEN_ANYWHERE.search(value)
    if match:
        what = "NUL characters" if match.group() == "\x00" else "unpaired surrogates"
        raise ValueError(f"must not contain {what}")
    return value


def _label(value: str) -> str:
    """Rules shared by ``event_type`` and ``source``: no control characters, not blank.

    Invisible format characters (zero-width space, bidi marks) and line or
    paragraph separators count as control characters here.
    """
    _no_nul_or_surrogate(value)
    if _CONTROL.search(value) or (
        not value.isascii() and any(unicodedata.category(c) in _INVISIBLE for c in value)
    ):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _message(value: str, info: ValidationInfo) -> str:
    _no_nul_or_surrogate(value)
    limit = _limits(info).max_message_bytes
    # A character is at most 4 bytes in UTF-8: most messages skip the encode.
    if len(value) * 4 > limit and len(value.encode()) > limit:
        raise ValueError(f"must be at most {limit} bytes in UTF-8")
    return value


def _json_copy(value: Any, max_depth: int) -> Any:
    """Check that ``value`` is plain JSON PostgreSQL will store, and return a copy.

    Iterative, so that absurd nesting is refused instead of exhausting the stack.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int, str]] = [(value, root, 0, 1, "")]
    while stack:
        item, parent, key, depth, path = stack.pop()
        where = f" at {path}" if path else ""
        if isinstance(item, dict):
            if depth > max_depth:
                raise ValueError(f"must be nested at most {max_depth} levels deep")
            copy: Any = {}
            for k, v in item.items():
                copy[k] = None  # keeps the key order; filled when popped
                if not isinstance(k, str):
                    raise ValueError(f"object keys must be strings{where}")
                try:
                    _no_nul_or_surrogate(k)
                except ValueError as exc:
                    raise ValueError(f"key {k[:40]!r}{where}: {exc}") from None
                stack.append((v, copy, k, depth + 1, f"{path}.{k}" if path else k))
        elif isinstance(item, list | tuple):
            if depth > max_depth:
                raise ValueError(f"must be nested at most {max_depth} levels deep")
            copy = [None] * len(item)
            for i, v in enumerate(item):
                stack.append((v, copy, i, depth + 1, f"{path}[{i}]"))
        elif isinstance(item, str):
            try:
                copy = _no_nul_or_surrogate(item)
            except ValueError as exc:
                raise ValueError(f"string{where} {exc}") from None
        elif item is None or isinstance(item, bool):
            copy = item
        elif isinstance(item, int):
            if not -_MAX_DETAILS_INT < item < _MAX_DETAILS_INT:
                raise ValueError(f"integer{where} is too large")
            copy = int(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"number{where} must be finite")
            copy = _like_postgres(float(item))
        else:
            raise ValueError(f"value{where} of type {type(item).__name__} is not JSON")
        parent[key] = copy
    return root[0]


def _like_postgres(number: float) -> float | int:
    """The number PostgreSQL's jsonb gives back, so every backend returns the same.

    jsonb keeps numbers as decimals: ``-0.0`` comes back as ``0.0``, and a
    float written with a positive exponent (``1e+16``) as the integer it spells.
    """
    text = repr(number)
    if "e+" in text:
        return int(Decimal(text))
    return 0.0 if number == 0 else number


def _details(value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
    if value is None:
        return None
    limits = _limits(info)
    copied: dict[str, Any] = _json_copy(value, limits.max_details_depth)
    text = dump_details(copied) or ""
    if len(text) * 4 > limits.max_details_bytes and len(text.encode()) > limits.max_details_bytes:
        raise ValueError(f"must be at most {limits.max_details_bytes} bytes as JSON")
    _dumped.last = (copied, text)  # the model keeps the text: stores need it again
    return copied


# The details text a validator just produced, for the model being built to keep
# (a field validator cannot set the model's private attributes itself).
_dumped = threading.local()


def dump_details(details: dict[str, Any] | None) -> str | None:
    """Serialize details as compact JSON text, the form that is stored and measured."""
    if details is None:
        return None
    return json.dumps(details, ensure_ascii=False, separators=(",", ":"))


def _parse_time(value: Any) -> Any:
    """Accept a ``datetime`` or ISO 8601 text; a bare number is not a time."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if len(value) > 64:
            raise ValueError("is not an ISO 8601 date-time")
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("is not an ISO 8601 date-time") from None
    raise ValueError("must be an ISO 8601 date-time string")


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a time zone offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


def _not_far_future(value: datetime) -> datetime:
    if value - datetime.now(UTC) > MAX_FUTURE:
        raise ValueError("must not be more than a day in the future")
    return value


EventType = Annotated[
    str,
    Field(min_length=1, max_length=MAX_EVENT_TYPE_LENGTH, examples=["deploy"]),
    AfterValidator(_label),
]
"""An event type: 1–50 characters, not blank, no control characters."""

Source = Annotated[
    str,
    Field(min_length=1, max_length=MAX_SOURCE_LENGTH, examples=["billing-api"]),
    AfterValidator(_label),
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

AwareDatetime = Annotated[datetime, BeforeValidator(_parse_time), AfterValidator(_to_utc)]
"""An ISO 8601 date-time with an offset, converted to UTC."""

Timestamp = Annotated[AwareDatetime, AfterValidator(_not_far_future)]
"""When an event happened: aware, in range, at most a day ahead of now."""


IdempotencyKey = Annotated[
    str,
    Field(min_length=1, max_length=100, examples=["3f2c9a1e-request-17"]),
    AfterValidator(_label),
]
"""A client-chosen key: the store keeps at most one event per key."""


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
        last = getattr(_dumped, "last", None)
        if last is not None:
            _dumped.last = None
            private = self.__pydantic_private__
            if last[0] is getattr(self, "details", None) and private is not None:
                private["_details_json"] = last

    @property
    def details_json(self) -> str | None:
        """The details as compact JSON text (what the store keeps), or ``None``."""
        # The private dict itself: ``self._details_json`` goes through
        # BaseModel.__getattr__, several times slower, twice per event written.
        details = getattr(self, "details", None)
        private = self.__pydantic_private__
        kept = private.get("_details_json") if private is not None else None
        if kept is not None and kept[0] is details:
            return kept[1]  # type: ignore[no-any-return]
        text = dump_details(details)
        if private is not None:
            private["_details_json"] = (details, text)
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


_PATCHABLE_NOT_NULL = ("event_type", "severity", "message", "timestamp")


class EventPatch(_Validated):
    """The fields of an event to change; fields left out stay as they are.

    ``details`` and ``source`` may be set to ``None`` to clear them; the other
    fields cannot be cleared.
    """

    event_type: EventType | None = None
    severity: Severity | None = None
    message: Message | None = None
    details: Details = None
    source: Source | None = None
    timestamp: Timestamp | None = None

    @field_validator(*_PATCHABLE_NOT_NULL)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields that were given, by name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _one_or_many(value: Any) -> Any:
    if isinstance(value, str | Severity):
        return [value]
    return value


Order = Literal["newest", "oldest"]
"""Listing order by (timestamp, id): newest first or oldest first."""
CountMode = Literal["capped", "exact", "none"]
"""How a listing counts its total: up to the cap, exactly, or not at all."""


class EventFilter(BaseModel):
    """Which events a listing or a statistic covers; every filter is optional (AND)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: Annotated[
        list[EventType] | None, BeforeValidator(_one_or_many), Field(max_length=100)
    ] = None
    severity: Annotated[
        list[Severity] | None, BeforeValidator(_one_or_many), Field(max_length=5)
    ] = None
    min_severity: Severity | None = None
    source: Source | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    def filter_key(self) -> str:
        """A canonical text of the filters, equal exactly for equal filters."""
        return json.dumps(
            [
                sorted(set(self.event_type)) if self.event_type is not None else None,
                sorted({s.value for s in self.severity}) if self.severity is not None else None,
                self.min_severity,
                self.source,
                self.since.isoformat() if self.since else None,
                self.until.isoformat() if self.until else None,
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )

    def severities(self) -> list[Severity] | None:
        """The severity levels allowed by ``severity`` and ``min_severity`` together."""
        allowed: list[Severity] | None = None
        if self.severity is not None:
            allowed = list(dict.fromkeys(self.severity))
        if self.min_severity is not None:
            floor = self.min_severity.rank
            allowed = [s for s in (allowed or list(Severity)) if s.rank >= floor]
        return allowed


class EventQuery(EventFilter):
    """A listing: filters, order, and one page by ``offset`` or by ``cursor``."""

    order: Order = "newest"
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_EVENT_ID)
    cursor: str | None = Field(default=None, min_length=1, max_length=512)
    count: CountMode = "capped"

    @field_validator("cursor")
    @classmethod
    def _one_way_of_paging(cls, cursor: str | None, info: ValidationInfo) -> str | None:
        if cursor is not None and info.data.get("offset"):
            raise ValueError("give either offset or cursor, not both")
        return cursor


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
    """Counts over the events matching a filter."""

    model_config = ConfigDict(frozen=True)

    total: int
    by_severity: dict[Severity, int]
    by_type: dict[str, int]
    by_source: dict[str, int]
    last_hour: int
    last_24h: int
    first_timestamp: datetime | None
    last_timestamp: datetime | None
