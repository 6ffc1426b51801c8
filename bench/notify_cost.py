"""What the live tail's NOTIFY trigger costs writers: pgbench inserts with it on and off.

    python bench/notify_cost.py [--seconds 8] [--runs 3] [--clients 1,8,32]

Every statement that inserts events fires ``system_events_notify``, and a
transaction that has sent ``NOTIFY`` takes a server-wide lock at commit and
holds it until the commit is on disk, so concurrent committers that notify
queue behind one another. The worst case is many writers each committing one
event; batches pay once per batch. This runs pgbench (no Python in the hot
path) with the library's own single-row INSERT and a 100-row INSERT, for each
number of clients, five ways:

- ``off``: the trigger disabled (what a table with no live tail would cost);
- ``every insert``: migration 0008's function, a NOTIFY after every statement;
- ``throttled``: migration 0009's, at most one per 0.1 s per session (as migrated);
- each of the last two ``+tail``: with a session LISTENing and draining the
  channel, as a running tail does (its notifications per second are reported).

The table is emptied before every run, and the order of the ways turns by one
each round, so neither the table's growth nor drift on a shared machine
favours one way. Creates (and drops) its own database on the server of
``--postgres-url`` (or ``SYSEVENTS_BENCH_POSTGRES_URL``). Prints medians of
``--runs`` in transactions and events per second, and each way's ratio to ``off``.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fill import SERVER_URL, create_database, drop_database  # noqa: E402

from sysevents.migrate import upgrade  # noqa: E402
from sysevents.stores.postgres.ids import month_index  # noqa: E402
from sysevents.stores.postgres.tail import CHANNEL  # noqa: E402

NAME = "sysevents_bench_notify"
TRIGGER = "system_events_notify"
COLUMNS = 'id, event_type, severity, message, details, source, "timestamp"'
# The id is made as the library makes it: the month above a sequence number.
ONE = (
    "\\set n random(1, 1000000)\n"
    f"INSERT INTO system_events ({COLUMNS}) VALUES "
    "(:month::bigint << 36 | nextval('system_events_seq'), 'http_request', 'info', "
    "'GET /api/items/' || :n, '{\"status\": 200}'::jsonb, 'svc-api-0', now());\n"
)
BATCH = (
    f"INSERT INTO system_events ({COLUMNS}) SELECT "
    ":month::bigint << 36 | nextval('system_events_seq'), 'http_request', 'info', "
    "'GET /api/items/' || i, '{\"status\": 200}'::jsonb, 'svc-api-0', now() "
    "FROM generate_series(1, 100) AS i;\n"
)
WAYS = ("off", "every insert", "every insert+tail", "throttled", "throttled+tail")
MIGRATION = HERE.parent / "migrations" / "versions" / "0009_throttle_tail_notify.py"


def functions() -> dict[str, str]:
    """The trigger function of each way that has one: 0008's and 0009's bodies."""
    spec = importlib.util.spec_from_file_location("throttle_tail_notify", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"every insert": module.EVERY_STATEMENT, "throttled": module.THROTTLED}


def pgbench_path(given: str | None) -> str:
    found = given or shutil.which("pgbench")
    if found is None:
        candidates = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/pgbench"),
            key=lambda path: float(Path(path).parent.parent.name),
        )
        found = candidates[-1] if candidates else None
    if found is None:
        raise SystemExit("pgbench not found: pass --pgbench PATH")
    return found


class Listener:
    """A session LISTENing on the tail's channel and draining it, as a tail does."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute("LISTEN " + CHANNEL)
        self.received = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.drain, daemon=True)
        self.thread.start()

    def drain(self) -> None:
        while not self.stop.is_set():
            for _ in self.conn.notifies(timeout=0.2):
                self.received += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.conn.close()


def run_pgbench(
    pgbench: str, url: str, script: Path, clients: int, seconds: float, month: int
) -> float:
    """Transactions per second of one pgbench run."""
    try:
        out = subprocess.run(
            [
                pgbench,
                "--no-vacuum",
                "--protocol=prepared",
                f"--client={clients}",
                f"--jobs={min(clients, os.cpu_count() or 1)}",
                f"--time={max(1, round(seconds))}",
                f"--define=month={month}",
                f"--file={script}",
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"pgbench failed: {exc.stderr}") from exc
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if found is None:
        raise RuntimeError("no tps in pgbench's output:\n" + out)
    return float(found.group(1))


def set_way(url: str, way: str, bodies: dict[str, str]) -> None:
    """Empty the table and give it the trigger of ``way`` (``+tail`` aside)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE system_event_rollups, system_event_locator, system_events")
        function = way.removesuffix("+tail")
        if function == "off":
            conn.execute(f"ALTER TABLE system_events DISABLE TRIGGER {TRIGGER}")
        else:
            conn.execute(bodies[function])
            conn.execute(f"ALTER TABLE system_events ENABLE TRIGGER {TRIGGER}")


def measure(
    pgbench: str, url: str, *, clients: list[int], seconds: float, runs: int
) -> dict[str, Any]:
    month = month_index(datetime.now(UTC))
    bodies = functions()
    one, batch = "1 event per commit", "100 events per commit"
    cases = [(one, c) for c in clients] + [(batch, max(clients))]
    tps: dict[tuple[str, int, str], list[float]] = {}
    heard: dict[tuple[str, int, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sysevents-notify-") as workdir:
        scripts = {one: Path(workdir) / "one.sql", batch: Path(workdir) / "batch.sql"}
        scripts[one].write_text(ONE)
        scripts[batch].write_text(BATCH)
        for turn in range(runs):
            ways = WAYS[turn % len(WAYS) :] + WAYS[: turn % len(WAYS)]
            for workload, n in cases:
                for way in ways:
                    set_way(url, way, bodies)
                    listener = Listener(url) if way.endswith("+tail") else None
                    try:
                        figure = run_pgbench(pgbench, url, scripts[workload], n, seconds, month)
                    finally:
                        if listener is not None:
                            listener.close()
                    tps.setdefault((workload, n, way), []).append(figure)
                    if listener is not None:
                        heard.setdefault((workload, n, way), []).append(listener.received / seconds)
    set_way(url, "throttled", bodies)
    out: dict[str, Any] = {}
    for workload, n in cases:
        base = statistics.median(tps[(workload, n, "off")])
        per_commit = 100 if workload == batch else 1
        row: dict[str, Any] = {}
        for way in WAYS:
            median = statistics.median(tps[(workload, n, way)])
            row[way] = {
                "tps": round(median),
                "events_per_s": round(median * per_commit),
                "ratio": round(median / base, 2),
            }
            if (workload, n, way) in heard:
                row[way]["notifications_per_s"] = round(
                    statistics.median(heard[(workload, n, way)])
                )
        out[f"{workload}, {n} clients"] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one pgbench run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--clients", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--pgbench", default=None, help="the pgbench to run")
    parser.add_argument("--smoke", action="store_true", help="one short run of each: seconds")
    parser.add_argument(
        "--postgres-url",
        default=SERVER_URL,
    )
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.runs, args.clients = 1, 1, "2"
    clients = [int(c) for c in args.clients.split(",")]
    pgbench = pgbench_path(args.pgbench)
    url = create_database(args.postgres_url, NAME)
    try:
        upgrade(url)
        results = measure(pgbench, url, clients=clients, seconds=args.seconds, runs=args.runs)
        print(json.dumps(results, indent=2))
    finally:
        drop_database(args.postgres_url, NAME)


if __name__ == "__main__":
    main()
