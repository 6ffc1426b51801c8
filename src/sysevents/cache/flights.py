"""Single-flight loads: concurrent misses of one entry, under the same tokens, share one load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class SingleFlight:
    """Runs one load per key at a time; callers who ask meanwhile wait for it.

    Keys include the tokens the callers saw: any write that returned before
    they looked had already changed the tokens, so sharing a load never hands
    a caller a value older than a write it has seen.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}
        self.coalesced = 0
        """Callers that waited for another caller's load instead of loading."""

    async def run(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """The result of ``load()``, or of the load of ``key`` already under way."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(load())
            self._flights[key] = flight
            flight.add_done_callback(lambda f: self._land(key, f))
            result: T = await asyncio.shield(flight)
            return result
        self.coalesced += 1
        shared: T = await asyncio.shield(flight)
        # Waiters share the loaded object: each gets its own copy of its mutable parts.
        return shared.model_copy(deep=True) if isinstance(shared, BaseModel) else shared

    def _land(self, key: Hashable, flight: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved, even if every waiter was cancelled

    async def close(self) -> None:
        """Cancel the loads under way."""
        pending = list(self._flights.values())
        for flight in pending:
            flight.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
