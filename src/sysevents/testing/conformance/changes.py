"""Conformance: changing and deleting events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sysevents.errors import (
    InvalidEventError,
    NotFoundError,
)
from sysevents.model import EventPatch, Severity
from sysevents.query import EventQuery
from sysevents.store import EventRepository

from .helpers import BAD_IDS, BIG, OWN, new


@pytest.mark.asyncio
class ChangeConformance:
    """Updating and deleting. Every test runs against the ``repo`` fixture of the subclass."""

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
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
            span_id="00f067aa0ba902b7",
        )
        updated = await repo.update(event.id, patch)
        assert updated.model_dump(
            exclude={"id", "created_at", "idempotency_key", "written_by"}
        ) == {
            "event_type": "other",
            "severity": Severity.CRITICAL,
            "message": "new",
            "details": {"x": [1, {"y": None}]},
            "source": "elsewhere",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
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
        patch = EventPatch.model_validate({"message": "x" * 70_000}, context={"limits": BIG})
        with pytest.raises(InvalidEventError):
            await repo.update(event.id, patch)
        assert await repo.get(event.id) == event

    # -- delete -------------------------------------------------------------------

    async def test_delete(self, repo: EventRepository) -> None:
        keep, gone = await repo.add_many([new(source=OWN), new(source=OWN)])
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
        # Only the test's own events: an API records its changes as events too.
        assert [e.id for e in (await repo.list(EventQuery(source=OWN))).items] == [keep.id]
