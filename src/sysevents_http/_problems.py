"""Errors as RFC 9457 problem details: the only place library errors meet HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from pydantic import ValidationError

from sysevents import (
    ConflictError,
    InvalidCursorError,
    InvalidEventError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)

PROBLEM_JSON = "application/problem+json"
"""The media type of RFC 9457 problem details."""
logger = logging.getLogger("sysevents_http")

_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
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
    """A problem details response (``type``, ``title``, ``status``, ``detail``, ``errors``)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)


def _pydantic(_: Request[Any, Any, Any], exc: ValidationError) -> Response[dict[str, Any]]:
    errors = field_errors(exc.errors(include_url=False, include_input=False))
    return problem(HTTP_400_BAD_REQUEST, _summary(errors), errors=errors)


def _invalid(_: Request[Any, Any, Any], exc: InvalidEventError) -> Response[dict[str, Any]]:
    errors = field_errors(exc.errors)
    return problem(HTTP_400_BAD_REQUEST, _summary(errors) or str(exc), errors=errors)


def _not_found(_: Request[Any, Any, Any], exc: NotFoundError) -> Response[dict[str, Any]]:
    return problem(HTTP_404_NOT_FOUND, str(exc))


def _conflict(_: Request[Any, Any, Any], exc: ConflictError) -> Response[dict[str, Any]]:
    return problem(HTTP_409_CONFLICT, str(exc))


_UNAVAILABLE_LOG_INTERVAL = 10.0


def _unavailable(
    request: Request[Any, Any, Any], exc: StoreUnavailableError
) -> Response[dict[str, Any]]:
    # One warning per interval, not one per request: an outage must not flood the log.
    state = request.app.state
    now = time.monotonic()
    if now - state.get("sysevents_unavailable_logged", -_UNAVAILABLE_LOG_INTERVAL) >= (
        _UNAVAILABLE_LOG_INTERVAL
    ):
        state["sysevents_unavailable_logged"] = now
        logger.warning("store unavailable for %s %s: %s", request.method, request.url.path, exc)
    return problem(
        HTTP_503_SERVICE_UNAVAILABLE,
        "the event store is unavailable; try again shortly",
        headers={"Retry-After": "5"},
    )


def _store_error(_: Request[Any, Any, Any], exc: StoreError) -> Response[dict[str, Any]]:
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "the event store failed")


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


def _internal(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred")


ExceptionHandler = Callable[[Request[Any, Any, Any], Any], Response[Any]]

EXCEPTION_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    ValidationError: _pydantic,
    InvalidEventError: _invalid,
    NotFoundError: _not_found,
    ConflictError: _conflict,
    StoreUnavailableError: _unavailable,
    StoreError: _store_error,
    HTTPException: _http,
    Exception: _internal,
}
"""Exception handlers mapping every error to its status, as problem details."""

# Expected client errors: no traceback in the log (500s keep theirs).
QUIET_EXCEPTIONS: set[int | type[Exception]] = {
    400,
    404,
    405,
    413,
    415,
    ValidationError,
    InvalidEventError,
    InvalidCursorError,
    NotFoundError,
    ConflictError,
    StoreUnavailableError,
}
