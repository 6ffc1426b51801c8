"""Opaque keyset cursors, signed so that an edited or foreign cursor is refused."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from .errors import InvalidCursorError
from .query import EventQuery

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAYOUT = struct.Struct(">Bqq")  # version, timestamp in microseconds, id
_VERSION = 1
_MAC_SIZE = 12


def _mac(secret: bytes, payload: bytes, query: EventQuery) -> bytes:
    scope = f"{query.order}\x1e{query.filter_key()}".encode()
    return hmac.new(secret, payload + scope, hashlib.sha256).digest()[:_MAC_SIZE]


def _micros(ts: datetime) -> int:
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(
    secrets: Sequence[bytes], query: EventQuery, timestamp: datetime, event_id: int
) -> str:
    """The cursor that continues ``query`` after the event at (timestamp, id).

    It is signed with the first (newest) of ``secrets``.
    """
    payload = _LAYOUT.pack(_VERSION, _micros(timestamp), event_id)
    token = payload + _mac(secrets[0], payload, query)
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def decode_cursor(secrets: Sequence[bytes], query: EventQuery) -> tuple[datetime, int]:
    """The (timestamp, id) position that ``query.cursor`` continues after.

    A cursor signed with any of ``secrets`` is accepted: a rotated secret
    keeps the cursors in flight readable while it stays in the list.
    """
    text = query.cursor or ""
    try:
        token = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursorError("the cursor is not a valid cursor") from None
    if len(token) != _LAYOUT.size + _MAC_SIZE:
        raise InvalidCursorError("the cursor is not a valid cursor")
    payload, mac = token[: _LAYOUT.size], token[_LAYOUT.size :]
    if not any(hmac.compare_digest(mac, _mac(secret, payload, query)) for secret in secrets):
        raise InvalidCursorError(
            "the cursor was altered, or belongs to a query with other filters or order"
        )
    version, micros, event_id = _LAYOUT.unpack(payload)
    if version != _VERSION:  # pragma: no cover - only one version exists so far
        raise InvalidCursorError("the cursor comes from another version")
    return _EPOCH + timedelta(microseconds=micros), event_id
