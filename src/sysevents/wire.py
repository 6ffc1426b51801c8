"""The REST API's error contract: which library error is which HTTP status, both ways.

One table, :data:`ERRORS`, says it: the server (``sysevents_http``) answers
each error with the first status of the first row whose error it is, as RFC
9457 problem details; the HTTP client (``sysevents.stores.http``) turns a
status and its problem back into an error with the row that lists the status
and rebuilds one. Neither needs the other installed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    ReservedTypeError,
    StoreError,
    StoreUnavailableError,
    SyseventsError,
    TooManySeriesError,
)

__all__ = ["ERRORS", "RETRY_AFTER_SECONDS", "Answer", "Row", "error_of", "status_of"]

RETRY_AFTER_SECONDS = 5
"""What a 503 suggests in its ``Retry-After`` header."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An error answer as the client received it."""

    status: int
    problem: Mapping[str, Any]
    """The problem details (the JSON body), ``{}`` if there were none."""
    what: str
    """The request, for messages (``GET /api/events``)."""
    event_id: int | None
    """The event the request was about, if any."""
    batch: bool
    """The request sent a batch: field paths start with ``events``."""

    @property
    def detail(self) -> str:
        """The problem's ``detail``, or the status."""
        return str(self.problem.get("detail") or f"HTTP {self.status}")


@dataclass(frozen=True, slots=True)
class Row:
    """One kind of error on the wire."""

    error: type[SyseventsError]
    statuses: tuple[int, ...]
    """The status the server answers (the first), and others the client reads as it."""
    rebuild: Callable[[Answer], SyseventsError | None]
    """The error an answer stands for (``None``: this row does not fit the answer)."""


def _loc(field: str, batch: bool) -> tuple[int | str, ...]:
    parts: list[int | str] = [int(p) if p.isdigit() else p for p in field.split(".")]
    if batch and parts and parts[0] == "events":
        parts = parts[1:]
    return tuple(parts)


def _field_errors(answer: Answer) -> list[dict[str, Any]]:
    return [
        {
            "loc": _loc(str(e.get("field", "body")), answer.batch),
            "msg": str(e.get("message", "is not valid")),
            "type": str(e.get("type", "value_error")),
        }
        for e in answer.problem.get("errors") or ()
        if isinstance(e, Mapping)
    ] or [{"loc": ("body",), "msg": answer.detail, "type": f"http_{answer.status}"}]


def _cursor(answer: Answer) -> SyseventsError | None:
    errors = _field_errors(answer)
    cursor = [e for e in errors if e["loc"] == ("cursor",)]
    return InvalidCursorError(str(cursor[0]["msg"])) if cursor else None


def _reserved(answer: Answer) -> SyseventsError | None:
    fields = [
        str(e.get("field"))
        for e in answer.problem.get("errors") or ()
        if isinstance(e, Mapping) and e.get("type") == "reserved"
    ]
    return ReservedTypeError(fields[0]) if fields else None


def _series(answer: Answer) -> SyseventsError | None:
    fields = [
        str(e.get("field"))
        for e in answer.problem.get("errors") or ()
        if isinstance(e, Mapping) and e.get("type") == "series_limit"
    ]
    return TooManySeriesError(fields[0]) if fields else None


def _conflicting_fields(answer: Answer) -> list[str]:
    return [
        str(e.get("field"))
        for e in answer.problem.get("errors") or ()
        if isinstance(e, Mapping) and e.get("type") == "idempotency_conflict"
    ]


ERRORS: tuple[Row, ...] = (
    Row(InvalidCursorError, (400,), _cursor),
    Row(InvalidEventError, (400, 413), lambda a: InvalidEventError(_field_errors(a))),
    Row(AuthenticationError, (401,), lambda a: AuthenticationError()),
    Row(ReservedTypeError, (403,), _reserved),
    Row(ForbiddenError, (403,), lambda a: ForbiddenError(str(a.problem.get("scope") or "?"))),
    Row(NotFoundError, (404,), lambda a: None if a.event_id is None else NotFoundError(a.event_id)),
    Row(KeyNotFoundError, (404,), lambda a: None),
    Row(AppendOnlyError, (405,), lambda a: None if a.event_id is None else AppendOnlyError()),
    Row(
        IdempotencyConflictError,
        (422,),
        lambda a: IdempotencyConflictError(
            str(a.problem.get("idempotency_key") or ""), _conflicting_fields(a)
        ),
    ),
    Row(ConflictError, (409,), lambda a: ConflictError(a.detail)),
    Row(TooManySeriesError, (429,), _series),
    # "Try again later": too many requests and gateways that lost the service too.
    Row(
        StoreUnavailableError,
        (503, 429, 502, 504),
        lambda a: StoreUnavailableError(f"the API's store is unavailable: {a.detail}"),
    ),
    Row(SyseventsError, (500,), lambda a: None),
)
"""Each library error and its statuses, most specific first (the first match wins)."""


def status_of(error: SyseventsError | type[SyseventsError]) -> int:
    """The HTTP status that answers ``error`` (an error, or a kind of error)."""
    kind = error if isinstance(error, type) else type(error)
    for row in ERRORS:
        if issubclass(kind, row.error):
            return row.statuses[0]
    return 500  # pragma: no cover - SyseventsError matches every error


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
    about, if any; ``batch`` drops the leading ``events`` of field paths. An
    answer no row rebuilds is a ``StoreError`` naming the request and status.
    """
    answer = Answer(status, problem, what, event_id, batch)
    for row in ERRORS:
        if status in row.statuses:
            error = row.rebuild(answer)
            if error is not None:
                return error
    return StoreError(f"{what}: {status} {answer.detail}")
