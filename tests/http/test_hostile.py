"""What one request may cost: bounded work, bounded answers, however hostile the request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository, NewEvent, Settings
from sysevents_http import HttpOptions, create_app

Client = AsyncTestClient[Litestar]
EVENT = {"event_type": "deploy", "message": "ok"}
MAX_ERROR_ANSWER = 64 * 1024


class CountingRepository(MemoryEventRepository):
    """Counts add_many calls: a refused batch must never reach the store."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.batches = 0

    async def add_many(self, news: Any, *, caller: str | None = None) -> Any:
        self.batches += 1
        return await super().add_many(news, caller=caller)


@pytest.fixture
async def repo() -> CountingRepository:
    return CountingRepository()


@pytest.fixture
async def client(repo: CountingRepository) -> AsyncIterator[Client]:
    app = create_app(repository=repo, options=HttpOptions(max_body_size=8 * 1024 * 1024))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def test_a_half_million_item_batch_is_refused_by_its_count(
    client: Client, repo: CountingRepository
) -> None:
    body = b'{"events": [' + b",".join([b"0"] * 500_000) + b"]}"
    response = await client.post(
        "/api/events/batch", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert len(response.content) < 2048  # one error: no item was validated
    problem = response.json()
    assert problem["error_count"] == 1
    assert problem["errors"][0]["field"] == "events"
    assert "500000" in problem["errors"][0]["message"]
    assert repo.batches == 0


async def test_a_flood_of_unknown_fields_gets_a_small_answer(client: Client) -> None:
    body = {**EVENT, **{f"k{i}": 0 for i in range(90_000)}}
    response = await client.post("/api/events", json=body)
    assert response.status_code == 400
    assert len(response.content) <= MAX_ERROR_ANSWER
    problem = response.json()
    assert problem["error_count"] == 90_000
    assert len(problem["errors"]) == 50
    assert {e["field"] for e in problem["errors"]} <= {f"k{i}" for i in range(90_000)}


async def test_a_batch_of_bad_events_lists_fifty_errors_and_their_count(client: Client) -> None:
    bad = {"event_type": "\n" * 50, "severity": "loud", "message": ""}
    response = await client.post("/api/events/batch", json={"events": [bad] * 1000})
    assert response.status_code == 400
    assert len(response.content) <= MAX_ERROR_ANSWER
    problem = response.json()
    assert problem["error_count"] == 3000
    assert len(problem["errors"]) == 50
    assert problem["detail"].endswith("and 2997 more")


async def test_error_texts_full_of_control_characters_stay_small(client: Client) -> None:
    # A key escapes to six bytes a character in JSON: fifty long ones would not fit.
    body = {**EVENT, **{"\x01" * 1000 + str(i): 0 for i in range(60)}}
    response = await client.post("/api/events", json=body)
    assert response.status_code == 400
    assert len(response.content) <= MAX_ERROR_ANSWER
    assert response.json()["error_count"] == 60


@pytest.mark.parametrize("value", ["1e3", "10.0", "+5", " 5", "1_000", "0x10", "-1"])
async def test_page_numbers_must_be_written_in_digits(client: Client, value: str) -> None:
    for name in ("limit", "offset"):
        response = await client.get("/api/events", params={name: value})
        assert response.status_code == 400, (name, value)
        assert response.json()["errors"][0]["field"] == name


async def test_an_encoded_body_is_refused_not_misread(
    client: Client, repo: CountingRepository
) -> None:
    response = await client.post(
        "/api/events",
        content=json.dumps(EVENT).encode(),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 415
    assert "encoding" in response.json()["detail"]
    assert len(repo) == 1  # the start-up event only


async def test_head_answers_what_get_would_without_a_body(client: Client) -> None:
    for path in ("/api/events", "/api/events/stats", "/api/health", "/api/health/db"):
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
    assert (await client.head("/api/events/424242")).status_code == 404


async def fat_events(repo: MemoryEventRepository, count: int, size: int) -> None:
    # Control characters escape to six bytes each: the worst case for an answer.
    await repo.add_many(
        [NewEvent(event_type="fat", message="\x01" * size, details={"i": i}) for i in range(count)]
    )


async def test_a_page_stays_under_its_byte_budget_and_walks_on_by_cursor() -> None:
    repo = MemoryEventRepository(max_message_bytes=64 * 1024)
    await fat_events(repo, 40, 64 * 1024)  # 40 x 384 KiB as JSON: 15 MiB in one page
    settings = Settings(max_page_bytes=1024 * 1024)
    app = create_app(settings, repository=repo, options=HttpOptions())
    seen: list[int] = []
    async with AsyncTestClient(app) as client:
        params: dict[str, Any] = {"event_type": "fat", "limit": 1000}
        while True:
            response = await client.get("/api/events", params=params)
            assert response.status_code == 200
            assert len(response.content) <= 1024 * 1024
            page = response.json()
            assert page["items"], "a page always holds at least one event"
            seen += [item["details"]["i"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
    assert sorted(seen) == list(range(40))
    assert len(seen) == len(set(seen))


async def test_one_event_larger_than_the_budget_still_comes_alone() -> None:
    repo = MemoryEventRepository(max_message_bytes=64 * 1024)
    await fat_events(repo, 3, 64 * 1024)
    app = create_app(Settings(max_page_bytes=1024), repository=repo, options=HttpOptions())
    async with AsyncTestClient(app) as client:
        page = (await client.get("/api/events", params={"event_type": "fat"})).json()
        assert len(page["items"]) == 1
        assert page["next_cursor"] is not None


async def test_stats_breakdowns_are_cut_to_the_top() -> None:
    repo = MemoryEventRepository(stats_top=2)
    await repo.add_many(
        [NewEvent(event_type=f"t{n}", message="m", source=f"s{n}") for n in (1, 2, 2, 3, 3, 3)]
    )
    app = create_app(repository=repo, options=HttpOptions())
    async with AsyncTestClient(app) as client:
        stats = (await client.get("/api/events/stats", params={"source": "s3"})).json()
        assert stats["by_type"] == {"t3": 3}
        assert stats["truncated"] is False
        stats = (
            await client.get("/api/events/stats", params={"event_type": ["t1", "t2", "t3"]})
        ).json()
    assert list(stats["by_type"].items()) == [("t3", 3), ("t2", 2)]
    assert (stats["by_type_other"], stats["truncated"]) == (1, True)
    assert list(stats["by_source"]) == ["s3", "s2"]
    assert stats["by_source_other"] == 1
    assert stats["total"] == 6


async def test_an_offset_past_a_hundred_thousand_is_refused(client: Client) -> None:
    deepest = await client.get("/api/events", params={"offset": "100000"})
    assert deepest.status_code == 200
    for value in ("100001", str(2**63 - 1)):
        response = await client.get("/api/events", params={"offset": value, "count": "exact"})
        assert response.status_code == 400, value
        assert response.json()["errors"][0]["field"] == "offset"
        assert "cursor" in response.json()["errors"][0]["message"] or "100000" in response.text
