"""Every route and status code of the REST API, on every backend, with and without the cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

import sysevents
from sysevents import Settings

Client = AsyncTestClient[Litestar]
BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PROBLEM = "application/problem+json"


def at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat()


async def create(client: Client, **fields: Any) -> dict[str, Any]:
    body = {"event_type": "deploy", "message": "hello", "source": "api-test", **fields}
    response = await client.post("/api/events", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def seed(client: Client) -> list[dict[str, Any]]:
    """Ten events a minute apart: types a/b/c, every severity, two sources."""
    severities = ["debug", "info", "warning", "error", "critical"]
    return [
        await create(
            client,
            event_type="abc"[i % 3],
            severity=severities[i % 5],
            source="api-test" if i % 2 == 0 else "api-other",
            timestamp=at(i),
            message=f"event {i}",
        )
        for i in range(10)
    ]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = dict(response.json())
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


async def test_create_returns_201_with_location_and_the_event(client: Client) -> None:
    response = await client.post(
        "/api/events",
        json={
            "event_type": "deploy",
            "severity": "warning",
            "message": "v1.2 is live",
            "details": {"version": "1.2", "nested": {"list": [1, 2.5, None, True]}},
            "source": "ci",
            "timestamp": "2024-05-01T14:00:00+02:00",
        },
    )
    assert response.status_code == 201, response.text
    event = response.json()
    assert response.headers["location"] == f"/api/events/{event['id']}"
    assert event["event_type"] == "deploy"
    assert event["severity"] == "warning"
    assert event["details"] == {"version": "1.2", "nested": {"list": [1, 2.5, None, True]}}
    assert event["source"] == "ci"
    assert event["timestamp"] == "2024-05-01T12:00:00Z"
    assert event["created_at"].endswith("Z")
    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == event


async def test_create_applies_defaults(client: Client) -> None:
    before = datetime.now(UTC)
    event = await create(client)
    assert event["severity"] == "info"
    assert event["details"] is None
    assert datetime.fromisoformat(event["timestamp"]) >= before - timedelta(seconds=1)


async def test_get_missing_is_404_problem(client: Client) -> None:
    body = assert_problem(await client.get("/api/events/987654321"), 404)
    assert "987654321" in body["detail"]


async def test_get_out_of_range_ids_are_400(client: Client) -> None:
    for raw in ["0", "-1", str(2**63), "9" * 40, "abc", "1.5", "1e3", "%20"]:
        body = assert_problem(await client.get(f"/api/events/{raw}"), 400)
        assert body["errors"][0]["field"] == "event_id"
    assert (await client.get(f"/api/events/{2**63 - 1}")).status_code == 404


async def test_update_changes_only_given_fields(client: Client) -> None:
    event = await create(client, details={"a": 1}, severity="error")
    response = await client.put(
        f"/api/events/{event['id']}", json={"message": "corrected", "details": None}
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["message"] == "corrected"
    assert updated["details"] is None
    assert updated["severity"] == "error"
    assert updated["id"] == event["id"]
    assert updated["created_at"] == event["created_at"]
    assert (await client.get(f"/api/events/{event['id']}")).json() == updated


async def test_update_refuses_id_created_at_and_null_required_fields(client: Client) -> None:
    event = await create(client)
    for body in [{"id": 5}, {"created_at": "2024-01-01T00:00:00Z"}, {"message": None}]:
        problem = assert_problem(await client.put(f"/api/events/{event['id']}", json=body), 400)
        assert problem["errors"]
    assert (await client.get(f"/api/events/{event['id']}")).json() == event


async def test_update_missing_is_404(client: Client) -> None:
    assert_problem(await client.put("/api/events/987654321", json={"message": "x"}), 404)


async def test_delete_is_204_then_404(client: Client) -> None:
    event = await create(client)
    response = await client.delete(f"/api/events/{event['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"/api/events/{event['id']}"), 404)
    assert_problem(await client.delete(f"/api/events/{event['id']}"), 404)


async def test_list_filters(client: Client) -> None:
    events = await seed(client)

    async def ids(**params: Any) -> list[int]:
        params.setdefault("since", BASE.isoformat())
        params.setdefault("until", at(24 * 60))
        response = await client.get("/api/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(page["items"])
        return [e["id"] for e in page["items"]]

    def expect(pred: Any) -> list[int]:
        return [e["id"] for e in reversed(events) if pred(e)]

    assert await ids() == expect(lambda e: True)
    assert await ids(event_type="a") == expect(lambda e: e["event_type"] == "a")
    assert await ids(event_type=["a", "c"]) == expect(lambda e: e["event_type"] in "ac")
    assert await ids(severity="error") == expect(lambda e: e["severity"] == "error")
    assert await ids(severity=["debug", "critical"]) == expect(
        lambda e: e["severity"] in ("debug", "critical")
    )
    assert await ids(min_severity="error") == expect(
        lambda e: e["severity"] in ("error", "critical")
    )
    assert await ids(source="api-other") == expect(lambda e: e["source"] == "api-other")
    assert await ids(since=at(3), until=at(6)) == expect(lambda e: at(3) <= e["timestamp"] < at(6))
    assert await ids(event_type="b", min_severity="warning", source="api-test") == expect(
        lambda e: (
            e["event_type"] == "b"
            and e["severity"] in ("warning", "error", "critical")
            and e["source"] == "api-test"
        )
    )
    assert await ids(order="oldest") == [e["id"] for e in events]


async def test_list_without_filters_includes_every_event(client: Client) -> None:
    events = await seed(client)
    page = (await client.get("/api/events", params={"count": "exact"})).json()
    listed = {e["id"] for e in page["items"]}
    assert {e["id"] for e in events} <= listed
    assert page["total"] == len(listed)  # plus the app's own startup event
    assert page["total_exact"] is True
    assert page["limit"] == 50
    assert page["offset"] == 0
    assert page["next_cursor"] is None


async def test_paging_by_offset(client: Client) -> None:
    events = await seed(client)
    seen: list[int] = []
    for offset in range(0, 12, 3):
        response = await client.get(
            "/api/events",
            params={"source": ["api-test"], "limit": 3, "offset": offset, "order": "oldest"},
        )
        page = response.json()
        assert page["offset"] == offset
        assert page["limit"] == 3
        assert page["total"] == 5
        seen += [e["id"] for e in page["items"]]
    assert seen == [e["id"] for e in events if e["source"] == "api-test"]


async def test_paging_by_cursor_both_orders(client: Client) -> None:
    events = await seed(client)
    for order, expected in [("newest", events[::-1]), ("oldest", events)]:
        seen: list[int] = []
        params: dict[str, Any] = {"since": BASE.isoformat(), "until": at(99), "limit": 4}
        params["order"] = order
        pages = 0
        while True:
            page = (await client.get("/api/events", params=params)).json()
            pages += 1
            seen += [e["id"] for e in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == [e["id"] for e in expected]
        assert pages == 3


async def test_cursor_errors_are_400(client: Client) -> None:
    await seed(client)
    page = (await client.get("/api/events", params={"limit": 2})).json()
    cursor = page["next_cursor"]
    body = assert_problem(
        await client.get("/api/events", params={"cursor": cursor, "offset": 2}), 400
    )
    assert body["errors"]
    body = assert_problem(
        await client.get("/api/events", params={"cursor": cursor, "event_type": "other"}), 400
    )
    assert body["errors"][0]["field"] == "cursor"
    assert_problem(await client.get("/api/events", params={"cursor": "garbage"}), 400)


async def test_count_modes(client: Client) -> None:
    await seed(client)
    params = {"since": BASE.isoformat(), "until": at(99), "limit": 2}
    assert (await client.get("/api/events", params={**params, "count": "exact"})).json()[
        "total"
    ] == 10
    page = (await client.get("/api/events", params={**params, "count": "none"})).json()
    assert page["total"] is None
    assert len(page["items"]) == 2


async def test_stats_with_filters(client: Client) -> None:
    await seed(client)
    response = await client.get(
        "/api/events/stats", params={"since": BASE.isoformat(), "until": at(99)}
    )
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["total"] == 10
    assert stats["by_severity"] == {
        "debug": 2,
        "info": 2,
        "warning": 2,
        "error": 2,
        "critical": 2,
    }
    assert stats["by_type"] == {"a": 4, "b": 3, "c": 3}
    assert stats["by_source"] == {"api-test": 5, "api-other": 5}
    assert stats["first_timestamp"] == at(0).replace("+00:00", "Z")
    assert stats["last_timestamp"] == at(9).replace("+00:00", "Z")
    assert stats["last_hour"] == 0
    filtered = (
        await client.get(
            "/api/events/stats",
            params={"event_type": ["a", "b"], "min_severity": "error", "source": "api-test"},
        )
    ).json()
    assert filtered["total"] == 1  # event 4: type b, critical
    assert filtered["by_severity"]["debug"] == 0
    assert_problem(await client.get("/api/events/stats", params={"severity": "loud"}), 400)


async def test_recent_counts_in_stats(client: Client) -> None:
    await create(client, event_type="recent")
    stats = (await client.get("/api/events/stats", params={"event_type": "recent"})).json()
    assert stats["last_hour"] == 1
    assert stats["last_24h"] == 1


async def test_list_bad_parameters_are_400(client: Client) -> None:
    for params, field in [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"severity": "loud"}, "severity"),
        ({"min_severity": "loud"}, "min_severity"),
        ({"order": "random"}, "order"),
        ({"count": "maybe"}, "count"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2024-01-01T00:00:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-05:00"}, "until"),
        ({"event_type": "x" * 51}, "event_type"),
        ({"source": "bad\x01source"}, "source"),
    ]:
        body = assert_problem(await client.get("/api/events", params=params), 400)
        assert field in [e["field"].split(".")[0] for e in body["errors"]], (params, body)


async def test_health_never_touches_the_store(client: Client, settings: Settings) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == sysevents.__version__
    assert body["uptime"] >= 0
    if settings.redis_url:
        assert isinstance(body["cache"]["hits"], int)
    else:
        assert body["cache"] is None


async def test_health_db_reports_latency(client: Client) -> None:
    response = await client.get("/api/health/db")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["latency_ms"] >= 0


async def test_options_lists_every_method(client: Client) -> None:
    response = await client.options("/api/events/1")
    allowed = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
    assert set(response.headers["allow"].split(", ")) == allowed
    response = await client.options("/api/events")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert_problem(await client.patch("/api/events/1", json={}), 405)
