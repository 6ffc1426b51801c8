"""Fair share over HTTP: no caller can flood the log or starve the others (SPEC §14)."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository, NewEvent, Settings
from sysevents.keys import Scope
from sysevents.tail import TailOverflow
from sysevents_http import create_app
from tests.private_redis import private_redis
from tests.waiting import eventually_sync

from .live import LiveApp
from .served import serve_process

Client = AsyncTestClient[Litestar]
EVENT = {"event_type": "deploy", "message": "v1"}


def app(repo: MemoryEventRepository | None = None, **settings: Any) -> Litestar:
    return create_app(
        Settings(**settings), repository=repo if repo is not None else MemoryEventRepository()
    )


def otlp(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {"resource": {}, "scopeLogs": [{"scope": {}, "logRecords": list(records)}]}
        ]
    }


# -- OTLP --------------------------------------------------------------------------------


async def test_a_tiny_otlp_body_no_longer_stores_thousands_of_events() -> None:
    """The finding: 106 gzip bytes inflating to 30 000 empty records stored 30 000 events."""
    bomb = gzip.compress(json.dumps(otlp([{}] * 30_000)).encode())
    assert len(bomb) < 300
    repo = MemoryEventRepository()
    async with AsyncTestClient(app(repo)) as client:
        before = len(repo)
        response = await client.post(
            "/v1/logs",
            content=bomb,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert response.status_code == 400
        assert "at most 1000 log records" in response.json()["message"]
        assert len(repo) == before
        fine = await client.post("/v1/logs", json=otlp([{}] * 1000))
        assert fine.status_code == 200
        assert len(repo) == before + 1000


# -- the ingest limit --------------------------------------------------------------------


async def test_events_past_the_ingest_limit_wait() -> None:
    async with AsyncTestClient(app(ingest_limit="10/second,1MB/second,burst=1s")) as client:
        batch = {"events": [EVENT] * 8}
        assert (await client.post("/api/events/batch", json=batch)).status_code == 201
        refused = await client.post("/api/events/batch", json=batch)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "ingest limit" in refused.json()["detail"]
        # The bucket fills again at 10 events a second.
        for _ in range(100):
            if (await client.post("/api/events", json=EVENT)).status_code == 201:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the bucket never filled again")


async def test_bytes_count_too() -> None:
    limit = "1000/second,2KB/second,burst=1s"
    big = {**EVENT, "message": "x" * 1500}
    async with AsyncTestClient(app(ingest_limit=limit)) as client:
        assert (await client.post("/api/events", json=big)).status_code == 201
        assert (await client.post("/api/events", json=big)).status_code == 429


async def test_every_otlp_record_counts_refused_ones_too() -> None:
    async with AsyncTestClient(app(ingest_limit="5/second,1MB/second,burst=1s")) as client:
        records = [{"body": {"stringValue": "ok"}}, {"severityNumber": 99}, {}]
        first = await client.post("/v1/logs", json=otlp(records))
        assert first.status_code == 200
        assert first.json()["partialSuccess"]["rejectedLogRecords"] == "1"
        # Two tokens left: three more records do not fit, though one will be refused anyway.
        assert (await client.post("/v1/logs", json=otlp(records))).status_code == 429


@pytest.mark.redis
async def test_replicas_share_the_ingest_buckets(redis_server_url: str, cache_prefix: str) -> None:
    settings = {
        "ingest_limit": "10/second,1MB/second,burst=1s",
        "redis_url": redis_server_url,
        "cache_prefix": cache_prefix,
    }
    repo = MemoryEventRepository()
    async with (
        AsyncTestClient(app(repo, **settings)) as one,
        AsyncTestClient(app(repo, **settings)) as two,
    ):
        batch = {"events": [EVENT] * 8}
        assert (await one.post("/api/events/batch", json=batch)).status_code == 201
        assert (await two.post("/api/events/batch", json=batch)).status_code == 429


# -- limits before authentication -------------------------------------------------------


async def test_bad_keys_are_counted_per_address_before_any_lookup() -> None:
    repo = MemoryEventRepository()
    _, key = await repo.keys.create_key("real", frozenset(Scope))
    async with AsyncTestClient(app(repo, address_limit="5/minute")) as client:
        wrong = {"Authorization": "Bearer se_0123456789ab_" + "A" * 43}
        statuses = [(await client.get("/api/events", headers=wrong)).status_code for _ in range(5)]
        assert statuses == [401] * 5
        assert (await client.get("/api/events", headers=wrong)).status_code == 429
        # The address's budget is spent: open routes and good keys from it wait too.
        assert (await client.get("/api/health/db")).status_code == 429
        good = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/api/events", headers=good)).status_code == 429


async def test_metrics_are_counted_against_the_address() -> None:
    async with AsyncTestClient(app(address_limit="3/minute")) as client:
        statuses = [(await client.get("/metrics")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_forwarded_addresses_are_not_believed_from_an_untrusted_peer() -> None:
    env = {"SYSEVENTS_ADDRESS_LIMIT": "3/minute"}
    with serve_process(env=env) as served:
        statuses = [
            httpx.get(
                served.url + "/api/events", headers={"X-Forwarded-For": f"10.0.0.{i}"}
            ).status_code
            for i in range(4)
        ]
    # The health checks that waited for the server spent some of the budget too.
    assert statuses[-1] == 429


# -- new series ---------------------------------------------------------------------------


async def test_new_series_past_the_budget_are_refused_naming_the_field() -> None:
    repo = MemoryEventRepository()
    await repo.add(NewEvent(event_type="known", message="stored before", source="api"))
    async with AsyncTestClient(app(repo, max_new_series=3)) as client:
        for kind in ("a", "b", "c"):
            created = await client.post("/api/events", json={**EVENT, "event_type": kind})
            assert created.status_code == 201
        refused = await client.post("/api/events", json={**EVENT, "event_type": "d"})
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["field"] == "event_type"
        assert int(refused.headers["Retry-After"]) > 0
        # Pairs already stored cost nothing, here or in a batch.
        for pair in ({"event_type": "known", "source": "api"}, {"event_type": "a"}):
            assert (await client.post("/api/events", json={**EVENT, **pair})).status_code == 201
        batch = {"events": [EVENT | {"event_type": "a"}, EVENT | {"event_type": "b"}, EVENT]}
        batch["events"][2] = {**EVENT, "event_type": "e"}
        refused = await client.post("/api/events/batch", json=batch)
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["field"] == "events.2.event_type"
    types = {e.event_type for e in repo.snapshot()}
    assert not {"d", "e"} & types


@pytest.mark.postgres
async def test_series_stored_before_a_restart_are_known(empty_postgres_url: str) -> None:
    import sysevents

    async with sysevents.connect(empty_postgres_url, fold_interval=0) as repo:
        await repo.add_many(
            [NewEvent(event_type=f"t{i}", message="m", source="s") for i in range(5)]
        )
        known = await repo.known_series([("t1", "s"), ("t1", None), ("zz", "s")])
        assert known == {("t1", "s")}
    settings = Settings(database_url=empty_postgres_url, max_new_series=1)
    async with AsyncTestClient(create_app(settings)) as client:
        for i in range(5):
            body = {**EVENT, "event_type": f"t{i}", "source": "s"}
            assert (await client.post("/api/events", json=body)).status_code == 201
        assert (await client.post("/api/events", json=EVENT)).status_code == 201
        assert (await client.post("/api/events", json=EVENT | {"source": "x"})).status_code == 429


# -- streams and reads under way ---------------------------------------------------------


def test_a_key_holds_a_bounded_number_of_streams() -> None:
    repo = MemoryEventRepository()
    _, key = asyncio.run(repo.keys.create_key("reader", frozenset({Scope.READ})))
    headers = {"Authorization": f"Bearer {key}"}
    with (
        LiveApp(app(repo, max_streams_per_key=2)) as live,
        httpx.Client(base_url=live.url, headers=headers, timeout=10) as client,
    ):
        url = "/api/events/stream?heartbeat=60"
        with client.stream("GET", url) as first, client.stream("GET", url) as second:
            assert (first.status_code, second.status_code) == (200, 200)
            # Each is under way: it said so. (The line iterators are kept: one let go
            # closes its connection.)
            lines = [response.iter_lines() for response in (first, second)]
            assert [next(each) for each in lines] == [": connected"] * 2
            third = client.get(url)
            assert third.status_code == 429
            assert "streams under way" in third.json()["detail"]
            # Reads are counted apart from streams.
            assert client.get("/api/events").status_code == 200
        # A closed stream gives its place back.
        for _ in range(200):
            with client.stream("GET", url) as again:
                if again.status_code == 200:
                    break
        else:
            pytest.fail("a closed stream's place was never given back")


class HeldReads(MemoryEventRepository):
    """Holds every listing until released (a slow database, as a reader sees it)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.waiting = 0

    async def list_json(self, query: Any = None, *, max_bytes: int = 0) -> bytes:
        self.waiting += 1
        await asyncio.to_thread(self.release.wait, 30)
        return await super().list_json(query, max_bytes=max_bytes)


