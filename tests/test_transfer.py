"""Moving events: export then import gives the same events; a copy to PostgreSQL fills months."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

import sysevents
from sysevents import EventPatch, NewEvent
from sysevents.cli import main
from sysevents.stores.postgres.ids import month_index
from sysevents.stores.postgres.partitions import partition_name

NOW = datetime.now(UTC).replace(microsecond=123456)


def some_events() -> list[NewEvent]:
    """Events of many months (back a year), with details, keys, traces, and a duplicate."""
    out = []
    for i in range(60):
        out.append(
            NewEvent(
                event_type=f"kind.{i % 4}",
                severity=["debug", "info", "warning", "error", "critical"][i % 5],
                message=f"event {i} Ünïcode",
                details={"i": i, "nested": {"ok": i % 2 == 0}, "list": [1, 2.5, "x"]},
                source=None if i % 3 == 0 else f"src-{i % 3}",
                timestamp=NOW - timedelta(days=6 * i, minutes=i),
                idempotency_key=f"key-{i}" if i % 7 == 0 else None,
                trace_id="0af7651916cd43dd8448eb211c80319c" if i % 11 == 0 else None,
            )
        )
    out.append(out[5])  # the same event twice: both are kept, and both are imported once
    return out


async def fill(url: str) -> None:
    async with sysevents.connect(url) as repo:
        events = some_events()
        await repo.add_many(events[:30])
        await repo.add_many(events[30:], caller="writer-b")
        first = (await repo.list(sysevents.EventQuery(limit=1))).items[0]
        await repo.update(first.id, EventPatch(message="changed"), actor="admin")


def exported(
    url: str, out: Path, capsys: pytest.CaptureFixture[str], *, whole: bool = False
) -> list[dict[str, object]]:
    """The store's events as ``sysevents export`` writes them (but ids and created_at)."""
    assert main(["export", "--database-url", url, "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    if not whole:
        for row in rows:
            del row["id"], row["created_at"]
    capsys.readouterr()
    return rows


def test_export_then_import_gives_the_same_events_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    target = f"sqlite:///{tmp_path / 'b.db'}"
    asyncio.run(fill(source))
    dump = tmp_path / "a.ndjson"
    before = exported(source, dump, capsys)
    assert len(before) == 62  # 61 written, and the record of the change
    assert main(["import", "--database-url", target, str(dump)]) == 0
    assert "62 events: 62 stored, 0 already there" in capsys.readouterr().out
    # Into a new SQLite file, ids and created_at are kept too.
    whole = exported(source, tmp_path / "a2.ndjson", capsys, whole=True)
    assert exported(target, tmp_path / "b.ndjson", capsys, whole=True) == whole
    assert main(["import", "--database-url", target, str(dump)]) == 0  # again: nothing new
    assert "62 events: 0 stored, 62 already there" in capsys.readouterr().out
    assert exported(target, tmp_path / "b.ndjson", capsys) == before


@pytest.mark.postgres
def test_copy_from_sqlite_to_postgres_fills_the_months_partitions(
    tmp_path: Path, test_databases: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import FreshDatabases

    assert isinstance(test_databases, FreshDatabases)
    source = f"sqlite:///{tmp_path / 'a.db'}"
    target = test_databases.create()  # fresh: months before the last one are history
    asyncio.run(fill(source))
    before = exported(source, tmp_path / "a.ndjson", capsys)
    assert main(["copy", source, target]) == 0
    captured = capsys.readouterr()
    assert "events read" in captured.err  # progress: rows, rate
    assert "/s" in captured.err
    assert "62 events: 62 stored" in captured.out
    assert exported(target, tmp_path / "b.ndjson", capsys) == before
    assert main(["copy", source, target]) == 0
    assert "62 events: 0 stored, 62 already there" in capsys.readouterr().out
    with psycopg.connect(target) as conn:
        placed = conn.execute(
            "SELECT e.tableoid::regclass::text, e.timestamp FROM system_events e"
        ).fetchall()
        catalogued = {
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'system_events'::regclass"
            )
        }
    assert len(placed) == 62
    for table, timestamp in placed:
        assert table == partition_name(month_index(timestamp)), (table, timestamp)
    assert "system_events_history" in catalogued
    assert {partition_name(month_index(t)) for _, t in placed} <= catalogued


@pytest.mark.postgres
async def test_make_room_leaves_a_history_that_holds_the_months(test_databases: object) -> None:
    from sysevents.stores.postgres import PostgresEventRepository
    from tests.conftest import FreshDatabases

    assert isinstance(test_databases, FreshDatabases)
    url = test_databases.create()
    async with PostgresEventRepository(url, fold_interval=0) as repo:
        kept = await repo.add(
            NewEvent(event_type="t", message="m", timestamp=NOW - timedelta(days=100))
        )
        older = NOW - timedelta(days=200)
        # The history holds a row after that month: it cannot end before it.
        assert await repo.make_room([older]) == []
        stored = await repo.add(NewEvent(event_type="t", message="m", timestamp=older))
    with psycopg.connect(url) as conn:
        tables = dict(
            conn.execute("SELECT id, tableoid::regclass::text FROM system_events").fetchall()
        )
    assert tables == {kept.id: "system_events_history", stored.id: "system_events_history"}


async def test_an_id_taken_or_sealed_is_not_kept(tmp_path: Path) -> None:
    from sysevents.integrity import Difference
    from sysevents.integrity.digest import unpack_entries
    from sysevents.transfer import transfer

    async with (
        sysevents.connect(f"sqlite:///{tmp_path / 'from.db'}") as source,
        sysevents.connect(f"sqlite:///{tmp_path / 'to.db'}") as target,
    ):
        copied = await source.add_many(
            [NewEvent(event_type="t", message=f"from {i}") for i in range(12)]
        )
        held = await target.add_many(
            [NewEvent(event_type="t", message=f"to {i}") for i in range(3)]
        )
        assert sum(d.count for d in await target.seal()) == 3  # ids 1-3 are sealed
        await target.delete(held[2].id)  # free, but below the sealed end
        report = await transfer(target, [copied[1:3], copied[9:]])
        assert report.stored == 5
        stored = {e.message: e.id for e in (await target.list()).items}
        assert stored["from 9"] == copied[9].id == 10  # free, past the seals: kept
        assert stored["from 1"] != copied[1].id  # 2 is taken
        assert stored["from 2"] != copied[2].id  # 3 is free, but sealed
        digest = (await target.seals.digests())[0]
        entries = list(unpack_entries(digest.entries))
        # The sealed range gained nothing: only the deletion shows.
        assert await target.seals.differences(digest, entries, None) == [
            Difference(held[2].id, "removed")
        ]
