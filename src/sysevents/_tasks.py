"""Background tasks: work repeated every few seconds, and ending it without cutting a statement.

:class:`Periodic` is the one loop behind the rollup fold, the sealer and the
service's chores: a failure is retried at the next interval, counted, and
logged at WARNING at most once a minute, saying what to do; it never ends the
task. :class:`InBackground` gives the fold and the sealer its start, stop and
figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

WARN_EVERY = 60.0
"""Seconds between two warnings of work that keeps failing."""


async def finish(task: asyncio.Task[None], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``task`` (already told to stop) to end; then cancel it.

    A task cancelled while it awaits the database can leave the connection
    unusable on some driver versions, and closing the pool then waits for it.
    """
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@dataclass(frozen=True, slots=True)
class PeriodicHealth:
    """How repeated work fares: its runs and failures so far, and the failures in a row now."""

    runs: int
    failures: int
    failing: int
    """Failures since the last run that succeeded (0: the last run succeeded)."""


class Periodic:
    """``work()`` every ``interval`` seconds in a task of its own, until stopped.

    ``what`` names the work in the warning of a failure and ``advice`` ends
    it (what the operator can do). ``at_start``: run once at once, else
    first after an interval. ``leads``: run only while it answers true (one
    process of several does the work).
    """

    def __init__(
        self,
        what: str,
        work: Callable[[], Awaitable[object]],
        interval: float,
        advice: str,
        *,
        logger: logging.Logger,
        task_name: str,
        at_start: bool = False,
        leads: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.what = what
        self.work = work
        self.interval = interval
        self.advice = advice
        self.runs = 0
        self.failures = 0
        self.failing = 0
        self._logger = logger
        self._task_name = task_name
        self._at_start = at_start
        self._leads = leads
        self._warned_at = -WARN_EVERY
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: long work ends at its next step."""
        return self._stop.is_set()

    def health(self) -> PeriodicHealth:
        """Its figures now."""
        return PeriodicHealth(runs=self.runs, failures=self.failures, failing=self.failing)

    def start(self) -> None:
        """Run every ``interval`` seconds until :meth:`stop` (never with an interval of 0)."""
        if self.interval > 0 and self._task is None:
            self._stop = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._forever(), name=self._task_name
            )

    async def stop(self, grace: float) -> None:
        """Stop; a run under way ends first (within ``grace`` seconds), rather than cancelled."""
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            await finish(task, grace)

    async def run_once(self) -> bool:
        """One run; whether it succeeded (a failure is counted and logged, never raised).

        While another process leads, nothing is done and that counts as a success.
        """
        try:
            if self._leads is not None and not await self._leads():
                self.failing = 0
                return True
            self.runs += 1
            await self.work()
        except Exception as exc:  # retried at the next interval: background work never stops
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
            self._logger.warning(
                "%s failed (%s: %s; %d time(s) in a row), retried every %g s: %s",
                self.what,
                type(exc).__name__,
                exc,
                self.failing,
                self.interval,
                self.advice,
            )

    async def _forever(self) -> None:
        # Stopped by an event, not cancelled: a run under way ends first.
        stop = self._stop
        if self._at_start:
            await self.run_once()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
                return
            await self.run_once()


class InBackground:
    """Work repeated by a :class:`Periodic` it owns (``self._loop``): start, stop, figures."""

    _loop: Periodic

    @property
    def interval(self) -> float:
        """Seconds between two runs in the background (0: never)."""
        return self._loop.interval

    @property
    def failures(self) -> int:
        """Background runs that failed so far."""
        return self._loop.failures

    def start(self) -> None:
        """Run every ``interval`` seconds in the background (never with an interval of 0)."""
        self._loop.start()

    async def stop(self, grace: float) -> None:
        """Stop; a run under way ends first (within ``grace`` seconds)."""
        await self._loop.stop(grace)
