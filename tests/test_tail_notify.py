"""The live tail's wake-up: at most one NOTIFY per interval per session (migration 0009).

A notifying transaction holds a server-wide lock through its commit, so the
trigger must not notify on every insert of a busy writer; these tests pin when
it does. Each ends with a marker insert from another session: notifications
arrive in commit order, so once the marker is in, every earlier one is too.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

pytestmark = pytest.mark.postgres

INSERT = (
    'INSERT INTO system_events (event_type, severity, message, details, "timestamp") '
    "VALUES ('notify_test', 'info', 'm', '{}', now())"
)
CHANNEL = "sysevents_events"


@pytest.fixture
def listener(empty_postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        conn.execute("LISTEN " + CHANNEL)
        yield conn


def notifying_pids(listener: psycopg.Connection, url: str) -> list[int]:
    """The pids of every notification up to a marker insert from a fresh session."""
    with psycopg.connect(url, autocommit=True) as marker:
        marker.execute("SET sysevents.notify_interval = '0'")
        marker.execute(INSERT)
        marker_pid = marker.info.backend_pid
    pids: list[int] = []
    for note in listener.notifies(timeout=10):
        if note.pid == marker_pid:
            return pids
        pids.append(note.pid)
    raise AssertionError("the marker's notification did not arrive within 10 s")


def test_a_busy_session_notifies_once_per_interval(
    listener: psycopg.Connection, empty_postgres_url: str
) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as writer:
        writer.execute("SET sysevents.notify_interval = '3600'")
        for _ in range(5):
            writer.execute(INSERT)
        pid = writer.info.backend_pid
    assert notifying_pids(listener, empty_postgres_url).count(pid) == 1


def test_interval_zero_notifies_on_every_statement(
    listener: psycopg.Connection, empty_postgres_url: str
) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as writer:
        writer.execute("SET sysevents.notify_interval = '0'")
        for _ in range(3):
            writer.execute(INSERT)
        pid = writer.info.backend_pid
    assert notifying_pids(listener, empty_postgres_url).count(pid) == 3


def test_a_rolled_back_insert_does_not_silence_the_next(
    listener: psycopg.Connection, empty_postgres_url: str
) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as writer:
        writer.execute("SET sysevents.notify_interval = '3600'")
        with pytest.raises(psycopg.errors.RaiseException), writer.transaction():
            writer.execute(INSERT)
            writer.execute("DO $$ BEGIN RAISE EXCEPTION 'changed my mind'; END $$")
        writer.execute(INSERT)
        pid = writer.info.backend_pid
    assert notifying_pids(listener, empty_postgres_url).count(pid) == 1


def test_a_setting_that_is_not_a_number_never_fails_an_insert(
    listener: psycopg.Connection, empty_postgres_url: str
) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as writer:
        writer.execute("SET sysevents.notify_interval = 'soon'")
        writer.execute("SET sysevents.notified_at = 'never'")
        writer.execute(INSERT)  # the default interval applies; nothing was notified yet
        pid = writer.info.backend_pid
        count = writer.execute(
            "SELECT count(*) FROM system_events WHERE event_type = 'notify_test'"
        ).fetchone()
    assert count == (1,)
    assert notifying_pids(listener, empty_postgres_url).count(pid) == 1
