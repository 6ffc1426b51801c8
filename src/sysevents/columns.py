"""The stored fields of an event, declared once; every store and format derives from this.

Adding a stored field is one line in :data:`COLUMNS` (and the field on the
models, and a migration for the tables): the SELECT lists, insert parameters,
COPY rows, array types of batch inserts, update setters, the CSV columns, the
audit's list of changed fields and the fast path's field tuple all follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, LiteralString, Protocol

__all__ = ["COLUMNS", "FIELDS", "GIVEN", "PATCHABLE", "STAMPED", "Column", "Kind", "Written"]


class Written(Protocol):
    """What a store writes from: a new event or a patch (``sysevents.model``)."""

    @property
    def details_json(self) -> str | None:
        """The details as the compact JSON text a store keeps."""


class Kind(Enum):
    """What a stored field holds; each store maps a kind to its own type."""

    ID = "id"
    """A 64-bit integer the store assigns."""
    TEXT = "text"
    """Text (a label, a message, an id of text)."""
    SEVERITY = "severity"
    """A :class:`~sysevents.model.Severity`, stored as its name."""
    JSON = "json"
    """A JSON object (or null), written as its compact text."""
    TIME = "time"
    """A time with its zone, in UTC."""


@dataclass(frozen=True, slots=True)
class Column:
    """One stored field of an event."""

    name: LiteralString
    """The field of :class:`~sysevents.model.Event`, and the column's name."""
    kind: Kind
    given: bool = True
    """Written from what the caller gives (``False``: the store sets it, as ``id``)."""
    stamp: bool = False
    """The store writes who called (``written_by``): the caller never gives it."""
    patchable: bool = False
    """An :class:`~sysevents.model.EventPatch` may change it."""

    def value_of(self, item: Written) -> Any:
        """The value a store writes for this field of ``item`` (a new event or a patch)."""
        if self.kind is Kind.JSON:
            return item.details_json
        value = getattr(item, self.name)
        if self.kind is Kind.SEVERITY and value is not None:
            return value.value
        return value


COLUMNS: tuple[Column, ...] = (
    Column("id", Kind.ID, given=False),
    Column("event_type", Kind.TEXT, patchable=True),
    Column("severity", Kind.SEVERITY, patchable=True),
    Column("message", Kind.TEXT, patchable=True),
    Column("details", Kind.JSON, patchable=True),
    Column("source", Kind.TEXT, patchable=True),
    Column("timestamp", Kind.TIME, patchable=True),
    Column("created_at", Kind.TIME, given=False),
    Column("idempotency_key", Kind.TEXT),
    Column("trace_id", Kind.TEXT, patchable=True),
    Column("span_id", Kind.TEXT, patchable=True),
    Column("written_by", Kind.TEXT, given=False, stamp=True),
)
"""Every stored field, in the order of :class:`~sysevents.model.Event`'s fields."""

FIELDS: tuple[LiteralString, ...] = tuple(c.name for c in COLUMNS)
"""The names of :data:`COLUMNS`, in order."""
GIVEN: tuple[Column, ...] = tuple(c for c in COLUMNS if c.given)
"""The fields written from what the caller gives, in order."""
PATCHABLE: tuple[Column, ...] = tuple(c for c in COLUMNS if c.patchable)
"""The fields a patch may change, in order."""
STAMPED: tuple[Column, ...] = tuple(c for c in COLUMNS if c.stamp)
"""The fields the store fills with who called, in order."""
