"""sysevents: a durable, queryable log of system events.

>>> import sysevents
>>> repo = sysevents.connect("memory://")
"""

from ._connect import connect
from .emitter import EmitterCounters, EventLogger
from .errors import (
    ConfigurationError,
    ConflictError,
    IdempotencyConflictError,
    InvalidCursorError,
    InvalidEventError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    SyseventsError,
)
from .memory import MemoryEventRepository
from .model import Event, EventLimits, EventPage, EventPatch, EventStats, NewEvent, Severity
from .query import EventFilter, EventQuery
from .repository import CacheStats, EventRepository, JsonReads, ReportsCacheStats
from .settings import Settings

__version__ = "0.1.0"

__all__ = [
    "CacheStats",
    "ConfigurationError",
    "ConflictError",
    "EmitterCounters",
    "Event",
    "EventFilter",
    "EventLimits",
    "EventLogger",
    "EventPage",
    "EventPatch",
    "EventQuery",
    "EventRepository",
    "EventStats",
    "IdempotencyConflictError",
    "InvalidCursorError",
    "InvalidEventError",
    "JsonReads",
    "MemoryEventRepository",
    "NewEvent",
    "NotFoundError",
    "ReportsCacheStats",
    "Settings",
    "Severity",
    "StoreError",
    "StoreUnavailableError",
    "SyseventsError",
    "__version__",
    "connect",
]
