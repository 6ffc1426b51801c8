"""Every route, head to head: ``sysevents serve`` beside a bare Litestar app and the seed's stack.

Run through nox (``nox -s bench_http``, ``-- --smoke`` for seconds) or as
``python bench/head_to_head.py [options]`` from the repository root.

The three servers run one at a time under load, each one uvicorn process with
the same options (httptools, uvloop, no access log), pinned to core 1; wrk
(one thread, 32 connections) runs on core 0. PostgreSQL and Redis share both
cores. Each round runs every server in turn, so drift on this shared machine
falls on all three; figures are medians over the rounds.

- the bare app (``bench/bare_app.py``) makes the single driver call each
  route needs and nothing else: the floor;
- the seed app (``bench/seed_app.py``) is FastAPI + SQLAlchemy ORM +
  redis.asyncio, as the system sysevents replaces was written;
- ``sysevents serve`` runs with PostgreSQL and Redis, its defaults but the
  rate and address limits (off: wrk is one client sending thousands of requests
  a second).

Then the same service with ``--workers 2`` beside one worker (both unpinned):
what a second process buys on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fill import SERVER_URL, Events, create_database, drop_database, fill  # noqa: E402
from httpbench import _free_port, ensure_wrk  # noqa: E402

from sysevents.migrate import upgrade  # noqa: E402

CONNECTIONS = 32
UVICORN = {"log_level": "warning", "access_log": False, "http": "httptools", "loop": "uvloop"}
BODY = {
    "event_type": "http_request",
    "severity": "info",
    "message": "GET /orders 200",
    "details": {"ms": 12},
    "source": "svc-web-4",
}


def pin(core: int) -> list[str]:
    """taskset prefix pinning to ``core`` (nothing where taskset or the core is missing)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core)]
    return []


@contextmanager
def server(command: list[str], env: dict[str, str], probe: str) -> Iterator[None]:
    """A server process, up once ``probe`` answers below 500; stopped afterwards."""
    proc = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(probe, timeout=2) as response:
                    if response.status < 500:
                        break
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
                raise RuntimeError(f"{command[-1]} did not come up:\n{err}")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(url: str, seconds: float, script: Path | None, *, pinned: bool = True) -> float:
    """Requests per second wrk reached on ``url``; an error answer fails the run."""
    command = [*(pin(0) if pinned else []), "wrk", "-t1", f"-c{CONNECTIONS}"]
    command += [f"-d{max(1, round(seconds))}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error answers\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return float(found.group(1))


def scripts(tmp: Path, ids: list[int]) -> dict[str, Path]:
    """The wrk scripts: a POST of one event, and GETs of random ids (the path is a prefix)."""
    post = tmp / "post.lua"
    post.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(BODY))}\n"
    )
    random_ids = tmp / "ids.lua"
    listed = ",".join(f'"{i}"' for i in ids)
    random_ids.write_text(
        f"local ids = {{{listed}}}\n"
        "request = function()\n"
        "  return wrk.format('GET', wrk.path .. ids[math.random(#ids)])\n"
        "end\n"
    )
    return {"post": post, "ids": random_ids}


def sample_ids(url: str, n: int) -> list[int]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id FROM system_events ORDER BY random() LIMIT %s", (n,)
        ).fetchall()
    return [int(r[0]) for r in rows]


