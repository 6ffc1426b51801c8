"""Conformance: statistics, concurrency and the lifecycle of a repository."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sysevents.errors import (
    StoreUnavailableError,
)
from sysevents.model import EventPatch, Severity
from sysevents.query import EventFilter, EventQuery
from sysevents.store import EventRepository

from .helpers import OWN, new


@pytest.mark.asyncio
class StatsConformance:
    """Statistics and lifecycle. Every test runs against the ``repo`` fixture of the subclass."""

    # -- stats --------------------------------------------------------------------

    async def test_stats_of_nothing(self, repo: EventRepository) -> None:
        stats = await repo.stats()
        assert stats.total == 0
        assert stats.by_severity == dict.fromkeys(Severity, 0)
        assert (stats.by_type, stats.by_source) == ({}, {})
        assert (stats.last_hour, stats.last_24h) == (0, 0)
        assert (stats.first_timestamp, stats.last_timestamp) == (None, None)

    async def test_stats(self, repo: EventRepository) -> None:
        events = await repo.add_many(
            [
                new("deploy", "info", source="ci", ago=timedelta(days=3)),
                new("deploy", "error", source="ci", ago=timedelta(hours=5)),
                new("login", "error", ago=timedelta(hours=2)),
                new("login", "critical", source="web", ago=timedelta(minutes=30)),
                new("crash", "critical", source="web", ago=timedelta(minutes=1)),
            ]
        )
        stats = await repo.stats()
        assert stats.total == 5
        assert stats.by_severity == {
            Severity.DEBUG: 0,
            Severity.INFO: 1,
            Severity.WARNING: 0,
            Severity.ERROR: 2,
            Severity.CRITICAL: 2,
        }
        assert stats.by_type == {"deploy": 2, "login": 2, "crash": 1}
        assert stats.by_source == {"ci": 2, "web": 2}
        assert (stats.last_hour, stats.last_24h) == (2, 4)
        assert stats.first_timestamp == events[0].timestamp
        assert stats.last_timestamp == events[-1].timestamp

        filtered = await repo.stats(EventFilter(min_severity="error", since=events[2].timestamp))
        assert filtered.total == 3
        assert filtered.by_type == {"login": 2, "crash": 1}
        assert filtered.by_source == {"web": 2}
        assert filtered.first_timestamp == events[2].timestamp
        by_query = await repo.stats(EventQuery(event_type="deploy", limit=1))
        assert by_query.total == 2

    # A store behind an API records the changes it makes as events of its
    # own (the audit trail, source "sysevents"): these tests look at theirs.

    async def test_stats_follow_every_mutation(self, repo: EventRepository) -> None:
        mine = EventFilter(source=OWN)
        first = await repo.add(new("a", "info", source=OWN))
        assert (await repo.stats(mine)).by_type == {"a": 1}
        await repo.add_many([new("b", "error", source=OWN), new("b", "error", source=OWN)])
        assert (await repo.stats(mine)).by_type == {"a": 1, "b": 2}
        await repo.update(first.id, EventPatch(event_type="b", severity="debug"))
        stats = await repo.stats(mine)
        assert stats.by_type == {"b": 3}
        assert stats.by_severity[Severity.DEBUG] == 1
        await repo.delete(first.id)
        assert (await repo.stats(mine)).total == 2

    async def test_reads_follow_every_mutation(self, repo: EventRepository) -> None:
        event = await repo.add(new(source=OWN))
        assert await repo.get(event.id) == event
        updated = await repo.update(event.id, EventPatch(message="v2"))
        assert await repo.get(event.id) == updated
        await repo.delete(event.id)
        assert await repo.get(event.id) is None
        page = await repo.list(EventQuery(source=OWN))
        assert page.items == []

    # -- concurrency and lifecycle ----------------------------------------------

    async def test_concurrent_adds(self, repo: EventRepository) -> None:
        events = await asyncio.gather(*(repo.add(new(message=str(i))) for i in range(40)))
        assert len({e.id for e in events}) == 40
        assert (await repo.stats()).total == 40

    async def test_ping(self, repo: EventRepository) -> None:
        await repo.ping()

    async def test_close_is_idempotent_and_final(self, repo: EventRepository) -> None:
        await repo.close()
        await repo.close()
        with pytest.raises(StoreUnavailableError):
            await repo.add(new())
