"""Ending background tasks without cancelling them in the middle of a statement."""

from __future__ import annotations

import asyncio
import contextlib


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
