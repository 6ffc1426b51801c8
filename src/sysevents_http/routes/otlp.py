"""``POST /v1/logs``: OTLP/HTTP log exports, so any OpenTelemetry SDK or Collector ships logs here.

The answer follows OTLP/HTTP: 200 with an ``ExportLogsServiceResponse`` in the
request's encoding, whose ``partial_success`` counts the records refused (and
says why) while the others are stored; a request that cannot be read at all
is a 400 (415 for an unknown encoding) whose body is a ``google.rpc.Status``.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import zlib
from collections.abc import Iterable
from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from pydantic import BaseModel, Field, ValidationError

from sysevents import NewEvent
from sysevents.errors import RESERVED_PREFIX
from sysevents.keys import Scope
from sysevents_http.auth import SCOPE_OPT, caller_of, request_budget
from sysevents_http.body import CONTEXT_OPT, parse_json
from sysevents_http.otlp import BadRecord, LogRecord, json_records, proto_records, refusal, to_event
from sysevents_http.schemas import DEFAULT_MAX_BATCH_SIZE
from sysevents_http.service import Service

from .params import GUARDED, SERVER_ERROR, TOO_LARGE, UNAVAILABLE, security

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# How much one request may inflate to, as a multiple of the body size limit.
_INFLATE_FACTOR = 8
_MAX_REASONS = 10
_INVALID_ARGUMENT = 3  # google.rpc.Code
MAX_RECORDS = 1000
"""Log records at most in one export (OpenTelemetry's batch processors send 512)."""


class OtlpStatus(BaseModel):
    """Why a whole export was refused (``google.rpc.Status``)."""

    code: int = Field(description="A google.rpc.Code: 3 (INVALID_ARGUMENT).")
    message: str


class PartialSuccess(BaseModel):
    """The records refused, and why."""

    rejectedLogRecords: str = Field(description="How many records were refused (int64).")
    errorMessage: str


class ExportLogsResponse(BaseModel):
    """``ExportLogsServiceResponse``: empty when every record was stored."""

    partialSuccess: PartialSuccess | None = None


def _status_bytes(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` in protobuf: field 1 (code), field 2 (message)."""
    text = message.encode()
    return bytes([0x08, code]) + b"\x12" + _varint(len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _refused(status: int, message: str, protobuf: bool) -> Response[Any]:
    if protobuf:
        return Response(
            _status_bytes(_INVALID_ARGUMENT, message), status_code=status, media_type=PROTOBUF
        )
    body = json.dumps({"code": _INVALID_ARGUMENT, "message": message}).encode()
    return Response(body, status_code=status, media_type=JSON)


def _answer(rejected: int, reasons: list[str], protobuf: bool) -> Response[Any]:
    message = "; ".join(reasons[:_MAX_REASONS])
    if len(reasons) > _MAX_REASONS:
        message += f"; and {len(reasons) - _MAX_REASONS} more"
    if protobuf:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceResponse,
        )

        answer = ExportLogsServiceResponse()
        if rejected:
            answer.partial_success.rejected_log_records = rejected
            answer.partial_success.error_message = message
        return Response(answer.SerializeToString(), media_type=PROTOBUF)
    payload: dict[str, Any] = {}
    if rejected:
        payload["partialSuccess"] = {"rejectedLogRecords": str(rejected), "errorMessage": message}
    return Response(json.dumps(payload).encode(), media_type=JSON)


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body without its ``Content-Encoding``, refusing one that inflates past ``limit``."""
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise BadRecord(f"unsupported Content-Encoding {encoding[:40]!r}: use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise BadRecord(f"the body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise BadRecord(f"the body inflates to more than {limit} bytes")
    return out


def _events(
    records: Iterable[LogRecord | BadRecord], context: Any
) -> tuple[list[NewEvent], list[str]]:
    events: list[NewEvent] = []
    reasons: list[str] = []
    for index, record in enumerate(records):
        try:
            if isinstance(record, BadRecord):
                raise record
            event = to_event(record, context)
            if event.event_type.startswith(RESERVED_PREFIX):
                raise BadRecord(f"event types beginning {RESERVED_PREFIX!r} are sysevents' own")
            events.append(event)
        except (BadRecord, ValidationError) as exc:
            reasons.append(refusal(index, exc))
    return events, reasons


@post(
    "/v1/logs",
    status_code=200,
    summary="Ingest OTLP logs",
    description="OTLP/HTTP log export (`application/x-protobuf` or `application/json`, "
    "optionally gzip): each log record becomes one event. Records that break a rule are "
    "refused and counted in `partialSuccess`; the others are stored. At most 1000 records "
    "per request; every record counts against the caller's ingest limit. Point an "
    "OpenTelemetry exporter's logs endpoint here.",
    responses={
        400: ResponseSpec(
            data_container=OtlpStatus,
            description="The request cannot be read (a google.rpc.Status, in the request's "
            "encoding).",
            media_type=JSON,
        ),
        415: ResponseSpec(
            data_container=OtlpStatus,
            description="Neither protobuf nor JSON, or an unknown Content-Encoding.",
            media_type=JSON,
        ),
        **GUARDED,
        **TOO_LARGE,
        **UNAVAILABLE,
        **SERVER_ERROR,
    },
    opt={SCOPE_OPT: Scope.WRITE.value},
    security=security(Scope.WRITE),
    tags=["otlp"],
)
async def export_logs(
    request: Request[Any, Any, Any], service: NamedDependency[Service]
) -> Response[ExportLogsResponse]:
    """Store the log records of an OTLP export as events."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    protobuf = media == PROTOBUF
    if not protobuf and media != JSON:
        return _refused(415, f"send {PROTOBUF} or {JSON}, not {media[:60] or 'nothing'}", False)
    options = request.route_handler.opt.get(CONTEXT_OPT) or {}
    limit = (request.route_handler.resolve_request_max_body_size() or 1 << 20) * _INFLATE_FACTOR
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    body = await request.body()
    try:
        # Inflating, parsing and validating take a while for a large export: not on the loop.
        decoded = await asyncio.to_thread(_decode, body, encoding, limit, protobuf, options)
    except BadRecord as exc:
        return _refused(400, str(exc), protobuf)
    except ModuleNotFoundError:
        return _refused(
            415, 'protobuf needs the otlp extra (pip install "sysevents[otlp]"); send JSON', False
        )
    except Exception as exc:  # parse_json's own 400s carry their detail
        detail = getattr(exc, "detail", None)
        if detail is None:
            raise
        return _refused(400, str(detail), protobuf)
    events, reasons, records, size = decoded
    # Every record counts against the ingest limit, refused ones too.
    await service.admit(
        request_budget(request), events, size, lambda _: "eventName", records=records
    )
    caller = caller_of(request).id
    batch = int(options.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE))
    for start in range(0, len(events), batch):
        await service.store.add_many(events[start : start + batch], caller=caller)
    return _answer(len(reasons), reasons, protobuf)


def _decode(
    body: bytes, encoding: str, limit: int, protobuf: bool, options: Any
) -> tuple[list[NewEvent], list[str], int, int]:
    """The events of an export, the reasons records were refused, how many records, the size."""
    raw = _inflate(body, encoding, limit)
    records = proto_records(raw) if protobuf else json_records(parse_json(raw))
    taken = list(itertools.islice(records, MAX_RECORDS + 1))
    if len(taken) > MAX_RECORDS:
        raise BadRecord(
            f"at most {MAX_RECORDS} log records per request: lower the exporter's batch size "
            "(OTEL_BLRP_MAX_EXPORT_BATCH_SIZE)"
        )
    events, reasons = _events(taken, options)
    return events, reasons, len(taken), len(raw)


OTLP_ROUTES = [export_logs]
"""The OTLP ingest handler."""
