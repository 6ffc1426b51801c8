"""Conformance: OpenTelemetry trace and span ids, stored, changed and filtered on."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from pydantic import ValidationError

from sysevents.model import EventPatch, NewEvent
from sysevents.query import EventFilter, EventQuery
from sysevents.store import EventRepository

from .helpers import all_pages, new


def trace_id() -> str:
    """A fresh, valid trace id."""
    return secrets.token_hex(16)


def span_id() -> str:
    """A fresh, valid span id."""
    return secrets.token_hex(8)


async def _fold(repo: EventRepository) -> None:
    """Count what was written into the rollups, where a store keeps them."""
    fold = getattr(repo, "fold", None)
    if fold is not None:
        await fold()


@pytest.mark.asyncio
class TraceConformance:
    """Trace ids. Every test runs against the ``repo`` fixture of the subclass."""

    async def test_ids_are_stored_and_read_back(self, repo: EventRepository) -> None:
        trace, span = trace_id(), span_id()
        added = await repo.add(new(trace_id=trace, span_id=span))
        plain = await repo.add(new())
        assert (added.trace_id, added.span_id) == (trace, span)
        assert (plain.trace_id, plain.span_id) == (None, None)
        got = await repo.get(added.id)
        assert got is not None
        assert (got.trace_id, got.span_id) == (trace, span)
        listed = {e.id: e for e in (await repo.list(EventQuery())).items}
        assert (listed[added.id].trace_id, listed[added.id].span_id) == (trace, span)
        assert listed[plain.id].trace_id is None

    @pytest.mark.parametrize("size", [3, 80], ids=["insert", "copy"])
    @pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
    async def test_batches_keep_the_ids(
        self, repo: EventRepository, size: int, keyed: bool
    ) -> None:
        trace = trace_id()
        spans = [span_id() if i % 2 else None for i in range(size)]
        news = [
            new(
                message=f"m{i}",
                trace_id=trace if i % 3 else None,
                span_id=spans[i],
                idempotency_key=f"k-{trace}-{i}" if keyed else None,
            )
            for i in range(size)
        ]
        stored = await repo.add_many(news)
        for sent, event in zip(news, stored, strict=True):
            assert (event.trace_id, event.span_id) == (sent.trace_id, sent.span_id)
            got = await repo.get(event.id)
            assert got is not None
            assert (got.trace_id, got.span_id) == (sent.trace_id, sent.span_id)
        if keyed:  # a retry returns the stored events, ids and all
            again = await repo.add_many(news)
            assert [(e.id, e.trace_id, e.span_id) for e in again] == [
                (e.id, e.trace_id, e.span_id) for e in stored
            ]

    async def test_filter_by_trace(self, repo: EventRepository) -> None:
        wanted, other = trace_id(), trace_id()
        events = await repo.add_many(
            [
                new("deploy", "info", trace_id=wanted, ago=timedelta(days=3)),
                new("deploy", "error", trace_id=other, ago=timedelta(hours=5)),
                new("login", "error", trace_id=wanted, ago=timedelta(hours=2)),
                new("login", "warning", ago=timedelta(minutes=30)),
                new("crash", "critical", trace_id=wanted, ago=timedelta(minutes=1)),
            ]
        )
        await _fold(repo)  # the older events are then counted by the rollups
        mine = [events[0].id, events[2].id, events[4].id]
        page = await repo.list(EventQuery(trace_id=wanted, order="oldest"))
        assert [e.id for e in page.items] == mine
        assert page.total == 3
        walked = await all_pages(repo, EventQuery(trace_id=wanted, limit=1))
        assert [e.id for e in walked] == mine[::-1]
        both = await repo.list(EventQuery(trace_id=wanted, severity="error"))
        assert [e.id for e in both.items] == [events[2].id]
        assert (await repo.list(EventQuery(trace_id=trace_id()))).items == []

        stats = await repo.stats(EventFilter(trace_id=wanted))
        assert stats.total == 3
        assert stats.by_type == {"deploy": 1, "login": 1, "crash": 1}
        assert (stats.last_hour, stats.last_24h) == (1, 2)
        assert stats.first_timestamp == events[0].timestamp
        assert stats.last_timestamp == events[4].timestamp
        since = await repo.stats(EventFilter(trace_id=wanted, since=events[1].timestamp))
        assert since.total == 2
        assert (await repo.stats(EventFilter(trace_id=trace_id()))).total == 0
        assert (await repo.stats()).total == 5

    async def test_update_sets_and_clears_the_ids(self, repo: EventRepository) -> None:
        event = await repo.add(new())
        trace, span = trace_id(), span_id()
        updated = await repo.update(event.id, EventPatch(trace_id=trace, span_id=span))
        assert (updated.trace_id, updated.span_id) == (trace, span)
        assert (await repo.list(EventQuery(trace_id=trace))).total == 1
        other = await repo.update(event.id, EventPatch(message="changed"))
        assert (other.trace_id, other.span_id) == (trace, span)
        cleared = await repo.update(event.id, EventPatch(trace_id=None, span_id=None))
        assert (cleared.trace_id, cleared.span_id) == (None, None)
        got = await repo.get(event.id)
        assert got is not None
        assert (got.trace_id, got.span_id) == (None, None)
        assert (await repo.list(EventQuery(trace_id=trace))).total == 0

    async def test_a_new_event_with_bad_ids_is_refused(self, repo: EventRepository) -> None:
        for fields in (
            {"trace_id": "0" * 32},
            {"span_id": "0" * 16},
            {"trace_id": "A" * 32},
            {"trace_id": "a" * 31},
            {"span_id": "g" * 16},
        ):
            with pytest.raises(ValidationError) as caught:
                NewEvent(event_type="t", message="m", **fields)
            assert caught.value.errors()[0]["loc"] == (next(iter(fields)),)
        assert (await repo.list(EventQuery())).total == 0
