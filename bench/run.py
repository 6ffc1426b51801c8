"""Benchmarks of sysevents: every hot path beside the raw driver doing the same work.

Run through nox (it installs what the bench needs)::

    nox -s bench                       # 1 000 000 events; writes bench/results.md and .json
    nox -s bench -- --rows 10000000    # the same on 10 000 000 events
    nox -s bench -- --smoke            # tiny data, seconds: proves the bench still runs

or directly, from the repository root: ``python bench/run.py [options]``.
It creates (and afterwards drops) its own database on the server of
``--postgres-url`` and uses its own key prefix on ``--redis-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import httpbench  # noqa: E402
import library  # noqa: E402
import partitions  # noqa: E402
from fill import SERVER_URL, Events, create_database, drop_database, fill  # noqa: E402
from report import write_reports  # noqa: E402

from sysevents.migrate import upgrade  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="events in the table")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one run")
    parser.add_argument("--smoke", action="store_true", help="tiny data and short runs")
    parser.add_argument(
        "--postgres-url",
        default=SERVER_URL,
        help="a server where the bench may create its own database",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("SYSEVENTS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--database", default="sysevents_bench", help="name of the bench database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a filled database (dev)")
    parser.add_argument("--only", default="", help="comma-separated groups to run (dev)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP workloads")
    parser.add_argument(
        "--span-days", type=int, default=90, help="how far back the events' timestamps go"
    )
    parser.add_argument("--out", type=Path, default=None, help="where results.md/.json go")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows = min(args.rows, 5_000)
        args.runs = 1
        args.seconds = 0.2
    if args.out is None:
        # Smoke figures mean nothing: they never overwrite the committed results.
        args.out = Path(tempfile.mkdtemp(prefix="sysevents-bench-smoke-")) if args.smoke else HERE
    return args


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) // 1024 // 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "cpu": cpu,
        "arch": platform.machine(),
        "os": f"{platform.system()} {platform.release().split('-')[0]}",
        "load_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def versions(url: str, redis_url: str) -> dict[str, str]:
    import importlib.metadata as md

    import psycopg
    import redis

    out = {"python": platform.python_version()}
    for dist in (
        "sysevents",
        "psycopg",
        "psycopg-pool",
        "pydantic",
        "redis",
        "hiredis",
        "litestar",
        "uvicorn",
        "sqlalchemy",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "-"
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        out["postgresql"] = row[0].split()[0] if row else "?"
    client = redis.Redis.from_url(redis_url)
    out["redis-server"] = str(client.info("server").get("redis_version", "?"))
    client.close()
    try:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        out["wrk"] = (wrk.stdout or wrk.stderr).split()[1]
    except (OSError, IndexError):
        out["wrk"] = "-"
    return out


async def library_workloads(ctx: library.Context, url: str, rows: int, only: set[str]) -> None:
    def wanted(name: str) -> bool:
        return not only or name in only

    # Reads first, on the freshly filled table; writes add to it afterwards.
    if wanted("read"):
        await library.bench_get(ctx, rows)
    if wanted("list"):
        await library.bench_list(ctx, rows)
    if wanted("stats"):
        await library.bench_stats(ctx)
    if wanted("write"):
        await library.bench_add(ctx)
        await library.bench_add_many(ctx)
    if wanted("emitter"):
        await library.bench_emitter(ctx)
    if wanted("partitions"):
        await partitions.bench_partitions(ctx)


def forget_keys(redis_url: str, prefix: str) -> None:
    """Delete every key this run wrote (all under its own prefix)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    only = {s for s in args.only.split(",") if s}
    command = "nox -s bench" + (" -- " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    started = datetime.now(UTC)
    info = {
        "machine": machine(),
        "command": command,
        "started": started.isoformat(timespec="seconds"),
    }
    print(f"machine: {info['machine']}", flush=True)
    if args.reuse:
        from urllib.parse import urlsplit, urlunsplit

        url = urlunsplit(urlsplit(args.postgres_url)._replace(path="/" + args.database))
        filled = {"rows": args.rows, "reused": True}
    else:
        url = create_database(args.postgres_url, args.database)
        upgrade(url)
        print(f"filling {args.rows:,} events by COPY…", flush=True)
        filled = fill(url, args.rows, Events(span=timedelta(days=args.span_days)))
        print(f"  {filled}", flush=True)
    info["data"] = filled
    info["versions"] = versions(url, args.redis_url)
    ctx = library.Context(
        url, args.redis_url, runs=args.runs, seconds=args.seconds, smoke=args.smoke
    )
    try:
        asyncio.run(library_workloads(ctx, url, args.rows, only))
        if not args.no_http and (not only or "http" in only):
            info["http"] = httpbench.run(ctx, url, args.redis_url, smoke=args.smoke)
    finally:
        if not (args.keep or args.reuse):
            drop_database(args.postgres_url, args.database)
        forget_keys(args.redis_url, ctx.prefix)
    info["seconds"] = round((datetime.now(UTC) - started).total_seconds())
    info["machine"]["load_after"] = os.getloadavg()[0]
    write_reports(args.out, info, ctx.figures, smoke=args.smoke)
    missed = [f for f in ctx.figures if f.met is False]
    print(
        f"{len(ctx.figures)} figures, {len(missed)} targets missed; see {args.out / 'results.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
