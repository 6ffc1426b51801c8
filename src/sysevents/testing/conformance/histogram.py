"""Conformance: histograms count what stats count, in buckets aligned in UTC."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sysevents.errors import InvalidEventError
from sysevents.histogram import STEPS, EventHistogram
from sysevents.model import Severity
from sysevents.query import EventFilter
from sysevents.store import EventRepository

from .helpers import OWN, new


async def _fold(repo: EventRepository) -> None:
    """Let a store with rollups fold what it holds, so both its paths are read."""
    inner = getattr(repo, "inner", repo)
    fold = getattr(inner, "fold", None)
    if fold is not None:
        await fold()


def _aligned(histogram: EventHistogram) -> None:
    step = STEPS[histogram.interval]
    starts = [b.start for b in histogram.buckets]
    assert starts, "a range holds at least one bucket"
    assert all(s.utcoffset() == timedelta(0) for s in starts)
    assert all((s - datetime(1970, 1, 1, tzinfo=UTC)) % step == timedelta(0) for s in starts)
    assert starts[0] <= histogram.since < starts[0] + step
    assert starts[-1] < histogram.until <= starts[-1] + step
    assert all(b - a == step for a, b in itertools.pairwise(starts))
    for bucket in histogram.buckets:
        assert set(bucket.by_severity) == set(Severity)
        assert bucket.total == sum(bucket.by_severity.values())


@pytest.mark.asyncio
class HistogramConformance:
    """Histograms. Runs against the ``repo`` fixture of the subclass."""

    async def test_buckets_sum_to_the_stats(self, repo: EventRepository) -> None:
        now = datetime.now(UTC)
        minutes = [1, 7, 50, 61, 95, 200, 600, 1500, 2900, 4000, 4300]
        severities = ["info", "error", "debug", "critical", "warning"]
        early = [
            new(
                "deploy" if m % 2 else "login",
                severities[i % 5],
                f"event {m}",
                ago=timedelta(minutes=m, seconds=17),
                source=OWN,
                details={"m": m % 3},
            )
            for i, m in enumerate(minutes)
        ]
        stored = await repo.add_many(early)
        await _fold(repo)
        late = [
            new("deploy", "error", "late one", ago=timedelta(minutes=m), source=OWN)
            for m in (3, 70, 1441)
        ]
        stored += await repo.add_many(late)
        until = now.replace(second=42)
        cases: list[tuple[str, dict[str, Any]]] = [
            ("1h", {"since": until - timedelta(days=3, minutes=13)}),
            ("1d", {"since": until - timedelta(days=3, minutes=13)}),
            ("1h", {"since": until - timedelta(hours=30), "event_type": ["deploy"]}),
            ("1d", {"since": until - timedelta(days=4), "min_severity": "error"}),
            ("5m", {"since": until - timedelta(hours=4)}),
            ("1m", {"since": until - timedelta(hours=2)}),
            ("1h", {"since": until - timedelta(days=2), "q": "EVENT"}),
            ("1d", {"since": until - timedelta(days=4), "details": {"m": 1}}),
            ("auto", {"since": until - timedelta(days=3)}),
        ]
        for interval, fields in cases:
            query = EventFilter(source=OWN, until=until, **fields)
            histogram = await repo.histogram(query, interval)
            _aligned(histogram)
            stats = await repo.stats(query)
            assert sum(b.total for b in histogram.buckets) == stats.total, (interval, fields)
            for level in Severity:
                assert (
                    sum(b.by_severity[level] for b in histogram.buckets)
                    == (stats.by_severity[level])
                )
            step = STEPS[histogram.interval]
            expected = Counter(
                e.timestamp - (e.timestamp - datetime(1970, 1, 1, tzinfo=UTC)) % step
                for e in stored
                if query.matches(e)
            )
            assert {b.start: b.total for b in histogram.buckets if b.total} == dict(expected)
            assert stats.total > 0, (interval, fields)

    async def test_exact_buckets(self, repo: EventRepository) -> None:
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
        at = [base + timedelta(minutes=m) for m in (0, 1, 59, 60, 61, 179)]
        await repo.add_many([new("t", "error", at=t, source=OWN) for t in at[:3]])
        await _fold(repo)
        await repo.add_many([new("t", "info", at=t, source=OWN) for t in at[3:]])
        query = EventFilter(
            source=OWN, since=base + timedelta(minutes=1), until=base + timedelta(hours=3)
        )
        hourly = await repo.histogram(query, "1h")
        assert [
            (b.start, b.by_severity[Severity.ERROR], b.by_severity[Severity.INFO])
            for b in hourly.buckets
        ] == [
            (base, 2, 0),
            (base + timedelta(hours=1), 0, 2),
            (base + timedelta(hours=2), 0, 1),
        ]
        minutes = await repo.histogram(
            query.model_copy(update={"until": base + timedelta(minutes=62)}), "1m"
        )
        assert len(minutes.buckets) == 61
        assert {b.start: b.total for b in minutes.buckets if b.total} == {
            base + timedelta(minutes=1): 1,
            base + timedelta(minutes=59): 1,
            base + timedelta(minutes=60): 1,
            base + timedelta(minutes=61): 1,
        }

    async def test_too_many_buckets_name_the_interval(self, repo: EventRepository) -> None:
        until = datetime.now(UTC)
        with pytest.raises(InvalidEventError) as caught:
            await repo.histogram(EventFilter(since=until - timedelta(days=2), until=until), "1m")
        assert caught.value.errors[0]["loc"] == ("interval",)
        with pytest.raises(InvalidEventError):
            await repo.histogram(EventFilter(), "2h")
        empty = await repo.histogram(EventFilter(since=until, until=until), "1h")
        assert empty.buckets == []
