"""A standard-library ``logging.Handler`` that records log records as events."""

from __future__ import annotations

import json
import logging
import math
import threading
import traceback
from datetime import UTC, datetime
from typing import Any, Protocol

from sysevents.otel import current_ids
from sysevents.rules import MAX_EVENT_TYPE_LENGTH, MAX_SOURCE_LENGTH, clean_label, clean_text

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_MAX_DEPTH = 8
# Loggers whose records never become events: sysevents' own, and the HTTP
# client that ships events (httpx logs every request at INFO, httpcore every
# step at DEBUG), with the protocol layers under it. Recording them would turn
# each batch sent into the next event to send.
SKIPPED_LOGGERS = ("sysevents", "sysevents_http", "httpx", "httpcore", "h11", "h2", "hpack")
_MAX_VALUE_CHARS = 4_000
_MAX_TRACEBACK_CHARS = 16_000


class _Emitter(Protocol):
    def emit(
        self,
        event_type: str,
        message: str,
        *,
        severity: str = ...,
        details: dict[str, Any] | None = ...,
        source: str | None = ...,
        timestamp: datetime | None = ...,
        trace_id: str | None = ...,
        span_id: str | None = ...,
    ) -> bool: ...


def is_transport_logger(name: str | None) -> bool:
    """True for sysevents' own loggers and the HTTP client's (``SKIPPED_LOGGERS``)."""
    if not name:
        return False
    return any(name == skip or name.startswith(skip + ".") for skip in SKIPPED_LOGGERS)


def severity_of(levelno: int) -> str:
    """The event severity of a logging level (levels in between round down)."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class EventLogHandler(logging.Handler):
    """Turns log records into events through an ``EventLogger``; never blocks, never raises.

    Level → severity, logger name → ``source``, ``extra={...}`` → details
    (values that are not JSON become their ``repr``), exception info →
    ``details["exception"]`` with the traceback. ``extra={"event_type": …}``
    overrides the handler's ``event_type``, and ``extra={"trace_id": …,
    "span_id": …}`` the ids of the current OpenTelemetry span, which the event
    gets otherwise (when OpenTelemetry is in use). Records of sysevents' own loggers
    and of the HTTP client that ships events (``SKIPPED_LOGGERS``), and records
    logged while this handler is already handling one on the same thread, are
    skipped at every level, so the handler can never feed itself.
    """

    def __init__(
        self,
        emitter: _Emitter,
        *,
        level: int = logging.NOTSET,
        event_type: str = "log",
        source: str | None = None,
        max_message_chars: int = 16_000,
        max_details_bytes: int = 60_000,
    ) -> None:
        super().__init__(level)
        self.emitter = emitter
        self.event_type = event_type
        self.source = source
        """Every event's ``source``; ``None``: the logger's name."""
        self.max_message_chars = max_message_chars
        self.max_details_bytes = max_details_bytes
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record as an event."""
        if is_transport_logger(record.name):
            return
        if getattr(self._busy, "active", False):
            return
        self._busy.active = True
        try:
            self.emitter.emit(**self.event_fields(record))
        except Exception:
            self.handleError(record)
        finally:
            self._busy.active = False

    def event_fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The keyword arguments of ``emit()`` for this record."""
        details: dict[str, Any] = {}
        event_type = self.event_type
        ids: dict[str, str | None] = {}
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS:
                continue
            if key == "event_type" and isinstance(value, str) and value.strip():
                event_type = clean_label(value, MAX_EVENT_TYPE_LENGTH)
                continue
            if key in _ID_KEYS and isinstance(value, str):
                ids[key] = value
                continue
            details[clean_text(str(key))] = json_safe(value)
        if record.exc_info and record.exc_info[0] is not None:
            details["exception"] = exception_details(*record.exc_info)
        elif record.exc_text:
            details["exception"] = {
                "traceback": clean_text(record.exc_text[-_MAX_TRACEBACK_CHARS:])
            }
        if record.stack_info:
            details["stack"] = clean_text(record.stack_info[-_MAX_TRACEBACK_CHARS:])
        details["location"] = f"{record.pathname}:{record.lineno}"
        fit(details, self.max_details_bytes)
        message = clean_text(record.getMessage())[: self.max_message_chars] or "(empty message)"
        if not ids:
            trace_id, span_id = current_ids()
            if trace_id is not None:
                ids = {"trace_id": trace_id, "span_id": span_id}
        return {
            "event_type": event_type,
            "message": message,
            "severity": severity_of(record.levelno),
            "details": details,
            "source": self.source or clean_label(record.name or "root", MAX_SOURCE_LENGTH),
            "timestamp": datetime.fromtimestamp(record.created, UTC),
            **ids,
        }


_KEEP = ("exception", "stack", "location")
_ID_KEYS = frozenset({"trace_id", "span_id"})


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def exception_details(exc_type: type[BaseException], exc: Any, tb: Any) -> dict[str, str]:
    """An exception as ``details["exception"]``: its type, message and (cut) traceback."""
    return {
        "type": exc_type.__name__,
        "message": clean_text(str(exc)[:_MAX_VALUE_CHARS]),
        "traceback": clean_text(
            "".join(traceback.format_exception(exc_type, exc, tb))[-_MAX_TRACEBACK_CHARS:]
        ),
    }


def fit(details: dict[str, Any], limit: int) -> None:
    """Shrink ``details`` in place to at most ``limit`` bytes of JSON.

    The largest ``extra`` values go first (their names are kept in
    ``truncated``); the traceback and stack lose their oldest lines last.
    """
    if _size(details) <= limit:
        return
    dropped: list[str] = []
    extras = sorted((k for k in details if k not in _KEEP), key=lambda k: -_size(details[k]))
    for key in extras:
        dropped.append(key)
        del details[key]
        details["truncated"] = dropped
        if _size(details) <= limit:
            return
    for key, field in (("stack", None), ("exception", "traceback")):
        holder = details.get(key)
        text = holder.get(field) if isinstance(holder, dict) and field else holder
        if not isinstance(text, str):
            continue
        excess = _size(details) - limit
        if excess <= 0:
            return
        shorter = "…" + text[min(len(text), excess + 16) :]
        if isinstance(holder, dict) and field:
            holder[field] = shorter
        else:
            details[key] = shorter
    if _size(details) > limit:  # pathological: keep only what always fits
        details.clear()
        details["truncated"] = ["everything"]


def json_safe(value: Any, depth: int = 1) -> Any:
    """``value`` as JSON a store keeps: cut strings, ``repr`` of what is not JSON."""
    return _json_safe(value, depth)


def _json_safe(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value if not isinstance(value, int) or abs(value) < 10**300 else repr(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return clean_text(value[:_MAX_VALUE_CHARS])
    if depth < _MAX_DEPTH:
        if isinstance(value, dict):
            return {clean_text(str(k)): _json_safe(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [_json_safe(v, depth + 1) for v in value]
    try:
        return clean_text(repr(value)[:_MAX_VALUE_CHARS])
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
