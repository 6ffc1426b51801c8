"""A failure nobody expected is a 500 problem, logged with its traceback."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository, StoreError
from sysevents_http import HttpOptions, create_app


class Logged(logging.Handler):
    """Keeps the records of the app's logger as they are logged, traceback included.

    The app's own handler writes them to stderr later, from a thread of its
    own; this one sees each record in the logging call itself.
    """

    def __init__(self, app: Litestar) -> None:
        super().__init__()
        self.lines: list[str] = []
        assert app.logger is not None
        app.logger.addHandler(self)  # the logger exists once the app runs

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class Broken(MemoryEventRepository):
    """Lists crash with a bug; stats fail inside the driver."""

    async def list(self, query: Any = None) -> Any:
        raise RuntimeError("a bug in list")

    async def list_json(self, query: Any = None, *, max_bytes: int = 0) -> Any:
        raise RuntimeError("a bug in list")

    async def stats(self, query: Any = None) -> Any:
        raise StoreError("the driver failed in stats")


async def test_500s_are_problems_and_are_logged() -> None:
    app = create_app(repository=Broken(), options=HttpOptions())
    async with AsyncTestClient(app) as client:
        logged = Logged(app)
        for path, secret in [("/api/events", "a bug in list"), ("/api/events/stats", "driver")]:
            response = await client.get(path)
            assert response.status_code == 500
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["status"] == 500
            assert secret not in response.text  # internals stay in the log
        err = logged.text
    assert err.count("Traceback (most recent call last)") >= 2
    assert "RuntimeError: a bug in list" in err
    assert "StoreError: the driver failed in stats" in err


async def test_client_errors_are_not_logged_as_tracebacks() -> None:
    app = create_app(repository=MemoryEventRepository(), options=HttpOptions())
    async with AsyncTestClient(app) as client:
        logged = Logged(app)
        assert (await client.get("/api/events/999")).status_code == 404
        bad_utf8 = await client.post(
            "/api/events", content=b"\xff", headers={"content-type": "application/json"}
        )
        assert bad_utf8.status_code == 400
        assert (await client.get("/api/events/0")).status_code == 400
        assert "Traceback" not in logged.text
