"""One line to start: ``log_to``, and the structlog processor and loguru sink."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog
from loguru import logger as loguru_logger
from opentelemetry.sdk.trace import TracerProvider

import sysevents
import sysevents.logging.loguru
import sysevents.logging.structlog
from sysevents import EventLogger, MemoryEventRepository, Settings
from sysevents.keys import Scope
from sysevents.logging.handler import EventLogHandler
from sysevents_http import create_app
from tests.http.live import LiveApp

HERE = __file__


def line_of(marker: str) -> int:
    """The line of this file that ends with ``marker`` (a comment)."""
    with open(HERE, encoding="utf-8") as source:
        for number, text in enumerate(source, 1):
            if text.rstrip().endswith("# " + marker):
                return number
    raise AssertionError(marker)


@pytest.fixture
def repo() -> MemoryEventRepository:
    return MemoryEventRepository()


@pytest.fixture
def log(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    logger = logging.getLogger(f"tests.logto.{request.node.name}")
    logger.propagate = False
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_log_to_a_repository(repo: MemoryEventRepository, log: logging.Logger) -> None:
    handler = sysevents.log_to(repo, logger=log, level="INFO")
    assert handler in log.handlers
    assert log.getEffectiveLevel() <= logging.INFO
    log.debug("below the level")
    log.warning("disk %s%% full", 91, extra={"event_type": "disk_usage", "mount": "/var"})  # L1
    handler.flush()
    (event,) = repo.snapshot()
    assert event.event_type == "disk_usage"
    assert event.severity == "warning"
    assert event.message == "disk 91% full"
    assert event.source == log.name
    assert event.details == {"mount": "/var", "location": f"{HERE}:{line_of('L1')}"}
    assert (event.trace_id, event.span_id) == (None, None)


def test_log_to_a_url_and_a_source(log: logging.Logger) -> None:
    handler = sysevents.log_to("memory://", logger=log, source="billing", level=logging.DEBUG)
    log.debug("kept at debug")
    handler.flush()
    stored = handler.emitter.emitter
    assert stored is not None
    (event,) = (
        asyncio.run_coroutine_threadsafe(stored.repo.list(), handler.emitter._loop).result(5).items
    )
    assert (event.message, event.severity, event.source) == ("kept at debug", "debug", "billing")


def test_a_span_around_a_log_call_gives_its_ids(
    repo: MemoryEventRepository, log: logging.Logger
) -> None:
    handler = sysevents.log_to(repo, logger=log)
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("request") as span:
        log.info("inside the span")
    log.info("after it")
    handler.flush()
    context = span.get_span_context()
    stored = {e.message: e for e in repo.snapshot()}
    assert (stored["inside the span"].trace_id, stored["inside the span"].span_id) == (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
    )
    assert stored["after it"].trace_id is None


def test_log_to_an_api_with_a_key(log: logging.Logger) -> None:
    repo = MemoryEventRepository()
    _, key = asyncio.run(repo.keys.create_key("writer", frozenset({Scope.WRITE})))
    with LiveApp(create_app(Settings(rate_limit="off"), repository=repo)) as live:
        handler = sysevents.log_to(live.url, api_key=key, logger=log)
        log.error("over http", extra={"order": 7})
        handler.flush()
        handler.close()
    # The app records its own lifecycle events beside it.
    (event,) = [e for e in repo.snapshot() if e.source == log.name]
    assert (event.message, event.severity) == ("over http", "error")
    assert event.details is not None
    assert event.details["order"] == 7


def test_a_bad_level_is_refused(repo: MemoryEventRepository) -> None:
    with pytest.raises(ValueError, match="LOUD"):
        sysevents.log_to(repo, level="LOUD", logger="tests.logto.bad")


@pytest.fixture
def emitter(repo: MemoryEventRepository) -> Iterator[Any]:
    threaded = EventLogger.in_thread(lambda: repo)
    yield threaded
    threaded.close()


def test_structlog(repo: MemoryEventRepository, emitter: Any) -> None:
    out = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            sysevents.logging.structlog.EventProcessor(emitter, source="checkout"),
            structlog.processors.JSONRenderer(),
        ],
    ).bind(user="ann")
    before = datetime.now(UTC)
    log.warning("payment failed", event_type="payment", amount=5, tags=["a"])  # S1
    try:
        raise RuntimeError("card expired")
    except RuntimeError:
        log.exception("charge crashed")  # S2
    log.debug("details", nested={"a": {"b": 1}})
    emitter.flush()
    assert "payment failed" in out.getvalue()  # the chain goes on to the renderer
    stored = {e.message: e for e in repo.snapshot()}
    failed = stored["payment failed"]
    assert (failed.event_type, failed.severity, failed.source) == ("payment", "warning", "checkout")
    assert failed.details == {
        "user": "ann",
        "amount": 5,
        "tags": ["a"],
        "location": f"{HERE}:{line_of('S1')}",
    }
    assert before - timedelta(seconds=1) <= failed.timestamp <= datetime.now(UTC)
    crashed = stored["charge crashed"]
    assert (crashed.event_type, crashed.severity) == ("log", "error")
    assert crashed.details is not None
    assert crashed.details["location"] == f"{HERE}:{line_of('S2')}"
    assert crashed.details["exception"]["type"] == "RuntimeError"
    assert "card expired" in crashed.details["exception"]["traceback"]
    assert stored["details"].severity == "debug"
    assert stored["details"].details == {
        "user": "ann",
        "nested": {"a": {"b": 1}},
        "location": stored["details"].details["location"],  # type: ignore[index]
    }


def test_loguru(repo: MemoryEventRepository, emitter: Any) -> None:
    sink = loguru_logger.add(
        sysevents.logging.loguru.EventSink(emitter),
        level="TRACE",
        format="{time} | {level} | {name}:{line} - {message}",
    )
    try:
        loguru_logger.bind(event_type="deploy", version="1.2", region="eu").success(
            "shipped {}", "v1.2"
        )  # G1
        loguru_logger.trace("fine detail")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            loguru_logger.exception("math broke")  # G2
        loguru_logger.critical("down")
    finally:
        loguru_logger.remove(sink)
    emitter.flush()
    stored = {e.message: e for e in repo.snapshot()}
    assert set(stored) == {"shipped v1.2", "fine detail", "math broke", "down"}
    shipped = stored["shipped v1.2"]
    assert (shipped.event_type, shipped.severity) == ("deploy", "info")
    assert shipped.source == __name__
    # Bound extras are details, flat; the location is the call's (the statement's first line).
    assert shipped.details == {
        "version": "1.2",
        "region": "eu",
        "location": f"{HERE}:{line_of('G1') - 2}",
    }
    assert stored["fine detail"].severity == "debug"
    broke = stored["math broke"]
    assert broke.severity == "error"
    assert broke.details is not None
    assert broke.details["location"] == f"{HERE}:{line_of('G2')}"
    assert broke.details["exception"]["type"] == "ZeroDivisionError"
    assert stored["down"].severity == "critical"


def test_neither_library_is_imported_by_sysevents() -> None:
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, sysevents, sysevents.logging.structlog, sysevents.logging.loguru; "
            "print(sorted(m for m in ('structlog', 'loguru') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]", done.stderr


@pytest.fixture
def root_at_debug() -> Iterator[logging.Logger]:
    """The root logger at DEBUG for the test, with its handlers and level restored after."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.DEBUG)
    yield root
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def test_log_to_http_stores_what_was_logged_and_nothing_of_its_own(
    root_at_debug: logging.Logger,
) -> None:
    """The HTTP client's own records (httpx at INFO, httpcore at DEBUG) never become events."""
    repo = MemoryEventRepository()
    count = 25
    with LiveApp(create_app(Settings(rate_limit="off"), repository=repo)) as live:
        handler = sysevents.log_to(live.url, level="DEBUG")
        app_log = logging.getLogger("tests.logto.app")
        for n in range(count):
            app_log.debug("record %d", n)
        handler.flush()
        handler.flush()  # anything the shipping itself logged would be queued by now
        queued = handler.emitter.counters.queued
        handler.close()
    lifecycle = {"system_startup", "system_shutdown", "health_check", "db_health_check"}
    mine = [e for e in repo.snapshot() if e.event_type not in lifecycle]
    assert queued == count
    assert sorted(e.message for e in mine) == sorted(f"record {n}" for n in range(count))
    assert {e.source for e in mine} == {"tests.logto.app"}


