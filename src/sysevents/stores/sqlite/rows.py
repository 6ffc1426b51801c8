"""Events as rows of the ``events`` table, and back (times as microseconds since 1970, UTC)."""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sysevents._fast import trusted_event
from sysevents.columns import COLUMNS, GIVEN, Kind
from sysevents.model import Event, EventPatch, NewEvent, Severity

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEVERITY = {s.value: s for s in Severity}
_NAMES = {"timestamp": "ts"}


def column_name(name: str) -> str:
    """The table's column for the event field ``name``."""
    return _NAMES.get(name, name)


SELECT_LIST = ", ".join(column_name(c.name) for c in COLUMNS)
"""The event's columns, in the order :func:`event_of` reads them."""
INSERT = (
    "INSERT INTO events ("
    + ", ".join(column_name(c.name) for c in GIVEN)
    + ", created_at, written_by, key_caller, message_lower) VALUES ("
    + ", ".join("?" * (len(GIVEN) + 4))
    + ")"
)
"""Writes one event: the parameters are :func:`insert_values`."""


def micros(t: datetime) -> int:
    """``t`` as microseconds since 1970 (UTC)."""
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    """The UTC time ``us`` microseconds after 1970."""
    return _EPOCH + timedelta(microseconds=us)


def _value(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind is Kind.TIME:
        return micros(value)
    return value


def insert_values(new: NewEvent, created_us: int, caller: str) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT` for ``new`` stored by ``caller`` at ``created_us``."""
    values = [_value(c.kind, c.value_of(new)) for c in GIVEN]
    key_caller = caller if new.idempotency_key is not None else None
    return (*values, created_us, caller or None, key_caller, new.message.lower())


def event_of(row: Sequence[Any]) -> Event:
    """The event of a row selected by :data:`SELECT_LIST`."""
    values: dict[str, Any] = {}
    for column, value in zip(COLUMNS, row, strict=False):
        kind = column.kind
        if value is None:
            values[column.name] = None
        elif kind is Kind.TIME:
            values[column.name] = from_micros(value)
        elif kind is Kind.JSON:
            values[column.name] = json.loads(value)
        elif kind is Kind.SEVERITY:
            values[column.name] = _SEVERITY[value]
        else:
            values[column.name] = value
    return trusted_event(Event, values)


def patch_setters(patch: EventPatch) -> tuple[str, list[Any]]:
    """``SET`` assignments of the fields ``patch`` changes, and their parameters."""
    changes = patch.changes()
    parts: list[str] = []
    params: list[Any] = []
    for column in COLUMNS:
        if not column.patchable or column.name not in changes:
            continue
        parts.append(column_name(column.name) + " = ?")
        params.append(_value(column.kind, column.value_of(patch)))
        if column.name == "message":
            parts.append("message_lower = ?")
            params.append(str(changes["message"]).lower())
    return ", ".join(parts), params
