"""A structlog processor that records each log call as an event.

Put :class:`EventProcessor` in structlog's chain before the renderer; it
hands the event to an emitter and passes the event dict on unchanged::

    handler = sysevents.log_to("http://events.internal:8000")
    structlog.configure(processors=[
        structlog.processors.add_log_level,
        sysevents.logging.structlog.EventProcessor(handler.emitter),
        structlog.dev.ConsoleRenderer(),
    ])

structlog itself is not imported here.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

from sysevents.rules import MAX_EVENT_TYPE_LENGTH, MAX_SOURCE_LENGTH, clean_label, clean_text

from .handler import exception_details, fit, is_transport_logger, json_safe

__all__ = ["EventProcessor", "caller_location", "severity_of_name"]

_SEVERITY = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "msg": "info",
    "success": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "exception": "error",
    "err": "error",
    "critical": "critical",
    "fatal": "critical",
}
# Keys structlog's own processors add: they are fields of the event, not details.
_OWN_KEYS = frozenset(
    {"event", "level", "timestamp", "logger", "logger_name", "exc_info", "stack_info"}
    | {"event_type", "trace_id", "span_id", "_record", "_from_structlog"}
)
_SKIPPED_MODULES = ("structlog", "sysevents", "logging")


def severity_of_name(name: str) -> str:
    """The event severity of a level name (``warn``, ``exception``, ``fatal``…); else ``info``."""
    return _SEVERITY.get(name.lower(), "info")


def caller_location(skip: tuple[str, ...] = _SKIPPED_MODULES) -> str:
    """``path:line`` of the first frame outside the logging libraries: the caller's."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not any(module == name or module.startswith(name + ".") for name in skip):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def _from_transport(event_dict: Mapping[str, Any]) -> bool:
    record = event_dict.get("_record")
    names = (
        getattr(record, "name", None),
        event_dict.get("logger"),
        event_dict.get("logger_name"),
    )
    return any(isinstance(name, str) and is_transport_logger(name) for name in names)


class EventProcessor:
    """Emits every log call as an event; the event dict goes on unchanged.

    Level (``add_log_level``'s ``level``, else the method's name) →
    severity; the ``event`` → message; an ``event_type`` key → event type
    (else ``event_type`` here); the other keys → details, flat; the logger's
    name (``add_logger_name``) or ``source`` → source; an aware
    ``timestamp`` (``TimeStamper(utc=True)``) → timestamp; the calling line →
    ``details["location"]``; ``exc_info`` → ``details["exception"]``.
    ``trace_id`` and ``span_id`` keys win over those of the current span.
    Standard-library records passed through structlog (``ProcessorFormatter``)
    from sysevents' own loggers or the HTTP client's are not emitted.
    """

    def __init__(
        self,
        emitter: Any,
        *,
        event_type: str = "log",
        source: str | None = None,
        max_message_chars: int = 16_000,
        max_details_bytes: int = 60_000,
    ) -> None:
        self.emitter = emitter
        self.event_type = event_type
        self.source = source
        self.max_message_chars = max_message_chars
        self.max_details_bytes = max_details_bytes

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Emit the event; return ``event_dict`` for the next processor."""
        if _from_transport(event_dict):
            return event_dict
        with contextlib.suppress(Exception):  # logging must never break the caller
            self.emitter.emit(**self.event_fields(method_name, event_dict))
        return event_dict

    def event_fields(self, method_name: str, event_dict: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``emit()`` for one log call."""
        level = event_dict.get("level")
        details = {
            clean_text(str(k)): json_safe(v) for k, v in event_dict.items() if k not in _OWN_KEYS
        }
        exc_info = event_dict.get("exc_info")
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if isinstance(exc_info, tuple) and exc_info[0] is not None:
            details["exception"] = exception_details(*exc_info)
        details["location"] = caller_location()
        fit(details, self.max_details_bytes)
        event_type = event_dict.get("event_type")
        source = self.source or event_dict.get("logger") or event_dict.get("logger_name")
        fields: dict[str, Any] = {
            "event_type": clean_label(event_type, MAX_EVENT_TYPE_LENGTH)
            if isinstance(event_type, str) and event_type.strip()
            else self.event_type,
            "message": clean_text(str(event_dict.get("event", "")))[: self.max_message_chars]
            or "(empty message)",
            "severity": severity_of_name(str(level or method_name)),
            "details": details,
            "source": clean_label(source, MAX_SOURCE_LENGTH) if isinstance(source, str) else None,
            "timestamp": _when(event_dict.get("timestamp")) or datetime.now(UTC),
        }
        for key in ("trace_id", "span_id"):
            if isinstance(event_dict.get(key), str):
                fields[key] = event_dict[key]
        return fields
