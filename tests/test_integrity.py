"""Tamper evidence: digests over PostgreSQL and memory, tampered with behind the store's back.

Each tamper test changes the tables by SQL, as someone with access to the
database would, and checks that ``sysevents verify`` names what changed and
exits 1; changes made through sysevents (audited updates and deletes,
retention dropping a month) leave it at 0.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sysevents import EventPatch, MemoryEventRepository, NewEvent, RetentionPolicy, Severity
from sysevents.cli import main
from sysevents.integrity import Entry, canonical, fingerprint, verify
from sysevents.integrity.canonical import micros
from sysevents.integrity.digest import unpack_entries
from sysevents.integrity.signing import Signer
from sysevents.stores.postgres import PostgresEventRepository
from sysevents.upkeep import apply_and_record
from tests.conftest import FreshDatabases
from tests.test_partitions import empty_years_url, months_of_events, years_url  # noqa: F401

SIGNER = Signer.generate()
NOW = datetime.now(UTC)


def sql(url: str, statement: str, *params: object) -> None:
    """Run one statement by hand, as someone with the database's password would."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


@pytest.fixture
def url(test_databases: FreshDatabases) -> str:
    return test_databases.create()


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresEventRepository]:
    repo = PostgresEventRepository(url, fold_interval=0, seal_interval=0, seal_key=SIGNER.text())
    async with repo:
        yield repo


@pytest.fixture
def public_key(tmp_path: Path) -> str:
    path = tmp_path / "seal.pem"
    path.write_text(SIGNER.public_pem())
    return str(path)


async def run_verify(url: str, *extra: str) -> tuple[int, str]:
    """``sysevents verify``'s exit status and output (run in a thread: it has its own loop)."""
    import contextlib
    import io

    def command() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(["verify", "--database-url", url, *extra])
        return status, out.getvalue()

    return await asyncio.to_thread(command)


async def sealed_events(store: PostgresEventRepository, n: int = 20) -> list[int]:
    events = await store.add_many(
        [NewEvent(event_type="deploy", message=f"v{i}", details={"n": i}) for i in range(n)],
        caller="ci",
    )
    assert await store.seal()
    return [e.id for e in events]


# -- the canonical form -------------------------------------------------------------------


@pytest.mark.postgres
async def test_the_database_computes_the_documented_fingerprint(
    store: PostgresEventRepository,
) -> None:
    """The database's entries and fingerprints equal the Python ones, value for value."""
    tricky = [
        {"event_type": "é.ü", "message": 'quote " back \\ tab \t nl \n bell \x07 ﻿ end'},
        {"event_type": "t", "message": "m", "details": {"b": 1, "aa": 2, "ccc": {"": None}}},
        {"event_type": "t", "message": "m", "details": {"x": [1.5, -0.25, True, "\u2028"]}},
        {"event_type": "t", "message": "m", "details": {"big": 12345678901234567, "z": {}}},
        {"event_type": "t", "message": "m", "source": "s", "trace_id": "ab" * 16},
        {"event_type": "t", "message": "m", "timestamp": "0999-01-02T03:04:05.000006Z"},
        *({"event_type": "s", "severity": s.value, "message": "m"} for s in Severity),
    ]
    events = await store.add_many([NewEvent.model_validate(t) for t in tricky], caller="who")
    await store.seal()
    (digest,) = await store.seals.digests()
    sealed = {e.id: e for e in unpack_entries(digest.entries)}  # packed by the database
    for event in events:
        stored = await store.get(event.id)
        assert stored is not None
        entry = sealed[event.id]
        assert entry == Entry(
            stored.id,
            micros(stored.timestamp),
            stored.severity,
            stored.event_type,
            fingerprint(canonical(stored)),
        ), stored
        assert await store.seals.fingerprint_of(stored.model_dump()) == entry.fingerprint


# -- tampering by SQL ----------------------------------------------------------------------


@pytest.mark.postgres
async def test_an_edited_row_is_named(
    store: PostgresEventRepository, url: str, public_key: str
) -> None:
    ids = await sealed_events(store)
    assert (await run_verify(url, "--public-key", public_key))[0] == 0
    sql(url, "UPDATE system_events SET message = 'v1-approved' WHERE id = %s", ids[3])
    status, out = await run_verify(url, "--public-key", public_key)
    assert status == 1
    assert f"event {ids[3]}: changed" in out
    assert out.count(": changed") == 1


