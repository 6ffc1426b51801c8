"""Shared fixtures: real PostgreSQL and Redis, each run in its own database and key prefix.

``SYSEVENTS_TEST_POSTGRES_URL`` and ``SYSEVENTS_TEST_REDIS_URL`` point at the
servers (default: the local standard ports). Where a server is unreachable the
tests that need it skip, except when ``CI`` is set: there it is a failure.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

import sysevents

POSTGRES_URL = os.environ.get(
    "SYSEVENTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SYSEVENTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]


def pytest_configure(config: pytest.Config) -> None:
    """No rate limit unless a test sets one: tests send bursts no client would.

    Litestar's test client names its server ``testserver.local``: an open API
    answers it as it answers this machine's own names.
    """
    os.environ.setdefault("SYSEVENTS_RATE_LIMIT", "off")
    # Never the file `serve` keeps by default in its working directory: tests name their store.
    os.environ.setdefault("SYSEVENTS_DATABASE_URL", "memory://")
    # Property tests invent types by the thousand: the budget of new series is tested alone.
    os.environ.setdefault("SYSEVENTS_MAX_NEW_SERIES", "0")
    os.environ.setdefault("SYSEVENTS_ALLOWED_HOSTS", "testserver.local")


def under_ci() -> bool:
    """Whether the tests run under CI (``CI`` set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip for ``reason``, except under CI, where a missing service is a failure."""
    if under_ci():
        pytest.fail(f"{reason}; CI requires it", pytrace=False)
    pytest.skip(reason)


def unavailable(what: str, exc: BaseException) -> None:
    """Skip, or fail under CI, because a service the test needs is not there."""
    skip_or_fail(f"{what} is unreachable ({type(exc).__name__}: {exc})")


def uv_command() -> str | None:
    """The uv to build the distribution with (``SYSEVENTS_UV``, set by nox, else on PATH)."""
    given = os.environ.get("SYSEVENTS_UV")
    if given and os.path.exists(given):
        return given
    return shutil.which("uv")


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of the shared server's maintenance database (checked reachable)."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    return POSTGRES_URL


class FreshDatabases:
    """Creates fresh databases on the shared server and drops them afterwards."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.names: list[str] = []
        self._counter = itertools.count()

    def create(self, *, migrate: bool = True) -> str:
        import psycopg

        name = f"sysevents_test_{RUN_ID}_{next(self._counter)}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        url = with_database(self.server_url, name)
        if migrate:
            from sysevents.migrate import upgrade

            upgrade(url)
        return url

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def test_databases(postgres_server_url: str) -> Iterator[FreshDatabases]:
    """A factory of fresh databases, all dropped at the end of the run."""
    dbs = FreshDatabases(postgres_server_url)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def postgres_url(test_databases: FreshDatabases) -> str:
    """One migrated database for the whole run; tests empty it as they need."""
    return test_databases.create()


EMPTY_EVENTS = (
    "TRUNCATE system_event_rollups, system_event_locator, system_event_keys, system_events, "
    "sysevents_digests RESTART IDENTITY"
)
"""Empties the events and what is derived from them, locking in the order readers do
(the rollups first): a running service's fold or stats cannot deadlock with it."""


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The run's database, emptied (ids restarted, no API key) for this test."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM sysevents_flags")  # an append-only test left it refusing
        conn.execute(EMPTY_EVENTS)
        conn.execute("DELETE FROM sysevents_api_keys")  # no key: the API is open again
    return postgres_url


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """The shared Redis (checked reachable); every key this run wrote is deleted after."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
        client.ping()
    except Exception as exc:
        unavailable("Redis", exc)
    yield REDIS_URL
    for key in client.scan_iter(match=f"sysevents-test-{RUN_ID}*", count=1000):
        client.delete(key)
    client.close()


_prefixes = itertools.count()


@pytest.fixture
def cache_prefix(redis_server_url: str) -> str:
    """A key prefix of this test's own."""
    return f"sysevents-test-{RUN_ID}-{next(_prefixes)}"


BACKENDS = ["memory", "postgres", "sqlite", "memory+redis", "postgres+redis", "sqlite+redis"]


@pytest.fixture(params=BACKENDS)
async def repo(request: pytest.FixtureRequest) -> AsyncIterator[sysevents.EventRepository]:
    """An empty, open repository of every backend, with and without the cache."""
    backend: str = request.param
    options: dict[str, object] = {}
    url = "memory://"
    if backend.startswith("postgres"):
        url = request.getfixturevalue("empty_postgres_url")
    if backend.startswith("sqlite"):
        tmp_path = request.getfixturevalue("tmp_path")
        url = f"sqlite:///{tmp_path / 'events.db'}"
    if backend.endswith("+redis"):
        options["redis_url"] = request.getfixturevalue("redis_server_url")
        options["cache_prefix"] = request.getfixturevalue("cache_prefix")
    async with sysevents.connect(url, **options) as repository:
        yield repository
