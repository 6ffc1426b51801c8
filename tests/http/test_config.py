"""create_app reads its configuration from arguments or from SYSEVENTS_* variables."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from sysevents import ConfigurationError
from sysevents_http import HttpOptions, create_app


def test_options_from_the_environment() -> None:
    env = {
        "SYSEVENTS_HTTP_MAX_BODY_SIZE": "2048",
        "SYSEVENTS_HTTP_HEALTH_LOG_INTERVAL": "5",
        "SYSEVENTS_HTTP_STORE_TIMEOUT": "0.5",
    }
    expected = HttpOptions(max_body_size=2048, health_log_interval=5.0, store_timeout=0.5)
    assert HttpOptions.from_env(env) == expected
    assert HttpOptions.from_env(env, max_body_size=10).max_body_size == 10
    assert HttpOptions.from_env({}) == HttpOptions()


@pytest.mark.parametrize(
    "env",
    [
        {"SYSEVENTS_HTTP_MAX_BODY_SIZE": "big"},
        {"SYSEVENTS_HTTP_MAX_BODY_SIZE": "0"},
        {"SYSEVENTS_HTTP_STORE_TIMEOUT": "-1"},
    ],
)
def test_bad_options_are_clear_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match=r"SYSEVENTS_HTTP_|must"):
        HttpOptions.from_env(env)


async def test_factory_with_no_arguments_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYSEVENTS_DATABASE_URL", "memory://")
    monkeypatch.setenv("SYSEVENTS_MAX_MESSAGE_BYTES", "10")
    monkeypatch.setenv("SYSEVENTS_HTTP_MAX_BODY_SIZE", "300")
    async with AsyncTestClient(create_app()) as client:
        short = await client.post("/api/events", json={"event_type": "x", "message": "m" * 10})
        assert short.status_code == 201
        long = await client.post("/api/events", json={"event_type": "x", "message": "m" * 11})
        assert long.status_code == 400
        big = await client.post(
            "/api/events", json={"event_type": "x", "message": "m", "details": {"k": "v" * 400}}
        )
        assert big.status_code == 413


async def test_unknown_scheme_stops_the_start() -> None:
    app = create_app(database_url="mysql://nope")
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - anyio may wrap it in a group
        async with AsyncTestClient(app):
            pass
    error = caught.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, ConfigurationError)
    assert "mysql://" in str(error)


def test_the_service_runs_without_redis_installed() -> None:
    # `pip install sysevents[http]` brings no Redis client: nothing may import one.
    script = """
import sys
sys.modules["redis"] = None  # any import of it now fails
from litestar.testing import TestClient
from sysevents_http import create_app
with TestClient(create_app(database_url="memory://")) as client:
    created = client.post("/api/events", json={"event_type": "t", "message": "m"})
    assert created.status_code == 201, created.text
    got = client.get(f"/api/events/{created.json()['id']}")
    assert got.status_code == 200 and got.json() == created.json(), got.text
    stats = client.get("/api/events/stats")
    assert stats.status_code == 200 and stats.json()["total"] >= 1, stats.text
print("ok")
"""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