@pytest.mark.postgres
async def test_a_deleted_row_is_named(
    store: PostgresEventRepository, url: str, public_key: str
) -> None:
    ids = await sealed_events(store)
    sql(url, "DELETE FROM system_events WHERE id = %s", ids[7])
    status, out = await run_verify(url, "--public-key", public_key)
    assert status == 1
    assert f"event {ids[7]}: removed" in out


@pytest.mark.postgres
async def test_inserted_rows_are_named(
    store: PostgresEventRepository, url: str, public_key: str
) -> None:
    await sealed_events(store)
    digest = await store.seals.last_digest()
    assert digest is not None
    insert = 'INSERT INTO system_events (event_type, severity, message, "timestamp", created_at'
    # Put into the range a digest sealed (its transaction id made to look old).
    sql(
        url,
        insert + ", ingest_xid) VALUES ('deploy', 'info', 'slipped in', now(), now(), %s)",
        digest.last[0] - 1,
    )
    # Made to look as if written yesterday, then sealed like any new row.
    sql(
        url,
        insert + ") VALUES ('deploy', 'info', 'yesterday', now() - interval '1 day', "
        "now() - interval '1 day')",
    )
    await store.seal()
    with psycopg.connect(url) as conn:
        forged = dict(conn.execute("SELECT message, id FROM system_events").fetchall())
    status, out = await run_verify(url, "--public-key", public_key)
    assert status == 1
    assert f"event {forged['slipped in']}: added" in out
    assert f"event {forged['yesterday']}: backdated" in out


@pytest.mark.postgres
async def test_edited_or_removed_digests_fail(
    store: PostgresEventRepository, url: str, public_key: str
) -> None:
    await sealed_events(store)
    await store.add(NewEvent(event_type="deploy", message="next"))
    await store.seal()
    sql(url, "UPDATE sysevents_digests SET count = count + 1 WHERE seq = 1")
    status, out = await run_verify(url, "--public-key", public_key)
    assert status == 1
    assert "digest 1: digest: the signature does not match: the digest was edited" in out
    sql(url, "UPDATE sysevents_digests SET count = count - 1 WHERE seq = 1")
    assert (await run_verify(url, "--public-key", public_key))[0] == 0
    sql(url, "UPDATE sysevents_digests SET entries = substring(entries FROM 38) WHERE seq = 1")
    assert (
        "entries do not match its events hash"
        in (await run_verify(url, "--public-key", public_key))[1]
    )
    sql(url, "DELETE FROM sysevents_digests WHERE seq = 1")
    status, out = await run_verify(url)
    assert status == 1
    assert "does not name the previous digest" in out or "missing" in out


@pytest.mark.postgres
async def test_a_wrong_public_key_fails(
    store: PostgresEventRepository, url: str, tmp_path: Path
) -> None:
    await sealed_events(store)
    other = tmp_path / "other.pem"
    other.write_text(Signer.generate().public_pem())
    status, out = await run_verify(url, "--public-key", str(other))
    assert status == 1
    assert "signed by another key" in out
    status, out = await run_verify(url)  # no key given, none configured: said so
    assert status == 0
    assert "signatures NOT checked" in out


@pytest.mark.postgres
async def test_changes_through_sysevents_are_not_tampering(
    store: PostgresEventRepository, url: str, public_key: str
) -> None:
    ids = await sealed_events(store)
    await store.update(ids[0], EventPatch(message="v0 fixed", details={"n": -1}), actor="ops")
    await store.delete(ids[1], actor="ops")
    status, out = await run_verify(url, "--public-key", public_key)
    assert status == 0, out
    assert f"audited updates): {ids[0]}" in out
    assert f"audited deletes): {ids[1]}" in out
    # The same row changed again behind the store's back is caught.
    sql(url, "UPDATE system_events SET source = 'elsewhere' WHERE id = %s", ids[0])
    status, out = await run_verify(url, "--public-key", public_key)
    assert status == 1
    assert f"event {ids[0]}: changed" in out


@pytest.mark.postgres
async def test_a_month_dropped_by_retention_stays_verifiable(
    empty_years_url: str,  # noqa: F811 - the fixture of test_partitions
    public_key: str,
) -> None:
    repo = PostgresEventRepository(
        empty_years_url, fold_interval=0, seal_interval=0, seal_key=SIGNER.text()
    )
    async with repo:
        await months_of_events(repo, 5)
        await repo.seal()
        report = await apply_and_record(repo, RetentionPolicy.parse("*=100d"))
        assert report.partitions_dropped
        await repo.seal()
    status, out = await run_verify(empty_years_url, "--public-key", public_key)
    assert status == 0, out
    assert f"removed by retention: {report.removed}" in out


