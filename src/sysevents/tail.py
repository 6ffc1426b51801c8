"""Live tails: each new matching event once, in order, resumable from a position.

A store gives every event a position in the order it emits them (memory:
its insertion number; PostgreSQL: the writing transaction's id and the event
id, see ``sysevents.stores.postgres.tail``). A position is an opaque text: given
back as ``after``, the tail continues just after it, with no event missed
and none repeated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from .errors import InvalidEventError
from .model import Event
from .query import EventFilter

__all__ = ["TailBase", "Tailed", "bad_position"]


@dataclass(frozen=True, slots=True)
class Tailed:
    """One step of a tail: a new event, or ``None`` when ``idle`` seconds passed without one."""

    event: Event | None
    position: str
    """Where the tail is: give it as ``after`` to continue from here."""


def bad_position(after: str) -> InvalidEventError:
    """The error for a position this store never gave."""
    shown = after if len(after) <= 40 else after[:40] + "…"
    return InvalidEventError(
        [{"loc": ("after",), "msg": f"not a position of this store: {shown!r}", "type": "position"}]
    )


class TailBase:
    """``tail()`` for a store that has ``follow()``."""

    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:  # pragma: no cover - abstract
        """The new events matching ``query`` after position ``after`` (none: from now on).

        Yields a :class:`Tailed` per event, and one without an event each time
        ``idle`` seconds pass without any (``None``: never). A malformed
        ``after`` raises ``InvalidEventError`` at once, before iterating.
        """
        raise NotImplementedError

    async def tail(
        self, query: EventFilter | None = None, *, after: str | None = None
    ) -> AsyncIterator[Event]:
        """Each new event matching ``query``, once, in order: ``async for e in repo.tail()``."""
        items = self.follow(query, after=after)
        try:
            async for item in items:
                if item.event is not None:
                    yield item.event
        finally:
            await items.aclose()  # type: ignore[attr-defined]
