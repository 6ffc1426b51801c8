"""Invalidations after writes, batched: writers that finish together share one script.

Each writer queues its ids synchronously (a caller cancelled right after its
commit still has them invalidated) and then waits for a script that started
after its commit. Under concurrent writes that is one round trip for many.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from .guard import FAILURES, RedisGuard
from .tokens import Tokens

IDS_PER_SCRIPT = 1000
"""The most ids one script carries, so that it fits in the time a command has."""


class InvalidationQueue:
    """Queued invalidations and the one task that sends them, one script at a time."""

    def __init__(self, guard: RedisGuard, tokens: Tokens) -> None:
        self._guard = guard
        self._tokens = tokens
        self._ids: list[int] = []
        self._next: asyncio.Future[None] | None = None
        self._runner: asyncio.Task[None] | None = None

    def running(self) -> list[asyncio.Task[None]]:
        """The task sending invalidations, if one is under way."""
        return [] if self._runner is None else [self._runner]

    async def invalidate(self, ids: Sequence[int]) -> None:
        """Give each event of ``ids`` and the stats new generations, after a committed write.

        The ids are queued before anything is awaited, so a caller cancelled
        now still has them invalidated.
        """
        await asyncio.shield(self.queue(ids))

    def queue(self, ids: Sequence[int]) -> asyncio.Future[None]:
        """Queue ``ids`` for the next script; the future ends when that script has run."""
        loop = asyncio.get_running_loop()
        future = self._next
        if future is None:
            future = self._next = loop.create_future()
        self._ids.extend(ids)
        if self._runner is None:
            self._runner = loop.create_task(self._run())
        return future

    async def _run(self) -> None:
        """Send queued invalidations, one script at a time, until none are left."""
        try:
            while self._next is not None:
                # One turn of the loop lets writers resumed in the same turn join.
                await asyncio.sleep(0)
                future, ids = self._next, self._ids
                self._next, self._ids = None, []
                try:
                    await self._send(ids)
                except asyncio.CancelledError:
                    # Closed mid-script: the writers must not return as if it had run.
                    future.cancel()
                    raise
                except Exception as exc:  # not Redis's failure, but still a missed one
                    self._guard.miss()
                    self._guard.fail(exc)
                future.set_result(None)
        finally:
            self._runner = None

    async def _send(self, ids: Sequence[int]) -> None:
        """Scripts giving ``ids`` and the stats new tokens; remembered as missed on failure."""
        guard = self._guard
        if guard.is_open:
            guard.miss()
            return
        for start in range(0, max(len(ids), 1), IDS_PER_SCRIPT):
            bump = functools.partial(self._tokens.bump, ids[start : start + IDS_PER_SCRIPT])
            try:
                await guard.call(guard.budget(), bump)
            except FAILURES as exc:
                guard.miss()
                guard.fail(exc)
                return

    async def close(self, grace: float) -> None:
        """Let the script under way finish within ``grace`` seconds, then fail waiting writers."""
        runner = self._runner
        if runner is not None:
            # Writers that committed wait for these: let them go out (each
            # script is bounded by the call budget), then give up on the rest.
            await asyncio.wait({runner}, timeout=grace)
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            self._runner = None
        future, self._next, self._ids = self._next, None, []
        if future is not None and not future.done():
            future.cancel()
