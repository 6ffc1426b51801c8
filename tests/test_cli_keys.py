"""``sysevents keys`` and the refusal of ``sysevents serve`` to run open beyond this machine."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from sysevents.cli import main
from sysevents.keys import split_key
from tests.http.served import serve_process


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sysevents", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.postgres
def test_create_list_revoke(empty_postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM sysevents_api_keys")
    db = ["--database-url", empty_postgres_url]
    assert (
        main(["keys", *db, "create", "--name", "ingest", "--scope", "write", "--expires", "90d"])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    key = out[-1]
    assert split_key(key) is not None  # the key, on the last line
    assert main(["keys", *db, "list"]) == 0
    listed = capsys.readouterr().out
    assert "ingest" in listed
    assert "active" in listed
    assert key not in listed
    assert main(["keys", *db, "revoke", "ingest"]) == 0
    capsys.readouterr()
    assert main(["keys", *db, "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", *db, "create", "--name", "ingest", "--scope", "read"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["keys", *db, "create", "--name", "x", "--scope", "root"]) == 2
    assert "unknown scope" in capsys.readouterr().err
    assert main(["keys", *db, "revoke", "nobody"]) == 2


def test_a_memory_store_gets_an_entry_for_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "keys",
                "--database-url",
                "memory://",
                "create",
                "--name",
                "web",
                "--scope",
                "read,write",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    key = lines[-1]
    assert split_key(key) is not None
    assert f"web:read+write:{key}" in lines


def test_serve_refuses_an_open_service_beyond_this_machine() -> None:
    done = run("serve", "--host", "0.0.0.0", "--port", "1")
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 with no API key" in done.stderr
    assert "sysevents keys create" in done.stderr


def test_serve_with_auth_off_beyond_this_machine_warns() -> None:
    with serve_process("--host", "0.0.0.0", "--auth", "off") as served:
        log = served.stop()
    assert "with auth off: anyone who can reach it" in log


@pytest.mark.postgres
def test_creating_and_revoking_a_key_is_recorded(
    empty_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--database-url", empty_postgres_url]
    assert main(["keys", *db, "create", "--name", "ops", "--scope", "admin"]) == 0
    key = split_key(capsys.readouterr().out.splitlines()[-1])
    assert key is not None
    assert main(["keys", *db, "revoke", "ops"]) == 0
    with psycopg.connect(empty_postgres_url) as conn:
        rows = conn.execute(
            "SELECT event_type, written_by, details->>'key_id', details->>'name' "
            "FROM system_events WHERE event_type LIKE 'sysevents.key_%' ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == ["sysevents.key_created", "sysevents.key_revoked"]
    for _, written_by, key_id, name in rows:
        assert written_by.startswith("cli:")  # who typed the command
        assert (key_id, name) == (key[0], "ops")


@pytest.mark.postgres
def test_a_name_in_the_setting_and_in_the_store_is_refused(
    empty_postgres_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sysevents.keys import new_key

    db = ["--database-url", empty_postgres_url]
    assert main(["keys", *db, "create", "--name", "wr", "--scope", "write"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("SYSEVENTS_API_KEYS", f"wr:write:{new_key()[0]}")
    assert main(["serve", *db, "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "two keys named 'wr'" in err
    # Nor can the store take a name the setting holds.
    monkeypatch.setenv("SYSEVENTS_API_KEYS", f"ro:read:{new_key()[0]}")
    assert main(["keys", *db, "create", "--name", "ro", "--scope", "read"]) == 2
    assert "SYSEVENTS_API_KEYS" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "1"],
        ["export", "--database-url", "memory://"],
        ["tail", "--database-url", "memory://"],
        ["retention", "--database-url", "memory://"],
        ["keys", "--database-url", "memory://", "list"],
        ["migrate", "--database-url", "memory://"],
        ["verify", "--database-url", "memory://"],
        ["seal-key"],
        ["append-only", "on", "--database-url", "memory://"],
    ],
)
@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SYSEVENTS_RATE_LIMIT", "5/fortnight", "rate_limit"),
        ("SYSEVENTS_API_KEYS", "not-an-entry", "SYSEVENTS_API_KEYS"),
    ],
)
def test_a_wrong_setting_is_one_line_and_exit_2(
    command: list[str], variable: str, value: str, named: str
) -> None:
    import os

    env = {**os.environ, variable: value}
    done = run(*command, env=env)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert named in done.stderr
