"""Conformance: who wrote each event (``written_by``), and the types only sysevents writes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sysevents.errors import InvalidEventError, ReservedTypeError
from sysevents.model import EventPatch, NewEvent, OwnRecord
from sysevents.query import EventFilter, EventQuery
from sysevents.store import EventRepository

from .helpers import all_pages, new

UPDATED = "sysevents.event_updated"
DELETED = "sysevents.event_deleted"


def _stamping(repo: EventRepository) -> EventRepository:
    """``repo``; the test is skipped for a store whose server decides who the caller is."""
    if getattr(repo, "remote", False):
        pytest.skip("a server stamps written_by with the API key's id: see tests/http")
    return repo


@pytest.mark.asyncio
class ProvenanceConformance:
    """``written_by`` on every write path, and reserved types refused."""

    async def test_the_caller_is_stamped_on_every_write_path(self, repo: EventRepository) -> None:
        repo = _stamping(repo)
        one = await repo.add(new(message="one"), caller="svc-a")
        retry = new(message="keyed", idempotency_key="k-1")
        keyed = await repo.add(retry, caller="svc-a")
        few = await repo.add_many([new(message=f"few {i}") for i in range(3)], caller="svc-b")
        # A batch large enough for a store's bulk path (PostgreSQL's COPY).
        bulk = await repo.add_many([new(message=f"bulk {i}") for i in range(200)], caller="svc-c")
        nobody = await repo.add(new(message="nobody"))
        assert one.written_by == keyed.written_by == "svc-a"
        assert {e.written_by for e in few} == {"svc-b"}
        assert {e.written_by for e in bulk} == {"svc-c"}
        assert nobody.written_by is None
        for event in (one, keyed, few[0], bulk[-1], nobody):
            assert await repo.get(event.id) == event
        # A retry under the same key is the first event, stamped as it was.
        assert await repo.add(retry, caller="svc-a") == keyed

    async def test_written_by_filters_every_read(self, repo: EventRepository) -> None:
        repo = _stamping(repo)
        mine = await repo.add_many([new(message=f"m{i}") for i in range(4)], caller="mine")
        await repo.add_many([new(message=f"t{i}") for i in range(3)], caller="theirs")
        await repo.add(new(message="nobody's"))
        listed = await all_pages(repo, EventQuery(written_by="mine", limit=3))
        assert sorted(e.id for e in listed) == sorted(e.id for e in mine)
        assert (await repo.stats(EventFilter(written_by="theirs"))).total == 3
        assert (await repo.stats(EventFilter(written_by="nobody"))).total == 0

    async def test_updates_keep_it_and_audits_name_who_acted(self, repo: EventRepository) -> None:
        repo = _stamping(repo)
        event = await repo.add(new(), caller="writer")
        updated = await repo.update(event.id, EventPatch(message="changed"), actor="editor")
        assert updated.written_by == "writer"
        await repo.delete(event.id, actor="remover")
        audits = await all_pages(repo, EventQuery(event_type=[UPDATED, DELETED]))
        by_type = {a.event_type: a for a in audits}
        assert by_type[UPDATED].written_by == "editor"
        assert by_type[DELETED].written_by == "remover"
        details = by_type[DELETED].details
        assert details is not None
        assert details["event_id"] == event.id

    async def test_written_by_is_never_given_by_the_writer(self) -> None:
        for model, body in (
            (NewEvent, {"event_type": "t", "message": "m", "written_by": "someone"}),
            (EventPatch, {"written_by": "someone"}),
        ):
            with pytest.raises(ValidationError) as caught:
                model.model_validate(body)
            assert caught.value.errors()[0]["loc"] == ("written_by",)

    @pytest.mark.parametrize("caller", ["x" * 101, "a\nb", "tab\there"])
    async def test_a_bad_caller_is_named(self, repo: EventRepository, caller: str) -> None:
        repo = _stamping(repo)
        with pytest.raises(InvalidEventError) as caught:
            await repo.add(new(), caller=caller)
        assert caught.value.errors[0]["loc"] == ("caller",)

    async def test_reserved_types_are_refused(self, repo: EventRepository) -> None:
        kept = await repo.add(new(message="kept"))
        forged = [DELETED, "sysevents.retention", "sysevents.key_created"]
        with pytest.raises(ReservedTypeError) as caught:
            await repo.add(new(forged[0]))
        assert caught.value.field == "event_type"
        with pytest.raises(ReservedTypeError) as caught:
            await repo.add_many([new(), new(forged[1])])
        assert caught.value.field.endswith("1.event_type")  # over HTTP: events.1.event_type
        with pytest.raises(ReservedTypeError):
            await repo.update(kept.id, EventPatch(event_type=forged[2]))
        assert await all_pages(repo, EventQuery(event_type=forged)) == []  # none stored
        assert await repo.get(kept.id) == kept
        if getattr(repo, "remote", False):
            return  # a server stores only what it writes itself under these types
        # sysevents' own records may use them.
        own = await repo.add(OwnRecord(event_type="sysevents.retention", message="m"))
        assert own.event_type == "sysevents.retention"
