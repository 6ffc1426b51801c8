"""Secrets appear nowhere: not in a repr, an error, a log line or a health answer."""

from __future__ import annotations

import logging
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

import sysevents
from sysevents import ConfigurationError, Settings, StoreUnavailableError
from sysevents.redact import redact_url
from tests.http.served import serve_process
from tests.http.tcp_proxy import free_port

SECRET = "hunter2-Zq9"


def refusing_url(password: str = SECRET) -> str:
    """A PostgreSQL URL with ``password`` on a port nobody listens on."""
    return f"postgresql://app:{password}@127.0.0.1:{free_port()}/app"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app:{SECRET}@db/app",
        f"postgresql://app:{SECRET}%zz@db/app",  # a malformed escape
        f"postgresql://app:{SECRET}@db:port/app",  # not even a port
        f"postgresql://db/app?sslmode=require&password={SECRET}",
        f"redis://:{SECRET}@cache:6379/0",
        f"postgresql://app:{SECRET}@bad[host/app",
    ],
)
def test_urls_are_redacted_whatever_they_look_like(url: str) -> None:
    assert SECRET not in redact_url(url)


def test_settings_never_print_their_secrets() -> None:
    settings = Settings(
        database_url=refusing_url(),
        redis_url=f"redis://:{SECRET}@127.0.0.1:6379/0",
        cursor_secret=SECRET,
    )
    for text in (repr(settings), str(settings)):
        assert SECRET not in text
        assert "app:***@127.0.0.1" in text


def test_an_unreadable_url_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigurationError) as info:
        sysevents.connect(f"postgresql://app:{SECRET}%zz@127.0.0.1/app")
    assert SECRET not in str(info.value)
    assert "%25" in str(info.value)


async def test_a_refusing_database_leaks_nothing_into_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with sysevents.connect(refusing_url(), timeout=1.0) as repo:
        for _ in range(3):
            with pytest.raises(StoreUnavailableError) as info:
                await repo.add(sysevents.NewEvent(event_type="t", message="m"))
            assert SECRET not in str(info.value)
    assert caplog.records, "the pool logged its retries: the scan must see them"
    assert SECRET not in caplog.text


def test_migrate_prints_no_password() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sysevents", "migrate", "--database-url", refusing_url()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "app:***@" in done.stderr
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.slow
def test_the_service_logs_and_answers_no_password() -> None:
    with serve_process("--database-url", refusing_url(), "--access-log") as served:
        for path in ("/api/events", "/api/health/db", "/api/health"):
            try:
                with urllib.request.urlopen(served.url + path, timeout=10) as response:
                    body = response.read().decode()
            except urllib.error.HTTPError as error:
                body = error.read().decode()
            assert SECRET not in body, path
        log = served.stop()
    assert "503" in log
    assert SECRET not in log
