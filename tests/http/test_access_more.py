"""Access control beyond the route matrix: revocation, rate limits, audit, append-only, secrets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

import sysevents
from sysevents import (
    AppendOnlyError,
    EventPatch,
    EventQuery,
    EventRepository,
    MemoryEventRepository,
    NewEvent,
    Settings,
)
from sysevents import keys as keys_module
from sysevents.audit import EVENT_DELETED, EVENT_UPDATED
from sysevents.keys import Scope, split_key
from sysevents_http import HttpOptions, create_app

Client = AsyncTestClient[Litestar]


async def code(request: Any) -> int:
    """The status of an answer to ``request`` (an awaitable of the test client)."""
    response = await request
    status: int = response.status_code
    return status


EVENT = {"event_type": "deploy", "message": "v1.2 is live", "details": {"v": 1}}


async def admin_key(repo: EventRepository, name: str = "ops") -> str:
    _, text = await repo.keys.create_key(name, frozenset(Scope))
    return text


@pytest.mark.postgres
async def test_a_revoked_key_stops_working_on_every_replica_within_five_seconds(
    empty_postgres_url: str,
) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM sysevents_api_keys")
    async with sysevents.connect(empty_postgres_url) as repo:
        admin = await admin_key(repo, "admin")
        _, victim = await repo.keys.create_key("victim", frozenset({Scope.READ}))
    settings = Settings(database_url=empty_postgres_url, rate_limit="off")
    async with (
        AsyncTestClient(create_app(settings, options=HttpOptions())) as a,
        AsyncTestClient(create_app(settings, options=HttpOptions())) as b,
    ):
        for client in (a, b):
            assert (
                await client.get("/api/events", headers={"X-API-Key": victim})
            ).status_code == 200
        assert await code(a.delete("/api/keys/victim", headers={"X-API-Key": admin})) == 200
        revoked_at = time.monotonic()
        assert await code(a.get("/api/events", headers={"X-API-Key": victim})) == 401

        async def refused_on_b() -> bool:
            return (await b.get("/api/events", headers={"X-API-Key": victim})).status_code == 401

        while not await refused_on_b():
            assert time.monotonic() - revoked_at < 5.0, "still accepted on the other replica"
            await asyncio.sleep(0.1)


@pytest.mark.postgres
async def test_keys_are_stored_hashed_and_never_logged(
    empty_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with sysevents.connect(empty_postgres_url) as repo:
        text = await admin_key(repo, "hashed")
    parts = split_key(text)
    assert parts is not None
    secret = parts[1]  # the secret may hold "_" itself: the key's own parser finds it
    with psycopg.connect(empty_postgres_url) as conn:
        rows = conn.execute("SELECT * FROM sysevents_api_keys").fetchall()
    dumped = repr(rows)
    assert text not in dumped
    assert secret not in dumped
    app = create_app(
        Settings(database_url=empty_postgres_url, rate_limit="off"), options=HttpOptions()
    )
    async with AsyncTestClient(app) as client:
        assert await code(client.get("/api/events", headers={"X-API-Key": text})) == 200
        assert (
            await client.get("/api/events", headers={"X-API-Key": text + "x"})
        ).status_code == 401
    assert secret not in caplog.text


async def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = keys_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    repo = MemoryEventRepository()
    text = await admin_key(repo)
    ring = keys_module.KeyRing(repo.keys)
    assert await ring.authenticate(text) is not None
    assert await ring.authenticate(text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    assert (
        await ring.authenticate("se_ffffffffffff_" + "C" * 43) is None
    )  # unknown id: compared too
    assert len(calls) == 3


async def test_keys_in_settings_work_for_stateless_deployments() -> None:
    text, _, _ = keys_module.new_key()
    settings = Settings(api_keys=f"dashboard:read:{text}", rate_limit="off")
    async with AsyncTestClient(create_app(settings, options=HttpOptions())) as client:
        assert await code(client.get("/api/events", headers={"X-API-Key": text})) == 200
        assert (
            await client.post("/api/events", json=EVENT, headers={"X-API-Key": text})
        ).status_code == 403
        assert await code(client.get("/api/events")) == 401


@pytest.fixture
async def limited(
    redis_server_url: str, cache_prefix: str
) -> AsyncIterator[tuple[Client, Client, str]]:
    repo = MemoryEventRepository()
    text = await admin_key(repo)
    settings = Settings(
        rate_limit="5/minute", redis_url=redis_server_url, cache_prefix=cache_prefix
    )
    async with (
        AsyncTestClient(create_app(settings, repository=repo, options=HttpOptions())) as a,
        AsyncTestClient(create_app(settings, repository=repo, options=HttpOptions())) as b,
    ):
        yield a, b, text


@pytest.mark.redis
async def test_a_burst_over_the_limit_is_refused_with_the_headers(
    limited: tuple[Client, Client, str],
) -> None:
    a, _, text = limited
    answers = [await a.get("/api/events", headers={"X-API-Key": text}) for _ in range(7)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 2
    ok, refused = answers[0], answers[-1]
    assert ok.headers["ratelimit-policy"] == '"default";q=5;w=60'
    assert ok.headers["ratelimit"].startswith('"default";r=4;t=')
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit"].startswith('"default";r=0;t=')
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await code(a.get("/api/health")) == 200  # health is never limited


@pytest.mark.redis
async def test_replicas_share_one_budget_through_redis(limited: tuple[Client, Client, str]) -> None:
    a, b, text = limited
    statuses = []
    for n in range(6):
        client = a if n % 2 else b
        statuses.append((await client.get("/api/events", headers={"X-API-Key": text})).status_code)
    assert statuses == [200] * 5 + [429]


async def test_changes_through_the_api_are_audited() -> None:
    repo = MemoryEventRepository()
    text = await admin_key(repo, "ops-team")
    key_id = text.split("_")[1]  # se_<id>_<secret>: the public part names the key
    auth = {"X-API-Key": text}
    async with AsyncTestClient(
        create_app(Settings(rate_limit="off"), repository=repo, options=HttpOptions())
    ) as client:
        event = (await client.post("/api/events", json=EVENT, headers=auth)).json()
        assert event["written_by"] == key_id
        updated = await client.put(
            f"/api/events/{event['id']}",
            json={"message": "v1.3", "severity": "warning"},
            headers=auth,
        )
        assert updated.status_code == 200
        assert (
            await client.put("/api/events/424242", json={"message": "x"}, headers=auth)
        ).status_code == 404
        assert (
            await client.put(f"/api/events/{event['id']}", json={"message": ""}, headers=auth)
        ).status_code == 400
        assert await code(client.delete(f"/api/events/{event['id']}", headers=auth)) == 204
    audits = (
        await repo.list(EventQuery(event_type=[EVENT_UPDATED, EVENT_DELETED], order="oldest"))
    ).items
    assert [a.event_type for a in audits] == [
        EVENT_UPDATED,
        EVENT_DELETED,
    ]  # nothing for the failures
    update, delete = audits
    assert update.written_by == delete.written_by == key_id
    assert update.details == {
        "event_id": event["id"],
        "key": key_id,
        "changes": {
            "severity": {"old": "info", "new": "warning"},
            "message": {"old": "v1.2 is live", "new": "v1.3"},
        },
    }
    assert delete.details is not None
    assert (delete.details["event_id"], delete.details["key"]) == (event["id"], key_id)
    assert delete.details["event"]["message"] == "v1.3"


async def test_append_only_refuses_changes_everywhere() -> None:
    repo = MemoryEventRepository(append_only=True)
    text = await admin_key(repo)
    stored = await repo.add(NewEvent(event_type="t", message="kept"))
    with pytest.raises(AppendOnlyError):
        await repo.update(stored.id, EventPatch(message="changed"))
    with pytest.raises(AppendOnlyError):
        await repo.delete(stored.id)
    app = create_app(Settings(rate_limit="off"), repository=repo, options=HttpOptions())
    async with AsyncTestClient(app) as client:
        auth = {"X-API-Key": text}
        for method, body in (("PUT", {"message": "x"}), ("DELETE", None)):
            response = await client.request(
                method, f"/api/events/{stored.id}", json=body, headers=auth
            )
            assert response.status_code == 405
            assert "PUT" not in response.headers["allow"]
        assert await code(client.post("/api/events", json=EVENT, headers=auth)) == 201
    assert await repo.get(stored.id) == stored


async def test_cors_answers_only_the_listed_origins() -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    allowed = Settings(rate_limit="off", cors_origins="https://console.example")
    async with AsyncTestClient(create_app(allowed, options=HttpOptions())) as client:
        good = await client.options(
            "/api/events", headers={"Origin": "https://console.example", **preflight}
        )
        assert good.status_code in (200, 204)
        assert good.headers["access-control-allow-origin"] == "https://console.example"
        assert "x-api-key" in good.headers["access-control-allow-headers"].lower()
        bad = await client.options(
            "/api/events", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in bad.headers
    closed = Settings(rate_limit="off")
    async with AsyncTestClient(create_app(closed, options=HttpOptions())) as client:
        answer = await client.get("/api/events", headers={"Origin": "https://console.example"})
        assert "access-control-allow-origin" not in answer.headers


@pytest.mark.postgres
async def test_a_change_whose_audit_fails_is_rolled_back(empty_postgres_url: str) -> None:
    async with sysevents.connect(empty_postgres_url) as repo:
        stored = await repo.add(NewEvent(event_type="deploy", message="v1"))
        with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF NEW.event_type LIKE 'sysevents.%' THEN"
                " RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON system_events"
                " FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )
        try:
            with pytest.raises(Exception, match="audit refused"):
                await repo.update(stored.id, EventPatch(message="v2"), actor="ops")
            with pytest.raises(Exception, match="audit refused"):
                await repo.delete(stored.id, actor="ops")
            assert await repo.get(stored.id) == stored
        finally:
            with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
                conn.execute("DROP TRIGGER refuse_audit ON system_events")
                conn.execute("DROP FUNCTION refuse_audit()")
