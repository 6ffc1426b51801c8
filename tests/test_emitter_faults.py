"""The emitter across a database restart and a long outage (a private PostgreSQL)."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Iterator

import psycopg
import pytest

from sysevents import EventLogger
from sysevents.migrate import upgrade
from sysevents.stores.postgres import PostgresEventRepository
from tests.conftest import skip_or_fail
from tests.private_postgres import PrivatePostgres
from tests.waiting import eventually

pytestmark = [pytest.mark.fault, pytest.mark.postgres]

PRODUCERS = 8
TOTAL = 10_000


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    reason = PrivatePostgres.unavailable_reason()
    if reason:
        skip_or_fail(reason)
    with PrivatePostgres() as server:
        upgrade(server.url)
        yield server


def stored_messages(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT message FROM system_events")]


def produce(emitter: EventLogger, producer: int, count: int, started: threading.Barrier) -> None:
    started.wait()
    for i in range(count):
        emitter.emit("ingest", f"{producer}-{i}", details={"producer": producer, "i": i})
        if i % 10 == 0:
            threading.Event().wait(0.005)  # spread the load over the restart


async def test_a_restart_loses_and_duplicates_nothing(pg: PrivatePostgres) -> None:
    repo = PostgresEventRepository(pg.url, timeout=2.0)
    out = io.StringIO()
    async with repo, EventLogger(repo, batch_size=200, retry_window=60, fallback=out) as emitter:
        started = threading.Barrier(PRODUCERS + 1)
        threads = [
            threading.Thread(target=produce, args=(emitter, p, TOTAL // PRODUCERS, started))
            for p in range(PRODUCERS)
        ]
        for t in threads:
            t.start()
        started.wait()
        await eventually(lambda: emitter.counters.written > 0, "events are being stored")
        await asyncio.to_thread(pg.stop, "fast")
        await asyncio.sleep(0.5)  # the outage itself: producers keep emitting meanwhile
        await asyncio.to_thread(pg.start)
        await asyncio.to_thread(lambda: [t.join() for t in threads])
        async with asyncio.timeout(120):
            await emitter.flush()
        counters = emitter.counters
    messages = stored_messages(pg.url)
    assert out.getvalue() == ""
    assert len(messages) == TOTAL, counters
    assert len(set(messages)) == TOTAL
    assert counters.written == TOTAL
    assert counters.retried > 0, "the restart should have made some batch retry"


async def test_an_outage_longer_than_the_window_loses_nothing(pg: PrivatePostgres) -> None:
    repo = PostgresEventRepository(pg.url, timeout=1.0)
    out = io.StringIO()
    async with (
        repo,
        EventLogger(
            repo, batch_size=100, retry_window=1.0, max_backoff=0.2, fallback=out
        ) as emitter,
    ):
        for i in range(500):
            emitter.emit("before", str(i))
        await emitter.flush()
        await asyncio.to_thread(pg.stop, "fast")
        for i in range(2_000):
            emitter.emit("during", str(i))
        async with asyncio.timeout(60):
            await emitter.flush()
        await asyncio.to_thread(pg.start)
        for i in range(300):
            emitter.emit("after", str(i))
        async with asyncio.timeout(60):
            await emitter.flush()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    on_stdout = {(line["event_type"], line["message"]) for line in lines}
    with psycopg.connect(pg.url) as conn:
        rows = conn.execute("SELECT event_type, message FROM system_events").fetchall()
    in_store = {(t, m) for t, m in rows}
    expected = (
        {("before", str(i)) for i in range(500)}
        | {("during", str(i)) for i in range(2_000)}
        | {("after", str(i)) for i in range(300)}
    )
    assert len(rows) == len(in_store), "an event was stored twice"
    assert len(lines) == len(on_stdout), "an event was printed twice"
    assert in_store | on_stdout == expected
    assert not in_store & on_stdout
    assert on_stdout, "a 1 s window cannot cover the outage"
    assert all("store unavailable" in line["fallback_reason"] for line in lines)
    assert {("after", str(i)) for i in range(300)} <= in_store
