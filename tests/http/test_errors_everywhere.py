"""Every error is problem details, and client errors never reach the error log."""

from __future__ import annotations

import logging

import pytest
from litestar.testing import AsyncTestClient

from sysevents_http import create_app


@pytest.mark.parametrize("path", ["/nope", "/schema", "/api", "/api/nope", "/docs/x"])
async def test_unknown_paths_are_problem_details(path: str) -> None:
    async with AsyncTestClient(create_app(database_url="memory://")) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


async def test_a_bad_cursor_is_a_quiet_400(caplog: pytest.LogCaptureFixture) -> None:
    async with AsyncTestClient(create_app(database_url="memory://")) as client:
        with caplog.at_level(logging.INFO):
            response = await client.get("/api/events", params={"cursor": "abc"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cursor"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


async def test_an_outage_logs_one_warning_not_one_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(database_url="postgresql://postgres@127.0.0.1:1/none", timeout=0.5)
    async with AsyncTestClient(app) as client:
        with caplog.at_level(logging.WARNING, logger="sysevents_http"):
            statuses = [(await client.get("/api/events/1")).status_code for _ in range(5)]
    assert statuses == [503] * 5
    unavailable = [r for r in caplog.records if "store unavailable" in r.getMessage()]
    assert len(unavailable) == 1
