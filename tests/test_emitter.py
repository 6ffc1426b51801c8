"""The emitter: callers never wait on the store, and nothing is lost silently."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from sysevents import Event, EventLogger, MemoryEventRepository, NewEvent, StoreUnavailableError
from sysevents.errors import StoreError
from tests.waiting import eventually


class GatedRepository(MemoryEventRepository):
    """A memory store whose writes wait for a gate, and can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.failures_left = 0
        self.failure: type[Exception] = StoreUnavailableError
        self.batches: list[int] = []
        self.attempts = 0  # add_many calls begun, waiting at the gate or not

    async def add_many(self, news: Sequence[NewEvent]) -> list[Event]:
        self.attempts += 1
        await self.gate.wait()
        if self.failures_left:
            self.failures_left -= 1
            raise self.failure("injected failure")
        self.batches.append(len(news))
        return await super().add_many(news)


async def count(repo: MemoryEventRepository) -> int:
    return (await repo.stats()).total


async def test_events_from_tasks_are_stored() -> None:
    repo = GatedRepository()
    async with EventLogger(repo, source="svc") as emitter:
        for i in range(250):
            assert emitter.emit("job", f"run {i}", severity="info", details={"i": i})
        await emitter.flush()
        assert await count(repo) == 250
        page = await repo.list()
        assert page.items[0].source == "svc"
        assert page.items[0].idempotency_key
    counters = emitter.counters
    assert (counters.queued, counters.written, counters.pending) == (250, 250, 0)
    assert (counters.dropped, counters.to_stdout, counters.invalid) == (0, 0, 0)


async def test_details_changed_after_emit_are_not_stored() -> None:
    repo = MemoryEventRepository()
    flat = {"user": "ann"}
    nested = {"user": {"name": "ann"}, "tags": ["a"]}
    async with EventLogger(repo) as emitter:
        emitter.emit("login", "flat", details=flat)
        emitter.emit("login", "nested", details=nested)
        flat["user"] = "eve"  # the caller reuses its dicts, as loggers do
        nested["user"]["name"] = "eve"  # type: ignore[index]
        nested["tags"].append("b")  # type: ignore[attr-defined]
        await emitter.flush()
    stored = {e.message: e.details for e in (await repo.list()).items}
    assert stored == {"flat": {"user": "ann"}, "nested": {"user": {"name": "ann"}, "tags": ["a"]}}


