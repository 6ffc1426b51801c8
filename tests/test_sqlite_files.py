"""The SQLite file as processes share it: crashes, two writers, and ``serve``'s default store."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import sysevents
from sysevents import EventQuery
from tests.http.served import free_port

WRITER = """
import asyncio, sys
import pytest

import sysevents
from sysevents import NewEvent

async def main(url, name, count):
    async with sysevents.connect(url) as repo:
        async def one(i):
            if i % 5 == 0:
                events = await repo.add_many(
                    [NewEvent(event_type="w", message=f"{name}-{i}-{j}", source=name)
                     for j in range(3)])
            else:
                events = [await repo.add(
                    NewEvent(event_type="w", message=f"{name}-{i}", source=name))]
            for e in events:
                print(e.id, flush=True)  # acknowledged: the write was committed
        for start in range(0, count, 8):
            await asyncio.gather(*(one(i) for i in range(start, min(start + 8, count))))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def writer(url: str, name: str, count: int) -> subprocess.Popen[str]:
    """A child process writing ``count`` times to ``url``, printing each acknowledged id."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, name, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_every_acknowledged_event_survives_a_kill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    child = writer(url, "crash", 100_000)
    acknowledged: list[int] = []
    assert child.stdout is not None
    try:
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "the writer ended"
            acknowledged.append(int(line))
            assert time.monotonic() < deadline, "the writer was too slow"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    async with sysevents.connect(url) as repo:
        missing = [i for i in acknowledged if await repo.get(i) is None]
        assert missing == []
        assert (await repo.stats()).total >= len(acknowledged)


async def test_two_processes_write_one_file_without_locked_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with sysevents.connect(url):
        pass  # the file exists before both start: neither races to make it
    children = [writer(url, name, 150) for name in ("a", "b")]
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert "locked" not in err
    ids = [int(line) for out, _ in outputs for line in out.split()]
    per_writer = 120 + 30 * 3  # 1 in 5 calls writes a batch of three
    assert len(ids) == len(set(ids)) == 2 * per_writer
    async with sysevents.connect(url) as repo:
        stats = await repo.stats()
        assert stats.total == 2 * per_writer
        assert stats.by_source == {"a": per_writer, "b": per_writer}
        page = await repo.list(EventQuery(limit=1000, count="exact"))
        assert sorted(e.id for e in page.items) == sorted(ids)


def _serve(cwd: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYSEVENTS_DATABASE_URL"}
    # Run from another directory, the child must import this sysevents, not another.
    here = str(Path(sysevents.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.Popen(
        [sys.executable, "-m", "sysevents", "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_up(server: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, "sysevents serve did not answer within 30 s"
            time.sleep(0.1)


def test_serve_keeps_events_in_a_file_of_its_directory_across_a_kill(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(tmp_path, port)
    try:
        _wait_up(server, url)
        request = urllib.request.Request(
            f"{url}/api/events",
            data=b'{"event_type": "deploy", "message": "kept"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        assert server.stdout is not None
        said = server.stdout.read()
        assert str(tmp_path / "sysevents.db") in said
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert (tmp_path / "sysevents.db").is_file()
    server = _serve(tmp_path, port)
    try:
        _wait_up(server, url)
        with urllib.request.urlopen(f"{url}/api/events?event_type=deploy", timeout=10) as got:
            body = got.read().decode()
        assert '"message":"kept"' in body.replace(" ", "")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_migrate_makes_and_versions_a_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sysevents.cli import main
    from sysevents.stores.sqlite.schema import SCHEMA_VERSION, file_version

    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["migrate", "--database-url", url, "--dry-run"]) == 0
    assert f"schema version 0, up to date at {SCHEMA_VERSION}" in capsys.readouterr().out
    assert not (tmp_path / "m.db").exists()  # a dry run makes nothing
    assert main(["migrate", "--database-url", url]) == 0
    assert f"from schema version 0 to {SCHEMA_VERSION}" in capsys.readouterr().out
    assert file_version(str(tmp_path / "m.db")) == SCHEMA_VERSION
    assert main(["migrate", "--database-url", url]) == 0  # again: nothing to do
    assert f"from schema version {SCHEMA_VERSION} to" in capsys.readouterr().out


async def test_one_process_at_a_time_leads_the_background_work(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lease.db'}"
    async with sysevents.connect(url) as first, sysevents.connect(url) as second:
        assert await first.leads()
        assert not await second.leads()
        assert await first.leads()  # still
    async with sysevents.connect(url) as third:
        assert await third.leads()  # the first gave it up on closing


async def test_a_failing_write_among_concurrent_ones_fails_alone(tmp_path: Path) -> None:
    from sysevents import IdempotencyConflictError, NewEvent

    async with sysevents.connect(f"sqlite:///{tmp_path / 'group.db'}") as repo:
        await repo.add(NewEvent(event_type="t", message="first", idempotency_key="k"))
        # Queued together, these share the writer's transactions: the conflict
        # is rolled back to its own savepoint, the others are committed.
        calls = [repo.add(NewEvent(event_type="t", message=f"m{i}")) for i in range(40)]
        calls.insert(20, repo.add(NewEvent(event_type="t", message="other", idempotency_key="k")))
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1
        assert isinstance(failed[0], IdempotencyConflictError)
        assert (await repo.stats()).total == 41
