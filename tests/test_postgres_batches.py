"""Large batches go to PostgreSQL by COPY: what add_many returns is exactly what is stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import sysevents
from sysevents import Event, MemoryEventRepository, NewEvent
from sysevents.stores.postgres.inserts import COPY_FROM as _COPY_FROM

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC)


def batch(size: int, tag: str = "") -> list[NewEvent]:
    details = [
        None,
        {},
        {"flat": 1, "text": "é\u2028", "ok": True, "none": None, "x": 1.5},
        {"nested": {"list": [1, 2, {"deep": "yes"}]}, "big": 10**30},
        {"float": 1e300, "neg": -0.0, "unicode": "\U0001f600"},
    ]
    return [
        NewEvent(
            event_type=f"type-{i % 3}",
            severity=["debug", "info", "warning", "error", "critical"][i % 5],
            message=f"event {tag}{i} " + "x" * (i % 7),
            details=details[i % len(details)],
            source=None if i % 4 == 0 else f"source-{i % 5}",
            timestamp=NOW - timedelta(minutes=i, microseconds=i),
        )
        for i in range(size)
    ]


def same(a: Event, b: Event) -> bool:
    """Equal but for what each backend makes its own way: the id and the storing time."""
    mine = {"id", "created_at"}
    return a.model_dump(exclude=mine) == b.model_dump(exclude=mine)


async def test_a_copied_batch_reads_back_as_returned(empty_postgres_url: str) -> None:
    news = batch(_COPY_FROM * 3)
    memory = MemoryEventRepository()
    expected = await memory.add_many(news)
    async with sysevents.connect(empty_postgres_url) as repo:
        stored = await repo.add_many(news)
        assert [e.id for e in stored] == sorted(e.id for e in stored)
        assert len({e.created_at for e in stored}) == 1
        for mine, theirs in zip(expected, stored, strict=True):
            assert same(mine, theirs)
            assert await repo.get(theirs.id) == theirs
        stored[2].details["flat"] = "changed"  # type: ignore[index]
        stored[3].details["nested"]["list"].append(4)  # type: ignore[index]
        assert news[2].details == {"flat": 1, "text": "é\u2028", "ok": True, "none": None, "x": 1.5}
        assert news[3].details == {"nested": {"list": [1, 2, {"deep": "yes"}]}, "big": 10**30}
        assert (await repo.stats()).total == len(news)


async def test_a_failing_copy_stores_nothing(empty_postgres_url: str) -> None:
    async with sysevents.connect(empty_postgres_url) as repo:
        news = batch(_COPY_FROM * 2)
        before = await repo.add_many(news)
        # Past the model (as no caller should): PostgreSQL refuses the last row.
        bad = NewEvent.model_construct(
            event_type="x", severity=sysevents.Severity.INFO, message="nul \x00", timestamp=NOW
        )
        with pytest.raises(sysevents.StoreError):
            await repo.add_many([*news, bad])
        assert (await repo.stats()).total == len(before)


async def test_concurrent_batches_get_increasing_ids_of_their_own(
    empty_postgres_url: str,
) -> None:
    async with sysevents.connect(empty_postgres_url, pool_max_size=8) as repo:
        results = await asyncio.gather(
            *(repo.add_many(batch(_COPY_FROM + 7 * k, tag=f"{k}-")) for k in range(8)),
            repo.add(NewEvent(event_type="single", message="between")),
        )
        batches = results[:-1]
        ids = [e.id for stored in batches for e in stored]  # type: ignore[union-attr]
        assert len(set(ids)) == len(ids)
        for stored in batches:
            got = [e.id for e in stored]  # type: ignore[union-attr]
            assert got == sorted(got)
            for event in stored[:5]:  # type: ignore[index]
                assert await repo.get(event.id) == event
        page = await repo.list(sysevents.EventQuery(limit=1000, count="exact"))
        assert page.total == len(ids) + 1


def keyed(news: list[NewEvent], prefix: str) -> list[NewEvent]:
    return [n.model_copy(update={"idempotency_key": f"{prefix}-{i}"}) for i, n in enumerate(news)]


async def test_a_keyed_batch_goes_by_copy_and_reads_back_as_returned(
    empty_postgres_url: str,
) -> None:
    news = keyed(batch(_COPY_FROM * 2), "k")
    expected = await MemoryEventRepository().add_many(news)
    async with sysevents.connect(empty_postgres_url) as repo:
        stored = await repo.add_many(news)
        assert len({e.created_at for e in stored}) == 1  # one COPY, one transaction
        for mine, theirs in zip(expected, stored, strict=True):
            assert same(mine, theirs)
            assert theirs.idempotency_key is not None
            assert await repo.get(theirs.id) == theirs


async def test_a_retried_keyed_batch_stores_only_what_is_new(empty_postgres_url: str) -> None:
    first = keyed(batch(_COPY_FROM * 2), "r")
    async with sysevents.connect(empty_postgres_url) as repo:
        stored = await repo.add_many(first[:_COPY_FROM])  # as if the first try had committed
        again = await repo.add_many(first)  # the COPY meets a stored key: the slow path
        assert again[:_COPY_FROM] == stored
        assert len({e.id for e in again}) == len(first)
        assert (await repo.stats()).total == len(first)
        # A batch repeating an event of its own stores it once.
        twice = keyed(batch(_COPY_FROM, tag="t"), "t")
        twice.append(twice[0])
        result = await repo.add_many(twice)
        assert result[-1] == result[0]
        assert (await repo.stats()).total == len(first) + _COPY_FROM
        # One key for two different events of a batch is a conflict: nothing is stored.
        clash = keyed(batch(_COPY_FROM, tag="c"), "c")
        clash.append(clash[0].model_copy(update={"message": "second of the key"}))
        with pytest.raises(sysevents.IdempotencyConflictError):
            await repo.add_many(clash)
        assert (await repo.stats()).total == len(first) + _COPY_FROM
