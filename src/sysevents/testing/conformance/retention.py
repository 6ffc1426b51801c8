"""Conformance: retention removes exactly the expired events, and every read agrees afterwards."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from sysevents.errors import ConfigurationError
from sysevents.model import Event
from sysevents.query import EventFilter, EventQuery
from sysevents.retention import RetentionPolicy, RetentionReport
from sysevents.store import EventRepository

from .helpers import OWN, all_pages, new

DAY = timedelta(days=1)


async def _retaining(repo: EventRepository) -> EventRepository:
    """``repo``; the test is skipped for a store that leaves retention to its server."""
    try:
        await repo.apply_retention(RetentionPolicy.parse(""), dry_run=True)
    except ConfigurationError as exc:
        pytest.skip(f"{type(repo).__name__}: {exc}")
    return repo


async def _fill(repo: EventRepository, now: datetime) -> list[Event]:
    """Events of several types and severities, from a day to a year and a half old."""
    ages = [1, 3, 10, 40, 100, 400, 550]
    kinds = [
        ("deploy.prod", "info"),
        ("deploy.test", "debug"),
        ("login", "debug"),
        ("login", "error"),
        ("backup", "warning"),
    ]
    news = [
        new(event_type, severity, f"{event_type} {age}d", at=now - age * DAY, source=OWN)
        for age in ages
        for event_type, severity in kinds
    ]
    return await repo.add_many(news)


async def _remaining(repo: EventRepository) -> list[Event]:
    return await all_pages(repo, EventQuery(source=OWN, limit=1000, order="oldest"))


async def _agree(repo: EventRepository, kept: list[Event]) -> None:
    """Every read shows exactly ``kept``: list, get, stats, a filtered stats."""
    assert [e.id for e in await _remaining(repo)] == [e.id for e in kept]
    stats = await repo.stats(EventFilter(source=OWN))
    assert stats.total == len(kept)
    assert stats.by_type == dict(Counter(e.event_type for e in kept))
    assert {k: v for k, v in stats.by_severity.items() if v} == dict(
        Counter(e.severity.value for e in kept)
    )
    assert stats.first_timestamp == min((e.timestamp for e in kept), default=None)
    errors = await repo.stats(EventFilter(source=OWN, severity=["error", "debug"]))
    assert errors.total == sum(1 for e in kept if e.severity.value in ("error", "debug"))
    since = await repo.stats(EventFilter(source=OWN, since=kept[0].timestamp if kept else None))
    assert since.total == len(kept)


@pytest.mark.asyncio
class RetentionConformance:
    """Retention rules of every kind. Runs against the ``repo`` fixture of the subclass."""

    @pytest.mark.parametrize(
        "policy",
        [
            "*=30d",
            "debug=7d",
            "type:deploy.*=2d",
            "*=365d,debug=5d,type:deploy.*=90d,type:deploy.prod=500d",
            "error=2d,warning=60d",
        ],
    )
    async def test_expired_events_are_gone_from_every_read(
        self, repo: EventRepository, policy: str
    ) -> None:
        retaining = await _retaining(repo)
        now = datetime.now(UTC)
        events = await _fill(repo, now)
        rules = RetentionPolicy.parse(policy)
        # A cached read of each event before: none may be served afterwards.
        for event in events:
            assert await repo.get(event.id) == event
        await repo.stats(EventFilter(source=OWN))
        report = await retaining.apply_retention(rules, now=now)
        expired = [e for e in events if rules.expired(e.event_type, e.severity, e.timestamp, now)]
        kept = [e for e in events if e not in expired]
        assert expired, "the policy removes something"
        assert report.removed >= len(expired)  # the store may hold expired events of its own
        for event in expired:
            assert await repo.get(event.id) is None
        for event in kept:
            assert await repo.get(event.id) == event
        await _agree(repo, sorted(kept, key=lambda e: (e.timestamp, e.id)))

    async def test_a_report_counts_rule_by_rule(self, repo: EventRepository) -> None:
        retaining = await _retaining(repo)
        now = datetime.now(UTC)
        await _fill(repo, now)
        rules = RetentionPolicy.parse("type:login=20d,type:deploy.*=50d,debug=2d")
        dry = await retaining.apply_retention(rules, now=now, dry_run=True)
        assert dry.dry_run
        assert {o.rule: o.removed for o in dry.rules} == {
            "type:login=20d": 8,  # debug and error logins of 40 days and more: a type rule wins
            "type:deploy.*=50d": 6,
            "debug=2d": 0,  # the only debug events are a deploy's and a login's
        }
        assert len(await _remaining(repo)) == 35  # a dry run removes nothing
        report = await retaining.apply_retention(rules, now=now)
        assert {o.rule: o.removed for o in report.rules} == {o.rule: o.removed for o in dry.rules}
        assert {o.rule: o.cutoff for o in report.rules}["type:login=20d"] == now - 20 * DAY
        assert len(await _remaining(repo)) == 35 - 14

    async def test_no_rule_keeps_everything(self, repo: EventRepository) -> None:
        retaining = await _retaining(repo)
        now = datetime.now(UTC)
        events = await _fill(repo, now)
        report = await retaining.apply_retention(
            RetentionPolicy.parse("type:nothing.*=1h"), now=now
        )
        assert report.removed == 0
        assert report == RetentionReport.from_counts(
            RetentionPolicy.parse("type:nothing.*=1h"), now, {}, dry_run=False
        )
        await _agree(repo, sorted(events, key=lambda e: (e.timestamp, e.id)))

    async def test_an_event_moved_into_the_past_expires(self, repo: EventRepository) -> None:
        from sysevents.model import EventPatch

        retaining = await _retaining(repo)
        now = datetime.now(UTC)
        young = await repo.add(new(at=now - DAY, source=OWN))
        old = await repo.add(new(at=now - 400 * DAY, source=OWN))
        moved = await repo.update(young.id, EventPatch(timestamp=now - 200 * DAY))
        assert await repo.get(young.id) == moved
        await retaining.apply_retention(RetentionPolicy.parse("*=100d"), now=now)
        assert await repo.get(young.id) is None
        assert await repo.get(old.id) is None
        await _agree(repo, [])

    async def test_writes_after_retention_are_counted(self, repo: EventRepository) -> None:
        retaining = await _retaining(repo)
        now = datetime.now(UTC)
        await _fill(repo, now)
        await retaining.apply_retention(RetentionPolicy.parse("*=5d"), now=now)
        late = await repo.add_many([new(at=now - 300 * DAY, source=OWN), new(source=OWN)])
        kept = await _remaining(repo)
        assert {e.id for e in late} <= {e.id for e in kept}
        await _agree(repo, kept)
