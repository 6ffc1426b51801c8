"""Lifecycle events, throttled health events, and a store that goes away and comes back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from litestar.testing import AsyncTestClient

import sysevents
from sysevents import EventQuery, MemoryEventRepository, Settings, StoreUnavailableError
from sysevents.migrate import upgrade
from sysevents_http import HttpOptions, create_app
from tests.conftest import skip_or_fail
from tests.private_postgres import PrivatePostgres
from tests.waiting import eventually

from .tcp_proxy import TcpProxy, free_port

LIFECYCLE = ["system_startup", "system_shutdown", "health_check", "db_health_check"]


async def lifecycle_events(repo: sysevents.EventRepository) -> list[sysevents.Event]:
    page = await repo.list(
        EventQuery(event_type=LIFECYCLE, order="oldest", limit=1000, count="exact")
    )
    return page.items


def kinds(events: Sequence[sysevents.Event]) -> list[str]:
    return [e.event_type for e in events]


class FlakyRepository(MemoryEventRepository):
    """A memory store that can be switched off: every call then fails as unavailable."""

    down = False

    def _ensure_open(self) -> None:
        if self.down:
            raise StoreUnavailableError("switched off by the test")
        super()._ensure_open()


def stdout_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_startup_and_shutdown_are_recorded() -> None:
    repo = MemoryEventRepository()
    async with AsyncTestClient(create_app(repository=repo, options=HttpOptions())) as client:
        assert (await client.get("/api/events", params={"event_type": "system_startup"})).json()[
            "total"
        ] == 1
    events = await lifecycle_events(repo)
    assert kinds(events) == ["system_startup", "system_shutdown"]
    for event in events:
        assert event.details is not None
        assert set(event.details) == {"version", "host", "pid", "uptime"}
        assert event.details["version"] == sysevents.__version__
        assert event.source == "sysevents_http"
    assert events[1].details is not None
    assert events[1].details["uptime"] >= 0


async def test_lifecycle_on_postgres(empty_postgres_url: str) -> None:
    app = create_app(Settings(database_url=empty_postgres_url), options=HttpOptions())
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/health/db")).status_code == 200
    async with sysevents.connect(empty_postgres_url) as repo:
        assert kinds(await lifecycle_events(repo)) == [
            "system_startup",
            "db_health_check",
            "system_shutdown",
        ]


@pytest.mark.parametrize(("interval", "expected"), [(3600.0, 1), (0.0, 25)])
async def test_health_events_are_throttled(interval: float, expected: int) -> None:
    repo = MemoryEventRepository()
    app = create_app(repository=repo, options=HttpOptions(health_log_interval=interval))
    async with AsyncTestClient(app) as client:
        for _ in range(25):
            assert (await client.get("/api/health")).status_code == 200
            assert (await client.get("/api/health/db")).status_code == 200
    counted = kinds(await lifecycle_events(repo))
    assert counted.count("health_check") == expected
    assert counted.count("db_health_check") == expected


async def test_a_state_change_is_always_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    repo = FlakyRepository()
    app = create_app(repository=repo, options=HttpOptions(health_log_interval=3600))
    async with AsyncTestClient(app) as client:
        for down in [False, False, True, True, False, False, True, False]:
            repo.down = down
            expected = 503 if down else 200
            assert (await client.get("/api/health/db")).status_code == expected
            # The record runs in the background on the app's loop: let it finish
            # in this state before the next one is switched on.
            service = app.state.sysevents
            await eventually(lambda s=service: not s.events._tasks, "the health record was stored")
        repo.down = False
    states = [
        e.details["state"] if e.details else None
        for e in await lifecycle_events(repo)
        if e.event_type == "db_health_check"
    ]
    # "down" events could not be stored: they went to stdout instead.
    assert states == ["ok", "ok", "ok"]
    printed = [e for e in stdout_events(capsys.readouterr().out) if e["stored"] is False]
    assert [e["details"]["state"] for e in printed] == ["down", "down"]
    assert all(e["event_type"] == "db_health_check" for e in printed)


async def test_store_down_then_back_without_restart(capsys: pytest.CaptureFixture[str]) -> None:
    repo = FlakyRepository()
    repo.down = True
    app = create_app(repository=repo, options=HttpOptions())
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/health")).status_code == 200
        response = await client.post("/api/events", json={"event_type": "x", "message": "m"})
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["retry-after"]
        assert (await client.get("/api/events")).status_code == 503
        assert (await client.get("/api/health/db")).status_code == 503
        repo.down = False
        assert (await client.get("/api/health/db")).status_code == 200
        response = await client.post("/api/events", json={"event_type": "x", "message": "m"})
        assert response.status_code == 201
    startup = stdout_events(capsys.readouterr().out)[0]
    assert startup["event_type"] == "system_startup"
    assert startup["stored"] is False
    assert set(startup["details"]) == {"version", "host", "pid", "uptime"}


async def test_unreachable_postgres_gives_quick_503s(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    settings = Settings(database_url=url, timeout=1.0)
    async with AsyncTestClient(create_app(settings, options=HttpOptions())) as client:
        assert (await client.get("/api/health")).status_code == 200
        started = time.monotonic()
        for path in ["/api/events", "/api/events/1", "/api/events/stats", "/api/health/db"]:
            response = await client.get(path)
            assert response.status_code == 503, response.text
            assert response.json()["status"] == 503
        response = await client.post("/api/events", json={"event_type": "x", "message": "m"})
        assert response.status_code == 503
        assert time.monotonic() - started < 15
    printed = [e["event_type"] for e in stdout_events(capsys.readouterr().out)]
    assert printed[0] == "system_startup"
    assert printed[-1] == "system_shutdown"
    assert sorted(printed[1:-1]) == ["db_health_check", "health_check"]


async def test_postgres_comes_back_without_a_restart(
    empty_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = urlsplit(empty_postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    via_proxy = urlunsplit(parts._replace(netloc=netloc))
    settings = Settings(database_url=via_proxy, timeout=1.0)
    try:
        async with AsyncTestClient(create_app(settings, options=HttpOptions())) as client:
            assert (await client.get("/api/events")).status_code == 503
            assert (await client.get("/api/health")).status_code == 200
            proxy.start()
            deadline = time.monotonic() + 40
            while (await client.get("/api/health/db")).status_code != 200:
                assert time.monotonic() < deadline, "the app did not recover"
                await asyncio.sleep(0.5)
            created = await client.post("/api/events", json={"event_type": "x", "message": "m"})
            assert created.status_code == 201
            proxy.stop()
            assert (await client.get("/api/events")).status_code == 503
            proxy.start()
            deadline = time.monotonic() + 40
            while (await client.get("/api/events")).status_code != 200:
                assert time.monotonic() < deadline, "the app did not recover twice"
                await asyncio.sleep(0.5)
    finally:
        proxy.close()
    assert stdout_events(capsys.readouterr().out)[0]["event_type"] == "system_startup"
    async with sysevents.connect(empty_postgres_url) as repo:
        assert "system_shutdown" in kinds(await lifecycle_events(repo))


@pytest.mark.fault
async def test_app_started_on_a_stopped_private_postgres_recovers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reason = PrivatePostgres.unavailable_reason()
    if reason:
        skip_or_fail(reason)
    with PrivatePostgres() as pg:
        upgrade(pg.url)
        pg.stop("fast")
        settings = Settings(database_url=pg.url, timeout=1.0)
        async with AsyncTestClient(create_app(settings, options=HttpOptions())) as client:
            assert (await client.get("/api/health")).status_code == 200
            event = {"event_type": "x", "message": "while down"}
            assert (await client.post("/api/events", json=event)).status_code == 503
            assert (await client.get("/api/health/db")).status_code == 503
            await asyncio.to_thread(pg.start)
            deadline = time.monotonic() + 40
            while (await client.post("/api/events", json=event)).status_code != 201:
                assert time.monotonic() < deadline, "the app did not recover"
                await asyncio.sleep(0.5)
            assert (await client.get("/api/health/db")).status_code == 200
        printed = stdout_events(capsys.readouterr().out)
        assert printed[0]["event_type"] == "system_startup"
        assert printed[0]["stored"] is False
        async with sysevents.connect(pg.url) as repo:
            stored = kinds(await lifecycle_events(repo))
            assert "system_shutdown" in stored
            assert (await repo.stats(sysevents.EventFilter(event_type="x"))).total == 1
