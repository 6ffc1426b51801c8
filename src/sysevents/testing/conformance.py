"""The conformance suite: the behaviour every ``EventRepository`` must show.

Subclass :class:`EventRepositoryConformance` in a test module and provide a
``repo`` fixture that yields an empty, open repository; pytest-asyncio runs
the tests.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sysevents.errors import (
    InvalidCursorError,
    InvalidEventError,
    NotFoundError,
    StoreUnavailableError,
)
from sysevents.model import (
    MAX_EVENT_ID,
    Event,
    EventFilter,
    EventLimits,
    EventPatch,
    EventQuery,
    NewEvent,
    Severity,
)
from sysevents.repository import EventRepository

BAD_IDS = [0, -1, MAX_EVENT_ID + 1, 2**64, -(2**63) - 1]
_BIG = EventLimits(max_message_bytes=10**7, max_details_bytes=10**7)


def new(
    event_type: str = "deploy",
    severity: str = "info",
    message: str = "hello",
    *,
    ago: timedelta | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> NewEvent:
    """A valid event; ``ago`` places it in the past relative to now."""
    timestamp = at if at is not None else datetime.now(UTC) - (ago or timedelta())
    return NewEvent(
        event_type=event_type,
        severity=Severity(severity),
        message=message,
        timestamp=timestamp,
        **fields,
    )


async def all_pages(repo: EventRepository, query: EventQuery) -> list[Event]:
    """Every event of ``query``, walking the cursor from page to page."""
    seen: list[Event] = []
    page = await repo.list(query)
    seen.extend(page.items)
    while page.next_cursor is not None:
        page = await repo.list(query.model_copy(update={"cursor": page.next_cursor}))
        seen.extend(page.items)
    return seen


def same_event(stored: Event, sent: NewEvent) -> None:
    """Assert that ``stored`` holds exactly what ``sent`` asked for."""
    assert stored.event_type == sent.event_type
    assert stored.severity == sent.severity
    assert stored.message == sent.message
    assert stored.details == sent.details
    assert stored.source == sent.source
    assert stored.timestamp == sent.timestamp


@pytest.mark.asyncio
class EventRepositoryConformance:
    """Every test here runs against the ``repo`` fixture of the subclass."""

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
            {"event_type": "t", "message": "x" * (64 * 1024 + 1)}, context={"limits": _BIG}
        )
        with pytest.raises(InvalidEventError) as info:
            await repo.add_many([new(), new(), too_big, new()])
        assert info.value.errors[0]["loc"] == (2, "message")
        assert (await repo.list()).total == 0
        assert (await repo.stats()).total == 0

    async def test_add_checks_the_store_limits(self, repo: EventRepository) -> None:
        too_big = NewEvent.model_validate(
            {"event_type": "t", "message": "m", "details": {"k": "x" * 70_000}},
            context={"limits": _BIG},
        )
        with pytest.raises(InvalidEventError) as info:
            await repo.add(too_big)
        assert info.value.errors[0]["loc"] == ("details",)
        assert (await repo.list()).total == 0

    # -- idempotency ------------------------------------------------------------

    async def test_idempotency_key_stores_once(self, repo: EventRepository) -> None:
        first = await repo.add(new(message="original", idempotency_key="k-1"))
        assert first.idempotency_key == "k-1"
        replay = await repo.add(new(message="replayed", idempotency_key="k-1"))
        assert replay == first
        other = await repo.add(new(message="other", idempotency_key="k-2"))
        assert other.id != first.id
        plain = await repo.add_many([new(), new()])
        assert plain[0].id != plain[1].id
        assert (await repo.stats()).total == 4

    async def test_idempotency_keys_in_a_batch(self, repo: EventRepository) -> None:
        stored = await repo.add(new(message="before", idempotency_key="a"))
        events = await repo.add_many(
            [
                new(message="x", idempotency_key="a"),
                new(message="y", idempotency_key="b"),
                new(message="z", idempotency_key="b"),
                new(message="w"),
            ]
        )
        assert events[0] == stored
        assert events[1] == events[2]
        assert events[1].message == "y"
        assert events[3].idempotency_key is None
        assert (await repo.stats()).total == 3

    async def test_a_deleted_event_frees_its_key(self, repo: EventRepository) -> None:
        first = await repo.add(new(idempotency_key="k"))
        await repo.delete(first.id)
        again = await repo.add(new(message="again", idempotency_key="k"))
        assert again.id != first.id
        assert again.message == "again"

    async def test_concurrent_adds_with_one_key(self, repo: EventRepository) -> None:
        events = await asyncio.gather(
            *(repo.add(new(message=str(i), idempotency_key="same")) for i in range(20))
        )
        assert len({e.id for e in events}) == 1
        assert (await repo.stats()).total == 1

    # -- update -------------------------------------------------------------------

    async def test_update_changes_only_given_fields(self, repo: EventRepository) -> None:
        sent = new(details={"a": 1}, source="one")
        event = await repo.add(sent)
        updated = await repo.update(
            event.id, EventPatch(message="changed", severity=Severity.ERROR)
        )
        assert updated.message == "changed"
        assert updated.severity is Severity.ERROR
        assert (updated.id, updated.created_at) == (event.id, event.created_at)
        assert (updated.event_type, updated.details, updated.source, updated.timestamp) == (
            event.event_type,
            event.details,
            event.source,
            event.timestamp,
        )
        assert await repo.get(event.id) == updated

    async def test_update_every_field(self, repo: EventRepository) -> None:
        event = await repo.add(new())
        when = datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
        patch = EventPatch(
            event_type="other",
            severity=Severity.CRITICAL,
            message="new",
            details={"x": [1, {"y": None}]},
            source="elsewhere",
            timestamp=when,
        )
        updated = await repo.update(event.id, patch)
        assert updated.model_dump(exclude={"id", "created_at", "idempotency_key"}) == {
            "event_type": "other",
            "severity": Severity.CRITICAL,
            "message": "new",
            "details": {"x": [1, {"y": None}]},
            "source": "elsewhere",
            "timestamp": when,
        }
        assert await repo.get(event.id) == updated

    async def test_update_can_clear_nullable_fields(self, repo: EventRepository) -> None:
        event = await repo.add(new(details={"a": 1}, source="x"))
        updated = await repo.update(event.id, EventPatch(details=None, source=None))
        assert (updated.details, updated.source) == (None, None)
        assert await repo.get(event.id) == updated

    async def test_empty_update_changes_nothing(self, repo: EventRepository) -> None:
        event = await repo.add(new())
        assert await repo.update(event.id, EventPatch()) == event

    async def test_update_missing_raises(self, repo: EventRepository) -> None:
        event = await repo.add(new())
        with pytest.raises(NotFoundError):
            await repo.update(event.id + 1, EventPatch(message="x"))
        for bad in BAD_IDS:
            with pytest.raises(NotFoundError):
                await repo.update(bad, EventPatch(message="x"))
        assert await repo.get(event.id) == event

    async def test_update_checks_the_store_limits(self, repo: EventRepository) -> None:
        event = await repo.add(new())
        patch = EventPatch.model_validate({"message": "x" * 70_000}, context={"limits": _BIG})
        with pytest.raises(InvalidEventError):
            await repo.update(event.id, patch)
        assert await repo.get(event.id) == event

    # -- delete -------------------------------------------------------------------

    async def test_delete(self, repo: EventRepository) -> None:
        keep, gone = await repo.add_many([new(), new()])
        await repo.delete(gone.id)
        assert await repo.get(gone.id) is None
        assert await repo.get(keep.id) == keep
        with pytest.raises(NotFoundError):
            await repo.delete(gone.id)
        with pytest.raises(NotFoundError):
            await repo.update(gone.id, EventPatch(message="x"))
        for bad in BAD_IDS:
            with pytest.raises(NotFoundError):
                await repo.delete(bad)
        assert [e.id for e in (await repo.list()).items] == [keep.id]

    # -- list ---------------------------------------------------------------------

    async def test_list_orders_newest_first_by_timestamp_then_id(
        self, repo: EventRepository
    ) -> None:
        same_time = datetime.now(UTC) - timedelta(minutes=5)
        a = await repo.add(new(message="a", at=same_time))
        b = await repo.add(new(message="b", ago=timedelta(hours=2)))
        c = await repo.add(new(message="c", at=same_time))
        d = await repo.add(new(message="d", ago=timedelta(seconds=1)))
        newest = await repo.list(EventQuery())
        assert [e.id for e in newest.items] == [d.id, c.id, a.id, b.id]
        oldest = await repo.list(EventQuery(order="oldest"))
        assert [e.id for e in oldest.items] == [b.id, a.id, c.id, d.id]
        assert newest.total == 4
        assert newest.total_exact

    async def test_list_empty(self, repo: EventRepository) -> None:
        page = await repo.list()
        assert page.items == []
        assert (page.total, page.total_exact, page.next_cursor) == (0, True, None)
        assert (page.limit, page.offset) == (50, 0)

    async def test_list_filters(self, repo: EventRepository) -> None:
        events = await repo.add_many(
            [
                new("deploy", "info", source="ci", ago=timedelta(hours=5)),
                new("deploy", "error", source="ci", ago=timedelta(hours=4)),
                new("login", "warning", source="web", ago=timedelta(hours=3)),
                new("login", "debug", ago=timedelta(hours=2)),
                new("crash", "critical", source="web", ago=timedelta(hours=1)),
            ]
        )
        ids = [e.id for e in events]
        t = [e.timestamp for e in events]

        async def ids_of(**filters: Any) -> list[int]:
            page = await repo.list(EventQuery(order="oldest", **filters))
            assert page.total == len(page.items)
            return [e.id for e in page.items]

        assert await ids_of(event_type="deploy") == ids[0:2]
        assert await ids_of(event_type=["login", "crash"]) == ids[2:5]
        assert await ids_of(event_type=["nothing"]) == []
        assert await ids_of(severity="error") == [ids[1]]
        assert await ids_of(severity=["debug", "critical"]) == [ids[3], ids[4]]
        assert await ids_of(min_severity="warning") == [ids[1], ids[2], ids[4]]
        assert await ids_of(min_severity="debug") == ids
        assert await ids_of(severity=["info", "error"], min_severity="warning") == [ids[1]]
        assert await ids_of(source="web") == [ids[2], ids[4]]
        assert await ids_of(source="nowhere") == []
        assert await ids_of(since=t[2]) == ids[2:5]
        assert await ids_of(until=t[2]) == ids[0:2]
        assert await ids_of(since=t[1], until=t[3]) == ids[1:3]
        assert await ids_of(since=t[4] + timedelta(microseconds=1)) == []
        assert await ids_of(event_type="login", min_severity="info", source="web") == [ids[2]]

    async def test_list_limit_and_offset(self, repo: EventRepository) -> None:
        events = await repo.add_many(
            [new(message=str(i), ago=timedelta(minutes=i)) for i in range(7)]
        )
        newest_first = [e.id for e in events]
        page = await repo.list(EventQuery(limit=3))
        assert [e.id for e in page.items] == newest_first[:3]
        assert page.next_cursor is not None
        page = await repo.list(EventQuery(limit=3, offset=3))
        assert [e.id for e in page.items] == newest_first[3:6]
        assert page.offset == 3
        page = await repo.list(EventQuery(limit=3, offset=6))
        assert [e.id for e in page.items] == newest_first[6:]
        assert page.next_cursor is None
        page = await repo.list(EventQuery(limit=3, offset=100))
        assert page.items == []
        assert page.total == 7

    @pytest.mark.parametrize("order", ["newest", "oldest"])
    async def test_cursor_walk_has_no_gaps_or_duplicates(
        self, repo: EventRepository, order: str
    ) -> None:
        same_time = datetime.now(UTC) - timedelta(hours=1)
        sent = [new(message=str(i), at=same_time) for i in range(6)]
        sent += [new(message=str(i), ago=timedelta(minutes=i)) for i in range(9)]
        events = await repo.add_many(sent)
        query = EventQuery(order=order, limit=4)
        walked = await all_pages(repo, query)
        expected = sorted(events, key=lambda e: (e.timestamp, e.id), reverse=order == "newest")
        assert [e.id for e in walked] == [e.id for e in expected]

    async def test_cursor_walk_with_filters(self, repo: EventRepository) -> None:
        await repo.add_many(
            [new("a" if i % 3 else "b", ago=timedelta(minutes=i)) for i in range(20)]
        )
        query = EventQuery(event_type="a", limit=3)
        walked = await all_pages(repo, query)
        assert len(walked) == len({e.id for e in walked}) == 13
        assert all(e.event_type == "a" for e in walked)

    async def test_cursor_walk_is_stable_under_concurrent_inserts(
        self, repo: EventRepository
    ) -> None:
        await repo.add_many([new(message=str(i), ago=timedelta(minutes=i + 1)) for i in range(12)])
        before = [e.id for e in await all_pages(repo, EventQuery(limit=100))]
        query = EventQuery(limit=5)
        page = await repo.list(query)
        walked = [e.id for e in page.items]
        while page.next_cursor is not None:
            await repo.add(new(message="arrived meanwhile"))
            page = await repo.list(query.model_copy(update={"cursor": page.next_cursor}))
            walked += [e.id for e in page.items]
        assert walked == before

    async def test_cursor_is_bound_to_its_query(self, repo: EventRepository) -> None:
        await repo.add_many([new(message=str(i), ago=timedelta(minutes=i)) for i in range(5)])
        page = await repo.list(EventQuery(limit=2))
        cursor = page.next_cursor
        assert cursor is not None
        for other in (
            EventQuery(limit=2, order="oldest", cursor=cursor),
            EventQuery(limit=2, event_type="deploy", cursor=cursor),
            EventQuery(limit=2, min_severity="info", cursor=cursor),
        ):
            with pytest.raises(InvalidCursorError):
                await repo.list(other)
        # Another page size is fine: the position does not depend on it.
        assert len((await repo.list(EventQuery(limit=3, cursor=cursor))).items) == 3

    async def test_bad_cursors_are_refused(self, repo: EventRepository) -> None:
        await repo.add_many([new(), new(), new()])
        cursor = (await repo.list(EventQuery(limit=1))).next_cursor
        assert cursor is not None
        flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
        for bad in ("garbage", "!!!!", "A" * 40, cursor[:-1], cursor + "AA", flipped):
            with pytest.raises(InvalidCursorError):
                await repo.list(EventQuery(limit=1, cursor=bad))

    async def test_count_modes(self, repo: EventRepository) -> None:
        await repo.add_many([new() for _ in range(3)])
        exact = await repo.list(EventQuery(limit=1, count="exact"))
        assert (exact.total, exact.total_exact) == (3, True)
        none = await repo.list(EventQuery(limit=1, count="none"))
        assert none.total is None
        assert len(none.items) == 1
        assert none.next_cursor is not None

    async def test_capped_count_is_a_lower_bound(self, repo: EventRepository) -> None:
        cap = getattr(repo, "count_cap", 10_000)
        for start in range(0, cap + 1, 1000):  # batches any backend accepts
            await repo.add_many(
                [new(message=str(i)) for i in range(start, min(start + 1000, cap + 1))]
            )
        capped = await repo.list(EventQuery(limit=1))
        assert (capped.total, capped.total_exact) == (cap, False)
        exact = await repo.list(EventQuery(limit=1, count="exact"))
        assert (exact.total, exact.total_exact) == (cap + 1, True)
        filtered = await repo.list(EventQuery(limit=1, source="none"))
        assert (filtered.total, filtered.total_exact) == (0, True)

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

    async def test_stats_follow_every_mutation(self, repo: EventRepository) -> None:
        first = await repo.add(new("a", "info"))
        assert (await repo.stats()).by_type == {"a": 1}
        await repo.add_many([new("b", "error"), new("b", "error")])
        assert (await repo.stats()).by_type == {"a": 1, "b": 2}
        await repo.update(first.id, EventPatch(event_type="b", severity="debug"))
        stats = await repo.stats()
        assert stats.by_type == {"b": 3}
        assert stats.by_severity[Severity.DEBUG] == 1
        await repo.delete(first.id)
        assert (await repo.stats()).total == 2

    async def test_reads_follow_every_mutation(self, repo: EventRepository) -> None:
        event = await repo.add(new())
        assert await repo.get(event.id) == event
        updated = await repo.update(event.id, EventPatch(message="v2"))
        assert await repo.get(event.id) == updated
        await repo.delete(event.id)
        assert await repo.get(event.id) is None
        page = await repo.list()
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


def timezone_plus(hours: int, minutes: int = 0) -> timezone:
    """A fixed offset east of UTC."""
    return timezone(timedelta(hours=hours, minutes=minutes))
