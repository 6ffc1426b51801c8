"""Log records as events: the ``logging`` handler, ``log_to``, structlog and loguru.

One filter (``handler.is_transport_logger``) keeps each of them from
recording its own transport.
"""

from .handler import EventLogHandler
from .logto import OwnEmitterHandler, log_to

__all__ = ["EventLogHandler", "OwnEmitterHandler", "log_to"]
