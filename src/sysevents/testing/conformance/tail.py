"""Conformance: live tails see each new matching event once, in order, and resume."""

from __future__ import annotations

import asyncio

import pytest

from sysevents.errors import InvalidEventError
from sysevents.model import Event
from sysevents.query import EventFilter
from sysevents.store import EventRepository

from .helpers import OWN, new

WAIT = 20.0
"""Seconds a tail may take to see what was written (polling is the slowest path)."""


async def start_position(repo: EventRepository, query: EventFilter) -> str:
    """A position from which a tail sees everything written after this returns."""
    items = repo.follow(query, idle=1.0)
    try:
        async with asyncio.timeout(WAIT):
            async for item in items:
                if item.event is None and item.position:
                    return item.position
    finally:
        await items.aclose()  # type: ignore[attr-defined]
    raise AssertionError("the tail gave no position")


async def take(
    repo: EventRepository, query: EventFilter, after: str, n: int
) -> list[tuple[Event, str]]:
    """The first ``n`` events a tail from ``after`` yields, with their positions."""
    seen: list[tuple[Event, str]] = []
    items = repo.follow(query, after=after)
    try:
        async with asyncio.timeout(WAIT):
            async for item in items:
                assert item.event is not None
                seen.append((item.event, item.position))
                if len(seen) == n:
                    break
    finally:
        await items.aclose()  # type: ignore[attr-defined]
    return seen


async def _first_step(repo: EventRepository, after: str) -> None:
    items = repo.follow(EventFilter(), after=after)
    try:
        await anext(items)
    finally:
        await items.aclose()  # type: ignore[attr-defined]


@pytest.mark.asyncio
class TailConformance:
    """Live tails. Runs against the ``repo`` fixture of the subclass."""

    async def test_new_events_once_in_order_and_resumed(self, repo: EventRepository) -> None:
        mine = EventFilter(source=OWN)
        start = await start_position(repo, mine)
        first = await repo.add_many([new("t", message=f"m{i}", source=OWN) for i in range(5)])
        await repo.add(new("other", message="not mine"))
        second = [await repo.add(new("t", message=f"n{i}", source=OWN)) for i in range(3)]
        seen = await take(repo, mine, start, 8)
        assert [e.id for e, _ in seen] == [e.id for e in first + second]
        # From any position, exactly what follows it.
        resumed = await take(repo, mine, seen[4][1], 3)
        assert [e.id for e, _ in resumed] == [e.id for e in second]
        late = await repo.add(new("t", message="late", source=OWN))
        assert [e.id for e, _ in await take(repo, mine, seen[-1][1], 1)] == [late.id]

    async def test_tail_applies_the_filters(self, repo: EventRepository) -> None:
        query = EventFilter(source=OWN, min_severity="error", q="DISK")
        start = await start_position(repo, query)
        await repo.add_many(
            [
                new("t", "error", "disk full", source=OWN),
                new("t", "info", "disk fine", source=OWN),
                new("t", "critical", "cpu hot", source=OWN),
                new("t", "critical", "Disk gone", source=OWN),
            ]
        )
        seen = await take(repo, query, start, 2)
        assert [e.message for e, _ in seen] == ["disk full", "Disk gone"]

    async def test_a_foreign_position_is_refused(self, repo: EventRepository) -> None:
        for bad in ("", "x", "12-ab", "-1", "1" * 40, "é"):
            # At once, or (over HTTP, where the server decides) at the first step.
            with pytest.raises(InvalidEventError):
                await _first_step(repo, bad)
