"""Trust over HTTP: no anonymous keys, no rebinding, audited keys, streams that end with them."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository, Settings
from sysevents.keys import Scope
from sysevents_http import create_app
from tests.waiting import eventually_sync

from .live import LiveApp

Client = AsyncTestClient[Litestar]
ATTACKER = "rebind.attacker.example"
KEY_TYPES = {"sysevents.key_created", "sysevents.key_revoked"}


@pytest.fixture
async def open_client() -> AsyncIterator[Client]:
    """An app on an open server: no key exists yet (``auth=auto``)."""
    app = create_app(Settings(), repository=MemoryEventRepository())
    async with AsyncTestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/events"), ("POST", "/api/events"), ("GET", "/api/events/stats")],
)
async def test_a_rebound_name_is_refused_while_no_key_is_required(
    open_client: Client, method: str, path: str
) -> None:
    body = {"event_type": "deploy", "message": "m"} if method == "POST" else None
    response = await open_client.request(method, path, json=body, headers={"Host": ATTACKER})
    assert response.status_code == 403
    assert "allowed_hosts" in response.json()["detail"]


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "[::1]:8000", "app.localhost"])
async def test_loopback_names_are_answered(open_client: Client, host: str) -> None:
    assert (await open_client.get("/api/events", headers={"Host": host})).status_code == 200


async def test_allowed_hosts_are_answered() -> None:
    settings = Settings(allowed_hosts=["events.internal"])
    async with AsyncTestClient(create_app(settings, repository=MemoryEventRepository())) as client:
        ok = await client.get("/api/events", headers={"Host": "events.internal:8000"})
        assert ok.status_code == 200
        assert (await client.get("/api/events", headers={"Host": ATTACKER})).status_code == 403


async def test_the_first_key_is_never_given_to_an_anonymous_caller(open_client: Client) -> None:
    new = {"name": "grab", "scopes": ["admin"]}
    for host in (ATTACKER, "127.0.0.1"):
        response = await open_client.post("/api/keys", json=new, headers={"Host": host})
        assert response.status_code == 401, host
        assert (await open_client.get("/api/keys", headers={"Host": host})).status_code == 401
    # The server is still open to its own machine: nobody took it.
    assert (await open_client.get("/api/events")).status_code == 200


async def test_even_with_auth_off_keys_need_a_key() -> None:
    app = create_app(Settings(auth="off"), repository=MemoryEventRepository())
    async with AsyncTestClient(app) as client:
        assert (
            await client.post("/api/keys", json={"name": "a", "scopes": ["read"]})
        ).status_code == 401


async def keyed_app() -> tuple[Litestar, MemoryEventRepository, str]:
    """An app whose store holds an admin key (returned as text)."""
    repo = MemoryEventRepository()
    _, admin = await repo.keys.create_key("admin", frozenset(Scope))
    return create_app(Settings(), repository=repo), repo, admin


async def test_creating_and_revoking_keys_is_recorded_with_who_acted() -> None:
    app, _, admin = await keyed_app()
    admin_id = admin.split("_")[1]
    auth = {"Authorization": f"Bearer {admin}"}
    async with AsyncTestClient(app) as client:
        created = await client.post(
            "/api/keys", json={"name": "ingest", "scopes": ["write"]}, headers=auth
        )
        assert created.status_code == 201
        assert (await client.delete("/api/keys/ingest", headers=auth)).status_code == 200
        records = (
            await client.get(
                "/api/events",
                params={"event_type": ["sysevents.key_created", "sysevents.key_revoked"]},
                headers=auth,
            )
        ).json()["items"]
    by_type = {r["event_type"]: r for r in records}
    assert set(by_type) == KEY_TYPES
    for record in by_type.values():
        assert record["written_by"] == admin_id
        assert record["details"]["key_id"] == created.json()["key_id"]
        assert record["details"]["name"] == "ingest"


async def test_failed_authentications_are_recorded_once_per_address_and_reason() -> None:
    app, _, admin = await keyed_app()
    wrong = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
    async with AsyncTestClient(app) as client:
        for _ in range(20):
            response = await client.get("/api/events", headers={"Authorization": f"Bearer {wrong}"})
            assert response.status_code == 401
        # Another reason is another record.
        garbled = await client.get("/api/events", headers={"Authorization": "Bearer nonsense"})
        assert garbled.status_code == 401
        assert not await app.state.sysevents.events.settled(10)
        records = (
            await client.get(
                "/api/events",
                params={"event_type": "sysevents.auth_failed"},
                headers={"Authorization": f"Bearer {admin}"},
            )
        ).json()["items"]
    reasons = sorted(r["details"]["reason"] for r in records)
    assert reasons == ["malformed", "wrong secret"]
    wrong_secret = next(r for r in records if r["details"]["reason"] == "wrong secret")
    assert wrong_secret["details"]["key_id"] == admin.split("_")[1]
    assert wrong_secret["severity"] == "warning"
    assert wrong not in str(records)  # the secret presented is never kept


def test_a_revoked_keys_stream_ends_within_five_seconds() -> None:
    import asyncio

    app, repo, admin = asyncio.run(keyed_app())
    _, reader = asyncio.run(repo.keys.create_key("reader", frozenset({Scope.READ})))
    lines: list[str] = []
    ended = threading.Event()

    def listen(url: str) -> None:
        headers = {"Authorization": f"Bearer {reader}"}
        with httpx.stream(
            "GET", url + "/api/events/stream?heartbeat=60", headers=headers, timeout=30
        ) as response:
            for line in response.iter_lines():
                lines.append(line)
        ended.set()

    with LiveApp(app) as live:
        listener = threading.Thread(target=listen, args=(live.url,), daemon=True)
        listener.start()
        eventually_sync(lambda: ": connected" in lines, "the stream is connected")
        revoked = httpx.delete(
            live.url + "/api/keys/reader", headers={"Authorization": f"Bearer {admin}"}
        )
        assert revoked.status_code == 200
        at = time.monotonic()
        assert ended.wait(30), "the stream never ended"
        took = time.monotonic() - at
    # Within 5 s by contract; a loaded machine may add a little to the thread's wake-up.
    assert took < 6.0, took


def test_a_stream_ends_when_its_key_expires() -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    app, repo, _ = asyncio.run(keyed_app())
    expires = datetime.now(UTC) + timedelta(seconds=2)
    _, reader = asyncio.run(repo.keys.create_key("brief", frozenset({Scope.READ}), expires))
    with LiveApp(app) as live:
        started = time.monotonic()
        with httpx.stream(
            "GET",
            live.url + "/api/events/stream?heartbeat=60",
            headers={"Authorization": f"Bearer {reader}"},
            timeout=30,
        ) as response:
            assert response.status_code == 200
            lines = list(response.iter_lines())  # returns when the server ends the stream
        took = time.monotonic() - started
    assert ": connected" in lines
    assert took < 8.0, took
