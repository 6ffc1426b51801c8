"""Timing helpers and the figure each workload reports.

A workload runs for a fixed time; the subject and its baseline alternate run
by run (so noise from other processes falls on both), and each reported value
is the median over the runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Call = Callable[[], Awaitable[Any]]
Kind = Literal["rate", "latency"]


@dataclass
class Sample:
    """One timed run: calls per second and the median call latency."""

    per_second: float
    p50_ms: float


async def run_for(call: Call, seconds: float, tasks: int = 1, per_call: int = 1) -> Sample:
    """Call ``call`` from ``tasks`` concurrent tasks for ``seconds``.

    ``per_call`` is how many items one call handles (rows of a batch).
    """
    latencies: list[float] = []
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        clock = time.perf_counter
        while clock() < stop:
            start = clock()
            await call()
            latencies.append(clock() - start)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    elapsed = time.perf_counter() - started
    return Sample(done * per_call / elapsed, statistics.median(latencies) * 1000)


@dataclass
class Figure:
    """A subject beside its baseline, measured in the same run.

    ``ratio`` is always "how fast the subject is, relative to the baseline":
    subject/baseline for rates, baseline/subject for latencies.
    """

    group: str
    name: str
    kind: Kind
    unit: str
    value: float
    baseline_name: str
    baseline: float | None
    target: str
    met: bool | None
    runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline or not self.value:
            return None
        if self.kind == "rate":
            return self.value / self.baseline
        return self.baseline / self.value

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        return data


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


async def compare(
    subject: Call,
    baseline: Call | None,
    *,
    runs: int,
    seconds: float,
    tasks: int = 1,
    per_call: int = 1,
    warmup: bool = True,
) -> tuple[list[Sample], list[Sample]]:
    """Alternate subject and baseline runs; return the samples of each."""
    if warmup:
        await run_for(subject, min(seconds, 0.3), tasks, per_call)
        if baseline is not None:
            await run_for(baseline, min(seconds, 0.3), tasks, per_call)
    mine: list[Sample] = []
    theirs: list[Sample] = []
    for _ in range(runs):
        mine.append(await run_for(subject, seconds, tasks, per_call))
        if baseline is not None:
            theirs.append(await run_for(baseline, seconds, tasks, per_call))
    return mine, theirs
