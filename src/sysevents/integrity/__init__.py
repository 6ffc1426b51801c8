"""Tamper evidence: committed events sealed into a signed chain of digests, and verified.

* :mod:`~sysevents.integrity.canonical`: the canonical form of an event, its fingerprint;
* :mod:`~sysevents.integrity.digest`: digests, their header, hash and entries;
* :mod:`~sysevents.integrity.signing`: Ed25519 seal keys (the ``seal`` extra);
* :mod:`~sysevents.integrity.sealer`: sealing in the background;
* :mod:`~sysevents.integrity.verify`: recomputing the chain, naming what differs.

Each store gives sealing its rows in commit order (:class:`SealStore`,
``EventRepository.seals``). See docs/security.md.
"""

from __future__ import annotations

from .canonical import canonical, canonical_of, fingerprint
from .digest import Digest, Entry, Position, Run
from .sealer import Sealer
from .source import Backdating, Difference, Horizon, SealStore
from .verify import Finding, Report, verify

__all__ = [
    "Backdating",
    "Difference",
    "Digest",
    "Entry",
    "Finding",
    "Horizon",
    "Position",
    "Report",
    "Run",
    "SealStore",
    "Sealer",
    "canonical",
    "canonical_of",
    "fingerprint",
    "verify",
]
