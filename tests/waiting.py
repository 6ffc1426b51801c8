"""Waiting in tests: on a condition, with a deadline, never a fixed sleep then an assertion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEADLINE = 10.0
"""Seconds a condition may take on a loaded machine before the test fails."""


async def eventually(
    condition: Callable[[], bool], what: str, *, seconds: float = DEADLINE, every: float = 0.005
) -> None:
    """Return as soon as ``condition()`` holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        await asyncio.sleep(every)


def eventually_sync(
    condition: Callable[[], bool], what: str, *, seconds: float = DEADLINE, every: float = 0.01
) -> None:
    """:func:`eventually` for code without an event loop."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        time.sleep(every)
