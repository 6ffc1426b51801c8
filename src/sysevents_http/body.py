"""Strict JSON request bodies: no request, however malformed, becomes a 500.

Litestar's own decoder turns bad UTF-8 and deep nesting into server errors and
silently keeps the last of duplicate keys; this one refuses all three with a
400 that says what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from pydantic import BaseModel

CONTEXT_OPT = "sysevents_body_context"
"""The route option holding the validation context of bodies: the ``EventLimits``
(``limits``) and the most events a batch may hold (``max_batch_size``)."""

MAX_FIELD_ERRORS = 50
"""The most field errors one answer lists; the total is counted beside them."""

# Deeper than any valid event (details nest at most 32 levels), shallow enough
# that the decoder never approaches the interpreter's recursion limit.
MAX_JSON_DEPTH = 64


class BadBody(ClientException):
    """The request body is not the JSON this endpoint reads."""


class ClientDisconnected(ClientException):
    """The client hung up before its whole request was read: nothing to answer, no bug."""


class UnsupportedMediaType(ClientException):
    """The request body is not sent as JSON."""

    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


def _reject_constant(name: str) -> Any:
    raise BadBody(detail=f"the request body is not valid JSON: {name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadBody(detail=f"the request body has the key {key[:60]!r} more than once")
        result[key] = value
    return result


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(body: bytes) -> Any:
    """Decode a request body strictly, raising ``BadBody`` (a 400) for anything amiss."""
    if not body.strip():
        raise BadBody(detail="the request body is empty; send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(detail=f"the request body is not valid UTF-8 (byte {exc.start})") from None
    if ("[" in text or "{" in text) and _depth(text) > MAX_JSON_DEPTH:
        raise BadBody(detail=f"the request body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except HTTPException:
        raise
    except (ValueError, RecursionError) as exc:
        # ValueError covers syntax errors and integers past Python's digit limit.
        raise BadBody(detail=f"the request body is not valid JSON: {exc}") from None


def _refuse_many_unknown_fields(model: type[BaseModel], value: dict[str, Any]) -> None:
    """A 400 naming the first unknown fields, before validating a body full of them.

    Validation would build an error for each, however many there are.
    """
    if len(value) <= len(model.model_fields) + MAX_FIELD_ERRORS:
        return
    unknown = [key for key in value if key not in model.model_fields]
    raise ValidationException(
        detail=f"the body has {len(unknown)} unknown fields",
        extra=[
            {"key": key, "message": "is not a field of this body", "source": "body"}
            for key in unknown
        ],
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else "an array"


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JSONRequest(Request[Any, Any, Any]):
    """A request whose JSON body is decoded strictly and validated with the app's limits.

    A handler that declares ``opt={"body_model": Model}`` receives its ``data``
    already validated by that pydantic model, with the size limits of the
    ``sysevents_limits`` option (set on the router) as validation context.
    """

    async def body(self) -> bytes:
        """The body; a client that hangs up meanwhile raises ``ClientDisconnected``."""
        receive = self.receive

        async def watched() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected(detail="the client disconnected before sending its body")
            return message

        self.receive = watched
        try:
            return await super().body()
        finally:
            self.receive = receive

    async def json(self) -> Any:
        """The decoded body; the model instance when the handler names a ``body_model``."""
        # A body sent without a JSON type is refused, even when it is JSON: a web
        # page may send text/plain (or nothing) cross-site without a preflight.
        content_type = self.headers.get("content-type")
        if not content_type or not _is_json(content_type):
            raise UnsupportedMediaType(
                detail="send the body as application/json"
                + (f", not {content_type[:60]}" if content_type else " (Content-Type is missing)"),
            )
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise UnsupportedMediaType(
                detail=f"send the body without a content encoding, not {encoding[:60]}",
            )
        value = parse_json(await self.body())
        model: type[BaseModel] | None = self.route_handler.opt.get("body_model")
        if model is None:
            return value
        if not isinstance(value, dict):
            raise BadBody(detail=f"the request body must be a JSON object, not {_json_kind(value)}")
        _refuse_many_unknown_fields(model, value)
        return model.model_validate(value, context=self.route_handler.opt.get(CONTEXT_OPT))
