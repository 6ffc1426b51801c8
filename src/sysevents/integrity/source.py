"""What a store gives the sealer and ``verify``: its rows in commit order, and its digests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from sysevents.model import Event

from .digest import Digest, Entry, Position, Run


@dataclass(frozen=True, slots=True)
class Difference:
    """A stored row that does not match what a digest sealed (``SealStore.differences``)."""

    id: int
    kind: Literal["changed", "removed", "added", "backdated"]


@dataclass(frozen=True, slots=True)
class Backdating:
    """Rows of transactions from ``xid`` on, created before ``before``, were backdated."""

    xid: int
    before: datetime


@dataclass(frozen=True, slots=True)
class Horizon:
    """What can be sealed now."""

    below: int
    """Every transaction below this has ended: its rows can be sealed, none can appear later."""
    next_xid: int
    """The next transaction id (later transactions began after this was read)."""
    now: datetime
    """The store's clock."""


@runtime_checkable
class SealStore(Protocol):
    """The sealing side of a store (``EventRepository.seals``)."""

    async def horizon(self) -> Horizon:
        """What can be sealed now."""

    async def next_run(self, after: Position, *, below: int, limit: int) -> Run | None:
        """The next rows to seal, as entries (``None``: none).

        Up to ``limit`` rows after ``after`` in commit order, of transactions below ``below``.
        """

    async def differences(
        self, digest: Digest, entries: Sequence[Entry], backdating: Backdating | None
    ) -> list[Difference]:
        """The rows of ``digest``'s range that differ from its ``entries`` (by id).

        A row whose fingerprint differs is ``changed``, an entry without a row
        ``removed``, a row without an entry ``added``; a row matching
        ``backdating`` is ``backdated`` (too).
        """

    async def unsealed(self, after: Position, cap: int) -> int:
        """How many rows there are after ``after`` (counted up to ``cap``)."""

    async def last_digest(self) -> Digest | None:
        """The newest digest."""

    async def add_digest(self, digest: Digest) -> bool:
        """Keep a new digest; ``False`` if one with its ``seq`` exists (another sealer won)."""

    async def digests(
        self, *, after: int = 0, limit: int = 1000, since: datetime | None = None
    ) -> list[Digest]:
        """Digests in ``seq`` order after ``after`` (sealed at ``since`` or later)."""

    async def fingerprint_of(self, fields: dict[str, Any]) -> bytes:
        """The fingerprint of an event given by its stored fields, as this store computes it."""

    async def own_records(self, event_types: Sequence[str]) -> list[Event]:
        """Every stored event of these (sysevents' own) types, oldest first."""

    async def event(self, event_id: int) -> Event | None:
        """One stored event, as it is now."""
