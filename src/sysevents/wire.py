"""The REST API's error contract: which library error is which HTTP status, both ways.

The server (``sysevents_http``) answers each error with the status this table
gives, as RFC 9457 problem details; the HTTP client (``sysevents.stores.http``)
turns a status and its problem back into the same error. Neither needs the
other installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import (
    AppendOnlyError,
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    IdempotencyConflictError,
    InvalidCursorError,
    InvalidEventError,
    KeyNotFoundError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    SyseventsError,
)

ERROR_STATUS: tuple[tuple[type[SyseventsError], int], ...] = (
    (InvalidEventError, 400),
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (KeyNotFoundError, 404),
    (AppendOnlyError, 405),
    (IdempotencyConflictError, 422),
    (ConflictError, 409),
    (StoreUnavailableError, 503),
    (SyseventsError, 500),
)
"""Each library error and its status, most specific first (the first match wins)."""

UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
"""Answers that mean "try again later": the client raises ``StoreUnavailableError``."""

RETRY_AFTER_SECONDS = 5
"""What a 503 suggests in its ``Retry-After`` header."""


def status_of(error: SyseventsError | type[SyseventsError]) -> int:
    """The HTTP status that answers ``error`` (an error, or a kind of error)."""
    kind = error if isinstance(error, type) else type(error)
    for base, status in ERROR_STATUS:
        if issubclass(kind, base):
            return status
    return 500  # pragma: no cover - SyseventsError matches every error


def _loc(field: str, batch: bool) -> tuple[int | str, ...]:
    parts: list[int | str] = [int(p) if p.isdigit() else p for p in field.split(".")]
    if batch and parts and parts[0] == "events":
        parts = parts[1:]
    return tuple(parts)


def error_of(
    status: int,
    problem: Mapping[str, Any],
    *,
    what: str,
    event_id: int | None = None,
    batch: bool = False,
) -> SyseventsError:
    """The library error an answer of ``status`` with ``problem`` (its JSON body) stands for.

    ``what`` names the request in messages; ``event_id`` is the id a 404 is
    about, if any; ``batch`` drops the leading ``events`` of field paths.
    """
    detail = str(problem.get("detail") or f"HTTP {status}")
    if status == 404 and event_id is not None:
        return NotFoundError(event_id)
    if status in (400, 413):
        errors = [
            {
                "loc": _loc(str(e.get("field", "body")), batch),
                "msg": str(e.get("message", "is not valid")),
                "type": str(e.get("type", "value_error")),
            }
            for e in problem.get("errors") or ()
            if isinstance(e, Mapping)
        ] or [{"loc": ("body",), "msg": detail, "type": f"http_{status}"}]
        if any(e["loc"] == ("cursor",) for e in errors):
            return InvalidCursorError(str(errors[0]["msg"]))
        return InvalidEventError(errors)
    if status == 422:
        fields = [
            str(e.get("field"))
            for e in problem.get("errors") or ()
            if isinstance(e, Mapping) and e.get("type") == "idempotency_conflict"
        ]
        return IdempotencyConflictError(str(problem.get("idempotency_key") or ""), fields)
    if status == 401:
        return AuthenticationError()
    if status == 403:
        return ForbiddenError(str(problem.get("scope") or "?"))
    if status == 405 and event_id is not None:
        return AppendOnlyError()
    if status == 409:
        return ConflictError(detail)
    if status in UNAVAILABLE_STATUSES:
        return StoreUnavailableError(f"the API's store is unavailable: {detail}")
    return StoreError(f"{what}: {status} {detail}")
