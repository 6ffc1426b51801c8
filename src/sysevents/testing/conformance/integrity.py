"""Conformance: sealing the events into the digest chain, and verifying it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from sysevents.integrity import SealStore, verify
from sysevents.integrity.digest import ZERO_HASH
from sysevents.model import EventPatch
from sysevents.retention import RetentionPolicy
from sysevents.store import EventRepository
from sysevents.upkeep import apply_and_record

from .helpers import new


def _seals(repo: EventRepository) -> SealStore:
    """The store's seals; the test is skipped for a store whose server seals."""
    if getattr(repo, "remote", False):
        pytest.skip("a server seals the events: see tests/http (GET /api/digests)")
    seals = repo.seals
    assert seals is not None, "every store that keeps events seals them"
    return seals


@pytest.mark.asyncio
class IntegrityConformance:
    """Digests chained over every stored event; ``verify`` tells sysevents' changes apart."""

    async def test_sealing_covers_every_event_once_in_a_chain(self, repo: EventRepository) -> None:
        seals = _seals(repo)
        first = await repo.add_many([new(message=f"a{i}") for i in range(5)])
        made = await repo.seal()
        assert made, "events were waiting"
        assert await repo.seal() == []  # nothing new
        second = await repo.add_many([new(message=f"b{i}") for i in range(3)])
        made += await repo.seal()
        chain = await seals.digests()
        assert [d.seq for d in chain] == list(range(1, len(chain) + 1))
        assert chain[0].previous == ZERO_HASH
        for before, after in itertools.pairwise(chain):
            assert after.previous == before.hash()
            assert after.after == before.last
        sealed = sum(d.count for d in chain)
        ids = {e.id for e in first + second}
        assert sealed >= len(ids)  # the store's own records may be sealed too
        report = await verify(seals)
        assert report.ok, report.lines()
        assert report.events == sealed
        assert report.unsealed == 0
        assert report.unsigned == len(chain)
        assert (await seals.last_digest()) == chain[-1]

    async def test_what_waits_to_be_sealed_is_counted(self, repo: EventRepository) -> None:
        seals = _seals(repo)
        await repo.add(new())
        await repo.seal()
        await repo.add_many([new(), new()])
        report = await verify(seals)
        assert report.ok
        assert report.unsealed == 2

    async def test_changes_through_the_store_are_not_tampering(self, repo: EventRepository) -> None:
        # Audited changes: made with an actor (the REST API always gives one).
        seals = _seals(repo)
        events = await repo.add_many([new(message=f"m{i}", details={"n": i}) for i in range(6)])
        await repo.seal()
        changed, twice, gone = events[0].id, events[1].id, events[2].id
        await repo.update(changed, EventPatch(message="new text", details={"n": 99}), actor="ed")
        await repo.update(twice, EventPatch(severity="error"), actor="ed")
        await repo.seal()  # an update sealed in between is undone from the newest
        moved = EventPatch(timestamp=datetime.now(UTC) - timedelta(days=3))
        await repo.update(twice, moved, actor="ed")
        await repo.delete(gone, actor="ed")
        report = await verify(seals)
        assert report.ok, report.lines()
        assert set(report.updated) >= {changed, twice}
        assert report.deleted == [gone]

    async def test_retention_is_not_tampering(self, repo: EventRepository) -> None:
        seals = _seals(repo)
        now = datetime.now(UTC)
        old = await repo.add_many(
            [new(message="old", at=now - timedelta(days=400)) for _ in range(3)]
            + [new("short", message="short", at=now - timedelta(days=3))]
        )
        kept = await repo.add(new(message="kept"))
        await repo.seal()
        # Applied as the service and the command line do: recorded.
        report = await apply_and_record(repo, RetentionPolicy.parse("*=300d,type:short=1d"))
        assert report.removed == 4
        result = await verify(seals)
        assert result.ok, result.lines()
        assert result.expired == 4
        assert {e.id for e in old}.isdisjoint(result.deleted)
        assert await repo.get(kept.id) is not None

    async def test_digests_are_listed_in_pages_and_since_a_time(
        self, repo: EventRepository
    ) -> None:
        seals = _seals(repo)
        for i in range(3):
            await repo.add(new(message=str(i)))
            await repo.seal()
        chain = await seals.digests()
        assert len(chain) >= 3
        assert await seals.digests(after=chain[0].seq, limit=1) == [chain[1]]
        later = await seals.digests(since=chain[-1].sealed_at)
        assert later
        assert later[0].sealed_at >= chain[-1].sealed_at
        assert await seals.digests(since=datetime.now(UTC) + timedelta(days=1)) == []
        since = await verify(seals, since=chain[-1].sealed_at)
        assert since.ok
        assert since.first_seq >= chain[-1].seq - 0  # the chain before is not read