def run(args: argparse.Namespace) -> dict[str, Any]:
    if ensure_wrk() is None:
        raise SystemExit("wrk is missing (apt-get install wrk)")
    if args.reuse:
        from urllib.parse import urlsplit, urlunsplit

        url = urlunsplit(urlsplit(args.postgres_url)._replace(path="/" + args.database))
    else:
        url = create_database(args.postgres_url, args.database)
        upgrade(url)
        print(f"filling {args.rows:,} events…", flush=True)
        print(" ", fill(url, args.rows, Events(span=timedelta(days=90))), flush=True)
    prefix = f"sysevents-h2h-{os.getpid()}"
    ports = {name: _free_port() for name in ("sysevents", "bare", "seed")}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    python = sys.executable
    env = {
        # wrk is one client sending thousands of requests a second: no per-caller or
        # per-address limit applies to it, nor the cap on its concurrent reads.
        "SYSEVENTS_RATE_LIMIT": "off",
        "SYSEVENTS_ADDRESS_LIMIT": "off",
        "SYSEVENTS_MAX_READS_PER_KEY": "10000",
        "SYSEVENTS_CACHE_PREFIX": prefix,
        "BARE_DATABASE_URL": url,
        "BARE_REDIS_URL": args.redis_url,
        "BARE_PREFIX": prefix + "-bare",
        "SEED_DATABASE_URL": url,
        "SEED_REDIS_URL": args.redis_url,
        "SEED_PREFIX": prefix + "-seed",
    }
    serve = [python, "-m", "sysevents", "serve", "--database-url", url]
    serve += ["--redis-url", args.redis_url]
    commands = {
        "sysevents": [*pin(1), *serve, "--port", str(ports["sysevents"])],
        "bare": [
            *pin(1),
            python,
            str(HERE / "bare_app.py"),
            str(ports["bare"]),
            json.dumps(UVICORN),
        ],
        "seed": [
            *pin(1),
            python,
            str(HERE / "seed_app.py"),
            str(ports["seed"]),
            json.dumps(UVICORN),
        ],
    }
    ids = sample_ids(url, 2_000 if args.smoke else 200_000)
    cached = ids[0]
    table: list[dict[str, Any]] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        lua = scripts(tmp, ids[1:])
        for name in commands:
            stack.enter_context(server(commands[name], env, base[name] + "/api/events/stats"))
        # The cached GETs read one id, stats the whole table: fill the caches
        # (the bare app's keys hold what the service answers).
        import redis

        client = redis.Redis.from_url(args.redis_url)
        for name in ("sysevents", "seed"):
            urllib.request.urlopen(f"{base[name]}/api/events/{cached}").read()
            urllib.request.urlopen(f"{base[name]}/api/events/stats").read()
        one = urllib.request.urlopen(f"{base['sysevents']}/api/events/{cached}").read()
        client.set(f"{prefix}-bare:event:{cached}", one)
        stats = urllib.request.urlopen(f"{base['sysevents']}/api/events/stats").read()
        client.set(f"{prefix}-bare:stats", stats)
        cases = [
            (
                "GET one event, cached",
                f"/api/events/{cached}",
                None,
                f"/api/events/{cached}",
                "Redis GET",
            ),
            (
                "GET one event, uncached",
                "/api/events/",
                lua["ids"],
                "/uncached/events/",
                "SELECT by id",
            ),
            (
                "GET list, first page",
                "/api/events",
                None,
                "/api/events",
                "page SELECT + capped count",
            ),
            ("GET stats", "/api/events/stats", None, "/api/events/stats", "Redis GET"),
            ("POST one event", "/api/events", lua["post"], "/api/events", "INSERT … RETURNING"),
        ]
        for case, path, script, bare_path, bare_call in cases:
            paths = {"sysevents": path, "bare": bare_path, "seed": path}
            runs: dict[str, list[float]] = {name: [] for name in commands}
            for name in commands:  # warm-up
                wrk(base[name] + paths[name], 1, script)
            for _ in range(args.runs):
                for name in commands:
                    runs[name].append(wrk(base[name] + paths[name], args.seconds, script))
            row = {
                "case": case,
                "bare_call": bare_call,
                **{name: median(values) for name, values in runs.items()},
                "runs": runs,
            }
            row["x_seed"] = row["sysevents"] / row["seed"]
            row["x_bare"] = row["sysevents"] / row["bare"]
            table.append(row)
            print(
                f"  {case:28} sysevents {row['sysevents']:8.0f}  seed {row['seed']:8.0f} "
                f"(×{row['x_seed']:.2f})  bare {row['bare']:8.0f} (×{row['x_bare']:.2f})",
                flush=True,
            )
        client.close()
    workers = [] if args.no_workers else compare_workers(args, url, env, cached, lua["post"])
    for stale in redis.Redis.from_url(args.redis_url).scan_iter(match=f"{prefix}*", count=1000):
        redis.Redis.from_url(args.redis_url).delete(stale)
    if not (args.keep or args.reuse):
        drop_database(args.postgres_url, args.database)
    return {"table": table, "workers": workers}


def compare_workers(
    args: argparse.Namespace, url: str, env: dict[str, str], cached: int, post: Path
) -> list[dict[str, Any]]:
    """One worker beside two, unpinned, on cached GET and POST."""
    rows = []
    ports = {1: _free_port(), 2: _free_port()}
    serve = [sys.executable, "-m", "sysevents", "serve", "--database-url", url]
    serve += ["--redis-url", args.redis_url]
    with ExitStack() as stack:
        for n, port in ports.items():
            command = [*serve, "--port", str(port), "--workers", str(n)]
            stack.enter_context(server(command, env, f"http://127.0.0.1:{port}/api/events/stats"))
        for case, path, script in [
            ("GET one event, cached", f"/api/events/{cached}", None),
            ("POST one event", "/api/events", post),
        ]:
            runs: dict[int, list[float]] = {1: [], 2: []}
            for port in ports.values():
                wrk(f"http://127.0.0.1:{port}{path}", 1, script, pinned=False)
            for _ in range(args.runs):
                for n, port in ports.items():
                    runs[n].append(
                        wrk(f"http://127.0.0.1:{port}{path}", args.seconds, script, pinned=False)
                    )
            one, two = median(runs[1]), median(runs[2])
            rows.append({"case": case, "one": one, "two": two, "ratio": two / one, "runs": runs})
            print(f"  workers: {case:24} 1 → {one:8.0f}  2 → {two:8.0f}  (×{two / one:.2f})")
    return rows


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "| case | sysevents req/s | seed stack | × seed | bare app | × bare | bare call |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in result["table"]:
        lines.append(
            f"| {row['case']} | {row['sysevents']:,.0f} | {row['seed']:,.0f} | "
            f"{row['x_seed']:.2f} | {row['bare']:,.0f} | {row['x_bare']:.2f} | {row['bare_call']} |"
        )
    if result["workers"]:
        lines += ["", "| case | 1 worker | 2 workers | × |", "| --- | ---: | ---: | ---: |"]
        for row in result["workers"]:
            lines.append(
                f"| {row['case']} | {row['one']:,.0f} | {row['two']:,.0f} | {row['ratio']:.2f} |"
            )
    lines.append("")
    lines.append(
        f"{args.rows:,} events; {args.runs} rounds of {args.seconds:g} s; wrk -t1 -c{CONNECTIONS}; "
        f"{datetime.now(UTC):%Y-%m-%d}."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--smoke", action="store_true", help="tiny data, short runs")
    parser.add_argument("--postgres-url", default=SERVER_URL)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("SYSEVENTS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--database", default="sysevents_h2h")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="use the kept database as it is")
    parser.add_argument("--no-workers", action="store_true", help="skip the workers comparison")
    parser.add_argument("--out", type=Path, default=None, help="write head_to_head.md/.json here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.runs, args.seconds = min(args.rows, 5_000), 1, 1.0
    result = run(args)
    text = report(result, args)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "head_to_head.md").write_text(text)
        (args.out / "head_to_head.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
