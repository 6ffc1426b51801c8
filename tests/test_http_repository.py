"""HttpEventRepository: the conformance suite through a live REST API."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
import pytest_asyncio
import uvicorn

import sysevents
from sysevents import (
    ConfigurationError,
    ConflictError,
    InvalidEventError,
    NewEvent,
    StoreError,
    StoreUnavailableError,
)
from sysevents.stores.http import HttpEventRepository
from sysevents.testing import EventRepositoryConformance
from sysevents_http import create_app
from tests.conftest import EMPTY_EVENTS, FreshDatabases

pytestmark = pytest.mark.postgres


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """The REST API on uvicorn in a thread, on a free port, over its own database."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.url = f"http://127.0.0.1:{free_port()}"
        app = create_app(database_url=database_url)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=int(self.url.rsplit(":", 1)[1]),
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the live server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def empty(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(EMPTY_EVENTS)


@pytest.fixture(scope="module")
def live_server(test_databases: FreshDatabases) -> Iterator[LiveServer]:
    with LiveServer(test_databases.create()) as server:
        yield server


class TestHttpConformance(EventRepositoryConformance):
    """Every backend behaviour, through the API (which stores in PostgreSQL)."""

    @pytest_asyncio.fixture
    async def repo(self, live_server: LiveServer) -> AsyncIterator[sysevents.EventRepository]:
        live_server.empty()
        async with sysevents.connect(live_server.url) as repo:
            yield repo


def test_connect_picks_the_http_backend() -> None:
    repo = sysevents.connect("https://events.example.org/")
    assert isinstance(repo, HttpEventRepository)
    assert repo.base_url == "https://events.example.org"
    with pytest.raises(ConfigurationError, match="unknown database URL scheme"):
        sysevents.connect("ftp://events.example.org")


async def test_an_unreachable_api_is_unavailable() -> None:
    async with sysevents.connect(f"http://127.0.0.1:{free_port()}", timeout=1.0) as repo:
        with pytest.raises(StoreUnavailableError):
            await repo.add(NewEvent(event_type="t", message="m"))
        with pytest.raises(StoreUnavailableError):
            await repo.ping()


async def test_not_opened_is_a_clear_error() -> None:
    repo = HttpEventRepository("http://127.0.0.1:1")
    with pytest.raises(StoreUnavailableError, match="not open"):
        await repo.get(1)


@pytest.mark.parametrize(
    ("status", "body", "headers", "error"),
    [
        (200, b"<html>a proxy page</html>", {"content-type": "text/html"}, StoreError),
        (200, b'{"unexpected": true}', {"content-type": "application/json"}, StoreError),
        (200, b"not gzip", {"content-encoding": "gzip"}, StoreError),
        (429, b"", {}, StoreUnavailableError),
        (502, b"bad gateway", {}, StoreUnavailableError),
        (500, b'{"detail": "boom"}', {"content-type": "application/json"}, StoreError),
        (422, b'{"detail": "reused key"}', {}, ConflictError),
        (400, b"garbage", {}, InvalidEventError),
    ],
)
async def test_odd_answers_become_library_errors(
    status: int, body: bytes, headers: dict[str, str], error: type[Exception]
) -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(status, content=body, headers=headers)
    )
    async with HttpEventRepository("http://api.test", transport=transport) as repo:
        with pytest.raises(error):
            await repo.add(NewEvent(event_type="t", message="m"))


async def test_a_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        await HttpEventRepository("http://[::1").open()
