"""Errors as RFC 9457 problem details: the only place library errors meet HTTP.

Which error is which status is the table of ``sysevents.wire``, which the HTTP
client reads too; this module only renders the answers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_500_INTERNAL_SERVER_ERROR
from pydantic import ValidationError

from sysevents import (
    AppendOnlyError,
    AuthenticationError,
    ForbiddenError,
    IdempotencyConflictError,
    InvalidEventError,
    ReservedTypeError,
    StoreUnavailableError,
    SyseventsError,
    TooManySeriesError,
)
from sysevents.wire import RETRY_AFTER_SECONDS, status_of

from .body import MAX_FIELD_ERRORS, ClientDisconnected

PROBLEM_JSON = "application/problem+json"
"""The media type of RFC 9457 problem details."""
logger = logging.getLogger("sysevents_http")

_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[dict[str, Any]]:
    """A problem details response (``type``, ``title``, ``status``, ``detail``, ``errors``).

    However many errors there are, the answer lists the first
    ``MAX_FIELD_ERRORS`` with their total as ``error_count``, and every text
    in it is cut to a bounded length: no error answer exceeds 64 KiB.
    """
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status) or HTTPStatus(status).phrase,
        "status": status,
        "detail": _cut(detail, _MAX_DETAIL),
    }
    if errors is not None:
        shown = [
            {key: _cut(str(value), _MAX_ERROR_TEXT) for key, value in error.items()}
            for error in errors[:MAX_FIELD_ERRORS]
        ]
        # Texts escape to up to six bytes a character: drop listed errors
        # (never the count) until the answer fits.
        while shown and len(json.dumps({**body, "errors": shown}).encode()) > MAX_PROBLEM_BYTES:
            shown.pop()
        body["errors"] = shown
        body["error_count"] = len(errors)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


MAX_PROBLEM_BYTES = 60 * 1024
"""The largest error answer, as JSON (headroom under the 64 KiB promise)."""
_MAX_DETAIL = 2000  # characters: at most 12 000 bytes as JSON
_MAX_ERROR_TEXT = 300


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def field_errors(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic-style errors as ``{"field", "message", "type"}`` items."""
    return [
        {
            "field": _field(err.get("loc", ())),
            "message": str(err.get("msg", "is not valid")).removeprefix("Value error, "),
            "type": str(err.get("type", "value_error")),
        }
        for err in raw
    ]


def _summary(errors: Sequence[Mapping[str, str]]) -> str:
    shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return shown + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")


def _pydantic(_: Request[Any, Any, Any], exc: ValidationError) -> Response[dict[str, Any]]:
    errors = field_errors(exc.errors(include_url=False, include_input=False))
    return problem(HTTP_400_BAD_REQUEST, _summary(errors), errors=errors)


def _library(request: Request[Any, Any, Any], exc: SyseventsError) -> Response[dict[str, Any]]:
    """Any library error, with the status ``sysevents.wire`` gives it."""
    status = status_of(exc)
    if isinstance(exc, InvalidEventError):
        errors = field_errors(exc.errors)
        return problem(status, _summary(errors) or str(exc), errors=errors)
    if isinstance(exc, IdempotencyConflictError):
        return _idempotency_conflict(status, exc)
    if isinstance(exc, StoreUnavailableError):
        return _unavailable(request, status, exc)
    if isinstance(exc, AuthenticationError):
        # The same answer for no key, a malformed, unknown, expired or revoked one.
        return problem(status, str(exc), headers={"WWW-Authenticate": 'Bearer realm="sysevents"'})
    if isinstance(exc, ReservedTypeError):
        message = str(exc).removeprefix(f"{exc.field}: ")
        errors = [{"field": exc.field, "message": message, "type": "reserved"}]
        return problem(status, str(exc), errors=errors)
    if isinstance(exc, TooManySeriesError):
        message = str(exc).removeprefix(f"{exc.field}: ")
        errors = [{"field": exc.field, "message": message, "type": "series_limit"}]
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return problem(status, str(exc), errors=errors, headers=headers)
    if isinstance(exc, ForbiddenError):
        response = problem(status, str(exc))
        response.content["scope"] = exc.scope
        return response
    if isinstance(exc, AppendOnlyError):
        return problem(status, str(exc), headers={"Allow": "GET, HEAD, OPTIONS"})
    if status >= 500:
        return problem(status, "the event store failed")
    return problem(status, str(exc))


