"""The rules of the two search filters, ``q`` and ``details.PATH=VALUE``, for every medium.

``q`` matches when the lowercase of the message contains the lowercase of
``q``. Lowercase is Unicode's full, context-sensitive mapping: Python's
``str.lower()``, and in PostgreSQL ``lower()`` under the ICU root collation
(``"und-x-icu"``), which agree ('İ' becomes 'i̇', a final 'Σ' becomes 'ς').
It is not case folding: 'ß' does not match 'SS'.

``details`` maps dotted paths to JSON values: an event matches when, walking
its details object key by key, the value found equals the one given, with
JSON's equality: numbers by value (``1`` equals ``1.0``), never a number and
a string (``1`` is not ``"1"``), nor a boolean and a number; arrays in order;
objects by their keys. A path walks objects only.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

__all__ = [
    "DETAILS_PREFIX",
    "MAX_DETAILS_FILTERS",
    "MAX_PATH_DEPTH",
    "MISSING",
    "check_details_filters",
    "check_q",
    "details_at",
    "json_equal",
    "parse_details_value",
]

DETAILS_PREFIX = "details."
"""The prefix of a details filter among query parameters: ``details.user.id=42``."""
MAX_DETAILS_FILTERS = 16
"""How many details filters one query may hold."""
MAX_PATH_DEPTH = 32
"""How many keys a path may walk (the nesting depth details may have)."""
MAX_PATH_LENGTH = 512
"""Characters of one path."""
MAX_VALUE_LENGTH = 4096
"""Characters of one value, as JSON text."""
MAX_Q_LENGTH = 200
"""Characters of ``q``."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What :func:`details_at` finds where the path leads nowhere."""


def check_q(q: str) -> str:
    """``q`` if it can be searched for; ``ValueError`` saying why not."""
    if not q:
        raise ValueError("must not be empty")
    if len(q) > MAX_Q_LENGTH:
        raise ValueError(f"must be at most {MAX_Q_LENGTH} characters")
    if "\x00" in q:
        raise ValueError("must not contain NUL")
    return q


def _check_value(value: Any, depth: int = 0) -> None:
    if depth > MAX_PATH_DEPTH:
        raise ValueError(f"must be nested at most {MAX_PATH_DEPTH} deep")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL")
        return
    if isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or "\x00" in key:
                raise ValueError("must have text keys without NUL")
            _check_value(item, depth + 1)
        return
    raise ValueError(f"must be a JSON value, not {type(value).__name__}")


def check_details_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """``filters`` (dotted path -> JSON value) if every path and value is usable.

    Raises ``ValueError`` naming the first bad path.
    """
    if len(filters) > MAX_DETAILS_FILTERS:
        raise ValueError(f"at most {MAX_DETAILS_FILTERS} details filters")
    for path, value in filters.items():
        keys = path.split(".")
        problem = None
        if not path or any(k == "" for k in keys):
            problem = "a path is keys joined by dots, none of them empty"
        elif len(path) > MAX_PATH_LENGTH or len(keys) > MAX_PATH_DEPTH:
            problem = f"a path has at most {MAX_PATH_DEPTH} keys and {MAX_PATH_LENGTH} characters"
        elif "\x00" in path:
            problem = "a path must not contain NUL"
        else:
            try:
                _check_value(value)
                if len(json.dumps(value, ensure_ascii=False)) > MAX_VALUE_LENGTH:
                    raise ValueError(f"must be at most {MAX_VALUE_LENGTH} characters as JSON")
            except ValueError as exc:
                problem = f"the value {exc}"
        if problem is not None:
            raise ValueError(f"details.{path}: {problem}")
    return filters


def parse_details_value(text: str) -> Any:
    """A query parameter's value: the JSON it spells, or else the text itself."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)  # NaN and Infinity are not JSON: the text stays text

    if len(text) > MAX_VALUE_LENGTH:
        raise ValueError(f"must be at most {MAX_VALUE_LENGTH} characters")
    try:
        value = json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise ValueError(f"must be nested at most {MAX_PATH_DEPTH} deep") from None
    except ValueError:
        return text
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("the number is out of range")
    return value


def details_at(details: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``details``, or :data:`MISSING`; walks objects only."""
    here = details
    for key in path.split("."):
        if not isinstance(here, dict) or key not in here:
            return MISSING
        here = here[key]
    return here


def _number(value: int | float) -> Decimal:
    # A float's repr is the shortest text that reads back as it: the text
    # PostgreSQL received and keeps as an exact numeric.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def json_equal(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as PostgreSQL's ``jsonb`` compares them."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) or isinstance(b, int | float):
        return (
            isinstance(a, int | float) and isinstance(b, int | float) and _number(a) == _number(b)
        )
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(v, b[k]) for k, v in a.items())
        )
    return a is not MISSING and a == b  # strings and null
