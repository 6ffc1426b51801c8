"""The error table read both ways: a library error, its status, and the error read back."""

from __future__ import annotations

from typing import Any

import pytest

from sysevents.errors import (
    AppendOnlyError,
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    IdempotencyConflictError,
    InvalidCursorError,
    InvalidEventError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    SyseventsError,
)
from sysevents.wire import ERRORS, error_of, status_of

# What the server's problem details carry for each (see sysevents_http.problems).
CASES: list[tuple[SyseventsError, dict[str, Any], int | None]] = [
    (
        InvalidEventError([{"loc": ("message",), "msg": "too long", "type": "too_long"}]),
        {"errors": [{"field": "message", "message": "too long", "type": "too_long"}]},
        None,
    ),
    (
        InvalidCursorError("edited"),
        {"errors": [{"field": "cursor", "message": "edited", "type": "cursor_invalid"}]},
        None,
    ),
    (AuthenticationError(), {}, None),
    (ForbiddenError("admin"), {"scope": "admin"}, None),
    (NotFoundError(7), {}, 7),
    (AppendOnlyError(), {}, 7),
    (
        IdempotencyConflictError("k", ["message"]),
        {
            "idempotency_key": "k",
            "errors": [{"field": "message", "type": "idempotency_conflict"}],
        },
        None,
    ),
    (ConflictError("taken"), {"detail": "taken"}, None),
    (StoreUnavailableError("down"), {"detail": "down"}, None),
]


@pytest.mark.parametrize(("error", "problem", "event_id"), CASES, ids=lambda c: type(c).__name__)
def test_an_error_comes_back_as_itself(
    error: SyseventsError, problem: dict[str, Any], event_id: int | None
) -> None:
    back = error_of(status_of(error), problem, what="GET /x", event_id=event_id)
    assert type(back) is type(error)
    assert str(error) in str(back)


def test_every_status_the_server_answers_is_read_back() -> None:
    answered = {status_of(row.error) for row in ERRORS}
    for status in answered - {500}:
        assert not isinstance(error_of(status, {}, what="GET /x", event_id=1), type(None))


@pytest.mark.parametrize("status", [429, 502, 504])
def test_try_again_later_statuses_mean_unavailable(status: int) -> None:
    assert isinstance(error_of(status, {}, what="GET /x"), StoreUnavailableError)


def test_an_answer_no_row_fits_is_a_store_error_naming_the_request() -> None:
    error = error_of(418, {"detail": "teapot"}, what="GET /x")
    assert type(error) is StoreError
    assert str(error) == "GET /x: 418 teapot"
