"""A loguru sink that records each message as an event.

::

    handler = sysevents.log_to("http://events.internal:8000")
    loguru.logger.add(sysevents.logging.loguru.EventSink(handler.emitter), level="INFO")

Level → severity (``TRACE`` debug, ``SUCCESS`` info), the message without
loguru's formatting → message, ``bind(event_type=…)`` → event type, the other
bound extras → details (flat), the module → source, the calling line →
``details["location"]``, an exception → ``details["exception"]``. Messages
from sysevents' own modules and the HTTP client's (standard-library records
forwarded to loguru keep their module's name) are not emitted. loguru itself
is not imported here.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sysevents.rules import MAX_EVENT_TYPE_LENGTH, MAX_SOURCE_LENGTH, clean_label, clean_text

from .handler import exception_details, fit, is_transport_logger, json_safe, severity_of

__all__ = ["EventSink"]

_ID_KEYS = ("trace_id", "span_id")


class EventSink:
    """A loguru sink (``logger.add(EventSink(emitter))``); never blocks, never raises."""

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

    def __call__(self, message: Any) -> None:
        """Emit the message's record as an event."""
        if is_transport_logger(message.record.get("name")):
            return
        with contextlib.suppress(Exception):  # logging must never break the caller
            self.emitter.emit(**self.event_fields(message.record))

    def event_fields(self, record: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``emit()`` for one loguru record."""
        extra = dict(record.get("extra") or {})
        event_type = extra.pop("event_type", None)
        ids = {k: extra.pop(k) for k in _ID_KEYS if isinstance(extra.get(k), str)}
        details = {clean_text(str(k)): json_safe(v) for k, v in extra.items()}
        exception = record.get("exception")
        if exception is not None and exception.type is not None:
            details["exception"] = exception_details(
                exception.type, exception.value, exception.traceback
            )
        details["location"] = f"{record['file'].path}:{record['line']}"
        fit(details, self.max_details_bytes)
        source = self.source or record.get("name")
        return {
            "event_type": clean_label(event_type, MAX_EVENT_TYPE_LENGTH)
            if isinstance(event_type, str) and event_type.strip()
            else self.event_type,
            "message": clean_text(str(record["message"]))[: self.max_message_chars]
            or "(empty message)",
            "severity": severity_of(int(record["level"].no)),
            "details": details,
            "source": clean_label(source, MAX_SOURCE_LENGTH) if isinstance(source, str) else None,
            "timestamp": record["time"],
            **ids,
        }
