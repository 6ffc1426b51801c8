"""The end of a process loses nothing and waits for nothing: exit, SIGTERM, fork."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest

from tests.conftest import FreshDatabases
from tests.http.tcp_proxy import free_port

pytestmark = pytest.mark.slow

# A bound for "exits promptly" (the drain takes 2 s): a hang check, not a benchmark.
EXIT_WITHIN = 15.0


def run_script(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def printed_events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("database", ["up", "refusing", "hanging"])
def test_a_repository_nobody_closed_does_not_keep_the_process_alive(
    test_databases: FreshDatabases, database: str
) -> None:
    hole = socket.socket()  # accepts connections, never answers: a database that hangs
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    port = hole.getsockname()[1] if database == "hanging" else free_port()
    url = (
        test_databases.create() if database == "up" else f"postgresql://u:secret@127.0.0.1:{port}/x"
    )
    script = """
        import asyncio, sys
        import sysevents

        async def main():
            repo = sysevents.connect(sys.argv[1], timeout=1.0)
            await repo.open()
            try:
                await repo.add(sysevents.NewEvent(event_type="t", message="m"))
            except sysevents.StoreUnavailableError:
                pass
            # no close(): the process must still end

        asyncio.run(main())
        print("main returned", flush=True)
    """
    started = time.monotonic()
    try:
        done = run_script(script, url, timeout=EXIT_WITHIN + 30)
    finally:
        hole.close()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "main returned" in done.stdout
    assert time.monotonic() - started < EXIT_WITHIN
    assert "secret" not in done.stdout + done.stderr


STORE_DOWN = """
    import sys
    import sysevents

    class Down(sysevents.MemoryEventRepository):
        async def add_many(self, news):
            raise sysevents.StoreUnavailableError("the store is down")

        async def add(self, new):
            raise sysevents.StoreUnavailableError("the store is down")
"""


def test_a_script_whose_store_is_down_exits_within_the_drain_time() -> None:
    script = (
        STORE_DOWN
        + """
    emitter = sysevents.EventLogger.in_thread(Down, retry_window=30)
    emitter.emit("t", "the only event")
    """
    )
    started = time.monotonic()
    done = run_script(script)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert [e["message"] for e in printed_events(done.stdout)] == ["the only event"]
    assert took < EXIT_WITHIN


def sigterm_when_ready(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` until it prints ``ready``, then SIGTERM it; what it did, all of it."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.strip() == "ready", first + (process.stderr.read() if process.stderr else "")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=EXIT_WITHIN + 30)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_sigterm_with_the_store_down_prints_every_event() -> None:
    script = (
        STORE_DOWN
        + """
    import time
    emitter = sysevents.EventLogger.in_thread(Down, retry_window=30)
    for i in range(18000):
        emitter.emit("t", str(i))
    print("ready", flush=True)
    time.sleep(60)
    """
    )
    started = time.monotonic()
    done = sigterm_when_ready(script)
    assert time.monotonic() - started < EXIT_WITHIN
    assert done.returncode == -signal.SIGTERM  # the default action still happens
    messages = sorted(int(e["message"]) for e in printed_events(done.stdout))  # type: ignore[call-overload]
    assert messages == list(range(18000))


def test_sigterm_stores_what_the_emitter_holds(test_databases: FreshDatabases) -> None:
    url = test_databases.create()
    script = """
        import sys, time
        import sysevents
        emitter = sysevents.EventLogger.in_thread(lambda: sysevents.connect(sys.argv[1]))
        for i in range(18000):
            emitter.emit("t", str(i))
        print("ready", flush=True)
        time.sleep(60)
    """
    done = sigterm_when_ready(script, url)
    assert done.returncode == -signal.SIGTERM
    printed = {int(e["message"]) for e in printed_events(done.stdout)}  # type: ignore[call-overload]
    with psycopg.connect(url) as conn:
        stored = {int(m) for (m,) in conn.execute("SELECT message FROM system_events")}
    # A batch cancelled right after its commit is printed too: its lines carry
    # their idempotency keys, so replaying them stores nothing twice.
    assert stored | printed == set(range(18000))


def test_an_async_emitter_on_sigterm_chains_the_hosts_handler() -> None:
    script = (
        STORE_DOWN
        + """
    import asyncio, signal, os

    def host_handler(signum, frame):
        print("host handler ran", flush=True)
        os._exit(3)

    signal.signal(signal.SIGTERM, host_handler)

    async def main():
        async with sysevents.EventLogger(Down(), retry_window=30) as emitter:
            for i in range(100):
                emitter.emit("t", str(i))
            print("ready", flush=True)
            await asyncio.sleep(60)

    asyncio.run(main())
    """
    )
    done = sigterm_when_ready(script)
    assert done.returncode == 3
    assert "host handler ran" in done.stdout
    assert sorted(int(e["message"]) for e in printed_events(done.stdout)) == list(range(100))  # type: ignore[call-overload]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_forked_child_stores_its_own_events(test_databases: FreshDatabases) -> None:
    url = test_databases.create()
    script = """
        import os, sys
        import sysevents
        emitter = sysevents.EventLogger.in_thread(lambda: sysevents.connect(sys.argv[1]))
        emitter.emit("parent", "before the fork")
        emitter.flush(10)
        pid = os.fork()
        if pid == 0:
            for i in range(50):
                emitter.emit("child", str(i))
            emitter.close()
            os._exit(0)
        for i in range(50):
            emitter.emit("parent", str(i))
        _, status = os.waitpid(pid, 0)
        emitter.close()
        print("child exit", os.waitstatus_to_exitcode(status))
    """
    done = run_script(script, url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "child exit 0" in done.stdout
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT event_type, count(*) FROM system_events GROUP BY 1").fetchall()
    assert dict(rows) == {"parent": 51, "child": 50}
