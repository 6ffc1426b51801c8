"""Provenance over HTTP: who wrote each event, and the types only sysevents writes."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository, NewEvent, ReservedTypeError, Settings
from sysevents.keys import Scope
from sysevents.stores.http import HttpEventRepository
from sysevents_http import create_app

from .live import LiveApp

Client = AsyncTestClient[Litestar]
EVENT = {"event_type": "deploy", "message": "v1.2 is live"}
FORGED = {"event_type": "sysevents.event_deleted", "message": "x", "details": {"key": "ad"}}


@pytest.fixture
async def keyed() -> AsyncIterator[tuple[Client, dict[str, str]]]:
    """A client, and two keys' texts and ids: ``writer`` (every scope), ``other`` (write)."""
    repo = MemoryEventRepository()
    headers: dict[str, str] = {}
    for name, scopes in (("writer", set(Scope)), ("other", {Scope.WRITE})):
        key, text = await repo.keys.create_key(name, frozenset(scopes))
        headers[name] = text
        headers[f"{name}_id"] = key.key_id
    async with AsyncTestClient(create_app(Settings(), repository=repo)) as client:
        yield client, headers


def auth(text: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {text}"}


async def test_each_event_names_the_key_that_wrote_it(
    keyed: tuple[Client, dict[str, str]],
) -> None:
    client, keys = keyed
    mine = (await client.post("/api/events", json=EVENT, headers=auth(keys["writer"]))).json()
    batch = await client.post(
        "/api/events/batch", json={"events": [EVENT, EVENT]}, headers=auth(keys["other"])
    )
    assert batch.status_code == 201
    assert mine["written_by"] == keys["writer_id"]
    assert {e["written_by"] for e in batch.json()["events"]} == {keys["other_id"]}
    # Returned and filterable on every read.
    reader = auth(keys["writer"])
    got = (await client.get(f"/api/events/{mine['id']}", headers=reader)).json()
    assert got["written_by"] == keys["writer_id"]
    by_other = {"written_by": keys["other_id"]}
    listed = await client.get("/api/events", params=by_other, headers=reader)
    assert [e["written_by"] for e in listed.json()["items"]] == [keys["other_id"]] * 2
    stats = await client.get("/api/events/stats", params=by_other, headers=reader)
    assert stats.json()["total"] == 2
    csv = await client.get(
        "/api/events/export",
        params={"format": "csv", "written_by": keys["writer_id"]},
        headers=reader,
    )
    header, row = csv.text.splitlines()
    assert header.split(",")[-1] == "written_by"
    assert row.split(",")[-1] == keys["writer_id"]
    # An update keeps it.
    first = batch.json()["events"][0]
    updated = await client.put(
        f"/api/events/{first['id']}", json={"message": "v1.3"}, headers=auth(keys["writer"])
    )
    assert updated.status_code == 200
    assert updated.json()["written_by"] == keys["other_id"]


async def test_an_open_server_writes_as_anonymous() -> None:
    async with AsyncTestClient(create_app(Settings(), repository=MemoryEventRepository())) as c:
        assert (await c.post("/api/events", json=EVENT)).json()["written_by"] == "anonymous"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/events", {**EVENT, "written_by": "ad"}, "written_by"),
        ("POST", "/api/events/batch", {"events": [EVENT, {**EVENT, "written_by": "ad"}]}, None),
        ("PUT", "/api/events/1", {"written_by": "ad"}, "written_by"),
    ],
)
async def test_a_body_may_not_say_who_wrote_it(
    keyed: tuple[Client, dict[str, str]],
    method: str,
    path: str,
    body: dict[str, object],
    field: str | None,
) -> None:
    client, keys = keyed
    await client.post("/api/events", json=EVENT, headers=auth(keys["writer"]))
    response = await client.request(method, path, json=body, headers=auth(keys["writer"]))
    assert response.status_code == 400
    named = [e.get("field") or e.get("key") for e in response.json()["errors"]]
    assert any(str(n).endswith(field or "events.1.written_by") for n in named), named


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/events", FORGED, "event_type"),
        ("POST", "/api/events/batch", {"events": [EVENT, FORGED]}, "events.1.event_type"),
        ("PUT", "/api/events/1", {"event_type": "sysevents.retention"}, "event_type"),
    ],
)
async def test_reserved_types_are_refused(
    keyed: tuple[Client, dict[str, str]],
    method: str,
    path: str,
    body: dict[str, object],
    field: str,
) -> None:
    client, keys = keyed
    await client.post("/api/events", json=EVENT, headers=auth(keys["writer"]))
    response = await client.request(method, path, json=body, headers=auth(keys["writer"]))
    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == field
    assert field in response.json()["detail"]
    listed = await client.get("/api/events", headers=auth(keys["writer"]))
    types = [e["event_type"] for e in listed.json()["items"]]
    assert "deploy" in types
    assert not [t for t in types if t.startswith("sysevents.")]


def test_the_http_client_reads_the_refusal_back() -> None:
    import asyncio

    app = create_app(Settings(), repository=MemoryEventRepository())

    async def send(url: str) -> None:
        async with HttpEventRepository(url) as remote:
            with pytest.raises(ReservedTypeError) as caught:
                await remote.add(NewEvent.model_validate(FORGED))
            assert caught.value.field == "event_type"

    with LiveApp(app) as live:
        asyncio.run(send(live.url))


async def test_digests_are_listed_for_archiving() -> None:
    repo = MemoryEventRepository(seal_interval=0)
    _, reader = await repo.keys.create_key("reader", frozenset({Scope.READ}))
    async with AsyncTestClient(create_app(Settings(), repository=repo)) as client:
        for i in range(3):
            await repo.add(NewEvent(event_type="deploy", message=f"v{i}"))
            await repo.seal()
        assert (await client.get("/api/digests")).status_code == 401
        first = await client.get("/api/digests", params={"limit": 2}, headers=auth(reader))
        assert first.status_code == 200
        page = first.json()
        assert [d["seq"] for d in page["digests"]] == [1, 2]
        assert page["next_after"] == 2
        rest = await client.get(
            "/api/digests", params={"after": page["next_after"]}, headers=auth(reader)
        )
        chain = page["digests"] + rest.json()["digests"]
        assert rest.json()["next_after"] is None
        assert chain == [d.as_json() for d in await repo.seals.digests()]
        for before, after in itertools.pairwise(chain):
            assert after["previous"] == before["hash"]
        too_many = await client.get("/api/digests", params={"limit": 5000}, headers=auth(reader))
        assert too_many.status_code == 400
