"""The errors raised by sysevents: one base class, one subclass per failure."""

from __future__ import annotations

from typing import Any


class SyseventsError(Exception):
    """Base class of every error raised by sysevents."""


class ConfigurationError(SyseventsError, ValueError):
    """A URL, setting or missing optional dependency makes the request impossible."""


class InvalidEventError(SyseventsError, ValueError):
    """An event, patch or query broke a rule; ``errors`` names each bad field."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors]
        super().__init__("; ".join(parts) or "invalid input")


class InvalidCursorError(InvalidEventError):
    """A paging cursor is malformed, edited, or belongs to another query."""

    def __init__(self, msg: str = "the cursor is not valid for this query") -> None:
        super().__init__([{"loc": ("cursor",), "msg": msg, "type": "cursor_invalid"}])


class NotFoundError(SyseventsError, LookupError):
    """No event has the given id."""

    def __init__(self, event_id: int) -> None:
        self.event_id = event_id
        super().__init__(f"event {event_id} not found")


class KeyNotFoundError(SyseventsError, LookupError):
    """No API key has the given name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no API key is named {name!r}")


class ConflictError(SyseventsError):
    """The request conflicts with stored state."""


class IdempotencyConflictError(ConflictError):
    """An idempotency key was used before with a different event; ``fields`` says which."""

    def __init__(self, key: str, fields: list[str]) -> None:
        self.key = key
        self.fields = fields
        what = ", ".join(fields) or "event"
        super().__init__(f"idempotency key {key!r} was used before with another {what}")


class StoreError(SyseventsError):
    """The store failed in a way that is neither bad input nor unavailability."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached, or did not answer in time."""


class TooManySeriesError(SyseventsError):
    """A caller started more new (event_type, source) pairs this hour than it may."""

    def __init__(self, field: str = "event_type", limit: int = 0, retry_after: int = 0) -> None:
        self.field = field
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            f"{field}: more than {limit} new (event_type, source) pairs this hour "
            f"from this caller; try again in {retry_after} s, or reuse existing types"
        )


class ReservedTypeError(SyseventsError):
    """A client sent an event type that only sysevents itself writes (``sysevents.``...)."""

    def __init__(self, field: str = "event_type") -> None:
        self.field = field
        super().__init__(
            f"{field}: types beginning {RESERVED_PREFIX!r} are written only by sysevents itself"
        )


RESERVED_PREFIX = "sysevents."
"""The event types only sysevents writes (audit, retention, key and lifecycle records)."""


class AppendOnlyError(SyseventsError):
    """The store is append-only: events cannot be changed or deleted."""

    def __init__(self) -> None:
        super().__init__("this event log is append-only: events cannot be changed or deleted")


class AuthenticationError(SyseventsError):
    """No API key, or one that is unknown, expired or revoked (which, is never said).

    ``reason`` and ``key_id`` say why and which, for the record the service
    keeps; the answer to the caller never shows them.
    """

    def __init__(self, reason: str | None = None, key_id: str | None = None) -> None:
        self.reason = reason
        self.key_id = key_id
        super().__init__("a valid API key is required")


class ForbiddenError(SyseventsError):
    """The API key is valid but lacks the scope this needs."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"this needs an API key with the {scope!r} scope")
