"""``log_to``: start recording a program's logs as events in one line."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .handler import EventLogHandler

if TYPE_CHECKING:
    from sysevents.emitter import ThreadedEventLogger
    from sysevents.store import EventRepository

__all__ = ["OwnEmitterHandler", "log_to"]


class OwnEmitterHandler(EventLogHandler):
    """An :class:`EventLogHandler` with an emitter of its own, on a thread of its own.

    ``flush()`` waits until every record logged so far is stored (or on
    stdout); ``close()`` stores what is left and stops the emitter, as
    ``logging.shutdown()`` does at exit.
    """

    emitter: ThreadedEventLogger
    _stopped = False

    def flush(self) -> None:
        """Wait until every record handled so far is stored or written to stdout."""
        if not self._stopped:
            self.emitter.flush()

    def close(self) -> None:
        """Store what is queued, then stop the emitter; safe to call twice."""
        self._stopped = True
        try:
            self.emitter.close()
        finally:
            super().close()


def log_to(
    target: str | EventRepository,
    *,
    level: int | str = "INFO",
    source: str | None = None,
    api_key: str | None = None,
    logger: logging.Logger | str | None = None,
    **options: Any,
) -> OwnEmitterHandler:
    """Record every log record of ``level`` and above as an event; returns the handler.

    ``target`` is a URL (``http://…`` of a sysevents API, ``postgresql://…``,
    ``memory://``) or an unopened repository. The handler is added to
    ``logger`` (a logger or its name; default: the root logger), whose level
    is lowered to ``level`` if it was higher. ``source`` names every event's
    source (default: the logger's name); ``api_key`` is sent to an ``http://``
    API. Other keyword arguments go to the emitter
    (:class:`~sysevents.EventLogger`). Records are stored in the background:
    logging never waits for the store.

    >>> handler = log_to("memory://", logger="doctest")
    >>> logging.getLogger("doctest").info("hello")
    >>> handler.flush()
    >>> handler.close()
    """
    from sysevents.emitter import EventLogger

    if isinstance(target, str):
        from sysevents._connect import connect

        url, key = target, api_key
        emitter = EventLogger.in_thread(
            lambda: connect(url, api_key=key) if key is not None else connect(url),
            **options,
        )
    else:
        repo = target
        emitter = EventLogger.in_thread(lambda: repo, **options)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        emitter.close()
        raise ValueError(f"unknown logging level {level!r}")
    handler = OwnEmitterHandler(emitter, level=numeric, source=source)
    chosen = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    if chosen.getEffectiveLevel() > numeric:
        chosen.setLevel(numeric)
    chosen.addHandler(handler)
    return handler
