"""Background chores of the service (upkeep, retention), each its own task.

A :class:`Chore` runs its work every ``interval`` seconds until stopped. One
that fails is retried at the next interval; while it keeps failing it is
logged at WARNING at most once a minute, saying what to do, and its failures
show on ``/metrics`` (see :meth:`Chore.health`). Chores run apart: one that
fails or is slow never holds another back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sysevents._tasks import finish

logger = logging.getLogger("sysevents_http")

WARN_EVERY = 60.0
"""Seconds between two warnings of a chore that keeps failing."""


@dataclass(frozen=True, slots=True)
class ChoreHealth:
    """How a chore fares: its runs and failures so far, and the failures in a row now."""

    runs: int
    failures: int
    failing: int
    """Failures since the last run that succeeded (0: the last run succeeded)."""


class Chore:
    """``work()`` every ``interval`` seconds in a task of its own (see the module).

    ``advice`` ends the warning of a failure: what the operator can do.
    """

    def __init__(
        self, name: str, work: Callable[[], Awaitable[object]], interval: float, advice: str
    ) -> None:
        self.name = name
        self.work = work
        self.interval = interval
        self.advice = advice
        self.runs = 0
        self.failures = 0
        self.failing = 0
        self._warned_at = -WARN_EVERY
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def health(self) -> ChoreHealth:
        """Its figures now."""
        return ChoreHealth(runs=self.runs, failures=self.failures, failing=self.failing)

    def start(self) -> None:
        """Run now, then every ``interval`` seconds, until :meth:`stop`."""
        if self._task is None:
            self._stop = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._forever(), name=f"sysevents-{self.name}"
            )

    async def stop(self, grace: float) -> None:
        """Stop; a run under way ends first (within ``grace`` seconds), rather than cancelled."""
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            await finish(task, grace)

    async def run_once(self) -> bool:
        """One run; whether it succeeded (a failure is counted and logged, never raised)."""
        self.runs += 1
        try:
            await self.work()
        except Exception as exc:  # retried at the next interval: a chore never stops the app
            self._failed(exc)
            return False
        self.failing = 0
        return True

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.failing += 1
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "%s failed (%s: %s; %d time(s) in a row), retried every %g s: %s",
                self.name,
                type(exc).__name__,
                exc,
                self.failing,
                self.interval,
                self.advice,
            )

    async def _forever(self) -> None:
        stop = self._stop
        while not stop.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
