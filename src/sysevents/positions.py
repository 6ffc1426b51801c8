"""Read-your-writes across replicas: the position of a caller's last write.

A store with read replicas notes, after each write, a position in
PostgreSQL's write-ahead log (an LSN such as ``0/16B3748``) at or past the
write's commit; a read is served by a replica only once it has replayed that
far. The position travels with the work: within one task (and the tasks it
starts) through a context variable, across processes in the
``Sysevents-Position`` header that the REST API puts on every write answer
and that a read may present.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

POSITION_HEADER = "Sysevents-Position"
"""The HTTP header a write's answer carries, and a read may present."""


@dataclass
class Positions:
    """What the current work must read (``after``) and the last it wrote (``written``).

    Mutable, and shared by the tasks one piece of work starts, so that a
    write made in a child task is seen by the request that started it.
    """

    after: int | None = None
    written: int | None = None
    primary: bool = False
    """Read from the primary only (a write's position could not be read)."""

    def needed(self) -> int | None:
        """The position a read must see: the later of the two."""
        if self.after is None or self.written is None:
            return self.written if self.after is None else self.after
        return max(self.after, self.written)

    def wrote(self, position: int) -> None:
        """Note a write's position (a later one only)."""
        self.written = position if self.written is None else max(self.written, position)


_current: ContextVar[Positions | None] = ContextVar("sysevents_positions", default=None)


def track(after: str | None = None) -> Positions:
    """Track positions for the current piece of work (a request) that reads after ``after``."""
    positions = Positions(after=None if after is None else lsn_value(after))
    _current.set(positions)
    return positions


def current() -> Positions:
    """The positions of the current piece of work, tracked from now on if they were not."""
    positions = _current.get()
    if positions is None:
        positions = track()
    return positions


def lsn_value(text: str) -> int | None:
    """An LSN's text (``X/Y``, hexadecimal) as a number; ``None`` if it is not one."""
    high, sep, low = text.strip().partition("/")
    if not sep or not (0 < len(high) <= 8 and 0 < len(low) <= 8):
        return None
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return None


def lsn_text(value: int) -> str:
    """A number as an LSN's text."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
