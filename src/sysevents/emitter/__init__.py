"""A non-blocking event emitter: callers hand events over, a background task stores them.

``emit()`` costs the caller a tuple and a deque append (``queue``): no I/O, no
validation, no exception. A writer task on the repository's event loop
(``logger``) validates, batches and stores the events with ``add_many``,
retries while the store is unavailable, and writes what it cannot store to
stdout as one JSON line each (``fallback``), so nothing is lost silently.
``threaded`` runs all of it on a thread of its own for synchronous programs.
"""

from .logger import EventLogger
from .queue import EmitterCounters, Overflow
from .threaded import ThreadedEventLogger

__all__ = ["EmitterCounters", "EventLogger", "Overflow", "ThreadedEventLogger"]
