"""Digests: a run of sealed events, its hash, its place in the chain, and its signature.

Each digest covers the events after the previous digest's last position up
to its own, in the store's commit order. It keeps one entry per event (id,
timestamp, severity, type and fingerprint: enough to name an event that is
missing later, and to tell whether retention removed it) and its header
commits to them: ``events`` is the SHA-256 of the entries as bytes. The header
text, which the signature covers, is::

    sysevents digest 1
    seq: 12
    after: 7340-1190
    last: 7345-1200
    count: 10
    ids: 1191-1200          (the lowest and highest id)
    events: <hex SHA-256 of the entries>
    previous: <hex SHA-256 of the previous digest's header, zeros for the first>
    sealed_at: 2026-12-07T03:00:00.000000Z
    next_xid: 7346
    key: <the signing key's id, or "unsigned">

and a digest's hash is the SHA-256 of its header: the next digest names it,
so no digest can be changed, removed or put between two others unseen.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sysevents.model import Severity

from .canonical import FINGERPRINT_BYTES, time_text

Position = tuple[int, int]
"""Where an event is in a store's commit order: ``(transaction, id)`` (memory: ``(0, id)``)."""
ZERO_HASH = bytes(32)
"""The ``previous`` of the first digest."""
UNSIGNED = "unsigned"
"""The ``key`` of a digest sealed without a seal key."""

SEVERITIES = tuple(Severity)
_ENTRY = struct.Struct(f">qqB{FINGERPRINT_BYTES}sH")


def from_micros(us: int) -> datetime:
    """The aware UTC time ``us`` microseconds after 1970."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def position_text(position: Position) -> str:
    """``"XID-ID"``."""
    return f"{position[0]}-{position[1]}"


@dataclass(frozen=True, slots=True)
class Entry:
    """What a digest keeps of one event."""

    id: int
    timestamp_us: int
    """The event's timestamp, in microseconds since 1970 (UTC)."""
    severity: Severity
    event_type: str
    fingerprint: bytes

    def packed(self) -> bytes:
        """The entry as bytes: id, timestamp, severity, fingerprint, type (length first)."""
        kind = self.event_type.encode()
        return (
            _ENTRY.pack(
                self.id,
                self.timestamp_us,
                SEVERITIES.index(self.severity),
                self.fingerprint,
                len(kind),
            )
            + kind
        )


def pack_entries(entries: list[Entry]) -> bytes:
    """The entries of a digest, as the bytes its ``events`` hash covers."""
    return b"".join(e.packed() for e in entries)


def unpack_entries(data: bytes) -> Iterator[Entry]:
    """The entries packed in ``data`` (``ValueError`` if it is not entries)."""
    at = 0
    size = _ENTRY.size
    while at < len(data):
        if at + size > len(data):
            raise ValueError("cut entry")
        event_id, us, severity, print_, length = _ENTRY.unpack_from(data, at)
        at += size
        if severity >= len(SEVERITIES) or at + length > len(data):
            raise ValueError("malformed entry")
        kind = data[at : at + length].decode()
        at += length
        yield Entry(event_id, us, SEVERITIES[severity], kind, print_)


@dataclass(frozen=True, slots=True)
class Run:
    """The next events to seal, in commit order, packed as a digest's entries."""

    entries: bytes
    count: int
    min_id: int
    max_id: int
    last: Position
    """The position of the last one."""

    @classmethod
    def of(cls, entries: list[Entry], last: Position) -> Run:
        """A run of ``entries`` (not empty) ending at ``last``."""
        ids = [e.id for e in entries]
        return cls(pack_entries(entries), len(entries), min(ids), max(ids), last)


@dataclass(frozen=True, slots=True)
class Digest:
    """One link of the chain (see the module)."""

    seq: int
    after: Position
    last: Position
    count: int
    min_id: int
    max_id: int
    events_sha256: bytes
    previous: bytes
    sealed_at: datetime
    next_xid: int
    """The store's next transaction id when sealed: later transactions began after it."""
    key: str = UNSIGNED
    signature: bytes | None = None
    entries: bytes = field(default=b"", repr=False)

    def header(self) -> bytes:
        """The text the signature covers and the hash is taken of."""
        lines = [
            "sysevents digest 1",
            f"seq: {self.seq}",
            f"after: {position_text(self.after)}",
            f"last: {position_text(self.last)}",
            f"count: {self.count}",
            f"ids: {self.min_id}-{self.max_id}",
            f"events: {self.events_sha256.hex()}",
            f"previous: {self.previous.hex()}",
            f"sealed_at: {time_text(self.sealed_at)}",
            f"next_xid: {self.next_xid}",
            f"key: {self.key}",
        ]
        return ("\n".join(lines) + "\n").encode()

    def hash(self) -> bytes:
        """The SHA-256 of the header: what the next digest's ``previous`` holds."""
        return hashlib.sha256(self.header()).digest()

    def as_json(self) -> dict[str, object]:
        """The digest as JSON-ready fields (its entries left out), for archiving elsewhere."""
        return {
            "seq": self.seq,
            "after": position_text(self.after),
            "last": position_text(self.last),
            "count": self.count,
            "min_id": self.min_id,
            "max_id": self.max_id,
            "events_sha256": self.events_sha256.hex(),
            "previous": self.previous.hex(),
            "hash": self.hash().hex(),
            "sealed_at": time_text(self.sealed_at),
            "next_xid": self.next_xid,
            "key": self.key,
            "signature": None if self.signature is None else self.signature.hex(),
        }


def new_digest(
    previous: Digest | None, run: Run, sealed_at: datetime, next_xid: int, key: str
) -> Digest:
    """The digest after ``previous`` sealing ``run``, unsigned yet."""
    return Digest(
        seq=1 if previous is None else previous.seq + 1,
        after=(0, 0) if previous is None else previous.last,
        last=run.last,
        count=run.count,
        min_id=run.min_id,
        max_id=run.max_id,
        events_sha256=hashlib.sha256(run.entries).digest(),
        previous=ZERO_HASH if previous is None else previous.hash(),
        sealed_at=sealed_at,
        next_xid=next_xid,
        key=key,
        entries=run.entries,
    )