async def test_events_from_threads_are_stored() -> None:
    repo = GatedRepository()
    async with EventLogger(repo) as emitter:

        def produce(n: int) -> None:
            for i in range(500):
                emitter.emit("thread", f"{n}-{i}")

        threads = [threading.Thread(target=produce, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        await asyncio.to_thread(lambda: [t.join() for t in threads])
        await emitter.flush()
    assert await count(repo) == 16 * 500
    keys = {e.idempotency_key for e in (await repo.list(_all())).items}
    assert len(keys) == 1000  # one page of distinct keys


def _all() -> Any:
    from sysevents import EventQuery

    return EventQuery(limit=1000)


async def test_callers_never_wait_on_a_slow_store() -> None:
    repo = GatedRepository()
    repo.gate.clear()  # the store does not answer until we say so
    async with EventLogger(repo, batch_size=100) as emitter:
        emitter.emit("first", "blocks the writer")
        await eventually(lambda: repo.attempts == 1, "the writer is waiting on the store")

        def produce() -> None:
            for i in range(2000):
                emitter.emit("t", str(i))

        threads = [threading.Thread(target=produce) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        for _ in range(200):
            emitter.emit("task", "from the loop")
        # Every caller has returned while the store is still blocked.
        assert not any(t.is_alive() for t in threads)
        assert repo.batches == []
        assert emitter.counters.queued == 1 + 16 * 2000 + 200
        repo.gate.set()
        await emitter.flush()
    assert await count(repo) == 1 + 16 * 2000 + 200


async def test_drop_newest_when_full() -> None:
    repo = GatedRepository()
    repo.gate.clear()
    emitter = EventLogger(repo, max_queue=10, overflow="drop_newest")
    await emitter.start()
    results = [emitter.emit("t", str(i)) for i in range(15)]
    assert results == [True] * 10 + [False] * 5
    assert emitter.counters.dropped == 5
    repo.gate.set()
    await emitter.aclose()
    messages = sorted(int(e.message) for e in (await repo.list()).items)
    assert messages == list(range(10))


async def test_drop_oldest_when_full() -> None:
    repo = GatedRepository()
    repo.gate.clear()
    emitter = EventLogger(repo, max_queue=10, overflow="drop_oldest")
    await emitter.start()
    assert all(emitter.emit("t", str(i)) for i in range(15))
    counters = emitter.counters
    assert (counters.dropped, counters.pending) == (5, 10)
    repo.gate.set()
    await emitter.aclose()
    messages = sorted(int(e.message) for e in (await repo.list()).items)
    assert messages == list(range(5, 15))


async def test_block_waits_for_room_then_drops() -> None:
    repo = GatedRepository()
    repo.gate.clear()
    emitter = EventLogger(repo, max_queue=5, overflow="block", block_timeout=0.3, batch_size=5)
    await emitter.start()
    results: list[bool] = []
    thread = threading.Thread(
        target=lambda: results.extend(emitter.emit("t", str(i)) for i in range(17))
    )
    thread.start()
    await asyncio.to_thread(thread.join)
    # The writer took one batch of 5 off the queue to store and the next 5 to
    # validate meanwhile, the next 5 filled the queue again, and the rest
    # waited their 300 ms for room and were dropped.
    assert results.count(True) == 15
    assert emitter.counters.dropped == 2
    repo.gate.set()
    await emitter.aclose()
    assert await count(repo) == 15


async def test_retries_while_the_store_is_unavailable() -> None:
    repo = GatedRepository()
    repo.failures_left = 3
    async with EventLogger(repo, max_backoff=0.05) as emitter:
        for i in range(10):
            emitter.emit("t", str(i))
        await emitter.flush()
    assert await count(repo) == 10
    assert emitter.counters.retried >= 10
    assert emitter.counters.to_stdout == 0


async def test_after_the_retry_window_events_go_to_stdout() -> None:
    repo = GatedRepository()
    repo.failures_left = 10**6
    out = io.StringIO()
    async with EventLogger(repo, retry_window=0.2, max_backoff=0.02, fallback=out) as emitter:
        for i in range(7):
            emitter.emit("t", str(i), details={"i": i})
        await emitter.flush()
        # The outage goes on: new events skip the window and go straight out.
        emitter.emit("t", "late")
        await emitter.flush()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line["message"] for line in lines) == sorted([*map(str, range(7)), "late"])
    assert all("store unavailable" in line["fallback_reason"] for line in lines)
    assert emitter.counters.to_stdout == 8
    assert emitter.counters.written == 0


async def test_store_errors_go_to_stdout() -> None:
    repo = GatedRepository()
    repo.failures_left = 1
    repo.failure = StoreError
    out = io.StringIO()
    async with EventLogger(repo, fallback=out) as emitter:
        emitter.emit("t", "lost?")
        await emitter.flush()
    assert json.loads(out.getvalue())["message"] == "lost?"


async def test_invalid_events_never_raise_and_are_reported() -> None:
    repo = GatedRepository()
    out = io.StringIO()
    async with EventLogger(repo, fallback=out) as emitter:
        assert emitter.emit("", "blank type")
        assert emitter.emit("t", "bad severity", severity="loud")
        assert emitter.emit("t", "nul\x00")
        assert emitter.emit("t", "ok", details={"x": object()})
        assert emitter.emit(123, None)  # type: ignore[arg-type]
        assert emitter.emit("t", "fine")
        await emitter.flush()
    assert emitter.counters.invalid == 5
    assert await count(repo) == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 5
    assert all(line["fallback_reason"].startswith("invalid event") for line in lines)


async def test_close_drains_the_queue() -> None:
    repo = GatedRepository()
    emitter = EventLogger(repo, interval=0.5)
    await emitter.start()
    for i in range(100):
        emitter.emit("t", str(i))
    await emitter.aclose()
    assert await count(repo) == 100


async def test_emit_after_close_goes_to_stdout_on_flush() -> None:
    repo = GatedRepository()
    out = io.StringIO()
    emitter = EventLogger(repo, fallback=out)
    await emitter.start()
    await emitter.aclose()
    emitter.emit("t", "too late")
    await emitter.flush()
    assert json.loads(out.getvalue())["fallback_reason"] == "emitter stopped"


def test_threaded_emitter_for_synchronous_programs() -> None:
    repos: list[MemoryEventRepository] = []

    def open_repo() -> MemoryEventRepository:
        repos.append(MemoryEventRepository())
        return repos[0]

    emitter = EventLogger.in_thread(open_repo)
    for i in range(300):
        emitter.emit("sync", str(i))
    emitter.flush(timeout=10)
    assert emitter.counters.written == 300
    emitter.close()
    emitter.close()
    assert len(repos[0]._events) == 300


def test_interpreter_exit_drains_the_queue(tmp_path: Any) -> None:
    script = textwrap.dedent(
        """
        import atexit
        from sysevents import EventLogger, MemoryEventRepository

        repo = MemoryEventRepository()
        # Registered first, so it runs after the emitter's own exit hook.
        atexit.register(lambda: print("stored", len(repo._events)))
        emitter = EventLogger.in_thread(lambda: repo, interval=1.0)
        for i in range(500):
            emitter.emit("exit", str(i))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "stored 500"


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest", "block"])
def test_policies_are_checked(policy: str) -> None:
    EventLogger(MemoryEventRepository(), overflow=policy)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overflow"):
        EventLogger(MemoryEventRepository(), overflow="sometimes")  # type: ignore[arg-type]


async def test_a_cancelled_writer_hands_its_batch_to_stdout() -> None:
    repo = GatedRepository()
    repo.failures_left = 10**6
    out = io.StringIO()
    emitter = EventLogger(repo, retry_window=30, fallback=out)
    await emitter.start()
    for i in range(5):
        emitter.emit("t", str(i))
    await eventually(lambda: repo.attempts >= 2, "the writer is retrying the batch")
    assert emitter._task is not None
    emitter._task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await emitter._task
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line["message"] for line in lines) == [str(i) for i in range(5)]
    assert all(line["fallback_reason"] == "emitter cancelled" for line in lines)
    assert emitter.counters.pending == 0


def test_exit_during_an_outage_loses_nothing() -> None:
    script = textwrap.dedent(
        """
        import asyncio
        from sysevents import EventLogger, MemoryEventRepository, StoreUnavailableError

        class Down(MemoryEventRepository):
            async def add_many(self, news):
                raise StoreUnavailableError("down")

        async def main():
            emitter = EventLogger(Down(), retry_window=30)
            await emitter.start()
            for i in range(5):
                emitter.emit("t", str(i), timestamp="2024-01-01T00:00:00Z")
            await asyncio.sleep(0.2)
            # asyncio.run() cancels the writer: no aclose(), no flush().

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    messages = sorted(json.loads(line)["message"] for line in result.stdout.splitlines())
    assert messages == [str(i) for i in range(5)]


async def test_the_next_batch_is_validated_while_one_is_stored() -> None:
    repo = GatedRepository()
    repo.gate.clear()
    out = io.StringIO()
    emitter = EventLogger(repo, batch_size=10, fallback=out)
    await emitter.start()
    for i in range(10):
        emitter.emit("first", str(i))
    await eventually(lambda: repo.attempts == 1, "the first batch waits at the gate")
    for i in range(10):
        emitter.emit("second", str(i))
    emitter.emit("", "invalid: empty type")  # in the third batch: not validated yet
    await eventually(lambda: len(emitter._validated) == 10, "the second batch is validated")
    # The second batch is validated and waits: one store at a time.
    assert [e.event_type for e in emitter._validated] == ["second"] * 10
    assert repo.batches == []
    assert emitter.counters.invalid == 0
    assert emitter._task is not None
    emitter._task.cancel()  # neither batch may be lost
    with contextlib.suppress(asyncio.CancelledError):
        await emitter._task
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted((line["event_type"], line["message"]) for line in lines) == sorted(
        [("first", str(i)) for i in range(10)]
        + [("second", str(i)) for i in range(10)]
        + [("", "invalid: empty type")]
    )
    assert await count(repo) == 0


async def test_batches_are_stored_in_order_one_at_a_time() -> None:
    repo = GatedRepository()
    async with EventLogger(repo, batch_size=7) as emitter:
        for i in range(100):
            emitter.emit("t", str(i))
        await emitter.flush()
    page = await repo.list(_all())
    assert [e.message for e in sorted(page.items, key=lambda e: e.id)] == [
        str(i) for i in range(100)
    ]
    assert sum(repo.batches) == 100
