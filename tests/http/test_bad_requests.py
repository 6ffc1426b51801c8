"""The bad-request table: every malformed request is a 4xx problem, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from sysevents import Settings
from sysevents.keys import new_key
from sysevents_http import HttpOptions, create_app

Client = AsyncTestClient[Litestar]
MAX_BODY = 256 * 1024
GOOD: dict[str, Any] = {"event_type": "deploy", "message": "ok"}


def event(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


DEEP_OBJECT = b'{"event_type":"x","message":"m","details":' + b'{"n":' * 1200 + b"{}" + b"}" * 1201

# (case id, method, path, body, content type, status, field named in `errors` or None)
CASES: list[tuple[str, str, str, bytes | None, str, int, str | None]] = [
    # every rule of the event
    ("event_type missing", "POST", "/api/events", b'{"message": "m"}', "json", 400, "event_type"),
    ("event_type empty", "POST", "/api/events", event(event_type=""), "json", 400, "event_type"),
    ("event_type blank", "POST", "/api/events", event(event_type="   "), "json", 400, "event_type"),
    ("event_type 51", "POST", "/api/events", event(event_type="x" * 51), "json", 400, "event_type"),
    (
        "event_type control",
        "POST",
        "/api/events",
        event(event_type="a\nb"),
        "json",
        400,
        "event_type",
    ),
    ("event_type number", "POST", "/api/events", event(event_type=5), "json", 400, "event_type"),
    ("severity unknown", "POST", "/api/events", event(severity="fatal"), "json", 400, "severity"),
    ("severity uppercase", "POST", "/api/events", event(severity="INFO"), "json", 400, "severity"),
    ("message missing", "POST", "/api/events", b'{"event_type": "x"}', "json", 400, "message"),
    ("message empty", "POST", "/api/events", event(message=""), "json", 400, "message"),
    ("message NUL", "POST", "/api/events", event(message="a\x00b"), "json", 400, "message"),
    (
        "message too big",
        "POST",
        "/api/events",
        event(message="x" * (64 * 1024 + 1)),
        "json",
        400,
        "message",
    ),
    ("details not object", "POST", "/api/events", event(details=[1, 2]), "json", 400, "details"),
    (
        "details NUL value",
        "POST",
        "/api/events",
        event(details={"k": "a\x00"}),
        "json",
        400,
        "details",
    ),
    ("details NUL key", "POST", "/api/events", event(details={"a\x00": 1}), "json", 400, "details"),
    ("details too deep", "POST", "/api/events", event(details=nested(33)), "json", 400, "details"),
    (
        "details too big",
        "POST",
        "/api/events",
        event(details={"k": "x" * (64 * 1024)}),
        "json",
        400,
        "details",
    ),
    ("source 101", "POST", "/api/events", event(source="s" * 101), "json", 400, "source"),
    ("source control", "POST", "/api/events", event(source="a\tb"), "json", 400, "source"),
    ("timestamp number", "POST", "/api/events", event(timestamp=0), "json", 400, "timestamp"),
    (
        "timestamp naive",
        "POST",
        "/api/events",
        event(timestamp="2024-01-01T00:00:00"),
        "json",
        400,
        "timestamp",
    ),
    (
        "timestamp text",
        "POST",
        "/api/events",
        event(timestamp="yesterday"),
        "json",
        400,
        "timestamp",
    ),
    (
        "timestamp overflow",
        "POST",
        "/api/events",
        event(timestamp="9999-12-31T23:59:59-05:00"),
        "json",
        400,
        "timestamp",
    ),
    (
        "timestamp future",
        "POST",
        "/api/events",
        event(timestamp="2999-01-01T00:00:00Z"),
        "json",
        400,
        "timestamp",
    ),
    ("id given", "POST", "/api/events", event(id=7), "json", 400, "id"),
    (
        "created_at given",
        "POST",
        "/api/events",
        event(created_at="2024-01-01T00:00:00Z"),
        "json",
        400,
        "created_at",
    ),
    ("unknown field", "POST", "/api/events", event(colour="red"), "json", 400, "colour"),
    (
        "two bad fields",
        "POST",
        "/api/events",
        event(event_type="", severity="x"),
        "json",
        400,
        "severity",
    ),
    # malformed JSON in every way
    (
        "bad UTF-8",
        "POST",
        "/api/events",
        b'{"event_type": "\xff\xfe", "message": "m"}',
        "json",
        400,
        None,
    ),
    ("deep nesting", "POST", "/api/events", b"[" * 5000 + b"]" * 5000, "json", 400, None),
    (
        "deep object",
        "POST",
        "/api/events",
        DEEP_OBJECT,
        "json",
        400,
        None,
    ),
    (
        "huge integer",
        "POST",
        "/api/events",
        b'{"event_type":"x","message":"m","details":{"n":' + b"9" * 5000 + b"}}",
        "json",
        400,
        None,
    ),
    (
        "huge float",
        "POST",
        "/api/events",
        b'{"event_type":"x","message":"m","details":{"n":1e999}}',
        "json",
        400,
        "details",
    ),
    (
        "NaN",
        "POST",
        "/api/events",
        b'{"event_type":"x","message":"m","details":{"n":NaN}}',
        "json",
        400,
        None,
    ),
    (
        "duplicate keys",
        "POST",
        "/api/events",
        b'{"event_type":"x","message":"m","message":"n"}',
        "json",
        400,
        None,
    ),
    ("truncated", "POST", "/api/events", b'{"event_type": "x", "mess', "json", 400, None),
    ("empty body", "POST", "/api/events", b"", "json", 400, "body"),
    ("whitespace body", "POST", "/api/events", b"  \n ", "json", 400, None),
    ("array body", "POST", "/api/events", b"[]", "json", 400, None),
    ("null body", "POST", "/api/events", b"null", "json", 400, None),
    ("string body", "POST", "/api/events", b'"event"', "json", 400, None),
    ("wrong content type", "POST", "/api/events", event(), "text/plain", 415, None),
    (
        "form body",
        "POST",
        "/api/events",
        b"event_type=x&message=m",
        "application/x-www-form-urlencoded",
        415,
        None,
    ),
    (
        "oversized body",
        "POST",
        "/api/events",
        b'{"message": "' + b"x" * MAX_BODY + b'"}',
        "json",
        413,
        None,
    ),
    # bad updates
    ("patch null message", "PUT", "/api/events/1", b'{"message": null}', "json", 400, "message"),
    (
        "patch bad severity",
        "PUT",
        "/api/events/1",
        b'{"severity": "loud"}',
        "json",
        400,
        "severity",
    ),
    ("patch id", "PUT", "/api/events/1", b'{"id": 2}', "json", 400, "id"),
    ("patch array", "PUT", "/api/events/1", b"[1]", "json", 400, None),
    ("patch bad UTF-8", "PUT", "/api/events/1", b'{"message": "\xc3"}', "json", 400, None),
    ("patch timestamp 0", "PUT", "/api/events/1", b'{"timestamp": 0}', "json", 400, "timestamp"),
    (
        "patch oversized",
        "PUT",
        "/api/events/1",
        b'{"message": "' + b"x" * MAX_BODY + b'"}',
        "json",
        413,
        None,
    ),
    # bad ids
    ("id zero", "GET", "/api/events/0", None, "json", 400, "event_id"),
    ("id negative", "DELETE", "/api/events/-5", None, "json", 400, "event_id"),
    ("id 2^63", "GET", f"/api/events/{2**63}", None, "json", 400, "event_id"),
    ("id 2^64 put", "PUT", f"/api/events/{2**64}", b'{"message": "m"}', "json", 400, "event_id"),
    ("id text", "DELETE", "/api/events/abc", None, "json", 400, "event_id"),
    # bad query parameters
    ("limit zero", "GET", "/api/events?limit=0", None, "json", 400, "limit"),
    ("limit huge", "GET", "/api/events?limit=99999999999999999999999", None, "json", 400, "limit"),
    ("offset negative", "GET", "/api/events?offset=-1", None, "json", 400, "offset"),
    (
        "severity bad",
        "GET",
        "/api/events?severity=info&severity=loud",
        None,
        "json",
        400,
        "severity",
    ),
    ("since naive", "GET", "/api/events?since=2024-01-01T00:00:00", None, "json", 400, "since"),
    (
        "until overflow",
        "GET",
        "/api/events/stats?until=9999-12-31T23:59:59-05:00",
        None,
        "json",
        400,
        "until",
    ),
    ("cursor garbage", "GET", "/api/events?cursor=not-a-cursor", None, "json", 400, "cursor"),
    (
        "event_type NUL",
        "GET",
        "/api/events/stats?event_type=a%00b",
        None,
        "json",
        400,
        "event_type",
    ),
    ("order bad", "GET", "/api/events?order=sideways", None, "json", 400, "order"),
]


KEY, _, _ = new_key()


@pytest.fixture
async def client(plain_settings: Settings) -> AsyncIterator[Client]:
    # Keys required, and every request carries one with every scope: the
    # table's answers are those a real caller gets past authentication.
    settings = plain_settings.updated(auth="required", api_keys=f"table:read+write+admin:{KEY}")
    app = create_app(settings, options=HttpOptions(max_body_size=MAX_BODY))
    async with AsyncTestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        yield test_client


async def stored(client: Client) -> tuple[int, list[dict[str, Any]]]:
    response = await client.get("/api/events", params={"count": "exact", "limit": 1000})
    page = response.json()
    return page["total"], page["items"]


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
async def test_bad_request(
    client: Client,
    method: str,
    path: str,
    body: bytes | None,
    content_type: str,
    status: int,
    field: str | None,
) -> None:
    created = await client.post("/api/events", json=GOOD)
    assert created.status_code == 201
    before = await stored(client)
    headers = {"content-type": "application/json" if content_type == "json" else content_type}
    response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    if field is not None:
        named = [e["field"].split(".")[0] for e in problem["errors"]]
        assert field in named, problem
        assert field in problem["detail"]
    assert await stored(client) == before


async def test_every_bad_field_is_named(client: Client) -> None:
    body = {"event_type": "", "severity": "loud", "message": "", "source": "x" * 101}
    problem = (await client.post("/api/events", json=body)).json()
    assert {e["field"] for e in problem["errors"]} == {
        "event_type",
        "severity",
        "message",
        "source",
    }


async def test_configured_limits_apply() -> None:
    settings = Settings(max_message_bytes=100, max_details_bytes=50)
    app = create_app(settings, options=HttpOptions())
    async with AsyncTestClient(app) as client:
        ok = await client.post("/api/events", json={**GOOD, "message": "x" * 100})
        assert ok.status_code == 201
        response = await client.post("/api/events", json={**GOOD, "message": "x" * 101})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "message"
        response = await client.post("/api/events", json={**GOOD, "details": {"k": "x" * 60}})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "details"
        event_id = ok.json()["id"]
        response = await client.put(f"/api/events/{event_id}", json={"message": "y" * 101})
        assert response.status_code == 400
        assert (await client.get(f"/api/events/{event_id}")).json()["message"] == "x" * 100


async def test_raised_limits_apply() -> None:
    settings = Settings(max_message_bytes=200 * 1024)
    app = create_app(settings, options=HttpOptions())
    async with AsyncTestClient(app) as client:
        response = await client.post("/api/events", json={**GOOD, "message": "x" * 100_000})
        assert response.status_code == 201, response.text
