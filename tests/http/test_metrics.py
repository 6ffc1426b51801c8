"""``GET /metrics``: Prometheus text that its own parser reads, with counters that move."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from sysevents import MemoryEventRepository, Settings
from sysevents_http import create_app
from sysevents_http.config import HttpOptions

EVENT = {"event_type": "deploy", "message": "v1"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("sysevents_"), family.name
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: AsyncTestClient[Any]) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_counters_move_with_requests() -> None:
    app = create_app(Settings(rate_limit="off"), repository=MemoryEventRepository())
    async with AsyncTestClient(app) as client:
        before = await scrape(client)
        for _ in range(3):
            assert (await client.post("/api/events", json=EVENT)).status_code == 201
        assert (await client.get("/api/events/99999")).status_code == 404
        assert (await client.get("/api/events", params={"limit": "0"})).status_code == 400
        after = await scrape(client)
    created = {"route": "/api/events", "method": "POST", "status": "201"}
    assert value(after, "sysevents_http_requests_total", **created) == (
        value(before, "sysevents_http_requests_total", **created) + 3
    )
    missing = {"route": "/api/events/{event_id}", "method": "GET", "status": "404"}
    assert value(after, "sysevents_http_requests_total", **missing) == 1
    bad = {"route": "/api/events", "method": "GET", "status": "400"}
    assert value(after, "sysevents_http_requests_total", **bad) == 1
    latency = {"route": "/api/events", "method": "POST"}
    assert value(after, "sysevents_http_request_duration_seconds_count", **latency) == 3
    assert value(after, "sysevents_http_request_duration_seconds_sum", **latency) > 0
    add = {"operation": "add"}  # the app's own lifecycle events are stored by add too
    calls = value(before, "sysevents_store_call_duration_seconds_count", **add) + 3
    assert value(after, "sysevents_store_call_duration_seconds_count", **add) == calls
    # The histogram's buckets add up: the last one holds every call.
    assert value(after, "sysevents_store_call_duration_seconds_bucket", le="+Inf", **add) == calls


@pytest.mark.postgres
@pytest.mark.redis
async def test_pool_and_cache_figures(empty_postgres_url: str, redis_server_url: str) -> None:
    settings = Settings(
        database_url=empty_postgres_url, redis_url=redis_server_url, rate_limit="off"
    )
    async with AsyncTestClient(create_app(settings)) as client:
        created = (await client.post("/api/events", json=EVENT)).json()
        for _ in range(3):
            assert (await client.get(f"/api/events/{created['id']}")).status_code == 200
        text = await scrape(client)
    assert value(text, "sysevents_cache_hits_total") >= 2
    assert value(text, "sysevents_cache_misses_total") >= 1
    assert value(text, "sysevents_pool_connections") >= 1
    assert (
        0
        <= value(text, "sysevents_pool_connections_in_use")
        <= value(text, "sysevents_pool_connections")
    )
    # Reads never hold the write reserve: at most pool_max_size - pool_write_reserve.
    assert 0 <= value(text, "sysevents_pool_reads_in_use") <= 8
    assert value(text, "sysevents_pool_reads_waiting") == 0


async def test_metrics_can_be_turned_off() -> None:
    app = create_app(
        Settings(rate_limit="off"),
        repository=MemoryEventRepository(),
        options=HttpOptions(metrics=False),
    )
    async with AsyncTestClient(app) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/api/health")).status_code == 200


async def test_metrics_are_open_when_keys_are_required() -> None:
    app = create_app(
        Settings(rate_limit="off", auth="required"), repository=MemoryEventRepository()
    )
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/events")).status_code == 401
        text = await scrape(client)
    assert (
        value(
            text, "sysevents_http_requests_total", route="/api/events", method="GET", status="401"
        )
        == 1
    )


@pytest.mark.postgres
async def test_the_fold_backlog_shows_on_metrics_and_health(empty_postgres_url: str) -> None:
    settings = Settings(database_url=empty_postgres_url, rate_limit="off", fold_interval=0)
    async with AsyncTestClient(create_app(settings)) as client:
        batch = {"events": [EVENT] * 70}
        assert (await client.post("/api/events/batch", json=batch)).status_code == 201
        text = await scrape(client)
        assert value(text, "sysevents_fold_backlog_rows") >= 70
        assert value(text, "sysevents_fold_backlog_seconds") >= 0
        assert value(text, "sysevents_background_failures_total") == 0
        health = (await client.get("/api/health/db")).json()
        assert health["backlog"]["rows"] >= 70


async def test_made_up_methods_are_counted_as_other() -> None:
    app = create_app(Settings(rate_limit="off"), repository=MemoryEventRepository())
    async with AsyncTestClient(app) as client:
        for method in ("XRANDOM1", "XRANDOM2", "BREW"):
            await client.request(method, "/api/events")
        text = await scrape(client)
    methods = {dict(labels).get("method") for _, labels in samples(text)}
    assert not methods & {"XRANDOM1", "XRANDOM2", "BREW"}
    assert "other" in methods
