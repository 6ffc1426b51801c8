"""A failure nobody expected is a 500 problem, logged with its traceback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository, StoreError
from sysevents_http import HttpOptions, create_app


class Broken(MemoryEventRepository):
    """Lists crash with a bug; stats fail inside the driver."""

    async def list(self, query: Any = None) -> Any:
        raise RuntimeError("a bug in list")

    async def stats(self, query: Any = None) -> Any:
        raise StoreError("the driver failed in stats")


async def test_500s_are_problems_and_are_logged(capfd: pytest.CaptureFixture[str]) -> None:
    app = create_app(repository=Broken(), options=HttpOptions())
    async with AsyncTestClient(app) as client:
        for path, secret in [("/api/events", "a bug in list"), ("/api/events/stats", "driver")]:
            response = await client.get(path)
            assert response.status_code == 500
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["status"] == 500
            assert secret not in response.text  # internals stay in the log
    await asyncio.sleep(0.2)  # the log handler writes from its own thread
    err = capfd.readouterr().err
    assert err.count("Traceback (most recent call last)") >= 2
    assert "RuntimeError: a bug in list" in err
    assert "StoreError: the driver failed in stats" in err


async def test_client_errors_are_not_logged_as_tracebacks(
    capfd: pytest.CaptureFixture[str],
) -> None:
    app = create_app(repository=MemoryEventRepository(), options=HttpOptions())
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/events/999")).status_code == 404
        assert (await client.post("/api/events", content=b"\xff")).status_code == 400
        assert (await client.get("/api/events/0")).status_code == 400
    await asyncio.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err
