"""What the fair-share limits cost a request: every limit on (never reached) against all off.

POST /api/events and a cached GET /api/events/{id}, with an API key, on the
memory store behind the Redis cache, served in-process through Litestar's
test client: the limits' own work (Redis counters and buckets, the series
check) is what differs, and nothing else. The two apps alternate run by run;
prints the median time per request and the on/off ratio.

    python bench/limits_cost.py [--requests 2000] [--runs 5] [--redis-url URL] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository, Settings
from sysevents.keys import Scope
from sysevents_http import create_app

REDIS_URL = os.environ.get("SYSEVENTS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# Every limit evaluated on every request, none ever reached.
ON = {
    "rate_limit": "1000000/second",
    "address_limit": "1000000/second",
    "ingest_limit": "100000000/second,100GB/second,burst=10s",
    "max_new_series": 1000,
}
OFF = {"rate_limit": "off", "address_limit": "off", "ingest_limit": "off", "max_new_series": 0}


async def app(limits: dict[str, Any], redis_url: str) -> tuple[Litestar, str]:
    repo = MemoryEventRepository()
    _, key = await repo.keys.create_key("bench", frozenset(Scope))
    settings = Settings(redis_url=redis_url, cache_prefix=f"bench-{uuid.uuid4().hex[:8]}", **limits)
    return create_app(settings, repository=repo), key


async def run(limits: dict[str, Any], redis_url: str, requests: int) -> dict[str, float]:
    application, key = await app(limits, redis_url)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"event_type": "deploy", "message": "v1", "source": "ci"}
    out = {}
    async with AsyncTestClient(application) as client:
        created = await client.post("/api/events", json=body, headers=headers)
        path = f"/api/events/{created.json()['id']}"
        for _ in range(100):  # warm up, and fill the cache
            await client.post("/api/events", json=body, headers=headers)
            await client.get(path, headers=headers)
        for name, call in (
            ("POST /api/events", lambda: client.post("/api/events", json=body, headers=headers)),
            ("GET /api/events/{id} (cached)", lambda: client.get(path, headers=headers)),
        ):
            started = time.perf_counter()
            for _ in range(requests):
                response = await call()
                assert response.status_code < 300, response.text
            out[name] = (time.perf_counter() - started) / requests * 1e6
    return out


def otlp(records: int) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {"resource": {}, "scopeLogs": [{"scope": {}, "logRecords": [{}] * records}]}
        ]
    }


def otlp_stall(redis_url: str) -> dict[str, Any]:
    """The finding's body (30 000 empty records in a few gzip bytes), and the loop meanwhile.

    Served by uvicorn on a free port: ``/api/health`` is asked again and again
    while exports of 1000 records are parsed, and the longest it waited is how
    long the event loop stalled.
    """
    import gzip
    import json
    import socket
    import threading

    import httpx
    import uvicorn

    application, key = asyncio.run(app(OFF, redis_url))
    auth = {"Authorization": f"Bearer {key}"}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                httpx.get(url + "/api/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        bomb = gzip.compress(json.dumps(otlp(30_000)).encode())
        before = httpx.get(url + "/api/events/stats", headers=auth).json()["total"]
        answer = httpx.post(
            url + "/v1/logs",
            content=bomb,
            headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        stored = httpx.get(url + "/api/events/stats", headers=auth).json()["total"] - before
        full = json.dumps(otlp(1000)).encode()
        longest = 0.0
        done = threading.Event()

        def ping() -> None:
            nonlocal longest
            with httpx.Client(base_url=url) as client:
                while not done.is_set():
                    started = time.perf_counter()
                    client.get("/api/health")
                    longest = max(longest, time.perf_counter() - started)

        pinger = threading.Thread(target=ping)
        pinger.start()
        with httpx.Client(base_url=url, timeout=60, headers=auth) as client:
            for _ in range(20):
                client.post("/v1/logs", content=full, headers={"Content-Type": "application/json"})
        done.set()
        pinger.join()
    finally:
        server.should_exit = True
        thread.join(30)
    return {
        "bomb_bytes": len(bomb),
        "bomb_status": answer.status_code,
        "events_stored_by_bomb": stored,
        "health_longest_ms_during_20_exports_of_1000": round(longest * 1000, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--smoke", action="store_true", help="a few requests, one run")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.runs = 50, 1
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.pop("SYSEVENTS_RATE_LIMIT", None)
    on: dict[str, list[float]] = {}
    off: dict[str, list[float]] = {}
    for i in range(args.runs):
        for limited in (i % 2 == 0, i % 2 != 0):  # the order turns each run
            figures = asyncio.run(run(ON if limited else OFF, args.redis_url, args.requests))
            for name, value in figures.items():
                (on if limited else off).setdefault(name, []).append(value)
    print(otlp_stall(args.redis_url))
    print("| request | limits off (µs) | limits on (µs) | on/off |")
    print("| --- | ---: | ---: | ---: |")
    for name in on:
        a, b = statistics.median(off[name]), statistics.median(on[name])
        print(f"| {name} | {a:.0f} | {b:.0f} | {b / a:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
