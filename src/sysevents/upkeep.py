"""Upkeep a store needs now and then: the retention policy applied and recorded."""

from __future__ import annotations

import logging
from datetime import datetime

from .retention import RetentionPolicy, RetentionReport
from .store import EventRepository

__all__ = ["apply_and_record"]

log = logging.getLogger("sysevents.retention")


async def apply_and_record(
    repo: EventRepository,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Apply ``policy`` to ``repo``; log what went and record it as a ``sysevents.retention`` event.

    Nothing is recorded for a dry run or a run that removed nothing.
    """
    report = await repo.apply_retention(policy, now=now, dry_run=dry_run)
    if not dry_run and (report.removed or report.partitions_dropped):
        for line in report.lines():
            log.info("retention: %s", line)
        await repo.add(report.as_event())
    return report
