"""OTLP log records as events: both encodings of an export request, and the mapping.

An ``ExportLogsServiceRequest`` arrives as protobuf (``opentelemetry-proto``,
the ``otlp`` extra) or as OTLP/JSON (no extra package: plain dicts). Both are
first read into :class:`LogRecord` (Python values), then each record becomes
one :class:`~sysevents.NewEvent` by the one mapping of the contract:

* severity from ``severityNumber``: 1-8 debug, 9-12 info, 13-16 warning,
  17-20 error, 21-24 critical; unset (0) info;
* message from the body, a non-string body as JSON text (no body: the event
  name, else ``(empty body)``);
* event type from the record's event name, else its ``event.name``
  attribute, else ``otel.log``;
* details from the attributes, with the resource's attributes under ``resource``;
* source from the resource's ``service.name``;
* timestamp from the record's time, else its observed time, else now;
* trace and span ids (absent or all-zero: none).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from sysevents import NewEvent, Severity

DEFAULT_EVENT_TYPE = "otel.log"
"""The event type of a record with no event name."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEVERITIES = (
    (8, Severity.DEBUG),
    (12, Severity.INFO),
    (16, Severity.WARNING),
    (20, Severity.ERROR),
    (24, Severity.CRITICAL),
)


class BadRecord(ValueError):
    """A log record that cannot be read (its index is reported by the caller)."""


@dataclass(slots=True)
class LogRecord:
    """One OTLP log record, its values read into Python ones."""

    time_unix_nano: int = 0
    observed_time_unix_nano: int = 0
    severity_number: int = 0
    body: Any = None
    has_body: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    event_name: str = ""
    trace_id: str = ""
    span_id: str = ""


def severity_of(number: int) -> Severity:
    """The event severity of an OTLP ``SeverityNumber`` (0, unset: info)."""
    if number == 0:
        return Severity.INFO
    for top, severity in _SEVERITIES:
        if 1 <= number <= top:
            return severity
    raise BadRecord(f"severityNumber must be from 0 to 24, not {number}")


def _time(nanos: int) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=nanos // 1000)
    except OverflowError:
        raise BadRecord(f"timeUnixNano {nanos} is out of range") from None


def _id(hex_id: str) -> str | None:
    """An id as the model takes it; an absent or all-zero one (no trace) is none."""
    return None if not hex_id or hex_id.count("0") == len(hex_id) else hex_id


def _message(record: LogRecord) -> str:
    body = record.body
    if isinstance(body, str) and body:
        return body
    if record.has_body and body is not None and body != "":
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return record.event_name or "(empty body)"


def to_event(record: LogRecord, context: Mapping[str, Any] | None) -> NewEvent:
    """The event of ``record``; ``ValidationError`` or ``BadRecord`` if it breaks a rule."""
    event_name = record.event_name or record.attributes.get("event.name")
    details: dict[str, Any] = dict(record.attributes)
    if record.resource:
        details["resource"] = record.resource
    service = record.resource.get("service.name")
    when = record.time_unix_nano or record.observed_time_unix_nano
    values: dict[str, Any] = {
        "event_type": event_name if isinstance(event_name, str) and event_name else None,
        "severity": severity_of(record.severity_number),
        "message": _message(record),
        "details": details or None,
        "source": service if isinstance(service, str) else None,
        "timestamp": _time(when) if when else datetime.now(UTC),
        "trace_id": _id(record.trace_id),
        "span_id": _id(record.span_id),
    }
    if values["event_type"] is None:
        values["event_type"] = DEFAULT_EVENT_TYPE
    return NewEvent.model_validate(values, context=context)


