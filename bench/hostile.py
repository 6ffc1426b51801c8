"""What hostile requests cost a real ``sysevents serve``: time, answer size, server memory.

    python bench/hostile.py [--python PYTHON] [--postgres-url URL]

Starts the server (with ``PYTHON``, default this interpreter) on a database of
its own, sends each hostile request once, and prints for each: the status,
the seconds it took, the answer's size, and the growth of the server's peak
resident memory (``VmHWM``). Nothing here is a test: these are the figures a
closing note quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fill import SERVER_URL, create_database, drop_database  # noqa: E402


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, int, float]:
    started = time.monotonic()
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=600) as response:
            size = len(response.read())
            status = response.status
    except urllib.error.HTTPError as error:
        size = len(error.read())
        status = error.code
    return status, size, time.monotonic() - started


# Run by the server's own interpreter, so that the events fit its schema.
FILL = """
import asyncio, sys
import sysevents

async def fill():
    async with sysevents.connect(sys.argv[1]) as repo:
        await repo.add_many(
            [sysevents.NewEvent(event_type="fat", message="\\x01" * 65536, details={"i": i})
             for i in range(int(sys.argv[2]))]
        )

asyncio.run(fill())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument(
        "--postgres-url",
        default=SERVER_URL,
    )
    args = parser.parse_args()
    database = "sysevents_hostile"
    url = create_database(args.postgres_url, database)
    port = 18765
    server = None
    try:
        subprocess.run(
            [args.python, "-m", "sysevents.cli", "migrate", "--database-url", url], check=True
        )
        subprocess.run([args.python, "-c", FILL, url, "250"], check=True)
        server = subprocess.Popen(
            [
                args.python,
                "-m",
                "sysevents.cli",
                "serve",
                "--port",
                str(port),
                "--database-url",
                url,
            ],
            env={**os.environ, "SYSEVENTS_HTTP_MAX_BODY_SIZE": str(2 * 1024 * 1024)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                request(base + "/api/health")
                break
            except OSError:
                time.sleep(0.2)
        cases = [
            (
                "page of 250 fat events, limit=1000",
                "GET",
                "/api/events?event_type=fat&limit=1000",
                None,
            ),
            (
                "batch of 500 000 items",
                "POST",
                "/api/events/batch",
                b'{"events": [' + b",".join([b"0"] * 500_000) + b"]}",
            ),
            (
                "90 000 unknown fields",
                "POST",
                "/api/events",
                json.dumps(
                    {"event_type": "x", "message": "m", **{f"k{i}": 0 for i in range(90_000)}}
                ).encode(),
            ),
        ]
        results = []
        for name, method, path, body in cases:
            before = peak_rss_kib(server.pid)
            status, size, took = request(base + path, method, body)
            after = peak_rss_kib(server.pid)
            results.append(
                {
                    "case": name,
                    "status": status,
                    "seconds": round(took, 3),
                    "answer_bytes": size,
                    "peak_rss_growth_mib": round((after - before) / 1024, 1),
                }
            )
        print(json.dumps(results, indent=2))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        drop_database(args.postgres_url, database)


if __name__ == "__main__":
    main()
