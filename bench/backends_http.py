"""The REST API on SQLite beside the same API on PostgreSQL: the figures to choose a backend by.

    python bench/backends_http.py [--rows 100000] [--runs 3] [--seconds 5] [--smoke]

``sysevents serve`` (one process, pinned to core 1; wrk on core 0, 16
connections) over a SQLite file and over a PostgreSQL database holding the
same ``--rows`` events, each with and without the Redis cache; the backends
alternate route by route and run by run. Prints medians of requests/s:
POST, GET by id (cached and uncached), the first page and stats (uncached).
Creates and drops its own database and file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import urllib.request
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fill import SERVER_URL, Events, create_database, drop_database, fill  # noqa: E402
from httpbench import _free_port, _pin, _server, _wrk, ensure_wrk  # noqa: E402

import sysevents  # noqa: E402
from sysevents.migrate import upgrade  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
BODY = {"event_type": "http_request", "message": "GET /orders 200", "source": "svc-web-4"}


async def _fill_sqlite(url: str, rows: int) -> None:
    events = Events(seed=3)
    async with sysevents.connect(url) as repo:
        for start in range(0, rows, 1000):
            batch = [events.new_event(recent=False) for _ in range(min(1000, rows - start))]
            await repo.add_many(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--smoke", action="store_true", help="tiny data, one short run")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.runs, args.seconds = 500, 1, 1.0
    wrk = ensure_wrk()
    if wrk is None:
        raise SystemExit("wrk is missing and cannot be installed")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/events.db"
        asyncio.run(_fill_sqlite(sqlite_url, args.rows))
        pg_url = create_database(SERVER_URL, "sysevents_bench_backends")
        try:
            upgrade(pg_url)
            fill(pg_url, args.rows, Events(seed=3))
            table = measure(wrk, {"SQLite": sqlite_url, "PostgreSQL": pg_url}, args, Path(tmp))
        finally:
            drop_database(SERVER_URL, "sysevents_bench_backends")
    print(f"{args.rows:,} events; requests/s, medians of {args.runs} runs of {args.seconds:g} s")
    print("| route | SQLite | PostgreSQL | SQLite / PostgreSQL |")
    print("| --- | ---: | ---: | ---: |")
    for route, figures in table.items():
        lite, pg = statistics.median(figures["SQLite"]), statistics.median(figures["PostgreSQL"])
        print(f"| {route} | {lite:,.0f} | {pg:,.0f} | {lite / pg:.2f} |")


def measure(
    wrk: str, urls: dict[str, str], args: argparse.Namespace, tmp: Path
) -> dict[str, dict[str, list[float]]]:
    post = tmp / "post.lua"
    post.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(BODY))}\n"
    )
    table: dict[str, dict[str, list[float]]] = {}
    with ExitStack() as stack:
        bases: dict[tuple[str, bool], str] = {}
        for name, url in urls.items():
            for cached in (True, False):
                port = _free_port()
                command = [sys.executable, "-m", "sysevents.cli", "serve", "--port", str(port)]
                command += ["--database-url", url]
                env = {
                    "SYSEVENTS_RATE_LIMIT": "off",
                    "SYSEVENTS_ADDRESS_LIMIT": "off",
                    "SYSEVENTS_MAX_READS_PER_KEY": "10000",
                }
                if cached:
                    command += ["--redis-url", REDIS_URL]
                    env["SYSEVENTS_CACHE_PREFIX"] = f"bench-backends-{name}-{port}"
                base = f"http://127.0.0.1:{port}"
                stack.enter_context(_server([*_pin(1), *command], env, base + "/api/health"))
                bases[name, cached] = base
        ids = {}
        for (name, _cached), base in bases.items():
            request = urllib.request.Request(
                base + "/api/events",
                data=json.dumps(BODY).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request) as response:
                ids[name] = json.loads(response.read())["id"]
        for run in range(args.runs):
            for route, path, cached, script in (
                ("POST /api/events", "/api/events", False, post),
                ("GET /api/events/{id} (cached)", "/api/events/{id}", True, None),
                ("GET /api/events/{id} (uncached)", "/api/events/{id}", False, None),
                ("GET /api/events (first page, uncached)", "/api/events", False, None),
                ("GET /api/events/stats (uncached)", "/api/events/stats", False, None),
            ):
                order = list(urls) if run % 2 == 0 else list(reversed(urls))
                for name in order:
                    url = bases[name, cached] + path.replace("{id}", str(ids[name]))
                    rate = _wrk(wrk, url, args.seconds, script)
                    table.setdefault(route, {}).setdefault(name, []).append(rate)
    return table


if __name__ == "__main__":
    main()
