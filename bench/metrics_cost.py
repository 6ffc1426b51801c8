"""What ``/metrics`` costs a request: ours (prometheus-client), Litestar's PrometheusPlugin, none.

Serves ``GET /api/health`` and ``GET /api/events`` (memory store) in-process
through Litestar's test client, alternating the three apps run by run, and
prints the median time per request over ``--runs`` runs.

    python bench/metrics_cost.py [--requests 3000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from typing import Any

from litestar import Litestar
from litestar.plugins.prometheus import PrometheusConfig
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository, Settings
from sysevents_http import SyseventsConfig, SyseventsPlugin
from sysevents_http.config import HttpOptions


def app(kind: str) -> Litestar:
    options = HttpOptions(metrics=kind == "prometheus-client (ours)")
    plugin = SyseventsPlugin(
        SyseventsConfig(
            settings=Settings(rate_limit="off"),
            options=options,
            repository=MemoryEventRepository(),
        )
    )
    middleware: list[Any] = []
    if kind == "Litestar PrometheusPlugin":
        config = PrometheusConfig(app_name="sysevents", prefix="sysevents", group_path=True)
        middleware.append(config.middleware)
    return Litestar(plugins=[plugin], middleware=middleware)


async def run(kind: str, path: str, requests: int) -> float:
    async with AsyncTestClient(app(kind)) as client:
        for _ in range(100):  # warm up
            await client.get(path)
        started = time.perf_counter()
        for _ in range(requests):
            await client.get(path)
        return (time.perf_counter() - started) / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kinds = ["none", "prometheus-client (ours)", "Litestar PrometheusPlugin"]
    print("| path | " + " | ".join(kinds) + " |")
    print("| --- |" + " ---: |" * len(kinds))
    for path in ("/api/health", "/api/events"):
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.runs):
            for kind in kinds:
                times[kind].append(asyncio.run(run(kind, path, args.requests)))
        cells = [f"{statistics.median(times[k]):.1f} µs" for k in kinds]
        print(f"| `GET {path}` | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
