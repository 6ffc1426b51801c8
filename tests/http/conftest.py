"""Fixtures of the HTTP tests: an app per backend, run by Litestar's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from sysevents import Settings
from sysevents_http import HttpOptions, create_app

HTTP_BACKENDS = ["memory", "postgres", "memory+redis", "postgres+redis"]


def backend_settings(request: pytest.FixtureRequest, backend: str) -> Settings:
    """Settings for one backend, on this test's own database and key prefix."""
    values: dict[str, Any] = {"database_url": "memory://", "timeout": 2.0}
    if backend.startswith("postgres"):
        values["database_url"] = request.getfixturevalue("empty_postgres_url")
    if backend.endswith("+redis"):
        values["redis_url"] = request.getfixturevalue("redis_server_url")
        values["cache_prefix"] = request.getfixturevalue("cache_prefix")
    return Settings(**values)


@pytest.fixture(params=HTTP_BACKENDS)
def settings(request: pytest.FixtureRequest) -> Settings:
    """Settings of every backend, with and without the cache."""
    return backend_settings(request, request.param)


@pytest.fixture(params=["memory", "postgres"])
def plain_settings(request: pytest.FixtureRequest) -> Settings:
    """Settings of each backend without the cache."""
    return backend_settings(request, request.param)


AppFactory = Callable[..., Litestar]


@pytest.fixture
def make_app(settings: Settings) -> AppFactory:
    """Build an app on this test's backend; keyword arguments become ``HttpOptions``."""

    def make(**options: Any) -> Litestar:
        return create_app(settings, options=HttpOptions(**options))

    return make


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client of a running app (lifespan included) on this test's backend."""
    async with AsyncTestClient(make_app()) as test_client:
        yield test_client
