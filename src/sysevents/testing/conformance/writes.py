"""Conformance: storing events, one or many, with and without idempotency keys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sysevents.errors import (
    ConflictError,
    IdempotencyConflictError,
    InvalidEventError,
)
from sysevents.model import MAX_EVENT_ID, NewEvent, Severity
from sysevents.store import EventRepository

from .helpers import BAD_IDS, BIG, new, same_event, timezone_plus


@pytest.mark.asyncio
class WriteConformance:
    """Adding events. Every test runs against the ``repo`` fixture of the subclass."""

    # -- add and get ----------------------------------------------------------

    async def test_add_returns_the_stored_event(self, repo: EventRepository) -> None:
        sent = new(details={"version": "1.2", "n": 3}, source="ci")
        before = datetime.now(UTC) - timedelta(seconds=5)
        event = await repo.add(sent)
        same_event(event, sent)
        assert 1 <= event.id <= MAX_EVENT_ID
        assert event.created_at.utcoffset() == timedelta(0)
        assert before <= event.created_at <= datetime.now(UTC) + timedelta(seconds=5)
        assert await repo.get(event.id) == event

    async def test_ids_are_unique_and_increasing(self, repo: EventRepository) -> None:
        ids = [(await repo.add(new(message=str(i)))).id for i in range(5)]
        assert ids == sorted(set(ids))

    async def test_get_missing_is_none(self, repo: EventRepository) -> None:
        event = await repo.add(new())
        assert await repo.get(event.id + 1000) is None
        for bad in BAD_IDS:
            assert await repo.get(bad) is None

    async def test_times_come_back_in_utc(self, repo: EventRepository) -> None:
        local = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone_plus(5, 30))
        event = await repo.add(new(at=local))
        fetched = await repo.get(event.id)
        assert fetched is not None
        assert fetched.timestamp == local
        assert fetched.timestamp.utcoffset() == timedelta(0)
        assert fetched.timestamp.hour == 7

    async def test_text_and_json_round_trip(self, repo: EventRepository) -> None:
        details = {
            "unicode": "żółć 🚀 עברית",
            "nested": {"list": [1, 2.5, True, None, "x", {"deep": []}], "empty": {}},
            "big": 10**30,
            "negative": -7,
            "float": 0.1,
            'quote"key': "back\\slash",
        }
        sent = new(message="multi\nline\ttext 🚀", details=details, source="svc-ü")
        event = await repo.add(sent)
        fetched = await repo.get(event.id)
        assert fetched is not None
        same_event(fetched, sent)

    async def test_returned_details_are_copies(self, repo: EventRepository) -> None:
        event = await repo.add(new(details={"a": [1]}))
        assert event.details is not None
        event.details["a"].append(2)
        fetched = await repo.get(event.id)
        assert fetched is not None
        assert fetched.details == {"a": [1]}
        assert fetched.details is not None
        fetched.details["b"] = 1
        again = await repo.get(event.id)
        assert again is not None
        assert again.details == {"a": [1]}

    async def test_limits_at_the_edge_are_accepted(self, repo: EventRepository) -> None:
        deep: dict[str, Any] = {}
        node = deep
        for _ in range(31):
            node["d"] = {}
            node = node["d"]
        filler = "x" * (64 * 1024 - len('{"k":""}'))
        edges = [
            new(event_type="t" * 50, source="s" * 100),
            new(message="m" * 64 * 1024),
            new(message="é" * 32 * 1024),
            new(details=deep),
            new(details={"k": filler}),
            new(ago=-timedelta(hours=23)),
            new(at=datetime(1, 1, 1, tzinfo=UTC)),
            new(severity="debug"),
            new(severity="critical"),
        ]
        for sent in edges:
            event = await repo.add(sent)
            fetched = await repo.get(event.id)
            assert fetched is not None
            same_event(fetched, sent)

    # -- add_many ---------------------------------------------------------------

    async def test_add_many_keeps_order(self, repo: EventRepository) -> None:
        sent = [new(message=f"m{i}", severity=s) for i, s in enumerate(Severity)]
        events = await repo.add_many(sent)
        assert len(events) == len(sent)
        for event, one in zip(events, sent, strict=True):
            same_event(event, one)
        assert [e.id for e in events] == sorted({e.id for e in events})
        for event in events:
            assert await repo.get(event.id) == event

    async def test_add_many_of_nothing(self, repo: EventRepository) -> None:
        assert await repo.add_many([]) == []
        assert (await repo.list()).total == 0

    async def test_add_many_is_all_or_nothing(self, repo: EventRepository) -> None:
        too_big = NewEvent.model_validate(
            {"event_type": "t", "message": "x" * (64 * 1024 + 1)}, context={"limits": BIG}
        )
        with pytest.raises(InvalidEventError) as info:
            await repo.add_many([new(), new(), too_big, new()])
        assert info.value.errors[0]["loc"] == (2, "message")
        assert (await repo.list()).total == 0
        assert (await repo.stats()).total == 0

    async def test_add_checks_the_store_limits(self, repo: EventRepository) -> None:
        too_big = NewEvent.model_validate(
            {"event_type": "t", "message": "m", "details": {"k": "x" * 70_000}},
            context={"limits": BIG},
        )
        with pytest.raises(InvalidEventError) as info:
            await repo.add(too_big)
        assert info.value.errors[0]["loc"] == ("details",)
        assert (await repo.list()).total == 0

    # -- idempotency ------------------------------------------------------------

    async def test_idempotency_key_stores_once(self, repo: EventRepository) -> None:
        sent = new(message="original", idempotency_key="k-1")
        first = await repo.add(sent)
        assert first.idempotency_key == "k-1"
        assert await repo.add(sent) == first
        # A retry built anew, with the same fields, is the same event.
        again = new(message="original", idempotency_key="k-1", at=sent.timestamp)
        assert await repo.add(again) == first
        other = await repo.add(new(message="other", idempotency_key="k-2"))
        assert other.id != first.id
        plain = await repo.add_many([new(), new()])
        assert plain[0].id != plain[1].id
        assert (await repo.stats()).total == 4

    async def test_a_key_reused_with_another_event_is_a_conflict(
        self, repo: EventRepository
    ) -> None:
        sent = new(message="original", details={"a": 1}, idempotency_key="k")
        first = await repo.add(sent)
        changed = new(message="changed", details={"a": 2}, idempotency_key="k", at=sent.timestamp)
        with pytest.raises(IdempotencyConflictError) as info:
            await repo.add(changed)
        assert isinstance(info.value, ConflictError)
        assert info.value.key == "k"
        assert info.value.fields == ["details", "message"]
        later = new(message="original", details={"a": 1}, idempotency_key="k")  # another time
        with pytest.raises(IdempotencyConflictError) as info:
            await repo.add(later)
        assert info.value.fields == ["timestamp"]
        # In a batch too, and then nothing of the batch is stored.
        with pytest.raises(IdempotencyConflictError):
            await repo.add_many([new(message="fresh"), changed])
        assert [e.id for e in (await repo.list()).items] == [first.id]
        assert await repo.get(first.id) == first

    async def test_defaults_left_out_are_not_compared(self, repo: EventRepository) -> None:
        first = await repo.add(NewEvent(event_type="t", message="m", idempotency_key="d"))
        retry = NewEvent(event_type="t", message="m", idempotency_key="d")
        assert await repo.add(retry) == first
        with pytest.raises(IdempotencyConflictError) as info:
            await repo.add(
                NewEvent(event_type="t", message="m", severity="error", idempotency_key="d")
            )
        assert info.value.fields == ["severity"]

    async def test_idempotency_keys_in_a_batch(self, repo: EventRepository) -> None:
        before = new(message="before", idempotency_key="a")
        stored = await repo.add(before)
        b = new(message="y", idempotency_key="b")
        events = await repo.add_many([before, b, b, new(message="w")])
        assert events[0] == stored
        assert events[1] == events[2]
        assert events[1].message == "y"
        assert events[3].idempotency_key is None
        assert (await repo.stats()).total == 3

    async def test_one_key_for_two_events_of_a_batch_is_a_conflict(
        self, repo: EventRepository
    ) -> None:
        at = datetime.now(UTC)
        with pytest.raises(IdempotencyConflictError) as info:
            await repo.add_many(
                [
                    new(message="y", idempotency_key="b", at=at),
                    new(message="z", idempotency_key="b", at=at),
                ]
            )
        assert info.value.fields == ["message"]
        assert (await repo.stats()).total == 0

    async def test_a_deleted_event_frees_its_key(self, repo: EventRepository) -> None:
        first = await repo.add(new(idempotency_key="k"))
        await repo.delete(first.id)
        again = await repo.add(new(message="again", idempotency_key="k"))
        assert again.id != first.id
        assert again.message == "again"

    async def test_concurrent_adds_with_one_key(self, repo: EventRepository) -> None:
        sent = new(message="once", idempotency_key="same")
        events = await asyncio.gather(*(repo.add(sent) for _ in range(20)))
        assert len({e.id for e in events}) == 1
        assert (await repo.stats()).total == 1
