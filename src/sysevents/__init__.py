"""sysevents: a durable, queryable log of system events.

>>> import sysevents
>>> repo = sysevents.connect("memory://")
"""

from ._connect import connect
from .delegating import DelegatingStore
from .emitter import EmitterCounters, EventLogger
from .errors import (
    AppendOnlyError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    IdempotencyConflictError,
    InvalidCursorError,
    InvalidEventError,
    KeyNotFoundError,
    NotFoundError,
    ReservedTypeError,
    StoreError,
    StoreUnavailableError,
    SyseventsError,
    TooManySeriesError,
)
from .histogram import EventHistogram, HistogramBucket
from .logging import log_to
from .model import Event, EventLimits, EventPage, EventPatch, EventStats, NewEvent, Severity
from .query import EventFilter, EventQuery
from .retention import RetentionPolicy, RetentionReport
from .settings import Settings
from .store import CacheStats, EventRepository, EventStore, PoolStats
from .stores.memory import MemoryEventRepository

__version__ = "0.1.0"

__all__ = [
    "AppendOnlyError",
    "AuthenticationError",
    "CacheStats",
    "ConfigurationError",
    "ConflictError",
    "DelegatingStore",
    "EmitterCounters",
    "Event",
    "EventFilter",
    "EventHistogram",
    "EventLimits",
    "EventLogger",
    "EventPage",
    "EventPatch",
    "EventQuery",
    "EventRepository",
    "EventStats",
    "EventStore",
    "ForbiddenError",
    "HistogramBucket",
    "IdempotencyConflictError",
    "InvalidCursorError",
    "InvalidEventError",
    "KeyNotFoundError",
    "MemoryEventRepository",
    "NewEvent",
    "NotFoundError",
    "PoolStats",
    "ReservedTypeError",
    "RetentionPolicy",
    "RetentionReport",
    "Settings",
    "Severity",
    "StoreError",
    "StoreUnavailableError",
    "SyseventsError",
    "TooManySeriesError",
    "__version__",
    "connect",
    "log_to",
]
