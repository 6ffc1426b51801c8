"""Every rule an event's values must keep, each written once: ids, sizes, characters, JSON, times.

The model (``sysevents.model``) validates with these; stores, the cache, the
HTTP client and the logging handler use the same functions, so no rule exists
in two versions.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

MAX_EVENT_ID = 2**63 - 1
"""The largest id a store can assign (PostgreSQL ``bigint``)."""
MAX_EVENT_TYPE_LENGTH = 50
"""The longest ``event_type``, in characters."""
MAX_SOURCE_LENGTH = 100
"""The longest ``source``, in characters."""
MAX_CALLER_LENGTH = 100
"""The longest ``caller`` of a write, kept as the events' ``written_by``."""
MAX_IDEMPOTENCY_KEY_LENGTH = 100
"""The longest idempotency key, in characters."""
MAX_FUTURE = timedelta(days=1)
"""How far ahead of now a ``timestamp`` may be."""
# Integers in details are bounded so that every JSON library (and Python's own
# int/str conversion limit) can read them back.
_MAX_DETAILS_INT = 10**1000

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# In a label, these count as control characters: invisible format characters
# (zero-width space, bidi marks), line and paragraph separators, unassigned
# code points and noncharacters (U+FFFF), private use, and the fillers that
# render as nothing (U+3164 and its kin). A label made of them looks blank.
_INVISIBLE = frozenset({"Cf", "Zl", "Zp", "Cn", "Co"})
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_FORBIDDEN_ANYWHERE = re.compile(r"[\x00\ud800-\udfff]")


def is_event_id(value: int) -> bool:
    """Whether ``value`` can be the id of a stored event (1 to 2^63-1).

    Every store checks this before an id reaches SQL or Redis: an int past
    ``bigint`` would be sent as ``numeric`` (a table scan) or overflow.
    """
    return 0 < value <= MAX_EVENT_ID


def utf8_longer_than(text: str, limit: int) -> bool:
    """Whether ``text`` takes more than ``limit`` bytes in UTF-8."""
    # A character is at most 4 bytes: most texts skip the encode.
    return len(text) * 4 > limit and len(text.encode()) > limit


def check_text(value: str) -> str:
    """Refuse NUL and unpaired surrogates, which PostgreSQL cannot store."""
    match = _FORBIDDEN_ANYWHERE.search(value)
    if match:
        what = "NUL characters" if match.group() == "\x00" else "unpaired surrogates"
        raise ValueError(f"must not contain {what}")
    return value


def clean_text(value: str) -> str:
    """``value`` with NUL and unpaired surrogates replaced by U+FFFD: text any store keeps."""
    return _FORBIDDEN_ANYWHERE.sub("\ufffd", value)


def _hidden(char: str) -> bool:
    return char in _FILLERS or unicodedata.category(char) in _INVISIBLE


def _has_hidden(value: str) -> bool:
    return bool(_CONTROL.search(value)) or (not value.isascii() and any(map(_hidden, value)))


def check_label(value: str) -> str:
    """Rules shared by ``event_type``, ``source`` and idempotency keys.

    No NUL, no control or invisible characters, not blank.
    """
    check_text(value)
    if _has_hidden(value):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def clean_label(value: str, max_length: int) -> str:
    """``value`` made into a valid label: hidden characters become ``?``, cut to length."""
    cleaned = _CONTROL.sub("?", clean_text(value))
    if not cleaned.isascii():
        cleaned = "".join("?" if _hidden(c) else c for c in cleaned)
    cleaned = cleaned[:max_length]
    return cleaned if cleaned.strip() else "?"


def json_copy(value: Any, max_depth: int) -> Any:
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
                    check_text(k)
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
                copy = check_text(item)
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
            copy = like_postgres(float(item))
        else:
            raise ValueError(f"value{where} of type {type(item).__name__} is not JSON")
        parent[key] = copy
    return root[0]


def like_postgres(number: float) -> float | int:
    """The number PostgreSQL's jsonb gives back, so every backend returns the same.

    jsonb keeps numbers as decimals: ``-0.0`` comes back as ``0.0``, and a
    float written with a positive exponent (``1e+16``) as the integer it spells.
    """
    text = repr(number)
    if "e+" in text:
        return int(Decimal(text))
    return 0.0 if number == 0 else number


def dump_details(details: dict[str, Any] | None) -> str | None:
    """Serialize details as compact JSON text, the form that is stored and measured."""
    if details is None:
        return None
    return json.dumps(details, ensure_ascii=False, separators=(",", ":"))


def parse_time(value: Any) -> Any:
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


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive time, or one out of range once in UTC, is refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a time zone offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


def not_far_future(value: datetime) -> datetime:
    """Refuse a time more than :data:`MAX_FUTURE` ahead of now."""
    if value - datetime.now(UTC) > MAX_FUTURE:
        raise ValueError("must not be more than a day in the future")
    return value
