"""sysevents: a durable, queryable log of system events.

>>> import sysevents
>>> repo = sysevents.connect("memory://")
"""

from ._connect import connect
from .emitter import EmitterCounters, EventLogger
from .errors import (
    ConfigurationError,
    ConflictError,
    InvalidCursorError,
    InvalidEventError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    SyseventsError,
)
from .memory import MemoryEventRepository
from .model import (
    Event,
    EventFilter,
    EventLimits,
    EventPage,
    EventPatch,
    EventQuery,
    EventStats,
    NewEvent,
    Severity,
)
from .repository import EventRepository
from .settings import Settings

__version__ = "0.1.0"

__all__ = [
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
    "InvalidCursorError",
    "InvalidEventError",
    "MemoryEventRepository",
    "NewEvent",
    "NotFoundError",
    "Settings",
    "Severity",
    "StoreError",
    "StoreUnavailableError",
    "SyseventsError",
    "__version__",
    "connect",
]