@pytest.mark.postgres
async def test_sealing_waits_for_transactions_still_open(
    store: PostgresEventRepository, url: str
) -> None:
    """A row committed late, with an older transaction id, is sealed after it commits."""
    with psycopg.connect(url) as slow:
        slow.execute(
            'INSERT INTO system_events (event_type, severity, message, "timestamp") '
            "VALUES ('deploy', 'info', 'slow writer', now())"
        )
        fast = await store.add(NewEvent(event_type="deploy", message="fast writer"))
        await store.seal()
        sealed = {e.id for d in await store.seals.digests() for e in unpack_entries(d.entries)}
        assert fast.id not in sealed  # behind a transaction still open: not yet
        slow.commit()
    await store.seal()
    report = await verify(store.seals, public_key=SIGNER.public)
    assert report.ok, report.lines()
    assert report.unsealed == 0
    assert report.events == 2


@pytest.mark.postgres
async def test_the_sealer_runs_in_the_background(url: str) -> None:
    repo = PostgresEventRepository(url, fold_interval=0, seal_interval=0.05)
    async with repo:
        await repo.add(NewEvent(event_type="deploy", message="sealed by itself"))
        found: list[object] = []

        async def sealed() -> bool:
            found[:] = await repo.seals.digests()
            return bool(found)

        deadline = asyncio.get_running_loop().time() + 10
        while not await sealed():
            assert asyncio.get_running_loop().time() < deadline, "no digest within 10 s"
            await asyncio.sleep(0.02)


# -- the memory store ------------------------------------------------------------------------


async def test_memory_tampering_is_named() -> None:
    async with MemoryEventRepository(seal_key=SIGNER.text(), seal_interval=0) as repo:
        events = await repo.add_many([NewEvent(event_type="t", message=str(i)) for i in range(5)])
        await repo.seal()
        inside = repo._events  # what a debugger (or a bug) could reach
        inside[events[0].id] = events[0].model_copy(update={"message": "edited"})
        del inside[events[1].id]
        report = await verify(repo.seals, public_key=SIGNER.public)
    assert not report.ok
    assert {(f.kind, f.event_id) for f in report.tampered} == {
        ("changed", events[0].id),
        ("removed", events[1].id),
    }


# -- commands ------------------------------------------------------------------------------


def test_seal_key_prints_a_key_and_its_public_half(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = tmp_path / "public.pem"
    assert main(["seal-key", "--public-key-file", str(pem)]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("SYSEVENTS_SEAL_KEY="))
    key = Signer.from_text(line.split("=", 1)[1])
    assert pem.read_text() == key.public_pem()
    assert key.public_pem() in out
    monkeypatch.setenv("SYSEVENTS_SEAL_KEY", key.text())
    assert main(["seal-key", "--public-only"]) == 0
    assert capsys.readouterr().out == key.public_pem()
    monkeypatch.setenv("SYSEVENTS_SEAL_KEY", "not a key")
    assert main(["seal-key", "--public-only"]) == 2
    assert "sysevents seal-key" in capsys.readouterr().err


def test_verify_refuses_a_bad_since_or_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--since", "last tuesday"]) == 2
    assert "--since" in capsys.readouterr().err
    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    assert main(["verify", "--public-key", str(bad)]) == 2
    assert "Ed25519" in capsys.readouterr().err


def test_since_reads_times_and_ages() -> None:
    from sysevents.cli.seal import since_of

    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert since_of("36h", now) == now - timedelta(hours=36)
    assert since_of("2026-12-01T00:00:00") == datetime(2026, 12, 1, tzinfo=UTC)
    assert since_of("2026-12-01T00:00:00+01:00").utcoffset() == timedelta(hours=1)
    assert json.dumps(since_of("1w", now).isoformat())


def test_the_canonical_form_is_as_documented() -> None:
    from sysevents import Event

    event = Event(
        id=7,
        event_type="deploy",
        severity=Severity.INFO,
        message='v1 "ok"\n',
        details={"bb": [1, 2.5, None], "a": {"é": True}},
        source=None,
        timestamp=datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC),
        created_at=datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC),
        written_by="3f9c2a1e0b7d",
    )
    assert canonical(event) == (
        b"sysevents-event-v1\n"
        b'[7, "deploy", "info", "v1 \\"ok\\"\\n", {"a": {"\xc3\xa9": true}, "bb": [1, 2.5, null]}, '
        b'null, 1000005, 2000000, null, null, null, "3f9c2a1e0b7d"]'
    )