def _idempotency_conflict(status: int, exc: IdempotencyConflictError) -> Response[dict[str, Any]]:
    response = problem(
        status,
        str(exc),
        errors=[
            {
                "field": name,
                "message": "differs from the event first stored with this idempotency key",
                "type": "idempotency_conflict",
            }
            for name in exc.fields
        ],
    )
    response.content["idempotency_key"] = exc.key
    return response


_UNAVAILABLE_LOG_INTERVAL = 10.0


def _unavailable(
    request: Request[Any, Any, Any], status: int, exc: StoreUnavailableError
) -> Response[dict[str, Any]]:
    # One warning per interval, not one per request: an outage must not flood the log.
    state = request.app.state
    now = time.monotonic()
    if now - state.get("sysevents_unavailable_logged", -_UNAVAILABLE_LOG_INTERVAL) >= (
        _UNAVAILABLE_LOG_INTERVAL
    ):
        state["sysevents_unavailable_logged"] = now
        logger.warning("store unavailable for %s %s: %s", request.method, request.url.path, exc)
    return unavailable("the event store is unavailable; try again shortly", status_code=status)


def unavailable(detail: str, *, status_code: int = 503) -> Response[dict[str, Any]]:
    """A 503 with ``Retry-After``."""
    return problem(status_code, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _source(item: Mapping[str, Any]) -> str:
    source = str(item.get("source") or "request").lower()
    return source.rpartition(".")[2]


def _param_name(item: Mapping[str, Any]) -> str:
    key = str(item.get("key") or item.get("source") or "request")
    # Litestar names a missing body after the handler argument that receives it.
    return "body" if key == "data" else key


def _param_message(item: Mapping[str, Any]) -> str:
    if item.get("key") == "data":
        return "is required: send the event as a JSON object"
    return str(item.get("message", "is not valid"))


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    errors = None
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = [
            {
                "field": _param_name(item),
                "message": _param_message(item),
                "type": f"invalid_{_source(item)}",
            }
            for item in exc.extra
            if isinstance(item, Mapping)
        ]
        if errors:
            detail = _summary(errors)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code >= 500:
        detail = _TITLES.get(exc.status_code, "server error")
    return problem(exc.status_code, detail, errors=errors, headers=headers)


def _disconnected(
    request: Request[Any, Any, Any], exc: ClientDisconnected
) -> Response[dict[str, Any]]:
    # Nobody reads the answer; one line says what happened, without a traceback.
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return problem(400, str(exc.detail))


def _internal(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred")


ExceptionHandler = Callable[[Request[Any, Any, Any], Any], Response[Any]]

EXCEPTION_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    ValidationError: _pydantic,
    SyseventsError: _library,
    ClientDisconnected: _disconnected,
    HTTPException: _http,
    Exception: _internal,
}
"""Exception handlers mapping every error to its status, as problem details."""


# Expected client errors: no traceback in the log (500s keep theirs).
def _every_kind(base: type[SyseventsError]) -> list[type[SyseventsError]]:
    kinds = [base]
    for sub in base.__subclasses__():
        kinds += _every_kind(sub)
    return kinds


# Litestar matches these by exact type, so every kind of client error is listed.
QUIET_EXCEPTIONS: set[int | type[Exception]] = {
    400,
    401,
    403,
    429,
    404,
    405,
    413,
    415,
    ValidationError,
    ClientDisconnected,
    *(
        kind
        for kind in _every_kind(SyseventsError)
        if status_of(kind) < 500 or issubclass(kind, StoreUnavailableError)
    ),
}
