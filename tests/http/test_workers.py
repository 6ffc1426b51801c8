"""``sysevents serve --workers 2``: two processes on one port, one budget, one tail, one leader."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.waiting import eventually_sync

from .served import Served, serve_process

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def request(url: str, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    """One request on a connection of its own (new connections spread over the workers)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = None if body is None else json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.fixture
def environment(
    empty_postgres_url: str, redis_server_url: str, cache_prefix: str
) -> dict[str, str]:
    return {
        "SYSEVENTS_DATABASE_URL": empty_postgres_url,
        "SYSEVENTS_REDIS_URL": redis_server_url,
        "SYSEVENTS_CACHE_PREFIX": cache_prefix,
        "SYSEVENTS_RATE_LIMIT": "off",
        "SYSEVENTS_FOLD_INTERVAL": "0.2",
    }


@pytest.fixture
def two_workers(environment: dict[str, str]) -> Iterator[Served]:
    with serve_process("--workers", "2", env=environment) as served:
        yield served


def pids(url: str) -> set[int]:
    """The processes that recorded a start-up."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT details->>'pid' FROM system_events WHERE event_type = 'system_startup'"
        ).fetchall()
    return {int(r[0]) for r in rows}


def test_two_workers_share_one_rate_limit(
    environment: dict[str, str], empty_postgres_url: str
) -> None:
    limited = {**environment, "SYSEVENTS_RATE_LIMIT": "30/minute"}
    with serve_process("--workers", "2", env=limited) as served:
        eventually_sync(
            lambda: len(pids(empty_postgres_url)) == 2, "both workers started", seconds=30
        )
        statuses = [request(served.url, "GET", "/api/events?limit=1")[0] for _ in range(60)]
    # One budget in Redis for both processes: exactly the limit gets through.
    assert statuses.count(200) == 30
    assert statuses.count(429) == 30


def test_the_tail_of_one_worker_sees_what_the_other_wrote(two_workers: Served) -> None:
    host, port = two_workers.url.removeprefix("http://").split(":")
    received: list[str] = []
    connected = threading.Event()

    def listen() -> None:
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                b"GET /api/events/stream?event_type=spread&heartbeat=1 HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\n\r\n"
            )
            buffer = b""
            while len(received) < 40:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                if b"connected" in buffer:
                    connected.set()
                *lines, buffer = buffer.split(b"\n")
                received.extend(
                    json.loads(line[len(b"data: ") :])["message"]
                    for line in lines
                    if line.startswith(b"data: ")
                )

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(30)
    for i in range(40):  # each on a new connection: both workers take some
        status, _ = request(
            two_workers.url, "POST", "/api/events", {"event_type": "spread", "message": f"m{i}"}
        )
        assert status == 201
    listener.join(timeout=60)
    assert received == [f"m{i}" for i in range(40)]


def test_one_worker_at_a_time_runs_the_background_work(
    two_workers: Served, empty_postgres_url: str
) -> None:
    def leases() -> int:
        with psycopg.connect(empty_postgres_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND a.application_name = 'sysevents-lease' AND a.datname = current_database()"
            ).fetchone()
        assert row is not None
        return int(row[0])

    eventually_sync(lambda: leases() == 1, "one worker holds the background lease", seconds=30)
    for i in range(100):
        request(two_workers.url, "POST", "/api/events", {"event_type": "fold", "message": f"{i}"})

    def folded() -> bool:
        status, health = request(two_workers.url, "GET", "/api/health/db")
        return status == 200 and health["backlog"]["rows"] == 0

    eventually_sync(folded, "the leader folded every event", seconds=30)
    assert leases() == 1  # the lease stayed with one worker throughout


def test_a_store_of_one_process_refuses_several_workers() -> None:
    memory = {"SYSEVENTS_DATABASE_URL": "memory://"}
    with (
        pytest.raises(RuntimeError, match="memory:// keeps events in one process"),
        serve_process("--workers", "2", env=memory),
    ):
        pass
