"""The logging handler: records become events, and logging never breaks the caller."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sysevents import EventLogger, MemoryEventRepository, Severity, StoreUnavailableError
from sysevents.logging.handler import EventLogHandler, severity_of


@pytest.fixture
def log() -> Iterator[logging.Logger]:
    logger = logging.getLogger("tests.app")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.handlers.clear()


@pytest.fixture
async def stored(log: logging.Logger) -> AsyncIterator[tuple[MemoryEventRepository, EventLogger]]:
    repo = MemoryEventRepository()
    async with EventLogger(repo) as emitter:
        log.addHandler(EventLogHandler(emitter))
        yield repo, emitter


async def events(repo: MemoryEventRepository, emitter: EventLogger) -> list[Any]:
    await emitter.flush()
    return list(reversed((await repo.list()).items))


async def test_a_record_becomes_an_event(stored: Any, log: logging.Logger) -> None:
    repo, emitter = stored
    before = datetime.now(UTC)
    log.warning("disk %s is %d%% full", "/var", 91, extra={"host": "db-1", "tags": ["a", "b"]})
    (event,) = await events(repo, emitter)
    assert event.event_type == "log"
    assert event.severity is Severity.WARNING
    assert event.message == "disk /var is 91% full"
    assert event.source == "tests.app"
    assert event.details["host"] == "db-1"
    assert event.details["tags"] == ["a", "b"]
    assert event.details["location"].endswith(".py:" + event.details["location"].split(":")[-1])
    assert before <= event.timestamp <= datetime.now(UTC)


async def test_event_type_from_extra(stored: Any, log: logging.Logger) -> None:
    repo, emitter = stored
    log.info("deployed", extra={"event_type": "deploy", "version": "1.2"})
    (event,) = await events(repo, emitter)
    assert (event.event_type, event.details["version"]) == ("deploy", "1.2")
    assert "event_type" not in event.details


async def test_exception_with_traceback(stored: Any, log: logging.Logger) -> None:
    repo, emitter = stored
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.exception("it broke")
    (event,) = await events(repo, emitter)
    assert event.severity is Severity.ERROR
    exception = event.details["exception"]
    assert exception["type"] == "ZeroDivisionError"
    assert "division by zero" in exception["message"]
    assert "Traceback (most recent call last)" in exception["traceback"]
    assert "1 / 0" in exception["traceback"]


async def test_values_that_are_not_json(stored: Any, log: logging.Logger) -> None:
    repo, emitter = stored

    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    log.info(
        "odd values",
        extra={
            "thing": Thing(),
            "when": datetime(2024, 1, 1, tzinfo=UTC),
            "nan": float("nan"),
            "set": {1},
            "nested": {"deep": [Thing(), (1, 2)], 3: "int key"},
            "nul": "a\x00b",
            "broken": Broken(),
            "huge": 10**400,
        },
    )
    (event,) = await events(repo, emitter)
    d = event.details
    assert d["thing"] == "<Thing>"
    assert d["when"].startswith("datetime.datetime(2024")
    assert d["nan"] == "nan"
    assert d["set"] == "{1}"
    assert d["nested"] == {"deep": ["<Thing>", [1, 2]], "3": "int key"}
    assert d["nul"] == "a\ufffdb"
    assert d["broken"] == "<unrepresentable Broken>"
    assert d["huge"].startswith("1000")


async def test_messages_are_made_storable(stored: Any, log: logging.Logger) -> None:
    repo, emitter = stored
    log.info("")
    log.info("nul \x00 and lone \ud800")
    log.info("x" * 100_000)
    first, second, third = await events(repo, emitter)
    assert first.message == "(empty message)"
    assert second.message == "nul \ufffd and lone \ufffd"
    assert len(third.message) == 16_000
    assert emitter.counters.invalid == 0


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (5, "debug"),
        (10, "debug"),
        (20, "info"),
        (25, "info"),
        (30, "warning"),
        (40, "error"),
        (45, "error"),
        (50, "critical"),
        (60, "critical"),
    ],
)
def test_levels_map_to_severities(level: int, severity: str) -> None:
    assert severity_of(level) == severity


async def test_a_down_store_never_reaches_the_caller(log: logging.Logger) -> None:
    class Down(MemoryEventRepository):
        async def add_many(self, news: Any) -> Any:
            raise StoreUnavailableError("down")

    out = io.StringIO()
    async with EventLogger(Down(), retry_window=0.1, max_backoff=0.02, fallback=out) as emitter:
        log.addHandler(EventLogHandler(emitter))
        log.error("while the store is down", extra={"n": 1})
        await emitter.flush()
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["message"] == "while the store is down"
    assert line["details"]["n"] == 1


async def test_the_handler_never_feeds_itself(
    stored: Any, caplog: pytest.LogCaptureFixture
) -> None:
    repo, emitter = stored
    root = logging.getLogger()
    handler = EventLogHandler(emitter)
    root.addHandler(handler)
    try:
        logging.getLogger("sysevents.emitter").warning("the emitter's own warning")
        logging.getLogger("sysevents").error("library message")
    finally:
        root.removeHandler(handler)
    assert await events(repo, emitter) == []


def test_errors_inside_the_handler_are_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        def emit(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("boom")

    handled: list[logging.LogRecord] = []
    handler = EventLogHandler(Exploding())
    monkeypatch.setattr(handler, "handleError", handled.append)
    logger = logging.getLogger("tests.exploding")
    logger.addHandler(handler)
    try:
        logger.error("this must not raise")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in handled] == ["this must not raise"]


async def test_oversized_details_are_trimmed_not_lost(stored: Any, log: logging.Logger) -> None:
    repo, emitter = stored
    extra = {f"big{i}": "x" * 3_900 for i in range(20)}
    extra["small"] = "kept"
    try:
        raise RuntimeError("deep " * 2_000)
    except RuntimeError:
        log.exception("with everything", extra=extra, stack_info=True)
    (event,) = await events(repo, emitter)
    assert emitter.counters.invalid == 0
    details = event.details
    assert details["small"] == "kept"
    assert details["exception"]["type"] == "RuntimeError"
    assert "big0" in details["truncated"]
    assert len(json.dumps(details, ensure_ascii=False).encode()) <= 60_000