def refusal(index: int, exc: BadRecord | ValidationError) -> str:
    """Why record ``index`` was refused, in one line."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return f"log record {index}: {where} {first['msg']}"
    return f"log record {index}: {exc}"


# -- OTLP/JSON --------------------------------------------------------------------


def _field(obj: Mapping[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    """A field by its OTLP/JSON (lowerCamelCase) name or its protobuf name."""
    if camel in obj:
        return obj[camel]
    return obj.get(snake, default)


def _int(value: Any, name: str) -> int:
    """A 64-bit integer, which OTLP/JSON may send as a decimal string."""
    if isinstance(value, bool):
        raise BadRecord(f"{name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 20:
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise BadRecord(f"{name} must be an integer")


def _json_value(value: Any, depth: int = 0) -> Any:
    """An ``AnyValue`` of OTLP/JSON as a Python value."""
    if depth > 32:
        raise BadRecord("a value is nested too deeply")
    if not isinstance(value, Mapping) or not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind in ("stringValue", "string_value"):
        return inner if isinstance(inner, str) else str(inner)
    if kind in ("boolValue", "bool_value"):
        return bool(inner)
    if kind in ("intValue", "int_value"):
        return _int(inner, "intValue")
    if kind in ("doubleValue", "double_value"):
        number = float(inner)
        return number if math.isfinite(number) else str(number)
    if kind in ("bytesValue", "bytes_value"):
        return inner if isinstance(inner, str) else ""  # base64 text, as sent
    if kind in ("arrayValue", "array_value"):
        items = inner.get("values") or [] if isinstance(inner, Mapping) else []
        return [_json_value(v, depth + 1) for v in items]
    if kind in ("kvlistValue", "kvlist_value"):
        pairs = inner.get("values") or [] if isinstance(inner, Mapping) else []
        return _json_attributes(pairs, depth + 1)
    return None


def _json_attributes(pairs: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(pairs, list):
        raise BadRecord("attributes must be a list of key-value pairs")
    out: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, Mapping) or not isinstance(pair.get("key"), str):
            raise BadRecord("an attribute has no key")
        out[pair["key"]] = _json_value(pair.get("value"), depth)
    return out


def _hex(value: Any, name: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise BadRecord(f"{name} must be a hex string")
    return value.lower()


def _json_record(raw: Any, resource: dict[str, Any]) -> LogRecord:
    if not isinstance(raw, Mapping):
        raise BadRecord("a log record must be an object")
    severity = _field(raw, "severityNumber", "severity_number", 0)
    if isinstance(severity, str) and severity.startswith("SEVERITY_NUMBER_"):
        severity = _SEVERITY_NAMES.get(severity, -1)
    return LogRecord(
        time_unix_nano=_int(_field(raw, "timeUnixNano", "time_unix_nano", 0), "timeUnixNano"),
        observed_time_unix_nano=_int(
            _field(raw, "observedTimeUnixNano", "observed_time_unix_nano", 0),
            "observedTimeUnixNano",
        ),
        severity_number=_int(severity, "severityNumber"),
        body=_json_value(raw.get("body")),
        has_body=bool(raw.get("body")),
        attributes=_json_attributes(raw.get("attributes") or []),
        resource=resource,
        event_name=str(_field(raw, "eventName", "event_name", "") or ""),
        trace_id=_hex(_field(raw, "traceId", "trace_id"), "traceId"),
        span_id=_hex(_field(raw, "spanId", "span_id"), "spanId"),
    )


_SEVERITY_NAMES = (
    {
        f"SEVERITY_NUMBER_{name}{'' if n == 1 else n}": base + n - 1
        for base, name in ((1, "TRACE"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"))
        for n in range(1, 5)
    }
    | {f"SEVERITY_NUMBER_FATAL{'' if n == 1 else n}": 20 + n for n in range(1, 5)}
    | {"SEVERITY_NUMBER_UNSPECIFIED": 0}
)


def _listed(obj: Mapping[str, Any], camel: str, snake: str) -> list[Any]:
    value = _field(obj, camel, snake) or []
    if not isinstance(value, list):
        raise BadRecord(f"{camel} must be a list")
    return value


def json_records(document: Any) -> Iterator[LogRecord | BadRecord]:
    """Every log record of an OTLP/JSON export request, in order; a bad one as its error.

    A request whose outer structure is wrong raises ``BadRecord``.
    """
    if not isinstance(document, Mapping):
        raise BadRecord("the request must be a JSON object")
    for resource_logs in _listed(document, "resourceLogs", "resource_logs"):
        if not isinstance(resource_logs, Mapping):
            raise BadRecord("resourceLogs must hold objects")
        resource_obj = resource_logs.get("resource") or {}
        resource = _json_attributes(resource_obj.get("attributes") or [])
        for scope_logs in _listed(resource_logs, "scopeLogs", "scope_logs"):
            if not isinstance(scope_logs, Mapping):
                raise BadRecord("scopeLogs must hold objects")
            for raw in _listed(scope_logs, "logRecords", "log_records"):
                try:
                    yield _json_record(raw, resource)
                except BadRecord as exc:
                    yield exc


# -- protobuf ---------------------------------------------------------------------


def _proto_value(value: Any, depth: int = 0) -> Any:
    """An ``AnyValue`` message as a Python value."""
    if depth > 32:
        raise BadRecord("a value is nested too deeply")
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_proto_value(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _proto_attributes(value.kvlist_value.values, depth + 1)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    return getattr(value, kind)


def _proto_attributes(pairs: Any, depth: int = 0) -> dict[str, Any]:
    return {pair.key: _proto_value(pair.value, depth) for pair in pairs}


def proto_records(body: bytes) -> Iterator[LogRecord | BadRecord]:
    """Every log record of a protobuf export request, in order.

    Raises ``BadRecord`` if the body is not such a request, and
    ``ModuleNotFoundError`` without ``opentelemetry-proto``.
    """
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadRecord(f"the body is not an ExportLogsServiceRequest: {exc}") from None
    for resource_logs in request.resource_logs:
        resource = _proto_attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for raw in scope_logs.log_records:
                try:
                    yield LogRecord(
                        time_unix_nano=raw.time_unix_nano,
                        observed_time_unix_nano=raw.observed_time_unix_nano,
                        severity_number=int(raw.severity_number),
                        body=_proto_value(raw.body),
                        has_body=raw.HasField("body"),
                        attributes=_proto_attributes(raw.attributes),
                        resource=resource,
                        event_name=getattr(raw, "event_name", ""),
                        trace_id=raw.trace_id.hex(),
                        span_id=raw.span_id.hex(),
                    )
                except BadRecord as exc:
                    yield exc