def test_a_key_has_a_bounded_number_of_reads_under_way() -> None:
    repo = HeldReads()
    _, key = asyncio.run(repo.keys.create_key("rw", frozenset({Scope.READ, Scope.WRITE})))
    headers = {"Authorization": f"Bearer {key}"}
    with (
        LiveApp(app(repo, max_reads_per_key=2)) as live,
        httpx.Client(base_url=live.url, headers=headers, timeout=30) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        held = [pool.submit(client.get, "/api/events") for _ in range(2)]
        eventually_sync(lambda: repo.waiting == 2, "two reads are under way")
        third = client.get("/api/events")
        assert third.status_code == 429, third.text
        assert "reads under way" in third.json()["detail"]
        # Writes are not reads: they go on.
        assert client.post("/api/events", json=EVENT).status_code == 201
        repo.release.set()
        assert [f.result().status_code for f in held] == [200, 200]
        assert client.get("/api/events").status_code == 200


@pytest.mark.fault
@pytest.mark.redis
async def test_a_hung_redis_lets_limited_requests_through_quickly() -> None:
    """Redis frozen (a host gone, a cluster node cut off): the limits wait a moment, no more."""
    with private_redis() as server:
        settings = {
            "rate_limit": "100/minute",
            "ingest_limit": "100/second,1MB/second,burst=1s",
            "redis_url": server.url,
        }
        async with AsyncTestClient(app(**settings)) as client:
            assert (await client.post("/api/events", json=EVENT)).status_code == 201
            server.pause()
            # Unbounded, the requests would wait for ever: Redis thaws after 5 s regardless.
            thaw = threading.Timer(5.0, server.resume)
            thaw.start()
            try:
                start = time.monotonic()
                assert (await client.post("/api/events", json=EVENT)).status_code == 201
                assert (await client.get("/api/events")).status_code == 200
                took = time.monotonic() - start
            finally:
                thaw.cancel()
                server.resume()
    assert took < 2.0, f"two requests took {took:.2f} s with Redis frozen"


class DroppedTail(MemoryEventRepository):
    """A store whose shared tail reader drops every stream at once (one too slow)."""

    def follow(self, query: Any = None, *, after: Any = None, idle: Any = None) -> Any:
        async def items() -> Any:
            raise TailOverflow("this tail fell 1000 events behind the others and was dropped")
            yield  # an async generator

        return items()


async def test_a_stream_too_slow_is_told_why_it_closes() -> None:
    async with AsyncTestClient(app(DroppedTail())) as client:
        response = await client.get("/api/events/stream")
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert lines[0] == ": connected"
    assert ": closed: this tail fell 1000 events behind the others and was dropped" in lines
