"""Where events the emitter cannot store go: one JSON line each on stdout, never silently lost."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from sysevents.model import NewEvent

from .queue import Item

logger = logging.getLogger("sysevents.emitter")


def _iso(when: Any) -> str:
    return when.isoformat() if isinstance(when, datetime) else str(when)


class Fallback:
    """Writes events as JSON lines, each with a ``fallback_reason``.

    ``written`` counts the events written for lack of a store (invalid ones are
    counted by the emitter as invalid).

    ``stream`` defaults to ``sys.stdout`` as it is at the time of writing.
    """

    def __init__(self, stream: TextIO | None = None, *, source: str | None = None) -> None:
        self._stream = stream
        self._source = source
        self.written = 0

    def _write(self, lines: Iterable[Mapping[str, Any]], *, count: bool = True) -> None:
        out = self._stream if self._stream is not None else sys.stdout
        try:
            for line in lines:
                out.write(json.dumps(line, ensure_ascii=False, default=repr) + "\n")
                self.written += count
            out.flush()
        except Exception:  # pragma: no cover - stdout itself is gone
            logger.exception("could not write an event to the fallback stream")

    def events(self, events: Sequence[NewEvent], why: str) -> None:
        """Validated events that could not be stored."""
        self._write({**e.model_dump(mode="json"), "fallback_reason": why} for e in events)

    def items(self, items: Sequence[Item], why: str) -> None:
        """Queued events that will never reach the writer."""
        self._write(
            {
                "event_type": event_type,
                "severity": severity,
                "message": message,
                "details": details,
                "source": source if source is not None else self._source,
                "timestamp": _iso(when),
                "idempotency_key": key,
                "trace_id": trace_id,
                "span_id": span_id,
                "fallback_reason": why,
            }
            for (
                event_type,
                message,
                severity,
                details,
                source,
                when,
                trace_id,
                span_id,
                key,
            ) in items
        )

    def invalid(self, item: Item, errors: Sequence[Mapping[str, Any]]) -> None:
        """A queued event that broke a rule, with each error; its fields as far as printable."""
        event_type, message, severity, details, source, when, trace_id, span_id, _ = item
        reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        self._write(
            [
                {
                    "event_type": event_type if isinstance(event_type, str) else repr(event_type),
                    "severity": str(severity),
                    "message": message if isinstance(message, str) else repr(message),
                    "source": source if isinstance(source, str) else None,
                    "timestamp": _iso(when),
                    "details": details,
                    "trace_id": trace_id if isinstance(trace_id, str) else None,
                    "span_id": span_id if isinstance(span_id, str) else None,
                    "fallback_reason": "invalid event: " + reason,
                }
            ],
            count=False,
        )
