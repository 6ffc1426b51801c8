"""A tiny service that records its events with sysevents through standard logging."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import sysevents
from sysevents.emitter import ThreadedEventLogger
from sysevents.logging.handler import EventLogHandler

log = logging.getLogger("shop")


@contextlib.contextmanager
def event_logging(url: str | None = None) -> Iterator[ThreadedEventLogger]:
    """Send the shop's log records to the event store for as long as the block runs."""
    emitter = sysevents.EventLogger.in_thread(lambda: sysevents.connect(url))
    handler = EventLogHandler(emitter, level=logging.INFO)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield emitter
    finally:
        log.removeHandler(handler)
        emitter.close()


def place_order(order_id: str, amount: int) -> None:
    """Place an order; refuses amounts that are not positive."""
    if amount <= 0:
        log.error(
            "refused order %s",
            order_id,
            extra={"event_type": "order_refused", "order_id": order_id},
        )
        raise ValueError("amount must be positive")
    log.info(
        "order %s placed",
        order_id,
        extra={"event_type": "order_placed", "order_id": order_id, "amount": amount},
    )
