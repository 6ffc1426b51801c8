r"""The canonical form of a stored event, and its fingerprint: what a digest seals.

The form (version 1) is the bytes ``sysevents-event-v1`` and a newline, then
a JSON array of every stored field of :data:`sysevents.columns.COLUMNS` in
order (``id``, ``event_type``, ``severity``, ``message``, ``details``,
``source``, ``timestamp``, ``created_at``, ``idempotency_key``, ``trace_id``,
``span_id``, ``written_by``), written as PostgreSQL's ``json_build_array``
writes it, in UTF-8:

* items separated by ``", "``; a null as ``null``;
* an id as its decimal digits; a time as the integer number of microseconds
  since 1970-01-01 UTC;
* text (and a severity's name) as a JSON string, escaped only where JSON
  requires it (``\"``, ``\\``, ``\b``, ``\f``, ``\n``, ``\r``, ``\t``, other
  control characters as ``\u00XX``);
* details as ``jsonb`` writes them: object keys shorter first, then by their
  UTF-8 bytes, ``", "`` and ``": "`` between items, numbers as the store keeps
  them.

JSON makes the form unambiguous: no two events share it. The fingerprint is
the first 16 bytes of its SHA-256. PostgreSQL computes the same bytes in SQL
(``sysevents.stores.postgres.seals``; a test holds the two equal).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sysevents.columns import COLUMNS, Kind
from sysevents.model import Event

PREFIX = b"sysevents-event-v1\n"
"""The first bytes of every canonical form (its version)."""
FINGERPRINT_BYTES = 16
"""The length of a fingerprint: SHA-256, cut (2^64 work to find a collision by chance)."""

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(when: datetime) -> int:
    """Microseconds since 1970 (UTC) of an aware time."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def time_text(value: datetime) -> str:
    """A time as the canonical form writes it: UTC, microseconds, ``Z``."""
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
        f"{u.second:02d}.{u.microsecond:06d}Z"
    )


def _string(text: str) -> str:
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def json_text(value: Any) -> str:
    """``value`` (JSON-ready) as ``jsonb`` writes it (see the module)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{_string(k)}: {json_text(value[k])}" for k in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    if isinstance(value, str):
        return _string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return json.dumps(value)  # a number


def _item(kind: Kind, value: Any) -> str:
    if value is None:
        return "null"
    if kind is Kind.TIME:
        return str(micros(value))
    if kind is Kind.JSON:
        return json_text(value)
    if kind is Kind.ID:
        return str(value)
    return _string(str(getattr(value, "value", value)))


def canonical(event: Event) -> bytes:
    """The canonical form of a stored event (see the module)."""
    return canonical_of({c.name: getattr(event, c.name) for c in COLUMNS})


def canonical_of(fields: dict[str, Any]) -> bytes:
    """The canonical form of an event given as its stored fields by name."""
    items = ", ".join(_item(c.kind, fields.get(c.name)) for c in COLUMNS)
    return PREFIX + f"[{items}]".encode()


def fingerprint(form: bytes) -> bytes:
    """The fingerprint of a canonical form."""
    return hashlib.sha256(form).digest()[:FINGERPRINT_BYTES]
