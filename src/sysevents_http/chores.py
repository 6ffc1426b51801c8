"""Background chores of the service (upkeep, retention), each its own task.

A :class:`Chore` runs its work at once, then every ``interval`` seconds until
stopped. One that fails is retried at the next interval; while it keeps
failing it is logged at WARNING at most once a minute, saying what to do, and
its failures show on ``/metrics`` (see :meth:`Chore.health`). Chores run
apart: one that fails or is slow never holds another back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sysevents._tasks import Periodic, PeriodicHealth

logger = logging.getLogger("sysevents_http")

ChoreHealth = PeriodicHealth
"""How a chore fares (see :class:`~sysevents._tasks.PeriodicHealth`)."""


class Chore(Periodic):
    """``work()`` now and every ``interval`` seconds, named ``name`` (see the module).

    ``advice`` ends the warning of a failure: what the operator can do.
    """

    def __init__(
        self, name: str, work: Callable[[], Awaitable[object]], interval: float, advice: str
    ) -> None:
        super().__init__(
            name,
            work,
            interval,
            advice,
            logger=logger,
            task_name=f"sysevents-{name}",
            at_start=True,
        )
        self.name = name
