"""Partitioning a filled table: data and counts come through, online, with progress shown."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from sysevents import RetentionPolicy
from sysevents.cli import main
from sysevents.migrate import current_revision, upgrade
from sysevents.stores.postgres import PostgresEventRepository
from sysevents.stores.postgres.move import move_rows
from tests.conftest import FreshDatabases
from tests.test_partitions import partitions
from tests.test_rollups import fold, rollups_are_exact

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
ROWS = (
    'SELECT id, event_type, severity, message, details, source, "timestamp", created_at, '
    "idempotency_key, idempotency_caller FROM system_events ORDER BY id"
)
COUNTS = (
    "SELECT level, bucket, event_type, severity, source, sum(n) FROM system_event_rollups "
    "GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5"
)


@pytest.fixture
def old_url(test_databases: FreshDatabases) -> str:
    """A database at revision 0004 holding two years of events."""
    url = test_databases.create(migrate=False)
    upgrade(url, "0004")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO system_events (event_type, severity, message, details, source, "
            '"timestamp", idempotency_key, idempotency_caller) '
            "SELECT 'type-' || (i %% 7), (ARRAY['debug','info','warning','error','critical'])"
            "[i %% 5 + 1], 'event ' || i, jsonb_build_object('i', i), "
            "CASE WHEN i %% 3 = 0 THEN NULL ELSE 'source-' || (i %% 4) END, "
            "%s - i * interval '7 hours', CASE WHEN i %% 10 = 0 THEN 'key-' || i END, "
            "CASE WHEN i %% 20 = 0 THEN 'a caller' ELSE '' END "
            "FROM generate_series(1, 2500) AS i",
            (NOW,),
        )
        conn.execute("DELETE FROM system_events WHERE id % 11 = 0")
        conn.execute("UPDATE system_events SET severity = 'error' WHERE id % 13 = 0")
    return url


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(ROWS).fetchall()


def _counts(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(COUNTS).fetchall()


async def test_a_filled_table_comes_through_whole(
    old_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    rows, counts = _rows(old_url), _counts(old_url)
    assert len(rows) > 2000
    with caplog.at_level(logging.INFO, logger="sysevents.migrate"):
        upgrade(old_url)
    progress = [r.getMessage() for r in caplog.records if r.name == "sysevents.migrate"]
    assert any(line.startswith("moving about") for line in progress), progress
    assert any(("100% of the ids" in line) & ("/s" in line) for line in progress), progress
    assert _rows(old_url) == rows
    assert _counts(old_url) == counts
    # The months of the old events have partitions of their own.
    oldest = min(r[6] for r in rows)
    assert f"system_events_p{oldest:%Y_%m}" in partitions(old_url)
    repo = PostgresEventRepository(old_url, fold_interval=0)
    async with repo:
        for row in rows[::97]:
            event = await repo.get(row[0])
            assert event is not None
            assert (event.id, event.message) == (row[0], row[3])
        assert (await repo.stats()).total == len(rows)
        # New events get ids of their own month, beyond every old one.
        new = await repo.add_many([])
        assert new == []
        report = await repo.apply_retention(RetentionPolicy.parse("*=400d"), now=NOW)
        assert report.partitions_dropped
        assert (await repo.stats()).total == len(rows) - report.removed
    fold(old_url)
    rollups_are_exact(old_url)


def test_the_move_is_online(old_url: str) -> None:
    """Writers carry on between the two migrations; nothing they do is lost."""
    upgrade(old_url, "0005")
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with psycopg.connect(old_url, autocommit=True) as conn:
                i = 0
                while not stop.is_set() or i < 30:
                    conn.execute(
                        "INSERT INTO system_events (event_type, severity, message, "
                        "\"timestamp\") VALUES ('live', 'info', %s, %s)",
                        (f"live {i}", NOW - timedelta(days=i % 400)),
                    )
                    conn.execute(
                        "UPDATE system_events SET message = message || '!' WHERE id = %s",
                        (1 + (i * 37) % 2500,),
                    )
                    conn.execute("DELETE FROM system_events WHERE id = %s", (2 + (i * 53) % 2500,))
                    i += 1
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    lines: list[str] = []
    try:
        moved = move_rows(old_url, batch=200, report=lines.append, every=0.0)
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    assert moved > 2000
    assert len([line for line in lines if line.startswith("moved ")]) >= 10
    rows, counts = _rows(old_url), _counts(old_url)
    upgrade(old_url)
    assert current_revision(old_url) is not None
    assert _rows(old_url) == rows
    fold(old_url)
    rollups_are_exact(old_url)
    assert len(counts) > 0


def test_dry_runs_print_the_plan(old_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database-url", old_url, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "0005" in out
    assert "0006" in out
    with psycopg.connect(old_url) as conn:
        stored = conn.execute("SELECT count(*) FROM system_events").fetchone()
    assert stored is not None
    assert f"about {stored[0]:,} event(s) to move" in out, out
    assert "per transaction" in out, out
    assert current_revision(old_url) == "0004"  # nothing changed
    upgrade(old_url)
    before = _rows(old_url)
    assert main(["retention", "--database-url", old_url, "--policy", "*=30d", "--dry-run"]) == 0
    out = capsys.readouterr().out
    old = [r for r in before if r[6] < NOW - timedelta(days=30)]
    assert f"*=30d: would remove {len(old)} event(s)" in out, out
    assert _rows(old_url) == before
    assert main(["retention", "--database-url", old_url, "--policy", "*=30d"]) == 0
    out = capsys.readouterr().out
    assert f"*=30d: removed {len(old)} event(s)" in out, out
    left = _rows(old_url)
    assert len(left) == len(before) - len(old) + 1
    assert all(r[6] >= NOW - timedelta(days=30) for r in left if r[1] != "sysevents.retention")
    assert any(r[1] == "sysevents.retention" for r in left), "the run is recorded as an event"
