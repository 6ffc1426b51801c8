"""The service's own records: lifecycle events, throttled health events, and upkeep.

:class:`ServiceEvents` records ``system_startup`` and ``system_shutdown``
(version, host, pid, uptime), ``health_check`` and ``db_health_check`` at
most once per interval per state (and always when the state changes), and
runs the upkeep (partitions ahead, retention) every ``retention_interval``.
A record the store cannot take goes to stdout as one JSON line: nothing is
lost, nothing crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from sysevents._tasks import finish
from sysevents.model import OwnRecord
from sysevents.upkeep import apply_and_record

logger = logging.getLogger("sysevents_http")

SOURCE = "sysevents_http"
"""The ``source`` of the lifecycle events the service records."""
AUTH_FAILED = "sysevents.auth_failed"
"""The type of the record of a failed authentication."""


class ServiceEvents:
    """Lifecycle and health records, and the upkeep task (see the module)."""

    def __init__(
        self, store: EventRepository, settings: Settings, *, health_log_interval: float
    ) -> None:
        self.store = store
        self.settings = settings
        self.health_log_interval = health_log_interval
        self.started_monotonic = time.monotonic()
        self._last_health: dict[str, tuple[float, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._upkeep: asyncio.Task[None] | None = None
        self._stop_upkeep = asyncio.Event()

    @property
    def uptime(self) -> float:
        """Seconds since the service started."""
        return round(time.monotonic() - self.started_monotonic, 3)

    async def started(self) -> None:
        """Record ``system_startup``, then start the upkeep."""
        self.started_monotonic = time.monotonic()
        await self.record(
            "system_startup", Severity.INFO, "sysevents API started", self._host_details()
        )
        self._stop_upkeep = asyncio.Event()
        self._upkeep = asyncio.get_running_loop().create_task(
            self._upkeep_forever(), name="sysevents-upkeep"
        )

    async def stopping(self, grace: float) -> None:
        """Stop the upkeep, record ``system_shutdown``, finish pending records within ``grace``."""
        upkeep, self._upkeep = self._upkeep, None
        if upkeep is not None:
            self._stop_upkeep.set()
            await finish(upkeep, self.settings.timeout)
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

    # -- upkeep -----------------------------------------------------------------------

    async def upkeep_once(self) -> None:
        """One turn: the store's upkeep, then the retention policy (if any).

        Only in the process that leads the store's background work (one of
        the workers or replicas sharing the store).
        """
        if not await self.store.leads():
            return
        made = await self.store.maintain()
        if made:
            logger.info("created partitions %s", ", ".join(made))
        policy = self.settings.retention_policy
        if policy:
            await apply_and_record(self.store, policy)

    async def _upkeep_forever(self) -> None:
        """:meth:`upkeep_once` every ``retention_interval`` seconds until stopped.

        Stopping waits for a run under way to end rather than cancelling it in
        the middle of a statement (which some driver versions do not survive).
        """
        stop = self._stop_upkeep
        while not stop.is_set():
            try:
                await self.upkeep_once()
            except Exception as exc:  # logged and retried: upkeep never stops the app
                logger.warning("upkeep failed (%s: %s); will retry", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.retention_interval)
