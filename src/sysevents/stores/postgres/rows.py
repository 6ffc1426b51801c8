"""The event's columns as PostgreSQL writes and reads them, derived from ``sysevents.columns``.

Rows are read by name: :func:`event_rows` is a psycopg row factory that
checks, once per statement, that the columns are the event's, and builds each
event from its values without validating them again (they were valid when
written). :func:`stored_rows` also hands over the columns a statement selects
after the event's (the writing transaction, the key's caller).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg.rows import RowMaker

from sysevents._fast import trusted_event
from sysevents.columns import COLUMNS, FIELDS, GIVEN, STAMPED, Column, Kind
from sysevents.model import Event, NewEvent, Severity

_SEVERITY = {s.value: s for s in Severity}
_SQL_TYPE: dict[Kind, LiteralString] = {
    Kind.ID: "bigint",
    Kind.TEXT: "text",
    Kind.SEVERITY: "text",
    Kind.JSON: "jsonb",
    Kind.TIME: "timestamptz",
}
# A JSON value travels as its text, and is cast where it is written.
_ARRAY_TYPE: dict[Kind, LiteralString] = {**_SQL_TYPE, Kind.JSON: "text"}
_QUOTED: dict[str, LiteralString] = {"timestamp": '"timestamp"'}


def sql_name(column: Column) -> LiteralString:
    """The column's name in SQL (quoted where it is a keyword)."""
    return _QUOTED.get(column.name, column.name)


def placeholder(column: Column) -> LiteralString:
    """The parameter that writes ``column``, with the cast its type needs."""
    return "%s::jsonb" if column.kind is Kind.JSON else "%s"


def array_type(column: Column) -> LiteralString:
    """The SQL type of an array of ``column``'s values, as a batch insert unnests them."""
    return _ARRAY_TYPE[column.kind] + "[]"


def select_list(alias: LiteralString = "") -> LiteralString:
    """Every column of an event, in order (of the table aliased ``alias`` if given)."""
    prefix: LiteralString = alias + "." if alias else ""
    return ", ".join(prefix + sql_name(c) for c in COLUMNS)


SELECT_LIST = select_list()
"""Every column of an event, in the order :func:`event_rows` reads them."""
GIVEN_NAMES = ", ".join(sql_name(c) for c in GIVEN)
"""The columns written from what the caller gives, in order."""
STAMPED_NAMES = ", ".join(sql_name(c) for c in STAMPED)
"""The columns the store fills with who called (each takes the caller, or NULL)."""


def stamps(caller: str) -> list[str | None]:
    """The values of :data:`STAMPED_NAMES` for ``caller`` (``""``: nobody said)."""
    return [caller or None for _ in STAMPED]


def given_values(new: NewEvent) -> list[Any]:
    """The values of :data:`GIVEN_NAMES` for ``new``."""
    return [c.value_of(new) for c in GIVEN]


def _check(cursor: psycopg.AsyncCursor[Any]) -> int:
    """How many columns the statement selects; ``ProgrammingError`` unless an event's first."""
    names = tuple(c.name for c in cursor.description or ())
    if names[: len(FIELDS)] != FIELDS:
        raise psycopg.ProgrammingError(f"not the columns of an event: {names}")
    return len(names)


def _event(values: Sequence[Any]) -> Event:
    row = dict(zip(FIELDS, values, strict=False))
    row["severity"] = _SEVERITY[row["severity"]]
    return trusted_event(Event, row)


def event_of(row: Mapping[str, Any]) -> Event:
    """The event in a row read as a mapping by column name (``psycopg.rows.dict_row``)."""
    return _event([row[name] for name in FIELDS])


def event_rows(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[Event]:
    """A row factory: each row of :data:`SELECT_LIST` as an :class:`~sysevents.model.Event`."""
    _check(cursor)
    return _event


@dataclass(frozen=True, slots=True)
class StoredRow:
    """An event, and the columns selected after its own, by name."""

    event: Event
    extra: Mapping[str, Any]


def stored_rows(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[StoredRow]:
    """A row factory: the event of each row, and the columns after it by name."""
    width = _check(cursor)
    description = cursor.description or ()
    extra_names = [c.name for c in description[len(FIELDS) : width]]

    def make(values: Sequence[Any]) -> StoredRow:
        extra = dict(zip(extra_names, values[len(FIELDS) :], strict=True))
        return StoredRow(_event(values), extra)

    return make


_FLAT = (str, int, float, bool, type(None))


def _own_copy(details: dict[str, Any] | None, text: str) -> dict[str, Any] | None:
    """A copy of validated ``details`` that shares nothing mutable with them."""
    if details is not None and all(isinstance(v, _FLAT) for v in details.values()):
        return dict(details)
    return json.loads(text)  # type: ignore[no-any-return]


def as_stored(new: NewEvent, event_id: int, created_at: datetime, caller: str) -> Event:
    """The event as stored from ``new`` by ``caller``: its values are as PostgreSQL keeps them.

    The caller gets its own copy of the details, as from a read.
    """
    values: dict[str, Any] = {}
    for column in COLUMNS:
        if column.name == "id":
            values["id"] = event_id
        elif column.name == "created_at":
            values["created_at"] = created_at
        elif column.stamp:
            values[column.name] = caller or None
        elif column.kind is Kind.JSON:
            text = new.details_json
            values[column.name] = None if text is None else _own_copy(new.details, text)
        else:
            values[column.name] = getattr(new, column.name)
    return trusted_event(Event, values)
