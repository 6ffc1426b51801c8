"""Latency of the Redis cache: cached vs uncached ``get``, and the cost of a dead Redis.

Run from the repository root::

    python bench/cache_latency.py [--runs 5] [--calls 2000]

It starts its own ``redis-server`` on a free port (so it can kill and pause it)
and uses the in-memory store as the inner repository, so the figures are the
cache's own cost. Each figure is the median over runs of the per-run median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.private_redis import private_redis

from sysevents import MemoryEventRepository, NewEvent, Settings
from sysevents.cache import CachedEventRepository, cache_client


async def per_call(fn, calls: int) -> list[float]:
    times = []
    for i in range(calls):
        start = time.perf_counter()
        await fn(i)
        times.append(time.perf_counter() - start)
    return times


def us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} µs"


async def main(runs: int, calls: int) -> None:
    with private_redis() as server:
        inner = MemoryEventRepository()
        events = await inner.add_many(
            [
                NewEvent(event_type="deploy", message=f"v{i} is live", details={"n": i})
                for i in range(100)
            ]
        )
        ids = [e.id for e in events]
        settings = Settings(redis_url=server.url, cache_prefix="bench")
        cache = CachedEventRepository.from_settings(inner, settings)
        raw = cache_client(server.url)
        payload = events[0].model_dump_json()
        await raw.set("bench:raw", payload)
        rows: dict[str, list[float]] = {
            "inner get (no cache)": [],
            "raw redis-py GET": [],
            "cached get, hit": [],
            "cached get, miss + fill": [],
        }
        for _ in range(runs):
            rows["inner get (no cache)"].append(
                statistics.median(await per_call(lambda i: inner.get(ids[i % 100]), calls))
            )
            rows["raw redis-py GET"].append(
                statistics.median(await per_call(lambda i: raw.get("bench:raw"), calls))
            )
            for event_id in ids:
                await cache.get(event_id)
            rows["cached get, hit"].append(
                statistics.median(await per_call(lambda i: cache.get(ids[i % 100]), calls))
            )

            miss_times: list[float] = []
            for i in range(calls // 4):
                await cache._invalidate([ids[i % 100]])  # not timed
                start = time.perf_counter()
                await cache.get(ids[i % 100])
                miss_times.append(time.perf_counter() - start)
            rows["cached get, miss + fill"].append(statistics.median(miss_times))

        base = statistics.median(rows["raw redis-py GET"])
        print(f"{'':28}{'median':>11}   ratio to raw GET   (runs={runs}, calls={calls})")
        for name, values in rows.items():
            m = statistics.median(values)
            print(f"{name:28}{us(m)}   {m / base:6.2f}")

        inner_median = statistics.median(rows["inner get (no cache)"])
        for outage in ("killed", "paused (hung)"):
            firsts, medians = [], []
            for _ in range(runs):
                if outage == "killed":
                    server.kill()
                else:
                    server.pause()
                times = await per_call(lambda i: cache.get(ids[i % 100]), 200)
                firsts.append(max(times))
                medians.append(statistics.median(times))
                if outage == "killed":
                    server.start()
                else:
                    server.resume()
                for _ in range(400):
                    if cache.cache_stats().breaker == "closed":
                        break
                    await asyncio.sleep(0.05)
            print(
                f"Redis {outage:14} worst call {us(statistics.median(firsts))} "
                f"(max {us(max(firsts))}); median call "
                f"{us(statistics.median(medians))}, "
                f"added {us(statistics.median(medians) - inner_median)}"
            )
        await raw.aclose()
        await cache.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.calls))
