"""A filter (``EventFilter``) as a SQL ``WHERE`` over the ``events`` table.

``q`` asks the FTS5 trigram index for the rows holding the rarest trigram of
the lowercased text (see ``text``), then checks the substring itself
(``instr``); shorter than three characters, it checks the substring only. ``details``
paths are read with JSON1: scalars compared in SQL by their JSON type (so
``1`` is never ``true`` nor ``"1"``), arrays and objects by
``sysevents_json_equal``, the rule of ``sysevents.search``.
"""

from __future__ import annotations

import json
from typing import Any

from sysevents.query import EventFilter
from sysevents.search import MISSING

from .rows import micros
from .text import Lookup

Clause = tuple[list[str], list[Any]]


def rows_of(query: EventFilter, text: Lookup | None) -> tuple[str, list[Any]]:
    """`` FROM ... WHERE ...`` over the events ``query`` selects, and its parameters.

    With a ``q`` looked up by ``text`` (see ``text``), the rows holding its
    rarest trigram are read first (``CROSS JOIN`` keeps that order), each
    then checked; else the events are read (in an index's order).
    """
    if query.q is not None and text is not None and text.trigram is not None:
        parts, params = where(query, alias="events", text=text)
        source = " FROM events_text(?) AS t CROSS JOIN events ON events.id = t.rowid"
        return source + sql_where(parts), [text.match(), *params]
    parts, params = where(query, text=text)
    return " FROM events" + sql_where(parts), params


def where(query: EventFilter, *, alias: str = "", text: Lookup | None = None) -> Clause:
    """The conditions (ANDed) of ``query``, and their parameters (see :func:`rows_of`)."""
    a = alias + "." if alias else ""
    parts: list[str] = []
    params: list[Any] = []
    if query.event_type is not None:
        parts.append(f"{a}event_type IN ({', '.join('?' * len(query.event_type))})")
        params += query.event_type
    severities = query.severities()
    if severities is not None:
        if not severities:
            parts.append("0")
        else:
            parts.append(f"{a}severity IN ({', '.join('?' * len(severities))})")
            params += [s.value for s in severities]
    for name, value in (
        ("source", query.source),
        ("trace_id", query.trace_id),
        ("written_by", query.written_by),
    ):
        if value is not None:
            parts.append(f"{a}{name} = ?")
            params.append(value)
    if query.since is not None:
        parts.append(f"{a}ts >= ?")
        params.append(micros(query.since))
    if query.until is not None:
        parts.append(f"{a}ts < ?")
        params.append(micros(query.until))
    if query.q is not None:
        needle = query.q.lower()
        if text is not None and text.trigram is not None and text.candidates == 0:
            parts.append("0")
        parts.append(f"instr({a}message_lower, ?) > 0")
        params.append(needle)
    for path, value in (query.details or {}).items():
        clause, more = _details(a, path, value)
        parts.append(clause)
        params += more
    return parts, params


def _json_path(path: str) -> str:
    return "$" + "".join('."' + key + '"' for key in path.split("."))


def _details(a: str, path: str, value: Any) -> tuple[str, list[Any]]:
    if any('"' in key or "\\" in key for key in path.split(".")):
        # JSON1 cannot name such a key: compare in Python, walking the path.
        return "sysevents_details_equal(" + a + "details, ?, ?)", [
            path,
            json.dumps(value),
        ]
    json_path = _json_path(path)
    column = a + "details"
    if value is None:
        return f"json_type({column}, ?) = 'null'", [json_path]
    if value is True or value is False:
        return f"json_type({column}, ?) = ?", [json_path, "true" if value else "false"]
    if isinstance(value, int | float):
        return (
            f"json_type({column}, ?) IN ('integer', 'real') "
            f"AND sysevents_json_equal({column} -> ?, ?)",
            [json_path, json_path, json.dumps(value)],
        )
    if isinstance(value, str):
        return (
            f"json_type({column}, ?) = 'text' AND json_extract({column}, ?) = ?",
            [json_path, json_path, value],
        )
    return (
        f"json_type({column}, ?) IN ('array', 'object') AND sysevents_json_equal({column} -> ?, ?)",
        [json_path, json_path, json.dumps(value)],
    )


def details_equal(details: str | None, path: str, wanted: str) -> bool:
    """SQL ``sysevents_details_equal(details, path, value_json)``: the value at ``path`` equals."""
    from sysevents.search import details_at, json_equal

    if details is None:
        return False
    found = details_at(json.loads(details), path)
    return found is not MISSING and json_equal(found, json.loads(wanted))


def sql_where(parts: list[str]) -> str:
    """`` WHERE a AND b`` (nothing without conditions)."""
    return " WHERE " + " AND ".join(parts) if parts else ""
