"""Access control: every route against every kind of credential, on memory and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

import sysevents
from sysevents import EventRepository, MemoryEventRepository, Settings
from sysevents.keys import Scope
from sysevents_http import HttpOptions, create_app

Client = AsyncTestClient[Litestar]


async def code(request: Any) -> int:
    """The status of an answer to ``request`` (an awaitable of the test client)."""
    response = await request
    status: int = response.status_code
    return status


EVENT = {"event_type": "deploy", "message": "v1.2 is live"}


@dataclass
class Keys:
    """One key of each kind, as texts."""

    read: str
    write: str
    admin: str
    expired: str
    revoked: str
    unknown: str = "se_0123456789ab_" + "A" * 43
    malformed: str = "not-a-key"


async def make_keys(repo: EventRepository) -> Keys:
    store = repo.keys
    texts = {}
    for scope in Scope:
        _, texts[scope.value] = await store.create_key(scope.value, frozenset({scope}))
    _, expired = await store.create_key(
        "expired", frozenset(Scope), datetime.now(UTC) - timedelta(seconds=1)
    )
    _, revoked = await store.create_key("revoked", frozenset(Scope))
    await store.revoke_key("revoked")
    return Keys(texts["read"], texts["write"], texts["admin"], expired, revoked)


@pytest.fixture(params=["memory", "postgres"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Client, Keys]]:
    """A running app with keys in its store, on each backend."""
    options = HttpOptions()
    if request.param == "memory":
        repo = MemoryEventRepository()
        keys = await make_keys(repo)
        app = create_app(Settings(rate_limit="off"), repository=repo, options=options)
    else:
        url = request.getfixturevalue("empty_postgres_url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM sysevents_api_keys")
        async with sysevents.connect(url) as repo:
            keys = await make_keys(repo)
        app = create_app(Settings(database_url=url, rate_limit="off"), options=options)
    async with AsyncTestClient(app) as client:
        yield client, keys


def routes(event_id: int) -> list[tuple[str, str, Any, str | None]]:
    """(method, path, JSON body, scope needed): every route of the API."""
    return [
        ("GET", "/api/health", None, None),
        ("GET", "/api/health/db", None, None),
        ("GET", "/openapi.json", None, None),
        ("GET", "/docs", None, None),
        ("GET", "/redoc", None, None),
        ("GET", "/api/events", None, "read"),
        ("HEAD", "/api/events", None, "read"),
        ("GET", "/api/events/stats", None, "read"),
        ("GET", "/api/events/histogram", None, "read"),
        ("GET", "/api/events/export", None, "read"),
        ("GET", f"/api/events/{event_id}", None, "read"),
        ("POST", "/api/events", EVENT, "write"),
        ("POST", "/api/events/batch", {"events": [EVENT]}, "write"),
        ("PUT", f"/api/events/{event_id}", {"message": "changed"}, "admin"),
        ("DELETE", f"/api/events/{event_id}", None, "admin"),
        ("GET", "/api/keys", None, "admin"),
        ("POST", "/api/keys", {"name": "made-by-test", "scopes": ["read"]}, "admin"),
        ("DELETE", "/api/keys/made-by-test", None, "admin"),
    ]


SUCCESS = {"GET": {200}, "HEAD": {200}, "POST": {200, 201}, "PUT": {200}, "DELETE": {200, 204}}


async def send(client: Client, method: str, path: str, body: Any, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await client.request(method, path, json=body, headers=headers)


async def new_event(client: Client, keys: Keys) -> int:
    created = await send(client, "POST", "/api/events", EVENT, keys.write)
    assert created.status_code == 201
    event_id: int = created.json()["id"]
    return event_id


async def test_every_route_against_every_credential(served: tuple[Client, Keys]) -> None:
    client, keys = served
    refused_bodies = set()
    for method, path, body, needed in routes(await new_event(client, keys)):
        for label in ("none", "malformed", "unknown", "expired", "revoked"):
            key = None if label == "none" else getattr(keys, label)
            response = await send(client, method, path, body, key)
            if needed is None:
                assert response.status_code == 200, (method, path, label)
                continue
            assert response.status_code == 401, (method, path, label)
            assert response.headers["www-authenticate"].startswith("Bearer")
            if method != "HEAD":
                assert response.headers["content-type"].startswith("application/problem+json")
                refused_bodies.add(response.text)
        for scope in Scope:
            response = await send(client, method, path, body, getattr(keys, scope.value))
            if needed is None or needed == scope.value:
                assert response.status_code in SUCCESS[method], (method, path, scope, response.text)
            else:  # a scope does not imply another
                assert response.status_code == 403, (method, path, scope)
                if method != "HEAD":
                    assert response.json()["scope"] == needed
    # Never a hint whether a key exists: one answer for every bad credential.
    assert len(refused_bodies) == 1


async def test_the_key_header_works_like_the_bearer_token(served: tuple[Client, Keys]) -> None:
    client, keys = served
    response = await client.get("/api/events", headers={"X-API-Key": keys.read})
    assert response.status_code == 200
    assert await code(client.get("/api/events", headers={"X-API-Key": keys.write})) == 403


async def test_keys_over_rest_are_shown_once_and_listed_without_them(
    served: tuple[Client, Keys],
) -> None:
    client, keys = served
    admin = {"Authorization": f"Bearer {keys.admin}"}
    created = await client.post(
        "/api/keys", json={"name": "ci", "scopes": ["write"], "expires_in": "90d"}, headers=admin
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("se_")
    listed = await client.get("/api/keys", headers=admin)
    assert key not in listed.text
    assert {k["name"] for k in listed.json()} >= {"ci", "read", "revoked"}
    assert (
        await client.post("/api/events", json=EVENT, headers={"X-API-Key": key})
    ).status_code == 201
    taken = await client.post("/api/keys", json={"name": "ci", "scopes": ["read"]}, headers=admin)
    assert taken.status_code == 409
    bad = await client.post(
        "/api/keys", json={"name": "x", "scopes": ["root"], "expires_in": "soon"}, headers=admin
    )
    assert bad.status_code == 400
    forever = await client.post(
        "/api/keys", json={"name": "y", "scopes": ["read"], "expires_in": "999999w"}, headers=admin
    )
    assert forever.status_code == 400  # past the year 9999: named, never a 500
    assert forever.json()["errors"][0]["field"] == "expires_in"
    assert await code(client.delete("/api/keys/ci", headers=admin)) == 200
    assert (
        await client.post("/api/events", json=EVENT, headers={"X-API-Key": key})
    ).status_code == 401
    assert await code(client.delete("/api/keys/nobody", headers=admin)) == 404


async def test_idempotency_keys_belong_to_their_caller(served: tuple[Client, Keys]) -> None:
    client, keys = served
    store = {"Idempotency-Key": "order-17"}
    mine = await client.post("/api/events", json=EVENT, headers={**store, "X-API-Key": keys.write})
    assert mine.status_code == 201
    # Another caller with the same idempotency key gets an event of its own.
    admin_can_write = await client.post(
        "/api/keys",
        json={"name": "writer-2", "scopes": ["write"]},
        headers={"X-API-Key": keys.admin},
    )
    other_key = admin_can_write.json()["key"]
    theirs = await client.post("/api/events", json=EVENT, headers={**store, "X-API-Key": other_key})
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]
    # The same caller, the same key, another event: a conflict.
    clash = await client.post(
        "/api/events",
        json={**EVENT, "message": "other"},
        headers={**store, "X-API-Key": keys.write},
    )
    assert clash.status_code == 422
    again = await client.post("/api/events", json=EVENT, headers={**store, "X-API-Key": keys.write})
    assert again.json() == mine.json()


async def test_a_body_that_is_not_sent_as_json_is_refused(served: tuple[Client, Keys]) -> None:
    client, keys = served
    auth = {"X-API-Key": keys.write}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**auth, **({"content-type": content_type} if content_type else {})}
        response = await client.post(
            "/api/events", content=b'{"event_type":"x","message":"m"}', headers=headers
        )
        assert response.status_code == 415, content_type
    page = await client.get(
        "/api/events", params={"event_type": "x"}, headers={"X-API-Key": keys.read}
    )
    assert page.json()["total"] == 0


async def test_many_bad_keys_cost_one_lookup_each_and_get_the_same_answer(
    served: tuple[Client, Keys],
) -> None:
    client, _ = served
    answers = await asyncio.gather(
        *(
            client.get("/api/events", headers={"X-API-Key": f"se_{n:012x}_" + "B" * 43})
            for n in range(20)
        )
    )
    assert {a.status_code for a in answers} == {401}
