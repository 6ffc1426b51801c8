"""The audit trail: each change made on someone's behalf is itself recorded, as an event.

A store given an ``actor`` for ``update`` or ``delete`` stores, with the change
and atomically with it, the event this module builds: type
``sysevents.event_updated`` or ``sysevents.event_deleted``, details holding the
event's id, the actor (the API key's name), and for an update each changed
field's old and new value.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .columns import PATCHABLE
from .model import Event, OwnRecord, Severity

EVENT_UPDATED = "sysevents.event_updated"
"""The type of the event recording an update."""
EVENT_DELETED = "sysevents.event_deleted"
"""The type of the event recording a delete."""
KEY_CREATED = "sysevents.key_created"
"""The type of the event recording that an API key was created."""
KEY_REVOKED = "sysevents.key_revoked"
"""The type of the event recording that an API key was revoked."""
AUDIT_SOURCE = "sysevents"
"""The source of audit events."""


# Values longer than this as JSON are kept cut, so that the record of a change
# between two events at the size limit still fits in one event's details.
_MAX_VALUE_CHARS = 4000
_FIELDS = tuple(c.name for c in PATCHABLE)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, Severity):
        value = value.value
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text) > _MAX_VALUE_CHARS:
        return {"cut": text[:_MAX_VALUE_CHARS], "length": len(text)}
    return value


def changes_between(before: Event, after: Event) -> dict[str, dict[str, Any]]:
    """Each field that differs, with its old and new value."""
    return {
        name: {"old": _value(getattr(before, name)), "new": _value(getattr(after, name))}
        for name in _FIELDS
        if getattr(before, name) != getattr(after, name)
    }


def update_record(before: Event, after: Event, actor: str) -> OwnRecord:
    """The event recording that ``actor`` changed ``before`` into ``after``."""
    changes = changes_between(before, after)
    fields = ", ".join(changes) or "nothing"
    return OwnRecord(
        event_type=EVENT_UPDATED,
        severity=Severity.INFO,
        message=f"event {before.id} updated by {actor}: {fields}",
        details={"event_id": before.id, "key": actor, "changes": changes},
        source=AUDIT_SOURCE,
    )


def key_record(
    event_type: str,
    key_id: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    actor: str,
) -> OwnRecord:
    """The event recording that ``actor`` created or revoked (``event_type``) a key."""
    done = "created" if event_type == KEY_CREATED else "revoked"
    return OwnRecord(
        event_type=event_type,
        severity=Severity.INFO if event_type == KEY_CREATED else Severity.WARNING,
        message=f"API key {name!r} ({key_id}) {done} by {actor}",
        details={
            "key_id": key_id,
            "name": name,
            "scopes": sorted(scopes),
            "expires_at": None if expires_at is None else expires_at.isoformat(),
            "by": actor,
        },
        source=AUDIT_SOURCE,
    )


def delete_record(gone: Event, actor: str) -> OwnRecord:
    """The event recording that ``actor`` deleted ``gone``."""
    return OwnRecord(
        event_type=EVENT_DELETED,
        severity=Severity.INFO,
        message=f"event {gone.id} deleted by {actor}",
        details={
            "event_id": gone.id,
            "key": actor,
            "event": {
                "event_type": gone.event_type,
                "severity": gone.severity.value,
                "message": _value(gone.message),
                "timestamp": gone.timestamp.isoformat(),
            },
        },
        source=AUDIT_SOURCE,
    )
