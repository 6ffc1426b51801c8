"""The service's own records: lifecycle events, throttled health events, and upkeep.

:class:`ServiceEvents` records ``system_startup`` and ``system_shutdown``
(version, host, pid, uptime), ``health_check`` and ``db_health_check`` at
most once per interval per state (and always when the state changes), and
runs two chores every ``retention_interval``, apart (see
:mod:`sysevents_http.chores`): the store's upkeep (partitions ahead, old
idempotency keys) and the retention policy, so that neither holds the other
back.
A record the store cannot take goes to stdout as one JSON line: nothing is
lost, nothing crashes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Coroutine
from typing import Any

import sysevents
from sysevents import EventRepository, Settings, Severity
from sysevents.model import OwnRecord
from sysevents.upkeep import apply_and_record

from .chores import Chore, ChoreHealth

logger = logging.getLogger("sysevents_http")

SOURCE = "sysevents_http"
"""The ``source`` of the lifecycle events the service records."""
AUTH_FAILED = "sysevents.auth_failed"
"""The type of the record of a failed authentication."""


class ServiceEvents:
    """Lifecycle and health records, and the upkeep and retention chores (see the module)."""

    def __init__(
        self, store: EventRepository, settings: Settings, *, health_log_interval: float
    ) -> None:
        self.store = store
        self.settings = settings
        self.health_log_interval = health_log_interval
        self.started_monotonic = time.monotonic()
        self._last_health: dict[str, tuple[float, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        interval = settings.retention_interval
        self.chores = (
            Chore(
                "upkeep",
                self.maintain_once,
                interval,
                "partitions are still made on demand, but idempotency keys pile up: check "
                "that the database is up and not overloaded",
            ),
            Chore(
                "retention",
                self.retain_once,
                interval,
                "expired events are kept meanwhile: check that the database is up and not "
                "overloaded, and the retention_policy setting",
            ),
        )
        """The background chores, each a task of its own."""

    @property
    def uptime(self) -> float:
        """Seconds since the service started."""
        return round(time.monotonic() - self.started_monotonic, 3)

    async def started(self) -> None:
        """Record ``system_startup``, then start the chores."""
        self.started_monotonic = time.monotonic()
        await self.record(
            "system_startup", Severity.INFO, "sysevents API started", self._host_details()
        )
        for chore in self.chores:
            chore.start()

    def chore_health(self) -> dict[str, ChoreHealth]:
        """How each chore fares, by name."""
        return {chore.name: chore.health() for chore in self.chores}

    async def stopping(self, grace: float) -> None:
        """Stop the chores, record ``system_shutdown``, finish pending records within ``grace``."""
        await asyncio.gather(*(chore.stop(self.settings.timeout) for chore in self.chores))
        await self.record(
            "system_shutdown", Severity.INFO, "sysevents API stopping", self._host_details()
        )
        for task in await self.settled(grace):
            task.cancel()

    async def settled(self, seconds: float) -> set[asyncio.Task[None]]:
        """Wait up to ``seconds`` for the records handed to the background; those still pending."""
        if not self._tasks:
            return set()
        _, pending = await asyncio.wait(set(self._tasks), timeout=seconds)
        return pending

    def _host_details(self) -> dict[str, Any]:
        return {
            "version": sysevents.__version__,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "uptime": self.uptime,
        }

    async def record(
        self,
        event_type: str,
        severity: Severity,
        message: str,
        details: dict[str, Any],
        *,
        caller: str | None = None,
    ) -> bool:
        """Store one record, or print it to stdout as one JSON line when the store fails.

        ``caller`` is who acted (its ``written_by``); none for the service's own doings.
        """
        new = OwnRecord(
            event_type=event_type,
            severity=severity,
            message=message,
            details=details,
            source=SOURCE,
        )
        try:
            await self.store.add(new, caller=caller)
            return True
        except Exception as exc:
            line = new.model_dump(mode="json")
            line["stored"] = False
            line["error"] = f"{type(exc).__name__}: {exc}"
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return False

    def note_auth_failure(self, details: dict[str, Any]) -> None:
        """Record a failed authentication (already throttled per address and reason)."""
        reason = details.get("reason", "?")
        self._in_background(
            self.record(
                AUTH_FAILED,
                Severity.WARNING,
                f"authentication failed from {details.get('address')}: {reason}",
                details,
            )
        )

    def _in_background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def note_health(self, kind: str, state: str, details: dict[str, Any]) -> None:
        """Record a health event in the background, at most once per interval per state."""
        now = time.monotonic()
        last = self._last_health.get(kind)
        if last is not None and last[1] == state and now - last[0] < self.health_log_interval:
            return
        self._last_health[kind] = (now, state)
        severity = Severity.INFO if state == "ok" else Severity.ERROR
        message = f"{kind.replace('_', ' ')}: {state}"
        self._in_background(self.record(kind, severity, message, {**details, "state": state}))

    # -- chores ---------------------------------------------------------------------

    async def maintain_once(self) -> None:
        """The store's upkeep, once; only in the process that leads the store's background work.

        That is one of the workers or replicas sharing the store.
        """
        if not await self.store.leads():
            return
        made = await self.store.maintain()
        if made:
            logger.info("created partitions %s", ", ".join(made))

    async def retain_once(self) -> None:
        """The retention policy (if any) applied and recorded, once, in the leading process."""
        policy = self.settings.retention_policy
        if policy and await self.store.leads():
            await apply_and_record(self.store, policy)
