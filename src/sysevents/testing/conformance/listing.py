"""Conformance: listing events, filters, paging by offset and by cursor, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sysevents.errors import InvalidCursorError
from sysevents.model import EventPage
from sysevents.query import EventQuery
from sysevents.store import EventRepository

from .helpers import all_pages, new


@pytest.mark.asyncio
class ListConformance:
    """Listing. Every test runs against the ``repo`` fixture of the subclass."""

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

    async def test_pages_as_json_equal_the_pages(self, repo: EventRepository) -> None:
        await repo.add_many(
            [new(message=str(i), details={"i": i}, ago=timedelta(minutes=i)) for i in range(40)]
        )
        for query in (EventQuery(), EventQuery(limit=7, order="oldest"), EventQuery(limit=100)):
            page = await repo.list(query)
            assert await repo.list_json(query) == page.model_dump_json().encode()

    async def test_a_page_as_json_ends_early_within_its_budget(self, repo: EventRepository) -> None:
        await repo.add_many(
            [new(message="m" * 3000, details={"i": i}, ago=timedelta(minutes=i)) for i in range(30)]
        )
        query = EventQuery(limit=30)
        seen: list[int] = []
        while True:
            data = await repo.list_json(query, max_bytes=20_000)
            assert len(data) <= 20_000
            page = EventPage.model_validate_json(data)
            assert 1 <= len(page.items) < 30
            seen += [e.details["i"] for e in page.items if e.details]
            if page.next_cursor is None:
                break
            query = query.model_copy(update={"cursor": page.next_cursor})
        assert seen == list(range(30))
