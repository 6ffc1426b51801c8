"""Sealing: committed events into the digest chain, in the background.

The sealer walks the store's rows in commit order, ``(transaction, id)``,
and seals only those of transactions that had all ended when it looked
(:class:`~sysevents.integrity.source.Horizon`): no row can appear later
behind a sealed position, however writers interleave. This is the order
the rollup fold and the live tails already read (an index serves it), so
sealing costs one indexed range read per digest, away from the writers'
path: a writer never waits for it.

One process seals at a time (the store's lease); a digest whose ``seq``
another process took first is dropped and the chain read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sysevents._tasks import InBackground, Periodic
from sysevents.settings import Settings

from .digest import UNSIGNED, Digest, new_digest
from .signing import Signer
from .source import SealStore

log = logging.getLogger("sysevents.integrity")


class Sealer(InBackground):
    """Seals what is ready, now (:meth:`seal`) or every ``interval`` seconds."""

    def __init__(
        self,
        source: SealStore,
        *,
        interval: float,
        step: int,
        signer: Signer | None,
        leads: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.source = source
        self.step = step
        self.signer = signer
        self._lock = asyncio.Lock()
        self._loop = Periodic(
            "sealing events into digests",
            self.seal,
            interval,
            "events wait unsealed meanwhile: check that the store is up, and that this "
            "process may write the digests table (sysevents migrate)",
            logger=log,
            task_name="sysevents-sealer",
            leads=leads,
        )

    @classmethod
    def from_settings(
        cls,
        source: SealStore,
        settings: Settings,
        leads: Callable[[], Awaitable[bool]] | None = None,
    ) -> Sealer:
        """A sealer as ``settings`` say (``ConfigurationError`` for a malformed ``seal_key``)."""
        key = settings.seal_key
        return cls(
            source,
            interval=settings.seal_interval,
            step=settings.seal_step,
            signer=None if key is None else Signer.from_text(key.get_secret_value()),
            leads=leads,
        )

    async def seal(self) -> list[Digest]:
        """Seal everything ready now, in digests of at most ``step`` events; the new digests."""
        made: list[Digest] = []
        async with self._lock:
            while True:
                last = await self.source.last_digest()
                horizon = await self.source.horizon()
                after = (0, 0) if last is None else last.last
                run = await self.source.next_run(after, below=horizon.below, limit=self.step)
                if run is None:
                    return made
                key = self.signer.key_id if self.signer is not None else UNSIGNED
                digest = new_digest(last, run, horizon.now, horizon.next_xid, key)
                if self.signer is not None:
                    digest = replace(digest, signature=self.signer.sign(digest.header()))
                if not await self.source.add_digest(digest):
                    return made  # another process sealed this far first
                made.append(digest)
                if run.count < self.step:
                    return made
