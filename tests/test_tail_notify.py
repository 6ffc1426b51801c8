"""The live tail's wake-up: at most one NOTIFY per interval per session (migration 0009).

A notifying transaction holds a server-wide lock through its commit, so the
trigger must not notify on every insert of a busy writer; these tests pin when
it does. Each ends with a marker insert from another session: notifications
arrive in commit order, so once the marker is in, every earlier one is too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def session(url: str, interval: str) -> Iterator[psycopg.Connection]:
    """A writer's session with ``sysevents.notify_interval`` set to ``interval``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('sysevents.notify_interval', %s, false)", [interval])
        yield conn


def notifications_from(pid: int, listener: psycopg.Connection, url: str) -> int:
    """How many notifications ``pid`` sent, counted up to a marker from a fresh session."""
    with session(url, "0") as marker:
        marker.execute(INSERT)
        marker_pid = marker.info.backend_pid
    pids: list[int] = []
    for note in listener.notifies(timeout=10):
        if note.pid == marker_pid:
            return pids.count(pid)
        pids.append(note.pid)
    raise AssertionError("the marker's notification did not arrive within 10 s")


@pytest.mark.parametrize(
    ("interval", "inserts", "notified"),
    [("3600", 5, 1), ("0", 3, 3)],
    ids=["a busy session notifies once per interval", "interval 0 notifies on every insert"],
)
def test_notifications_per_session(
    listener: psycopg.Connection,
    empty_postgres_url: str,
    interval: str,
    inserts: int,
    notified: int,
) -> None:
    with session(empty_postgres_url, interval) as writer:
        for _ in range(inserts):
            writer.execute(INSERT)
        pid = writer.info.backend_pid
    assert notifications_from(pid, listener, empty_postgres_url) == notified


def test_the_interval_expires(listener: psycopg.Connection, empty_postgres_url: str) -> None:
    with session(empty_postgres_url, "0.05") as writer:
        writer.execute(INSERT)
        writer.execute("SELECT pg_sleep(0.1)")  # the interval itself is what must pass
        writer.execute(INSERT)
        pid = writer.info.backend_pid
    assert notifications_from(pid, listener, empty_postgres_url) == 2


@pytest.mark.parametrize("savepoint", [False, True], ids=["transaction", "savepoint"])
def test_a_rolled_back_insert_does_not_silence_the_next(
    listener: psycopg.Connection, empty_postgres_url: str, savepoint: bool
) -> None:
    with session(empty_postgres_url, "3600") as writer:
        with writer.transaction():
            if savepoint:  # rolled back to a savepoint, the outer transaction commits
                with writer.transaction(force_rollback=True):
                    writer.execute(INSERT)
            else:
                writer.execute("SELECT 1")
        if not savepoint:
            with writer.transaction(force_rollback=True):
                writer.execute(INSERT)
        writer.execute(INSERT)
        pid = writer.info.backend_pid
    assert notifications_from(pid, listener, empty_postgres_url) == 1


def test_off_sends_nothing(listener: psycopg.Connection, empty_postgres_url: str) -> None:
    # What a transaction to be prepared for two-phase commit sets: PostgreSQL
    # refuses PREPARE TRANSACTION after NOTIFY.
    with session(empty_postgres_url, "off") as writer:
        for _ in range(3):
            writer.execute(INSERT)
        pid = writer.info.backend_pid
    assert notifications_from(pid, listener, empty_postgres_url) == 0


def test_a_setting_that_is_not_a_plain_decimal_never_fails_an_insert(
    listener: psycopg.Connection, empty_postgres_url: str
) -> None:
    with session(empty_postgres_url, "9" * 400) as writer:
        writer.execute("SET sysevents.notified_at = 'never'")
        writer.execute(INSERT)  # both settings ignored: never notified, so it notifies
        writer.execute("SET sysevents.notify_interval = '5e-2'")
        writer.execute(INSERT)  # ignored too: the default 0.1 s has not passed
        pid = writer.info.backend_pid
        count = writer.execute(
            "SELECT count(*) FROM system_events WHERE event_type = 'notify_test'"
        ).fetchone()
    assert count == (2,)
    assert notifications_from(pid, listener, empty_postgres_url) == 1