class _Recorder:
    """An emitter that keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def emit(self, event_type: str, message: str, **fields: Any) -> bool:
        self.calls.append({"event_type": event_type, "message": message, **fields})
        return True


@pytest.mark.parametrize(
    "name", ["httpx", "httpcore.http11", "sysevents.emitter", "sysevents_http"]
)
def test_the_handler_skips_the_transport_and_its_own_loggers(name: str) -> None:
    recorder = _Recorder()
    handler = EventLogHandler(recorder)
    for level in (logging.DEBUG, logging.INFO, logging.ERROR):
        handler.handle(logging.LogRecord(name, level, __file__, 1, "skipped", None, None))
    handler.handle(logging.LogRecord("httpx_user", logging.INFO, __file__, 1, "kept", None, None))
    assert [c["message"] for c in recorder.calls] == ["kept"]


def test_structlog_skips_standard_records_of_the_transport(root_at_debug: logging.Logger) -> None:
    """Standard-library records formatted by structlog (``ProcessorFormatter``) are filtered."""
    recorder = _Recorder()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            sysevents.logging.structlog.EventProcessor(recorder),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
    stream = logging.StreamHandler(io.StringIO())
    stream.setFormatter(formatter)
    root_at_debug.addHandler(stream)
    with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(201))) as client:
        client.post("http://events.invalid/api/events/batch", json=[])
    logging.getLogger("sysevents.emitter").warning("own")
    logging.getLogger("tests.logto.structlog").info("kept")
    assert "HTTP Request" in stream.stream.getvalue()  # httpx did log, through structlog
    assert [c["message"] for c in recorder.calls] == ["kept"]


def test_loguru_skips_standard_records_of_the_transport(root_at_debug: logging.Logger) -> None:
    """Standard-library records forwarded to loguru keep their module's name; those are skipped."""

    class InterceptHandler(logging.Handler):  # loguru's documented recipe
        def emit(self, record: logging.LogRecord) -> None:
            frame, depth = logging.currentframe(), 0
            while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
                frame = frame.f_back  # type: ignore[assignment]
                depth += 1
            loguru_logger.opt(depth=depth, exception=record.exc_info).log(
                record.levelname, record.getMessage()
            )

    recorder = _Recorder()
    sink = loguru_logger.add(sysevents.logging.loguru.EventSink(recorder), level="TRACE")
    root_at_debug.addHandler(InterceptHandler())
    try:
        with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(201))) as client:
            client.post("http://events.invalid/api/events/batch", json=[])
        loguru_logger.info("kept")
    finally:
        loguru_logger.remove(sink)
    assert [c["message"] for c in recorder.calls] == ["kept"]
