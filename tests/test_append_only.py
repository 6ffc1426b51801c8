"""Append-only in the database: PostgreSQL refuses changes to events, but retention's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sysevents import AppendOnlyError, EventPatch, NewEvent, RetentionPolicy
from sysevents.cli import main
from sysevents.stores.postgres import PostgresEventRepository
from tests.conftest import FreshDatabases

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
REFUSED = "SEA01"


@pytest.fixture
def url(test_databases: FreshDatabases) -> str:
    """A database of its own: the flag it leaves set would refuse other tests' TRUNCATE."""
    return test_databases.create()


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresEventRepository]:
    repo = PostgresEventRepository(url, fold_interval=0, append_only=True)
    await repo.open()
    yield repo
    await repo.close()


def refused(url: str, statement: str) -> str | None:
    """The SQLSTATE a statement typed by hand fails with (``None``: it went through)."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            return exc.sqlstate
    return None


async def test_statements_typed_in_psql_are_refused(
    store: PostgresEventRepository, url: str
) -> None:
    event = await store.add(NewEvent(event_type="deploy", message="v1"))
    assert refused(url, f"UPDATE system_events SET message = 'v2' WHERE id = {event.id}") == REFUSED
    assert refused(url, f"DELETE FROM system_events WHERE id = {event.id}") == REFUSED
    assert refused(url, "TRUNCATE system_events CASCADE") == REFUSED
    with psycopg.connect(url) as conn:
        partition = conn.execute(
            "SELECT tableoid::regclass::text FROM system_events WHERE id = %s", (event.id,)
        ).fetchone()
    assert partition is not None
    # A partition reached by its own name is refused alike.
    assert refused(url, f"DELETE FROM {partition[0]} WHERE id = {event.id}") == REFUSED
    assert (await store.get(event.id)).message == "v1"
    # The store's own paths say why, as they did before the trigger.
    with pytest.raises(AppendOnlyError):
        await store.update(event.id, EventPatch(message="v3"))


async def test_retention_still_deletes_and_drops(store: PostgresEventRepository, url: str) -> None:
    old = [
        NewEvent(event_type="kept", message="old", timestamp=NOW - timedelta(days=400)),
        NewEvent(event_type="short", message="a week old", timestamp=NOW - timedelta(days=7)),
        NewEvent(event_type="short", message="new", timestamp=NOW),
    ]
    await store.add_many(old)
    report = await store.apply_retention(RetentionPolicy.parse("*=300d,type:short=1d"), now=NOW)
    assert report.removed == 2
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT message FROM system_events").fetchall()
    assert left == [("new",)]
    # Only retention was let through.
    assert refused(url, "DELETE FROM system_events") == REFUSED


def test_the_command_turns_it_off_and_on(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:  # inserting stays allowed
        conn.execute(
            'INSERT INTO system_events (event_type, severity, message, "timestamp") '
            "VALUES ('a', 'info', 'in the history partition', '2001-01-01')"
        )
    assert main(["append-only", "on", "--database-url", url]) == 0
    assert refused(url, "DELETE FROM system_events") == REFUSED
    assert main(["append-only", "off", "--database-url", url]) == 0
    assert refused(url, "DELETE FROM system_events") is None
    assert "allows changes" in capsys.readouterr().out


async def test_without_the_setting_nothing_is_refused(url: str) -> None:
    repo = PostgresEventRepository(url, fold_interval=0)
    async with repo:
        event = await repo.add(NewEvent(event_type="deploy", message="v1"))
    assert refused(url, f"UPDATE system_events SET message = 'v2' WHERE id = {event.id}") is None
