"""Trace and span ids of the current OpenTelemetry span, filled in by the emitter and handler."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from sysevents import EventLogger, MemoryEventRepository
from sysevents.logging.handler import EventLogHandler
from sysevents.otel import current_ids

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.fixture
def tracer() -> trace.Tracer:
    # A provider of its own: the global one is left alone.
    return TracerProvider().get_tracer("tests")


def ids_of(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@pytest.fixture
def log() -> Iterator[logging.Logger]:
    logger = logging.getLogger("tests.otel")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.handlers.clear()


def test_current_ids(tracer: trace.Tracer) -> None:
    assert current_ids() == (None, None)
    with tracer.start_as_current_span("outer") as outer:
        assert current_ids() == ids_of(outer)
        with tracer.start_as_current_span("inner") as inner:
            assert current_ids() == ids_of(inner)
            assert ids_of(inner)[0] == ids_of(outer)[0]
    # A span that is not valid (no trace) gives no ids.
    with trace.use_span(trace.INVALID_SPAN):
        assert current_ids() == (None, None)


async def test_the_emitter_fills_the_ids_of_the_current_span(tracer: trace.Tracer) -> None:
    repo = MemoryEventRepository()
    async with EventLogger(repo) as emitter:
        emitter.emit("outside", "no span")
        with tracer.start_as_current_span("work") as span:
            emitter.emit("inside", "in a span")
            emitter.emit("given", "explicit ids win", trace_id=TRACE, span_id=SPAN)
            emitter.emit("trace only", "given alone, no span id is made up", trace_id=TRACE)
        await emitter.flush()
    stored = {e.event_type: (e.trace_id, e.span_id) for e in repo.snapshot()}
    assert stored == {
        "outside": (None, None),
        "inside": ids_of(span),
        "given": (TRACE, SPAN),
        "trace only": (TRACE, None),
    }


async def test_the_handler_fills_the_ids(tracer: trace.Tracer, log: logging.Logger) -> None:
    repo = MemoryEventRepository()
    async with EventLogger(repo) as emitter:
        log.addHandler(EventLogHandler(emitter))
        log.info("outside")
        with tracer.start_as_current_span("request") as span:
            log.warning("inside")
            log.error("given", extra={"trace_id": TRACE, "span_id": SPAN})
        await emitter.flush()
    stored = {e.message: e for e in repo.snapshot()}
    assert (stored["outside"].trace_id, stored["outside"].span_id) == (None, None)
    assert (stored["inside"].trace_id, stored["inside"].span_id) == ids_of(span)
    assert (stored["given"].trace_id, stored["given"].span_id) == (TRACE, SPAN)
    # The ids are fields of the event, not details.
    assert "trace_id" not in (stored["given"].details or {})


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_and_emitting_never_imports_opentelemetry() -> None:
    out = run_python(
        """
        import asyncio, logging, sys
        import sysevents
        from sysevents.logging.handler import EventLogHandler

        async def main():
            repo = sysevents.MemoryEventRepository()
            async with sysevents.EventLogger(repo) as emitter:
                logger = logging.getLogger("app")
                logger.addHandler(EventLogHandler(emitter))
                logger.warning("logged")
                emitter.emit("emitted", "m")
                await emitter.flush()
            assert len(repo) == 2, len(repo)

        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    assert out == "[]"


def test_without_opentelemetry_installed_nothing_changes() -> None:
    out = run_python(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # as if it were not installed: imports fail
        import sysevents

        async def main():
            repo = sysevents.MemoryEventRepository()
            async with sysevents.EventLogger(repo) as emitter:
                emitter.emit("emitted", "m")
                await emitter.flush()
            (event,) = repo.snapshot()
            print(event.event_type, event.trace_id, event.span_id)

        asyncio.run(main())
        """
    )
    assert out == "emitted None None"
