"""Migrations build exactly the schema in ``sysevents.schema``, from a checkout or a wheel."""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sysevents import ConfigurationError, StoreUnavailableError
from sysevents.cli import main
from sysevents.migrate import downgrade, find_migrations, upgrade
from sysevents.schema import metadata
from tests.conftest import skip_or_fail, uv_command

pytestmark = pytest.mark.postgres

VERSION_TABLE = "sysevents_alembic_version"
PARTITION = re.compile(r"system_(events|event_rollups)_(p[0-9]{4}_[0-9]{2}|history)")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_url(test_databases: Any) -> str:
    url: str = test_databases.create(migrate=False)
    return url


@pytest.fixture
def engine(fresh_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(fresh_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield eng
    eng.dispose()


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def _drift(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": VERSION_TABLE,
                "compare_type": True,
                "compare_server_default": True,
                # The time partitions are made at run time, not described.
                "include_name": lambda name, type_, _parents: (
                    not (type_ in ("table", "index") and PARTITION.match(name or ""))
                ),
            },
        )
        diff: list[Any] = compare_metadata(context, metadata)
        return diff


def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    upgrade(fresh_url)
    assert {"system_events", VERSION_TABLE} <= _tables(fresh_url)
    upgrade(fresh_url)  # already at head: nothing to do
    downgrade(fresh_url, "base")
    assert "system_events" not in _tables(fresh_url)
    upgrade(fresh_url)
    assert "system_events" in _tables(fresh_url)
    with psycopg.connect(fresh_url) as conn:
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    assert row == (head(),)
    assert _triggers(fresh_url) == {
        "system_events_truncate",
        "system_events_deleted",
        "system_events_updated",
        "system_events_notify",
        "system_events_append_only",
        "system_events_append_only_truncate",
    }
    downgrade(fresh_url, "0011")
    assert "sysevents_flags" not in _tables(fresh_url)
    assert "system_events_append_only" not in _triggers(fresh_url)
    downgrade(fresh_url, "0004")
    assert _triggers(fresh_url) == {
        "system_events_rollup_insert",
        "system_events_rollup_update",
        "system_events_rollup_delete",
        "system_events_rollup_truncate",
    }
    assert {"system_event_locator", "system_event_keys"}.isdisjoint(_tables(fresh_url))
    downgrade(fresh_url, "0003")
    assert {"sysevents_api_keys", "sysevents_secrets"}.isdisjoint(_tables(fresh_url))
    downgrade(fresh_url, "0002")
    assert "system_event_rollups" not in _tables(fresh_url)
    assert _triggers(fresh_url) == set()
    downgrade(fresh_url, "0001")
    assert "system_events" in _tables(fresh_url)
    upgrade(fresh_url)
    assert "system_event_rollups" in _tables(fresh_url)
    assert _triggers(fresh_url) == {
        "system_events_truncate",
        "system_events_deleted",
        "system_events_updated",
        "system_events_notify",
        "system_events_append_only",
        "system_events_append_only_truncate",
    }


def head() -> str:
    """The newest revision of the migrations."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(find_migrations()))
    revision = ScriptDirectory.from_config(config).get_current_head()
    assert revision is not None
    return revision


def test_migrate_makes_a_cursor_secret_for_every_replica(fresh_url: str) -> None:
    upgrade(fresh_url)
    with psycopg.connect(fresh_url) as conn:
        first = conn.execute("SELECT value FROM sysevents_secrets WHERE name = 'cursor'").fetchone()
    assert first is not None
    assert len(first[0]) == 64  # 256 random bits, in hex
    upgrade(fresh_url)  # again: the secret stays
    with psycopg.connect(fresh_url) as conn:
        again = conn.execute("SELECT value FROM sysevents_secrets WHERE name = 'cursor'").fetchone()
    assert again == first


def _triggers(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgrelid = 'system_events'::regclass"
        ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_counts_the_events_already_stored(
    fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(fresh_url, "0002")
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO system_events (event_type, severity, message, source, "timestamp") '
            "SELECT 't' || (i % 3), 'info', 'm', CASE WHEN i % 2 = 0 THEN 's' END, "
            "'2024-05-01T00:00:00Z'::timestamptz - i * interval '5 hours' "
            "FROM generate_series(1, 500) AS i"
        )
    with caplog.at_level(logging.INFO, logger="sysevents.migrate"):
        upgrade(fresh_url)
    said = [r.getMessage() for r in caplog.records if r.name == "sysevents.migrate"]
    assert any(line.startswith("counting the 500 stored event(s)") for line in said), said
    assert any(line.startswith("counted 500 event(s) in") for line in said), said
    with psycopg.connect(fresh_url) as conn:
        by_level = conn.execute(
            "SELECT level, sum(n) FROM system_event_rollups GROUP BY level ORDER BY level"
        ).fetchall()
        hours = conn.execute(
            "SELECT bucket, event_type, source, n FROM system_event_rollups "
            "WHERE level = 0 ORDER BY 1, 2, 3"
        ).fetchall()
        expected = conn.execute(
            "SELECT date_trunc('hour', \"timestamp\", 'UTC'), event_type, "
            "coalesce(source, ''), count(*) FROM system_events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
    assert by_level == [(level, 500) for level in range(6)]
    assert hours == expected


def test_migrations_match_the_metadata(fresh_url: str, engine: sa.Engine) -> None:
    upgrade(fresh_url)
    assert _drift(engine) == []


def test_drift_would_be_noticed(fresh_url: str, engine: sa.Engine) -> None:
    upgrade(fresh_url)
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        conn.execute("DROP INDEX ix_system_events_severity_timestamp_id")
        conn.execute("ALTER TABLE system_events ALTER COLUMN source TYPE varchar(200)")
    kinds = {str(d[0][0] if isinstance(d, list) else d[0]) for d in _drift(engine)}
    assert {"add_index", "modify_type"} <= kinds


def test_other_tables_are_left_alone(fresh_url: str, engine: sa.Engine) -> None:
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE someone_elses (id int)")
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32))")
        conn.execute("INSERT INTO alembic_version VALUES ('their-own')")
    upgrade(fresh_url)
    downgrade(fresh_url, "base")
    assert {"someone_elses", "alembic_version"} <= _tables(fresh_url)


def test_columns_and_types(fresh_url: str) -> None:
    upgrade(fresh_url)
    with psycopg.connect(fresh_url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, character_maximum_length, is_nullable, "
            "is_identity, column_default FROM information_schema.columns "
            "WHERE table_name = 'system_events' ORDER BY ordinal_position"
        ).fetchall()
    columns = {r[0]: r[1:] for r in rows}
    assert list(columns) == [
        "id",
        "event_type",
        "severity",
        "message",
        "details",
        "source",
        "timestamp",
        "created_at",
        "idempotency_key",
        "idempotency_caller",
        "ingest_xid",
        "trace_id",
        "span_id",
        "written_by",
    ]
    assert columns["written_by"][:3] == ("character varying", 100, "YES")
    # Not an identity: ids are made from the month and a sequence (see postgres/ids.py).
    assert columns["id"][:4] == ("bigint", None, "NO", "NO")
    assert columns["id"][4] == "nextval('system_events_seq'::regclass)"
    assert columns["ingest_xid"][:3] == ("bigint", None, "NO")
    assert columns["ingest_xid"][4] == "txid_current()"
    assert columns["event_type"][:3] == ("character varying", 50, "NO")
    assert columns["message"][:3] == ("text", None, "NO")
    assert columns["details"][:3] == ("jsonb", None, "YES")
    assert columns["source"][:3] == ("character varying", 100, "YES")
    assert columns["timestamp"][:3] == ("timestamp with time zone", None, "NO")
    assert columns["created_at"][:3] == ("timestamp with time zone", None, "NO")
    assert columns["created_at"][4] == "now()"
    assert columns["idempotency_key"][:3] == ("character varying", 100, "YES")


def test_severity_is_restricted_to_the_five_names(fresh_url: str) -> None:
    upgrade(fresh_url)
    insert = 'INSERT INTO system_events (event_type, severity, message, "timestamp") '
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        for name in ("debug", "info", "warning", "error", "critical"):
            conn.execute(insert + "VALUES ('t', %s, 'm', now())", (name,))
        for bad in ("INFO", "fatal", ""):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(insert + "VALUES ('t', %s, 'm', now())", (bad,))


def test_rollup_indexes(fresh_url: str) -> None:
    upgrade(fresh_url)
    with psycopg.connect(fresh_url) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'system_event_rollups'"
        ).fetchall()
    defs = {name: d.split(" USING btree ", 1)[1] for name, d in rows}
    assert defs == {"pk_system_event_rollups": "(level, bucket, event_type, severity, source)"}


def test_indexes(fresh_url: str) -> None:
    upgrade(fresh_url)
    with psycopg.connect(fresh_url) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'system_events'"
        ).fetchall()
    defs = {name: d.split(" USING ", 1)[1] for name, d in rows}
    assert defs == {
        "pk_system_events": 'btree (id, "timestamp")',
        "ix_system_events_ingest_xid_id": "btree (ingest_xid, id)",
        "ix_system_events_written_by_timestamp_id": 'btree (written_by, "timestamp" DESC, id DESC)',
        "ix_system_events_timestamp_id": 'btree ("timestamp" DESC, id DESC)',
        "ix_system_events_type_severity_timestamp_id": (
            'btree (event_type, severity, "timestamp" DESC, id DESC)'
        ),
        "ix_system_events_severity_timestamp_id": 'btree (severity, "timestamp" DESC, id DESC)',
        "ix_system_events_source_timestamp_id": 'btree (source, "timestamp" DESC, id DESC)',
        "ix_system_events_trace_id": "btree (trace_id) WHERE (trace_id IS NOT NULL)",
        "ix_system_events_message_trgm": (
            'gin (lower((message COLLATE "und-x-icu")) gin_trgm_ops)'
        ),
        "ix_system_events_details": "gin (details jsonb_path_ops)",
    }
    unique = {name for name, d in rows if d.startswith("CREATE UNIQUE")}
    assert unique == {"pk_system_events"}


# -- the command and its errors -------------------------------------------------


def test_cli_migrate(fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database-url", fresh_url]) == 0
    assert "system_events" in _tables(fresh_url)
    assert "migrated" in capsys.readouterr().out


def test_cli_migrate_reports_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database-url", "memory://"]) == 2
    assert "PostgreSQL" in capsys.readouterr().err


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres:secret@127.0.0.1:{port}/nowhere"


def test_database_down(closed_port_url: str) -> None:
    with pytest.raises(StoreUnavailableError) as info:
        upgrade(closed_port_url)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "url", ["memory://", "not a url", "mysql://localhost/db", "postgresql+asyncpg://h/db"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        upgrade(url)


def test_unknown_revision(fresh_url: str) -> None:
    with pytest.raises(ConfigurationError):
        upgrade(fresh_url, "nope")


def test_postgres_scheme_is_accepted(fresh_url: str) -> None:
    upgrade(fresh_url.replace("postgresql://", "postgres://", 1))
    assert "system_events" in _tables(fresh_url)


# -- where the migrations are found ---------------------------------------------


def test_found_where_the_package_is() -> None:
    import sysevents

    package = Path(sysevents.__file__).resolve().parent
    shipped = package / "migrations"
    # Installed from a wheel, the package carries them; run from a source
    # checkout (an editable install), the top-level folder is used.
    expected = shipped if shipped.is_dir() else ROOT / "migrations"
    assert find_migrations() == expected
    assert (expected / "env.py").is_file()


def test_installed_location_wins(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "sysevents"
    shutil.copytree(ROOT / "migrations", package / "migrations")
    assert find_migrations(package) == package / "migrations"


def test_missing_migrations(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        find_migrations(tmp_path / "a" / "b" / "sysevents")


@pytest.mark.slow
def test_migrations_run_from_the_wheel(fresh_url: str, tmp_path: Path) -> None:
    uv = uv_command()
    if uv is None:
        skip_or_fail("uv is needed to build the wheel")
        return
    built = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("sysevents-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert (site / "sysevents" / "migrations" / "env.py").is_file()
    script = (
        "import sys, sysevents.migrate as m; print(m.find_migrations()); m.upgrade(sys.argv[1])"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script, fresh_url],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": ""},
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert Path(ran.stdout.strip()) == site / "sysevents" / "migrations"
    assert "system_events" in _tables(fresh_url)


def test_trace_columns_and_their_index(fresh_url: str) -> None:
    upgrade(fresh_url)

    def columns_and_indexes() -> tuple[dict[str, tuple[Any, ...]], dict[str, str]]:
        with psycopg.connect(fresh_url) as conn:
            columns = conn.execute(
                "SELECT column_name, data_type, character_maximum_length, is_nullable "
                "FROM information_schema.columns WHERE table_name = 'system_events' "
                "AND column_name IN ('trace_id', 'span_id')"
            ).fetchall()
            indexes = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'system_events' "
                "AND indexname = 'ix_system_events_trace_id'"
            ).fetchall()
        return {c[0]: c[1:] for c in columns}, {
            n: d.split(" USING btree ", 1)[1] for n, d in indexes
        }

    columns, indexes = columns_and_indexes()
    assert columns == {
        "trace_id": ("character varying", 32, "YES"),
        "span_id": ("character varying", 16, "YES"),
    }
    assert indexes == {"ix_system_events_trace_id": "(trace_id) WHERE (trace_id IS NOT NULL)"}
    downgrade(fresh_url, "0006")
    assert columns_and_indexes() == ({}, {})
    upgrade(fresh_url)
    assert columns_and_indexes()[0].keys() == {"trace_id", "span_id"}
