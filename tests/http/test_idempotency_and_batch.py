"""The Idempotency-Key header on POST /api/events, and POST /api/events/batch."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from .conftest import AppFactory

EVENT = {"event_type": "deploy", "severity": "info", "message": "v1.2 is live"}


async def stored(client: AsyncTestClient[Litestar], **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/events", params={"limit": 1000, **params})
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return [e for e in items if e["source"] != "sysevents_http"]


async def test_concurrent_posts_with_one_key_store_one_event(
    client: AsyncTestClient[Litestar],
) -> None:
    headers = {"Idempotency-Key": "order-17"}
    responses = await asyncio.gather(
        *(client.post("/api/events", json=EVENT, headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {201}
    bodies = [r.json() for r in responses]
    assert all(body == bodies[0] for body in bodies)
    assert len(await stored(client, event_type="deploy")) == 1
    replay = await client.post("/api/events", json=EVENT, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == bodies[0]
    assert replay.headers["location"] == f"/api/events/{bodies[0]['id']}"


async def test_the_same_key_with_another_body_is_a_422(client: AsyncTestClient[Litestar]) -> None:
    headers = {"Idempotency-Key": "k"}
    first = await client.post("/api/events", json=EVENT, headers=headers)
    assert first.status_code == 201
    other = await client.post(
        "/api/events", json={**EVENT, "message": "something else"}, headers=headers
    )
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in other.json()["errors"]] == ["message"]
    assert len(await stored(client)) == 1


async def test_the_same_body_key_with_another_event_is_a_422(
    client: AsyncTestClient[Litestar],
) -> None:
    keyed = {**EVENT, "idempotency_key": "in-the-body"}
    first = await client.post("/api/events", json=keyed)
    assert first.status_code == 201
    assert (await client.post("/api/events", json=keyed)).json() == first.json()
    other = await client.post("/api/events", json={**keyed, "severity": "error"})
    assert other.status_code == 422
    problem = other.json()
    assert [e["field"] for e in problem["errors"]] == ["severity"]
    assert problem["idempotency_key"] == "in-the-body"
    batch = await client.post(
        "/api/events/batch", json={"events": [EVENT, {**keyed, "message": "changed"}]}
    )
    assert batch.status_code == 422
    assert len(await stored(client)) == 1


async def test_a_retry_without_a_timestamp_is_a_replay(client: AsyncTestClient[Litestar]) -> None:
    headers = {"Idempotency-Key": "no-time"}
    first = await client.post("/api/events", json=EVENT, headers=headers)
    again = await client.post("/api/events", json=EVENT, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()


async def test_bad_idempotency_keys(client: AsyncTestClient[Litestar]) -> None:
    for key in ("", "x" * 101, "a\tb"):
        response = await client.post("/api/events", json=EVENT, headers={"Idempotency-Key": key})
        assert response.status_code == 400, key
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    mismatch = await client.post(
        "/api/events", json={**EVENT, "idempotency_key": "body"}, headers={"Idempotency-Key": "h"}
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"][0]["field"] == "idempotency_key"
    assert await stored(client) == []


async def test_a_batch_is_stored_in_order(client: AsyncTestClient[Litestar]) -> None:
    events = [{**EVENT, "message": f"m{i}", "severity": "error"} for i in range(5)]
    response = await client.post("/api/events/batch", json={"events": events})
    assert response.status_code == 201
    body = response.json()["events"]
    assert [e["message"] for e in body] == [f"m{i}" for i in range(5)]
    ids = [e["id"] for e in body]
    assert ids == sorted(ids)
    assert len(await stored(client, severity="error")) == 5


async def test_one_bad_event_refuses_the_whole_batch(client: AsyncTestClient[Litestar]) -> None:
    events = [EVENT, EVENT, {**EVENT, "message": "", "severity": "loud"}, EVENT]
    response = await client.post("/api/events/batch", json={"events": events})
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"events.2.message", "events.2.severity"}
    assert await stored(client) == []


async def test_batch_size_is_bounded(make_app: AppFactory) -> None:
    async with AsyncTestClient(make_app(max_batch_size=3)) as client:
        response = await client.post("/api/events/batch", json={"events": [EVENT] * 4})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "events"
        assert (
            await client.post("/api/events/batch", json={"events": [EVENT] * 3})
        ).status_code == 201
        assert len(await stored(client)) == 3


async def test_batch_bodies_that_are_not_batches(client: AsyncTestClient[Litestar]) -> None:
    for body in ([EVENT], {"events": EVENT}, {"events": [EVENT], "extra": 1}, {}):
        response = await client.post("/api/events/batch", json=body)
        assert response.status_code == 400, body
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]
    empty = await client.post("/api/events/batch", json={"events": []})
    assert empty.status_code == 201
    assert empty.json() == {"events": []}
    assert await stored(client) == []


async def test_a_batch_deduplicates_by_key(client: AsyncTestClient[Litestar]) -> None:
    events = [{**EVENT, "idempotency_key": "a"}, {**EVENT, "idempotency_key": "a"}]
    first = await client.post("/api/events/batch", json={"events": events})
    again = await client.post("/api/events/batch", json={"events": events})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(await stored(client)) == 1
    clash = [{**EVENT, "idempotency_key": "b"}, {**EVENT, "idempotency_key": "b", "message": "x"}]
    response = await client.post("/api/events/batch", json={"events": clash})
    assert response.status_code == 422
    assert len(await stored(client)) == 1
