"""The ids of the current OpenTelemetry span, when the program uses OpenTelemetry.

``opentelemetry-api`` is optional (``pip install "sysevents[otel]"``) and never
imported here: a span can only be current once the program itself has
imported ``opentelemetry.trace``, so until then finding none costs one dict
lookup, and a program without OpenTelemetry pays nothing at import time.
"""

from __future__ import annotations

import sys

__all__ = ["current_ids"]

NO_IDS: tuple[None, None] = (None, None)


def current_ids() -> tuple[str, str] | tuple[None, None]:
    """``(trace_id, span_id)`` of the current span in lowercase hex, or ``(None, None)``."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return NO_IDS
    try:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return NO_IDS
        return format(context.trace_id, "032x"), format(context.span_id, "016x")
    except Exception:  # a half-imported or foreign module: no ids, never an error
        return NO_IDS
