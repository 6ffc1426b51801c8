"""The one table of stored fields agrees with the models and the formats derived from it."""

from __future__ import annotations

import csv
import io
import sqlite3
from contextlib import closing
from pathlib import Path

from sysevents import Event, EventPatch, NewEvent
from sysevents.audit import changes_between
from sysevents.columns import COLUMNS, FIELDS, GIVEN, PATCHABLE
from sysevents.export import csv_rows


def test_the_table_lists_every_field_of_an_event_in_order() -> None:
    assert tuple(Event.model_fields) == FIELDS


def test_given_and_patchable_fields_are_those_of_the_input_models() -> None:
    assert {c.name for c in GIVEN} == set(NewEvent.model_fields)
    assert {c.name for c in PATCHABLE} == set(EventPatch.model_fields)
    assert {c.name for c in COLUMNS if not c.given} == {"id", "created_at", "written_by"}
    assert {c.name for c in COLUMNS if c.stamp} == {"written_by"}


def test_a_csv_export_has_a_column_per_field() -> None:
    event = Event.model_validate(
        {
            "id": 7,
            "event_type": "deploy",
            "severity": "info",
            "message": "=1+1",
            "details": {"v": 1},
            "source": None,
            "timestamp": "2026-01-01T00:00:00Z",
            "created_at": "2026-01-01T00:00:01Z",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        }
    )
    (row,) = csv.DictReader(io.StringIO(csv_rows([event]).decode(), newline=""))
    assert tuple(row) == FIELDS
    assert row["message"] == "'=1+1"  # never a formula
    assert row["details"] == '{"v": 1}'
    assert row["trace_id"] == event.trace_id


def test_the_audit_compares_every_patchable_field() -> None:
    before = Event.model_validate(
        {
            "id": 1,
            "event_type": "a",
            "severity": "info",
            "message": "m",
            "details": None,
            "source": None,
            "timestamp": "2026-01-01T00:00:00Z",
            "created_at": "2026-01-01T00:00:00Z",
        }
    )
    changed = {c.name: getattr(before, c.name) for c in PATCHABLE}
    after = before.model_copy(
        update={
            "event_type": "b",
            "severity": "error",
            "message": "n",
            "details": {"x": 1},
            "source": "s",
            "timestamp": before.timestamp.replace(year=2025),
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
        }
    )
    assert set(changes_between(before, after)) == set(changed)


def test_every_filter_is_part_of_the_cache_key() -> None:
    """A filter left out of the key would share a cached answer with the unfiltered one."""
    from datetime import UTC, datetime

    from sysevents import EventFilter
    from sysevents.cache.tokens import cache_filter

    samples: dict[str, object] = {
        "event_type": ["deploy"],
        "severity": ["error"],
        "min_severity": "warning",
        "source": "ci",
        "since": datetime(2024, 1, 1, tzinfo=UTC),
        "until": datetime(2024, 2, 1, tzinfo=UTC),
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "written_by": "0f3a9c2e71b4",
        "q": "disk",
        "details": {"user.id": 7},
    }
    assert set(samples) == set(EventFilter.model_fields), "a new filter needs a sample here"
    unfiltered = cache_filter(EventFilter()).filter_key()
    for name, value in samples.items():
        one = EventFilter.model_validate({name: value})
        assert cache_filter(one).filter_key() != unfiltered, name


def test_a_new_sqlite_file_has_a_column_per_field(tmp_path: Path) -> None:
    # SQLite's CREATE TABLE is a versioned step written out by hand (like a
    # migration): a field added to COLUMNS needs a step that adds its column.
    from sysevents.stores.sqlite.rows import column_name
    from sysevents.stores.sqlite.schema import migrate_file

    path = str(tmp_path / "events.db")
    migrate_file(path)
    with closing(sqlite3.connect(path)) as conn:
        found = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    assert {column_name(c.name) for c in COLUMNS} <= found
