"""One tail reader per repository: N live tails cost one read per new event, not N (SPEC §14)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import sysevents
from sysevents import EventFilter, NewEvent
from sysevents.stores.postgres import PostgresEventRepository, fanout
from sysevents.tail import Tailed, TailOverflow
from tests.waiting import eventually

TAILS = 16


async def _collect(items: AsyncIterator[Tailed], into: list[Tailed]) -> None:
    async for item in items:
        if item.event is not None:
            into.append(item)


def _requests(repo: PostgresEventRepository) -> int:
    pool = repo.pool
    assert pool is not None
    return pool.get_stats().get("requests_num", 0)


async def test_many_tails_read_each_new_event_once(empty_postgres_url: str) -> None:
    # No polling and no background work: every borrowing of the pool is a tail's.
    options = {"tail_poll": 60.0, "fold_interval": 0}
    async with (
        sysevents.connect(empty_postgres_url, **options) as repo,
        sysevents.connect(empty_postgres_url, **options) as writer,
    ):
        assert isinstance(repo, PostgresEventRepository)
        seen: list[list[Tailed]] = [[] for _ in range(TAILS)]
        query = EventFilter(event_type=["t"])
        tails = [asyncio.create_task(_collect(repo.follow(query), s)) for s in seen]
        try:
            # Every tail is live once each has the first event.
            await eventually(
                lambda: repo.tail_hub is not None and repo.tail_hub.subscribers == TAILS,
                "every tail joined",
            )
            await writer.add(NewEvent(event_type="t", message="first"))
            await eventually(lambda: all(len(s) == 1 for s in seen), "every tail has the first")
            before = _requests(repo)
            await writer.add(NewEvent(event_type="t", message="second"))
            await eventually(lambda: all(len(s) == 2 for s in seen), "every tail has the second")
            reads = _requests(repo) - before
            # One read per wake-up (and perhaps a look again), never one per tail.
            assert reads <= 3, f"{reads} reads of the pool for one event and {TAILS} tails"
            assert [[t.event.message for t in s if t.event] for s in seen] == [
                ["first", "second"]
            ] * TAILS
        finally:
            for tail in tails:
                tail.cancel()
            await asyncio.gather(*tails, return_exceptions=True)
        assert repo.tail_hub is not None
        await eventually(lambda: repo.tail_hub.subscribers == 0, "the tails left")  # type: ignore[union-attr]


async def test_a_tail_too_slow_is_dropped_and_resumes_without_a_gap(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "QUEUE", 5)
    async with sysevents.connect(empty_postgres_url, tail_poll=60.0, fold_interval=0) as repo:
        slow = repo.follow(idle=0.2)
        start = await anext(slow)  # a heartbeat: it is live, and reads no further for now
        assert start.event is None
        fast: list[Tailed] = []
        keeping_up = asyncio.create_task(_collect(repo.follow(after=start.position), fast))
        try:
            # One at a time: the tail that keeps up gets each, whatever the slow one does.
            added = []
            for i in range(12):
                added.append(await repo.add(NewEvent(event_type="t", message=f"m{i}")))
                await eventually(lambda: len(fast) == len(added), "the fast tail keeps up")
            got: list[Tailed] = []
            with pytest.raises(TailOverflow, match="fell 5 events behind"):
                await asyncio.wait_for(_collect(slow, got), 10)
            # What it held, then it ended; from its last position, the rest.
            assert [t.event.id for t in got if t.event] == [e.id for e in added[:5]]
            rest = repo.follow(after=got[-1].position)
            try:
                more = [await anext(rest) for _ in range(7)]
            finally:
                await rest.aclose()  # type: ignore[attr-defined]
            assert [t.event.id for t in more if t.event] == [e.id for e in added[5:]]
        finally:
            keeping_up.cancel()
            await asyncio.gather(keeping_up, return_exceptions=True)
            await slow.aclose()  # type: ignore[attr-defined]


async def test_rows_queued_past_the_idle_time_come_before_a_heartbeat(
    empty_postgres_url: str,
) -> None:
    async with sysevents.connect(empty_postgres_url, tail_poll=60.0, fold_interval=0) as repo:
        assert isinstance(repo, PostgresEventRepository)
        items = repo.follow(idle=0.05)
        try:
            assert (await anext(items)).event is None  # live
            hub = repo.tail_hub
            assert hub is not None
            added = await repo.add_many(
                [NewEvent(event_type="t", message=f"m{i}") for i in range(3)]
            )
            await eventually(lambda: hub.backlog() == 3, "the rows wait in the tail's queue")
            loop = asyncio.get_running_loop()
            idle_over = loop.time() + 0.1
            await eventually(lambda: loop.time() > idle_over, "the idle time is over")
            # The rows first, not a heartbeat that would move past them.
            got = [await anext(items) for _ in range(3)]
            assert [t.event.id if t.event else None for t in got] == [e.id for e in added]
        finally:
            await items.aclose()  # type: ignore[attr-defined]


async def test_the_library_tail_resumes_by_itself_when_too_slow(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "QUEUE", 3)
    async with sysevents.connect(empty_postgres_url, tail_poll=60.0, fold_interval=0) as repo:
        assert isinstance(repo, PostgresEventRepository)
        events = repo.tail()
        try:
            first = asyncio.create_task(anext(events))
            await eventually(
                lambda: repo.tail_hub is not None and repo.tail_hub.subscribers == 1, "joined"
            )
            hub = repo.tail_hub
            assert hub is not None
            await repo.add(NewEvent(event_type="t", message="first"))
            assert (await asyncio.wait_for(first, 10)).message == "first"
            # Not read for a while: the shared reader drops it, and it follows again.
            added = []
            for i in range(8):
                added.append(await repo.add(NewEvent(event_type="t", message=f"m{i}")))
            await eventually(lambda: hub.subscribers == 0, "the slow tail was dropped")
            got = [await asyncio.wait_for(anext(events), 10) for _ in added]
            assert [e.id for e in got] == [e.id for e in added]
        finally:
            await events.aclose()  # type: ignore[attr-defined]
