"""The service's upkeep: partitions ahead, old idempotency keys, and the retention policy.

Every ``retention_interval`` seconds, from start-up on. The store makes sure
one replica at a time applies the policy; a failure is logged and tried again
at the next turn, never taken down with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sysevents import EventRepository, Settings
from sysevents.repository import Maintains
from sysevents.retention import apply_and_record

logger = logging.getLogger("sysevents_http")


async def upkeep_once(repository: EventRepository, settings: Settings) -> None:
    """One turn: the store's upkeep, then the retention policy (if any)."""
    if isinstance(repository, Maintains):
        made = await repository.maintain()
        if made:
            logger.info("created partitions %s", ", ".join(made))
    policy = settings.retention_policy
    if policy:
        await apply_and_record(repository, policy)


async def upkeep_forever(
    repository: EventRepository, settings: Settings, stop: asyncio.Event
) -> None:
    """Run :func:`upkeep_once` every ``retention_interval`` seconds until ``stop`` is set.

    Stopping waits for a run under way to end rather than cancelling it in
    the middle of a statement (which some driver versions do not survive).
    """
    while not stop.is_set():
        try:
            await upkeep_once(repository, settings)
        except Exception as exc:  # logged and retried: upkeep never stops the app
            logger.warning("upkeep failed (%s: %s); will retry", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.retention_interval)
