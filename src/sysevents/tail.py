"""Live tails: each new matching event once, in order, resumable from a position.

A store gives every event a position in the order it emits them (memory:
its insertion number; PostgreSQL: the writing transaction's id and the event
id, see ``sysevents.stores.postgres.tail``). A position is an opaque text: given
back as ``after``, the tail continues just after it, with no event missed
and none repeated.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidEventError, StoreUnavailableError
from .model import Event

__all__ = ["TailOverflow", "Tailed", "bad_position"]


@dataclass(frozen=True, slots=True)
class Tailed:
    """One step of a tail: a new event, or ``None`` when ``idle`` seconds passed without one."""

    event: Event | None
    position: str
    """Where the tail is: give it as ``after`` to continue from here."""


class TailOverflow(StoreUnavailableError):
    """A tail fell too far behind and was dropped so as not to slow the others.

    Nothing is lost: follow again from the last position it gave.
    """


def bad_position(after: str) -> InvalidEventError:
    """The error for a position this store never gave."""
    shown = after if len(after) <= 40 else after[:40] + "…"
    return InvalidEventError(
        [{"loc": ("after",), "msg": f"not a position of this store: {shown!r}", "type": "position"}]
    )
